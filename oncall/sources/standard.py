"""Flashduty's standard alert event: `POST /event/push/alert/standard?integration_key=`.

One JSON object, one event. Fields and limits (reference/product.md §9.1): `title_rule` (required, up to 512
characters, longer is cut; `title` is accepted as an alias, as Uptime Kuma sends it), `event_status` (Critical,
Warning, Info or Ok, case-sensitive), `alert_key` (up to 255; generated from title rule and labels when absent,
required for Ok), `description` (up to 2048, longer is cut), `labels` (up to 50 string pairs), `images`.

A `[TPL]` title rule whose every reference reads nothing would make a blank title, which would page with no name:
such an alert is titled "Alert from <integration name>" instead (its rule stays on the alert as sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from oncall.models.incidents import EventStatus
from oncall.sources.base import (
    ALERT_KEY_MAX,
    DESCRIPTION_MAX,
    TITLE_MAX,
    IntegrationInfo,
    NormalizedEvent,
    SourceError,
    clean_images,
    clean_labels,
    generated_alert_key,
    render_title,
    require_string,
    truncate,
)

STATUSES = tuple(EventStatus.values)


def parse(payload: object, *, now: datetime, integration: IntegrationInfo | None = None) -> list[NormalizedEvent]:
    """The push's one event; `integration` (the one it arrived at) fills a `[TPL]` title's IntegrationName and
    IntegrationType and names a title that would otherwise be blank."""
    if not isinstance(payload, Mapping):
        raise SourceError("body", "must be a JSON object")

    title_key = "title_rule" if payload.get("title_rule") is not None else "title"
    title_rule = require_string(payload, title_key, path="title_rule", required=False)
    if title_rule is None:
        raise SourceError("title_rule", "is required")
    if not title_rule.strip():
        raise SourceError("title_rule", "must not be empty")

    status = require_string(payload, "event_status")
    if status not in STATUSES:
        raise SourceError("event_status", f"must be one of {', '.join(STATUSES)} (case-sensitive), not {status!r}")

    alert_key = require_string(payload, "alert_key", required=False)
    if alert_key is not None:
        if not alert_key.strip():
            raise SourceError("alert_key", "must not be empty")
        if len(alert_key) > ALERT_KEY_MAX:
            raise SourceError("alert_key", f"is longer than {ALERT_KEY_MAX} characters")
    elif status == EventStatus.OK:
        raise SourceError("alert_key", "is required when event_status is Ok")

    description = truncate(require_string(payload, "description", required=False) or "", DESCRIPTION_MAX)
    labels = clean_labels(payload.get("labels"))
    images = clean_images(payload.get("images"))
    key = alert_key or generated_alert_key(title_rule, labels)
    # What a `[TPL]` rule's {{.Field}} reads, by Flashduty's AlertEvent names. An Ok event has no severity of its
    # own, and Title reads "": the title is what is being made.
    fields = {
        "EventStatus": status,
        "EventSeverity": "" if status == EventStatus.OK else status,
        "AlertKey": key,
        "Description": description,
        "TitleRule": title_rule,
        "IntegrationName": integration.name if integration else "",
        "IntegrationType": integration.kind if integration else "",
    }
    title = render_title(title_rule, labels, fields)
    if not title.strip():
        title = f"Alert from {integration.name}" if integration else "Alert"

    return [
        NormalizedEvent(
            status=status,
            alert_key=key,
            alert_key_generated=alert_key is None,
            title=truncate(title, TITLE_MAX),
            title_rule=truncate(title_rule, TITLE_MAX),
            description=description,
            labels=labels,
            images=images,
        )
    ]
