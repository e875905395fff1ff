"""Ingest: normalized events in, alerts deduplicated and grouped, incidents opened, recovered and closed.

A push is accepted by storing its events as one batch (one insert, so the endpoint stays fast and a burst is
absorbed); the monitor's 2xx means the batch is stored. The worker then processes each integration's batches in
the order they arrived, each in one transaction: all its events take effect or none do. Rows are locked incident
first, then alert, everywhere in the platform, so concurrent ingests and people's actions never deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from oncall.errors import NotRouted
from oncall.lib import queue
from oncall.lib.grouping import group_key
from oncall.lib.locks import transaction_lock, transaction_try_lock
from oncall.models import (
    Alert,
    AlertProgress,
    Channel,
    EventBatch,
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

logger = logging.getLogger(__name__)

LAST_EVENT_AT_RESOLUTION = timedelta(seconds=60)
MAX_ALERTS_PER_INCIDENT = 5000
PROCESS_TASK = "oncall.tasks.batches_process"
# Waits before a failing batch is tried again; after the last one it is set aside and the next batch goes on.
BATCH_RETRY = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5))
# A batch still unprocessed this long after it arrived is handed to the worker again by the ticker.
BATCH_STALL = timedelta(seconds=2)


def events_accept(*, integration: Integration, events: Sequence[NormalizedEvent], now: datetime) -> EventBatch | None:
    """Store the events of one push for the worker, which processes them in order; None if there are none."""
    if integration.channel_id is None:
        raise NotRouted(_("Integration %(name)s has no channel to send its alerts to.") % {"name": integration.name})
    if not events:
        return None
    with transaction.atomic():  # the batch and its hand-over to the worker commit together
        batch = EventBatch.objects.create(
            integration=integration, events=[event.to_json() for event in events], received_at=now
        )
        queue.enqueue(PROCESS_TASK, integration.pk, group="ingest")
    return batch


def batches_process(*, integration_id: int, now: datetime) -> int:
    """Process one integration's waiting batches, oldest first, each in its own transaction; return how many.

    One worker at a time per integration (a transaction lock), so an Ok never overtakes its trigger. A batch that
    fails is retried after a wait, holding back the later ones to keep the order; after the last retry it is set
    aside with its error and the rest go on.
    """
    done = 0
    while True:
        with transaction.atomic():
            if not transaction_try_lock(f"ingest:{integration_id}"):
                return done  # another worker is draining this integration
            batch = EventBatch.objects.filter(integration_id=integration_id, failed_at__isnull=True).first()
            if batch is None or (batch.next_attempt_at and batch.next_attempt_at > now):
                return done
            integration = Integration.objects.select_related("channel").get(pk=integration_id)
            try:
                with transaction.atomic():
                    events = [NormalizedEvent.from_json(data) for data in batch.events]
                    alert_ingest(integration=integration, events=events, now=batch.received_at)
            except Exception as exc:
                logger.exception("Event batch %s of integration %s failed", batch.pk, integration_id)
                batch.attempts += 1
                batch.error = f"{type(exc).__name__}: {exc}"[:2000]
                if batch.attempts > len(BATCH_RETRY):
                    batch.failed_at = now
                else:
                    batch.next_attempt_at = now + BATCH_RETRY[batch.attempts - 1]
                batch.save(update_fields=["attempts", "error", "failed_at", "next_attempt_at"])
                if batch.failed_at is None:
                    return done
                continue
            batch.delete()
            done += 1


def batches_enqueue_stalled(*, now: datetime) -> int:
    """Hand integrations whose batches wait too long back to the worker (the ticker calls this every tick)."""
    integration_ids = list(
        EventBatch.objects.filter(failed_at__isnull=True, received_at__lte=now - BATCH_STALL)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by()
        .values_list("integration_id", flat=True)
        .distinct()
    )
    for integration_id in integration_ids:
        queue.enqueue(PROCESS_TASK, integration_id, group="ingest")
    return len(integration_ids)


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
