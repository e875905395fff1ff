"""Inbound adapters: one pure module per monitor format, each
`parse(payload, *, now, integration=None) -> list[NormalizedEvent]` (`integration`: the IntegrationInfo pushed to).

PagerDuty's adapter (`oncall.sources.pagerduty`) is not listed: its endpoints answer in PagerDuty's own shapes
(oncall/api/pagerduty.py) rather than through the generic push view.
"""

from oncall.sources import grafana, prometheus, standard

PARSERS = {
    "standard": standard.parse,
    "prometheus": prometheus.parse,
    "grafana": grafana.parse,
}
