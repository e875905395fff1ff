"""Ingest: normalized events in, alerts deduplicated and grouped, incidents opened, recovered and closed.

Every event of one request is stored in one transaction, so a monitor that gets a 2xx knows all of it is kept
and one that gets an error knows none of it is. Rows are locked incident first, then alert, everywhere in the
platform, so concurrent ingests and people's actions never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from oncall.errors import NotRouted
from oncall.lib.grouping import group_key
from oncall.lib.locks import transaction_lock
from oncall.models import (
    Alert,
    AlertProgress,
    Channel,
    EventStatus,
    Incident,
    Integration,
    Progress,
    Severity,
    Source,
    TimelineEntry,
)
from oncall.services.incidents import (
    auto_resolve_at,
    incident_close,
    incident_open,
    incident_refresh_severity,
    timeline_add,
)
from oncall.services.lifecycle import incident_acknowledge
from oncall.sources.base import EventAction, NormalizedEvent

LAST_EVENT_AT_RESOLUTION = timedelta(seconds=60)
MAX_ALERTS_PER_INCIDENT = 5000


@dataclass(frozen=True)
class IngestResult:
    alert_key: str
    action: str  # "created", "grouped", "merged", "recovered", "acknowledged" or "ignored"
    alert_id: int | None = None
    incident_id: int | None = None


@transaction.atomic
def alert_ingest(*, integration: Integration, events: Sequence[NormalizedEvent], now: datetime) -> list[IngestResult]:
    """Store the events of one push from `integration`; return what became of each."""
    channel = integration.channel
    if channel is None:
        raise NotRouted(_("Integration %(name)s has no channel to send its alerts to.") % {"name": integration.name})
    results = [_ingest_one(integration=integration, channel=channel, event=event, now=now) for event in events]
    # Coarse on purpose: updating the integration row on every event would serialise all its pushes.
    Integration.objects.filter(
        Q(pk=integration.pk) & (Q(last_event_at__isnull=True) | Q(last_event_at__lt=now - LAST_EVENT_AT_RESOLUTION))
    ).update(last_event_at=now)
    return results


def _open_alert_ids(integration: Integration, alert_key: str) -> tuple[int, int] | None:
    return (
        Alert.objects.filter(integration=integration, alert_key=alert_key, progress=AlertProgress.TRIGGERED)
        .values_list("pk", "incident_id")
        .first()
    )


def _lock(alert_id: int, incident_id: int) -> tuple[Alert, Incident] | None:
    """Lock an open alert and its incident in the platform's order (incident, then alert)."""
    incident = Incident.objects.select_for_update(of=("self",)).select_related("channel").get(pk=incident_id)
    alert = Alert.objects.select_for_update().filter(pk=alert_id, progress=AlertProgress.TRIGGERED).first()
    if alert is None or alert.incident_id != incident.pk:
        return None  # recovered, closed or merged meanwhile: look again
    alert.incident = incident
    return alert, incident


def _ingest_one(*, integration: Integration, channel: Channel, event: NormalizedEvent, now: datetime) -> IngestResult:
    for _attempt in range(5):
        found = _open_alert_ids(integration, event.alert_key)
        locked = _lock(*found) if found else None
        if found and locked is None:
            continue
        if locked:
            alert, incident = locked
            if event.action == EventAction.RECOVER:
                return _recover(alert=alert, incident=incident, event=event, now=now)
            if event.action == EventAction.ACKNOWLEDGE:
                return _acknowledge(alert=alert, incident=incident, now=now)
            return _merge(alert=alert, incident=incident, event=event, now=now)
        if event.action != EventAction.TRIGGER:
            # A recovery or acknowledgement of an alert that is not open changes nothing.
            return IngestResult(alert_key=event.alert_key, action="ignored")
        try:
            with transaction.atomic():
                return _create(integration=integration, channel=channel, event=event, now=now)
        except IntegrityError:
            # Another request opened the same alert between our lookup and our insert: merge into it instead.
            continue
    raise RuntimeError(f"could not settle alert {event.alert_key!r} after concurrent updates")


def _group_target(channel: Channel, key: str, now: datetime) -> Incident | None:
    """The open incident of `channel` an alert with grouping value `key` joins, if any."""
    if not key:
        return None
    # Two alerts of a new group arriving together must not open two incidents.
    transaction_lock(f"group:{channel.pk}:{key}")
    candidate = (
        Incident.objects.select_for_update()
        .filter(channel=channel, group_key=key, start_time__gte=now - timedelta(minutes=channel.group_window_minutes))
        .exclude(progress=Progress.CLOSED)
        .order_by("-start_time", "-pk")
        .first()
    )
    if candidate is None or candidate.alerts.count() >= MAX_ALERTS_PER_INCIDENT:
        return None
    return candidate


