"""Inbound adapters: one pure module per monitor format, each `parse(payload, *, now) -> list[NormalizedEvent]`."""

from oncall.sources import standard

PARSERS = {
    "standard": standard.parse,
}
