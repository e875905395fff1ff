"""Grafana's webhook contact point: `POST /event/push/alert/grafana?integration_key=`.

Both generations of Grafana alerting post here, and the adapter tells them apart by shape:

- Grafana Alerting (v9+, "contact points"; also v8 with unified alerting on): an Alertmanager-shaped body with
  `alerts[]` (`version` "1", `orgId`, `title`, `state`, `message` beside Alertmanager's fields). Each alert is read
  exactly as the Prometheus adapter reads one (fingerprint, status firing/resolved, the severity/priority/level
  label mapping with default Warning, summary/alertname title, description, timestamps). Grafana adds per alert
  `dashboardURL`, `panelURL`, `silenceURL` and `generatorURL`: each non-empty one becomes a label
  (`grafana_dashboard_url`, `grafana_panel_url`, `grafana_silence_url`, `grafana_generator_url`) because responders
  use them; they rank after the alert's labels and before its annotations for the 50-label cap. `imageURL` (a panel
  screenshot, when image rendering is set up) becomes the alert's image, linked to the panel or dashboard.
- Legacy alerting (v4 to v8 "notification channels"): `ruleId`, `ruleName`, `ruleUrl`, `state`, `title`, `message`,
  `evalMatches[{metric, value, tags}]`, `tags`, `imageUrl`, and no `alerts[]`. `state` alerting → Warning,
  no_data → Critical, ok → Ok (a recovery); paused and pending produce no event; any other state is refused.
  alert_key = "grafana-legacy-<ruleId>", or a hash of ruleUrl and ruleName when there is no ruleId
  (`alert_key_generated`). title = `title`, else `ruleName`, else "Grafana alert"; description = `message`;
  labels = the rule's `tags`, then `grafana_rule_url`, then one label per eval match (metric name → value as text),
  through `sanitize_labels`; `imageUrl` becomes the image, linked to the rule.
- A body with neither `alerts[]` nor `ruleId`/`ruleName`/`evalMatches` is refused (field "body").

Images whose URL is not http(s) or longer than 256 characters are left out rather than refusing the alert, since
Grafana retries nothing it got a 4xx for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from oncall.models.incidents import EventStatus
from oncall.sources import prometheus
from oncall.sources.base import (
    DESCRIPTION_MAX,
    IMAGE_ALT_MAX,
    IMAGE_HREF_MAX,
    IMAGE_SRC_MAX,
    TITLE_MAX,
    Image,
    IntegrationInfo,
    NormalizedEvent,
    SourceError,
    generated_alert_key,
    sanitize_labels,
    truncate,
    usable_url,
)

DEFAULT_TITLE = "Grafana alert"
URL_LABELS = (
    ("dashboardURL", "grafana_dashboard_url"),
    ("panelURL", "grafana_panel_url"),
    ("silenceURL", "grafana_silence_url"),
    ("generatorURL", "grafana_generator_url"),
)
LEGACY_MARKERS = ("ruleId", "ruleName", "evalMatches")
LEGACY_STATES = {"alerting": EventStatus.WARNING, "no_data": EventStatus.CRITICAL, "ok": EventStatus.OK}
LEGACY_SILENT_STATES = ("paused", "pending")


def parse(payload: object, *, now: datetime, integration: IntegrationInfo | None = None) -> list[NormalizedEvent]:
    """One event per alert (one for a legacy notification); `integration` is not read: titles are not templates."""
    if not isinstance(payload, Mapping):
        raise SourceError("body", "must be a JSON object")
    if payload.get("alerts") is not None:
        return [_unified_event(alert, path=path) for path, alert in prometheus.alerts_of(payload)]
    if any(payload.get(marker) is not None for marker in LEGACY_MARKERS):
        return _legacy_events(payload)
    raise SourceError(
        "body",
        "is neither a Grafana Alerting notification (alerts[]) nor a legacy one (ruleId, ruleName, evalMatches)",
    )


def _unified_event(alert: Mapping, *, path: str) -> NormalizedEvent:
    extra = {label: value for key, label in URL_LABELS if (value := _text(alert.get(key)))}
    labels = alert.get("labels")
    alertname = _text(labels.get("alertname")) if isinstance(labels, Mapping) else ""
    images = _image(
        alert.get("imageURL"),
        href=_text(alert.get("panelURL")) or _text(alert.get("dashboardURL")),
        alt=alertname or DEFAULT_TITLE,
    )
    return prometheus.alert_event(alert, path=path, default_title=DEFAULT_TITLE, extra_labels=extra, images=images)


def _legacy_events(payload: Mapping) -> list[NormalizedEvent]:
    state = payload.get("state")
    if state is None:
        raise SourceError("state", "is required")
    if not isinstance(state, str):
        raise SourceError("state", f"must be a string, not {type(state).__name__}")
    state = state.strip().lower()
    if state in LEGACY_SILENT_STATES:
        return []
    if state not in LEGACY_STATES:
        raise SourceError("state", f"must be one of alerting, no_data, ok, paused, pending, not {state!r}")

    tags = payload.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise SourceError("tags", f"must be an object, not {type(tags).__name__}")
    matches = payload.get("evalMatches")
    if matches is not None and not isinstance(matches, list):
        raise SourceError("evalMatches", f"must be a list, not {type(matches).__name__}")

    rule_id = payload.get("ruleId")
    rule_url = _text(payload.get("ruleUrl"))
    rule_name = _text(payload.get("ruleName"))
    if rule_id is not None and (isinstance(rule_id, bool) or not isinstance(rule_id, int | str)):
        raise SourceError("ruleId", f"must be a number, not {type(rule_id).__name__}")
    if rule_id is not None and str(rule_id).strip():
        alert_key, generated = prometheus.fit_key(f"grafana-legacy-{str(rule_id).strip()}"), False
    elif rule_url or rule_name:
        identity = {name: value for name, value in (("ruleUrl", rule_url), ("ruleName", rule_name)) if value}
        alert_key, generated = generated_alert_key("grafana-legacy", identity), True
    else:
        raise SourceError("ruleId", "is required when neither ruleUrl nor ruleName tells the alert rule apart")

    metrics: dict[str, object] = {}
    if rule_url:
        metrics["grafana_rule_url"] = rule_url
    for match in matches or []:
        if isinstance(match, Mapping) and (metric := _text(match.get("metric"))):
            metrics.setdefault(metric, match.get("value"))

    title = truncate(_text(payload.get("title")) or rule_name or DEFAULT_TITLE, TITLE_MAX)
    return [
        NormalizedEvent(
            status=LEGACY_STATES[state],
            alert_key=alert_key,
            alert_key_generated=generated,
            title=title,
            title_rule=title,
            description=truncate(_text(payload.get("message")), DESCRIPTION_MAX),
            labels=sanitize_labels(metrics, first=tags or {}),
            images=_image(payload.get("imageUrl"), href=rule_url, alt=rule_name or DEFAULT_TITLE),
        )
    ]


def _image(src: object, *, href: str, alt: str) -> tuple[Image, ...]:
    """The screenshot as an image, or none when its URL is not one the platform can show."""
    if not usable_url(src, IMAGE_SRC_MAX):
        return ()
    return (Image(src=src, alt=truncate(alt, IMAGE_ALT_MAX), href=href if usable_url(href, IMAGE_HREF_MAX) else ""),)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