def _create(*, integration: Integration, channel: Channel, event: NormalizedEvent, now: datetime) -> IngestResult:
    key = group_key(channel.group_keys, event.labels)
    incident = _group_target(channel, key, now)
    action = "grouped" if incident else "created"
    if incident is None:
        incident = incident_open(
            channel=channel,
            title=event.title,
            description=event.description,
            severity=event.status,
            labels=event.labels,
            now=now,
            origin=_("alert from %(integration)s") % {"integration": integration.name},
            group_key=key,
        )
    alert = Alert.objects.create(
        integration=integration,
        channel=channel,
        incident=incident,
        alert_key=event.alert_key,
        title=event.title,
        title_rule=event.title_rule,
        description=event.description,
        severity=event.status,
        status=event.status,
        labels=dict(event.labels),
        images=[image.__dict__ for image in event.images],
        start_time=now,
        last_time=now,
    )
    if action == "grouped":
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.ALERT_ADDED,
            message=_("Alert %(title)s joined this incident.") % {"title": alert.title},
            now=now,
            source=Source.MONITOR,
            detail={"alert_id": alert.pk, "alert_key": alert.alert_key},
        )
        _touch(incident, now)
        incident_refresh_severity(incident=incident, now=now)
        incident.save(update_fields=["last_time", "auto_resolve_at", "severity", "status"])
    return IngestResult(alert_key=event.alert_key, action=action, alert_id=alert.pk, incident_id=incident.pk)


def _touch(incident: Incident, now: datetime) -> None:
    incident.last_time = now
    incident.auto_resolve_at = auto_resolve_at(incident.channel, now)


def _merge(*, alert: Alert, incident: Incident, event: NormalizedEvent, now: datetime) -> IngestResult:
    alert.title = event.title
    alert.title_rule = event.title_rule
    alert.description = event.description
    alert.labels = dict(event.labels)
    if event.images:
        alert.images = [image.__dict__ for image in event.images]
    alert.status = event.status
    # Severity may rise, never fall silently: the alert keeps the worst its source said.
    if Severity.rank(event.status) > Severity.rank(alert.severity):
        alert.severity = event.status
    alert.event_count += 1
    alert.last_time = now
    alert.save()
    _touch(incident, now)
    incident_refresh_severity(incident=incident, now=now)
    incident.save(update_fields=["last_time", "auto_resolve_at", "severity", "status"])
    return IngestResult(alert_key=event.alert_key, action="merged", alert_id=alert.pk, incident_id=incident.pk)


def _acknowledge(*, alert: Alert, incident: Incident, now: datetime) -> IngestResult:
    if incident.progress == Progress.TRIGGERED:
        incident_acknowledge(incident=incident, by=None, source=Source.MONITOR, now=now)
    return IngestResult(alert_key=alert.alert_key, action="acknowledged", alert_id=alert.pk, incident_id=incident.pk)


def _recover(*, alert: Alert, incident: Incident, event: NormalizedEvent, now: datetime) -> IngestResult:
    # A recovery only adds labels the alert did not have; it never rewrites what the firing events said.
    alert.labels = {**event.labels, **alert.labels}
    alert.status = EventStatus.OK
    alert.progress = AlertProgress.CLOSED
    alert.end_time = now
    alert.close_time = now
    alert.last_time = now
    alert.event_count += 1
    alert.save()
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ALERT_RECOVERED,
        message=_("Alert %(title)s recovered.") % {"title": alert.title},
        now=now,
        source=Source.MONITOR,
        detail={"alert_id": alert.pk, "alert_key": alert.alert_key},
    )
    _touch(incident, now)
    if Alert.objects.filter(incident=incident, progress=AlertProgress.TRIGGERED).exists():
        incident_refresh_severity(incident=incident, now=now)
        incident.save(update_fields=["last_time", "auto_resolve_at", "severity", "status"])
        return IngestResult(alert_key=event.alert_key, action="recovered", alert_id=alert.pk, incident_id=incident.pk)
    incident.status = EventStatus.OK
    incident.end_time = now
    incident.save(update_fields=["last_time", "auto_resolve_at", "status", "end_time"])
    if incident.channel.close_with_alerts and incident.progress != Progress.CLOSED:
        incident_close(incident=incident, now=now, source=Source.MONITOR, reason=_("All of its alerts have recovered."))
    return IngestResult(alert_key=event.alert_key, action="recovered", alert_id=alert.pk, incident_id=incident.pk)
