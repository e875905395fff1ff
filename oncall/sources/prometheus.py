"""Prometheus Alertmanager's webhook: `POST /event/push/alert/prometheus?integration_key=`.

Alertmanager sends one JSON object per notification of an alert group (`version` "4", `groupKey`, `status`,
`receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`, `truncatedAlerts` and `alerts[]`;
the struct is `Message` in prometheus/alertmanager `notify/webhook/webhook.go`). It treats any 2xx as delivered,
retries 5xx and drops the notification on any other 4xx, so this adapter keeps what it can and refuses only a body
that is not Alertmanager-shaped at all: not an object, `alerts` missing or not a list, an alert that is not an
object, or an alert whose `status`, `labels`, `annotations` or `fingerprint` has the wrong type.

Decisions (reference/product.md §9.2, Flashduty's documented mapping):
- One event per `alerts[]` item; an empty `alerts[]` is a valid no-op. Any `version` is accepted.
- alert_key = the alert's `fingerprint` (a hash of its labels, made by Alertmanager); without one, a stable hash of
  the sorted labels (`alert_key_generated`). Keys over 255 characters are replaced by their SHA-256.
- Severity = the first non-empty of the labels `severity`, `priority`, `level`, compared case-insensitively:
  critical → Critical; warning, warn → Warning; info, acknowledged, unknown, unk → Info; ok → Ok (a recovery);
  anything else, or none of them → Warning. An alert whose `status` is "resolved" is a recovery (Ok) whatever its
  severity label says.
- title = annotations.summary, else labels.alertname, else "Alertmanager alert" (cut to 512 characters).
- description = annotations.description, else annotations.message (cut to 2048 characters).
- labels = the alert's labels, then its annotations, made acceptable by `sanitize_labels` (labels win a clash and
  the 50-pair cap).
- event_time = the annotation `timestamp` (unix seconds, milliseconds above 10^11, or RFC 3339), else `endsAt`
  of a resolved alert or `startsAt`, ignoring Go's zero time "0001-01-01T00:00:00Z"; else none (ingest then goes
  by the time the push arrived, and takes the monitor's word on no ordering).
- No images: Alertmanager sends none.

Grafana Alerting (v9+) sends the same shape, so `alert_event` is shared with the Grafana adapter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from oncall.models.incidents import EventStatus
from oncall.sources.base import (
    ALERT_KEY_MAX,
    DESCRIPTION_MAX,
    TITLE_MAX,
    Image,
    IntegrationInfo,
    NormalizedEvent,
    SourceError,
    generated_alert_key,
    parse_time,
    sanitize_labels,
    truncate,
)

DEFAULT_TITLE = "Alertmanager alert"
SEVERITY_LABELS = ("severity", "priority", "level")
SEVERITY_MAP = {
    "critical": EventStatus.CRITICAL,
    "warning": EventStatus.WARNING,
    "warn": EventStatus.WARNING,
    "info": EventStatus.INFO,
    "acknowledged": EventStatus.INFO,
    "unknown": EventStatus.INFO,
    "unk": EventStatus.INFO,
    "ok": EventStatus.OK,
}
DEFAULT_SEVERITY = EventStatus.WARNING


def parse(payload: object, *, now: datetime, integration: IntegrationInfo | None = None) -> list[NormalizedEvent]:
    """One event per alert of the notification; `integration` is not read: these titles are not templates."""
    return [alert_event(alert, path=path) for path, alert in alerts_of(payload)]


def alerts_of(payload: object) -> list[tuple[str, Mapping]]:
    """The `alerts[]` items of an Alertmanager-shaped body, each with its path for error messages."""
    if not isinstance(payload, Mapping):
        raise SourceError("body", "must be a JSON object")
    alerts = payload.get("alerts")
    if alerts is None:
        raise SourceError("alerts", "is required")
    if not isinstance(alerts, list):
        raise SourceError("alerts", f"must be a list of alerts, not {type(alerts).__name__}")
    items = []
    for index, alert in enumerate(alerts):
        path = f"alerts[{index}]"
        if not isinstance(alert, Mapping):
            raise SourceError(path, "must be an object")
        items.append((path, alert))
    return items


def alert_event(
    alert: Mapping,
    *,
    path: str,
    default_title: str = DEFAULT_TITLE,
    extra_labels: Mapping[str, str] | None = None,
    images: tuple[Image, ...] = (),
) -> NormalizedEvent:
    """One Alertmanager-shaped alert as an event. `extra_labels` rank after the labels, before the annotations."""
    status = _optional(alert, "status", str, path) or "firing"
    labels = _optional(alert, "labels", Mapping, path) or {}
    annotations = _optional(alert, "annotations", Mapping, path) or {}
    fingerprint = _optional(alert, "fingerprint", str, path) or ""

    others = dict(extra_labels or {})
    for key, value in annotations.items():
        others.setdefault(key, value)
    clean = sanitize_labels(others, first=labels)
    if fingerprint.strip():
        alert_key, generated = fit_key(fingerprint), False
    else:
        alert_key, generated = generated_alert_key("", sanitize_labels(labels)), True

    resolved = status.strip().lower() == "resolved"
    event_status = EventStatus.OK if resolved else severity_of(labels)
    title = truncate(
        _text(annotations.get("summary")) or _text(labels.get("alertname")) or default_title,
        TITLE_MAX,
    )
    description = _text(annotations.get("description")) or _text(annotations.get("message"))
    return NormalizedEvent(
        status=event_status,
        alert_key=alert_key,
        alert_key_generated=generated,
        title=title,
        title_rule=title,
        description=truncate(description, DESCRIPTION_MAX),
        labels=clean,
        images=images,
        event_time=_event_time(alert, annotations, resolved=resolved),
    )


def severity_of(labels: Mapping) -> str:
    """The event status the first present severity-like label names, Warning when none does."""
    for name in SEVERITY_LABELS:
        value = labels.get(name)
        if value is None:
            continue
        text = str(value).strip().lower()
        if text:
            return SEVERITY_MAP.get(text, DEFAULT_SEVERITY)
    return DEFAULT_SEVERITY


def fit_key(key: str) -> str:
    """A monitor's own key, kept as is when it fits, else replaced by its (stable) SHA-256."""
    return key if len(key) <= ALERT_KEY_MAX else hashlib.sha256(key.encode("utf-8")).hexdigest()


def _event_time(alert: Mapping, annotations: Mapping, *, resolved: bool) -> datetime | None:
    candidates = [annotations.get("timestamp")]
    if resolved:
        candidates.append(alert.get("endsAt"))
    candidates.append(alert.get("startsAt"))
    for candidate in candidates:
        parsed = parse_time(candidate)
        if parsed is not None:
            return parsed
    return None


def _optional(alert: Mapping, key: str, kind: type, path: str):
    value = alert.get(key)
    if value is not None and not isinstance(value, kind):
        expected = "an object" if kind is Mapping else "a string"
        raise SourceError(f"{path}.{key}", f"must be {expected}, not {type(value).__name__}")
    return value


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
