"""Ingest: normalized events in, routed to channels, alerts deduplicated and grouped, incidents opened, recovered
and closed.

A push is accepted by routing each of its triggers (the integration's routing rules, from a cache) and storing its
events, with the channels chosen for each, as one batch (one insert, so the endpoint stays fast and a burst is
absorbed); the monitor's 2xx means the batch is stored, and a trigger with nowhere to go refuses the whole push.
The worker then processes each integration's batches in the order they arrived, each in one transaction: all its
events take effect or none do. A push of more than BATCH_EVENTS events is stored as several batches, in order, so no
transaction outlasts the worker's timeout (a batch killed with its worker would be tried again and killed forever,
holding back every later push of its integration). Rows are locked incident first, then alert, everywhere in the
platform, so concurrent ingests and people's actions never deadlock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from oncall.errors import IntegrationGone, NotRouted
from oncall.lib import clock, queue, routing
from oncall.lib.filters import Subject
from oncall.lib.grouping import group_key
from oncall.lib.locks import transaction_lock
from oncall.models import (
    Alert,
    AlertProgress,
    Channel,
    EventBatch,
    EventStatus,
    Incident,
    IncidentEvent,
    IngestTask,
    Integration,
    Progress,
    Severity,
    Source,
    TimelineEntry,
)
from oncall.models.intake import group_key_normalise
from oncall.selectors import channel_ids_by_name, integration_key_cache_clear, route_table_get, route_table_load
from oncall.services.events import incident_event_record, incident_events_dispatch_held, incident_events_held
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
# How long one task drains an integration's batches before handing the rest to another.
DRAIN_SECONDS = 5.0
# A batch still unprocessed this long after it arrived is handed to the worker again by the ticker...
BATCH_STALL = timedelta(seconds=2)
# ...unless a task for it was queued less than this ago and has yet to start; one older is taken for lost (the
# broker lost it, or the web process died before handing it over). A worker drains for DRAIN_SECONDS at a time.
TASK_LOST = timedelta(seconds=15)
# The most events one batch holds: a push of more (an Alertmanager group in a large outage may hold thousands) is
# stored as several batches, each taking a second or two of the worker's time rather than minutes in one transaction.
BATCH_EVENTS = 100


@dataclass(frozen=True)
class Accepted:
    """What became of a push: the batches stored for the worker (none if the push had no events; several, in order,
    if it had more than BATCH_EVENTS) and the triggers left out because they match no routing rule, each with the
    message saying so."""

    batches: tuple[EventBatch, ...]
    not_routed: tuple[tuple[NormalizedEvent, str], ...] = ()


def events_accept(*, integration: Integration, events: Sequence[NormalizedEvent], now: datetime) -> Accepted:
    """Route the events of one push and store those with somewhere to go, with their channels, for the worker,
    which processes them in order.

    A trigger that matches no routing rule (and the integration has no default route) is left out and named in the
    answer, so the rest of the push still pages and recovers: Alertmanager and Grafana group many alerts in one
    push and do not retry a 4xx. Only a push with nothing else in it is refused (NotRouted), storing nothing.
    """
    if not events:
        return Accepted(())
    routed, unrouted = events_route(integration=integration, events=events)
    if not routed:
        event, position = unrouted[0]
        raise NotRouted(_no_route_message(integration, event, position, len(events), refused=True))
    not_routed = [
        (event, _no_route_message(integration, event, position, len(events), refused=False))
        for event, position in unrouted
    ]
    for _event, message in not_routed:
        logger.warning("Integration %s: %s", integration.pk, message)
    try:
        with transaction.atomic():  # the batches and their hand-over to the worker commit together
            stored = [event.to_json() for event in routed]
            batches = EventBatch.objects.bulk_create(
                EventBatch(integration=integration, events=stored[start : start + BATCH_EVENTS], received_at=now)
                for start in range(0, len(stored), BATCH_EVENTS)
            )
            _task_queue(integration.pk, now=now)
    except IntegrityError:
        if Integration.objects.filter(pk=integration.pk).exists():
            raise
        # Deleted in another process since this one cached its key: the key is no longer a valid one.
        integration_key_cache_clear(integration.key_hash)
        raise IntegrationGone(_("integration_key is not a valid one."), field="integration_key") from None
    return Accepted(tuple(batches), tuple(not_routed))


def _task_queue(integration_id: int, *, now: datetime, lost_after: timedelta | None = None) -> bool:
    """Queue a task to drain the integration's batches, unless one queued before has yet to start (and was queued
    less than `lost_after` ago, when given); return whether one was queued. Runs in the caller's transaction.

    One task drains all of an integration's waiting batches, so a push, the ticker or a drain handing on its rest
    queues one only when no task queued before has yet started. The lock orders this against a starting task
    (batches_process), which waits for those in progress; they share it, so they do not wait for each other.
    """
    transaction_lock(_queue_lock(integration_id), shared=True)
    marks = IngestTask.objects.filter(integration_id=integration_id, queued=True).values_list("queued_at", flat=True)
    mark = list(marks[:1])
    if mark and (lost_after is None or (mark[0] is not None and mark[0] > now - lost_after)):
        return False
    # Two callers may both get here and queue a task each; the two then drain in turn, which is harmless.
    if not IngestTask.objects.filter(integration_id=integration_id).update(queued=True, queued_at=now):
        IngestTask.objects.get_or_create(integration_id=integration_id, defaults={"queued": True, "queued_at": now})
    queue.enqueue(PROCESS_TASK, integration_id, group="ingest")
    return True


def _queue_lock(integration_id: int) -> str:
    return f"ingest-queue:{integration_id}"


def events_route(
    *, integration: Integration, events: Sequence[NormalizedEvent]
) -> tuple[list[NormalizedEvent], list[tuple[NormalizedEvent, int]]]:
    """The events with the channels each trigger goes to, and the triggers with no route, each with its position
    in the push (from 1).

    Recoveries and acknowledgements are not routed: their fields may no longer match any rule (an Ok is not
    Critical), and they apply to the open alerts with their key in whatever channel those are.
    """
    table = route_table_get(integration)
    subjects = [_subject(integration, event) if event.action == EventAction.TRIGGER else None for event in events]
    names = set().union(*(table.mapped_names(subject) for subject in subjects if subject is not None))
    by_name = channel_ids_by_name(names) if names else {}
    routed, not_routed = [], []
    for position, (event, subject) in enumerate(zip(events, subjects, strict=True), start=1):
        if subject is None:
            routed.append(event)
            continue
        channel_ids = routing.route(table, subject, by_name)
        if not channel_ids:
            not_routed.append((event, position))
            continue
        routed.append(replace(event, channel_ids=channel_ids))
    return routed, not_routed


def _subject(integration: Integration, event: NormalizedEvent) -> Subject:
    return Subject(
        severity=event.status,
        title=event.title,
        description=event.description,
        integration_id=integration.pk,
        integration_name=integration.name,
        labels=event.labels,
    )


def _no_route_message(
    integration: Integration, event: NormalizedEvent, position: int, count: int, *, refused: bool
) -> str:
    values = {
        "key": event.alert_key,
        "title": event.title if len(event.title) <= 80 else event.title[:79] + "…",
        "integration": integration.name,
        "position": position,
        "count": count,
    }
    if count == 1:
        return (
            _(
                'The event "%(title)s" (alert_key %(key)s) matches no routing rule of integration %(integration)s, '
                "which has no default route; nothing was stored."
            )
            % values
        )
    if refused:
        return (
            _(
                'Event %(position)d of %(count)d, "%(title)s" (alert_key %(key)s), matches no routing rule of '
                "integration %(integration)s, which has no default route; nothing was stored."
            )
            % values
        )
    return (
        _(
            'Event %(position)d of %(count)d, "%(title)s" (alert_key %(key)s), matches no routing rule of integration '
            "%(integration)s, which has no default route; it was left out and the rest of the push stored."
        )
        % values
    )


def batches_process(*, integration_id: int, now: datetime) -> int:
    """Process one integration's waiting batches, oldest first, each in its own transaction; return how many.

    One worker at a time per integration (a transaction lock), so an Ok never overtakes its trigger. A batch that
    fails is retried after a wait, holding back the later ones to keep the order; after the last retry it is set
    aside with its error and the rest go on. After DRAIN_SECONDS the rest go to a new task.
    """
    with transaction.atomic():
        # From here on, a push queues a task of its own; every push before this is drained below.
        transaction_lock(_queue_lock(integration_id))
        IngestTask.objects.filter(integration_id=integration_id, queued=True).update(queued=False)
    return batches_drain(integration_id=integration_id, now=now)


def batches_drain(*, integration_id: int, now: datetime) -> int:
    """The drain of batches_process (which first lets later pushes queue a task of their own): the integration's
    waiting batches, oldest first, each in its own transaction, for DRAIN_SECONDS; return how many."""
    done, started = 0, time.monotonic()
    held_for = None  # the push whose events the last batch held (this drain's own; another's ticker-dispatched)
    while True:
        if done and time.monotonic() - started > DRAIN_SECONDS:
            # Under a steady stream the drain would never end: hand the rest to a task of its own (or to the one
            # a push queued meanwhile), so no task nears the worker's timeout and other work gets its turn.
            with transaction.atomic():
                _task_queue(integration_id, now=clock.now())
            return done
        with transaction.atomic():
            # Another worker draining this integration finishes its batch first; then this one takes the next.
            transaction_lock(f"ingest:{integration_id}")
            batch = EventBatch.objects.filter(integration_id=integration_id, failed_at__isnull=True).first()
            if batch is None or (batch.next_attempt_at and batch.next_attempt_at > now):
                return done
            integration = Integration.objects.select_related("channel").get(pk=integration_id)
            # A push of more than BATCH_EVENTS events was stored as several batches: the events of all but its
            # last are held, and go out together once the last is in, as they would have from one batch.
            more = len(batch.events) >= BATCH_EVENTS and _more_of_push(batch)
            try:
                events = [NormalizedEvent.from_json(data) for data in batch.events]
                # alert_ingest is atomic: a failing batch leaves nothing behind, and its retry is recorded below.
                with incident_events_held() if more else nullcontext():
                    alert_ingest(integration=integration, events=events, now=batch.received_at)
            except Exception as exc:
                logger.exception("Event batch %s of integration %s failed", batch.pk, integration_id)
                # The push's earlier batches are in: what they hold goes out now rather than after the retries.
                transaction.on_commit(partial(incident_events_dispatch_held, at=batch.received_at), robust=True)
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
        if more:
            held_for = batch.received_at
        elif held_for == batch.received_at:
            incident_events_dispatch_held(at=held_for)
            held_for = None


def _more_of_push(batch: EventBatch) -> bool:
    """Whether a later batch holds the rest of `batch`'s push (they share the integration and the time)."""
    return EventBatch.objects.filter(
        integration_id=batch.integration_id, received_at=batch.received_at, failed_at__isnull=True, pk__gt=batch.pk
    ).exists()


def batches_enqueue_stalled(*, now: datetime) -> int:
    """Hand integrations whose batches wait too long back to the worker (the ticker calls this every tick); return
    how many were handed out.

    Not those with a task queued less than TASK_LOST ago that has yet to start: when the worker is behind, every
    batch waits longer than BATCH_STALL, and a task each tick would fill the queue ahead of other work (timers,
    deliveries) with drains of the same batches.
    """
    integration_ids = list(
        EventBatch.objects.filter(failed_at__isnull=True, received_at__lte=now - BATCH_STALL)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by()
        .values_list("integration_id", flat=True)
        .distinct()
    )
    handed = 0
    for integration_id in integration_ids:
        # A drain goes in order and stops at the oldest batch while its retry waits: none is handed out until then.
        head = EventBatch.objects.filter(integration_id=integration_id, failed_at__isnull=True).order_by("id")
        head_due = head.values_list("next_attempt_at", flat=True).first()
        if head_due is not None and head_due > now:
            continue
        with transaction.atomic():
            handed += _task_queue(integration_id, now=now, lost_after=TASK_LOST)
    return handed


@dataclass(frozen=True)
class IngestResult:
    alert_key: str
    action: str  # "created", "grouped", "merged", "recovered", "acknowledged" or "ignored"
    alert_id: int | None = None
    incident_id: int | None = None
    channel_id: int | None = None


@transaction.atomic
def alert_ingest(*, integration: Integration, events: Sequence[NormalizedEvent], now: datetime) -> list[IngestResult]:
    """Store the events of one push from `integration`; return what became of them.

    A trigger opens or updates its alert in each channel routing chose for it when the push was accepted; a
    recovery or acknowledgement applies to every open alert with its key, in whatever channel.
    """
    targets = [_channel_ids(integration, event) for event in events]
    wanted = {channel_id for ids in targets for channel_id in ids}
    channels: dict[int, Channel] = {}
    if integration.channel_id in wanted and Integration.channel.is_cached(integration):
        channels[integration.channel_id] = integration.channel  # read with the integration, in this transaction
    if wanted - channels.keys():
        channels.update(Channel.objects.in_bulk(wanted - channels.keys()))
    results: list[IngestResult] = []
    for event, channel_ids in zip(events, targets, strict=True):
        if event.action != EventAction.TRIGGER:
            results.extend(_settle(integration=integration, event=event, now=now))
            continue
        for channel_id in channel_ids:
            if channel_id not in channels:
                logger.warning("Channel %s was deleted after alert %r was routed to it", channel_id, event.alert_key)
        present = [channels[channel_id] for channel_id in channel_ids if channel_id in channels]
        for channel in present or _route_again(integration, event):
            results.append(_trigger(integration=integration, channel=channel, event=event, now=now))
    # Coarse on purpose: updating the integration row on every event would serialise all its pushes.
    if integration.last_event_at and integration.last_event_at >= now - LAST_EVENT_AT_RESOLUTION:
        return results
    Integration.objects.filter(
        Q(pk=integration.pk) & (Q(last_event_at__isnull=True) | Q(last_event_at__lt=now - LAST_EVENT_AT_RESOLUTION))
    ).update(last_event_at=now)
    return results


def _route_again(integration: Integration, event: NormalizedEvent) -> list[Channel]:
    """The channels for a trigger every channel of which was deleted after the push was accepted: the integration's
    routing rules as saved now, then its default route. The monitor was told the event was stored, so it is not
    dropped while something still routes it; when nothing does, it is left out with a warning, as at acceptance."""
    table = route_table_load(integration)  # from the database: the cached rules may still name the deleted channel
    subject = _subject(integration, event)
    names = table.mapped_names(subject)
    by_name = dict(Channel.objects.filter(name__in=names).values_list("name", "pk")) if names else {}
    channel_ids = routing.route(table, subject, by_name)
    found = Channel.objects.in_bulk(channel_ids)
    channels = [found[channel_id] for channel_id in channel_ids if channel_id in found]
    if channels:
        logger.warning(
            "Integration %s: alert %r was routed again, to channel(s) %s, because every channel it was routed to "
            "was deleted before it was processed",
            integration.pk,
            event.alert_key,
            ", ".join(str(channel.pk) for channel in channels),
        )
    else:
        logger.warning(
            "Integration %s: %s",
            integration.pk,
            _(
                'The event "%(title)s" (alert_key %(key)s) was routed to channels deleted before it was processed, '
                "and matches no routing rule of integration %(integration)s now, which has no default route; it "
                "was left out."
            )
            % {
                "title": event.title if len(event.title) <= 80 else event.title[:79] + "…",
                "key": event.alert_key,
                "integration": integration.name,
            },
        )
    return channels


def _channel_ids(integration: Integration, event: NormalizedEvent) -> tuple[int, ...]:
    if event.action != EventAction.TRIGGER or event.channel_ids:
        return event.channel_ids
    # A trigger stored before routing existed went to the integration's channel, as it did when it was accepted.
    if integration.channel_id is None:
        raise NotRouted(_("Integration %(name)s has no channel to send its alerts to.") % {"name": integration.name})
    return (integration.channel_id,)


def _open_alert_ids(integration: Integration, channel: Channel, alert_key: str) -> tuple[int, int] | None:
    return (
        Alert.objects.filter(
            integration=integration, channel=channel, alert_key=alert_key, progress=AlertProgress.TRIGGERED
        )
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


def _trigger(*, integration: Integration, channel: Channel, event: NormalizedEvent, now: datetime) -> IngestResult:
    """Merge a trigger into its open alert in `channel`, or open one."""
    for _attempt in range(5):
        found = _open_alert_ids(integration, channel, event.alert_key)
        if found:
            locked = _lock(*found)
            if locked is None:
                continue
            alert, incident = locked
            return _merge(alert=alert, incident=incident, event=event, now=now)
        try:
            with transaction.atomic():
                return _create(integration=integration, channel=channel, event=event, now=now)
        except IntegrityError:
            # Another request opened the same alert between our lookup and our insert: merge into it instead.
            continue
    raise RuntimeError(f"could not settle alert {event.alert_key!r} after concurrent updates")


def _settle(*, integration: Integration, event: NormalizedEvent, now: datetime) -> list[IngestResult]:
    """Apply a recovery or acknowledgement to every open alert with its key, in any channel; one that is not
    open anywhere changes nothing."""
    results: list[IngestResult] = []
    done: set[int] = set()
    open_alerts = (
        Alert.objects.filter(integration=integration, alert_key=event.alert_key, progress=AlertProgress.TRIGGERED)
        .order_by("incident_id", "pk")
        .values_list("pk", "incident_id")
    )
    for _attempt in range(5):
        # An acknowledged alert stays open: `done` keeps it from being taken again.
        found = [(alert_id, incident_id) for alert_id, incident_id in open_alerts.all() if alert_id not in done]
        if not found:
            break
        for alert_id, incident_id in found:
            locked = _lock(alert_id, incident_id)
            if locked is None:
                continue  # looked for again on the next pass
            alert, incident = locked
            done.add(alert.pk)
            if event.action == EventAction.RECOVER and _ends_an_earlier_firing(alert, event, now):
                logger.warning(
                    "Integration %s: ignored a recovery of alert %r (alert %s) that the monitor dated %s, before the "
                    "firing at %s it holds: the late resolution of an earlier firing (an HA peer or a retry)",
                    integration.pk,
                    alert.alert_key,
                    alert.pk,
                    _monitor_said(event, now).isoformat(),
                    alert.monitor_time.isoformat(),
                )
                results.append(_result(alert, "ignored"))
            elif event.action == EventAction.RECOVER:
                results.append(_recover(alert=alert, incident=incident, event=event, now=now))
            else:
                results.append(_acknowledge(alert=alert, incident=incident, now=now))
    else:
        raise RuntimeError(f"could not settle alert {event.alert_key!r} after concurrent updates")
    return results or [IngestResult(alert_key=event.alert_key, action="ignored")]


def _group_target(channel: Channel, key: str, now: datetime) -> Incident | None:
    """The open incident of `channel` an alert with grouping value `key` joins, if any."""
    if not key:
        return None
    # Two alerts of a new group arriving together must not open two incidents.
    transaction_lock(f"group:{channel.pk}:{key}")
    # A tumbling window is half-open, [start, start + window): an alert exactly one window after the start opens
    # the next incident, so windows never overlap.
    candidate = (
        Incident.objects.select_for_update()
        .filter(channel=channel, group_key=key, start_time__gt=now - timedelta(minutes=channel.group_window_minutes))
        .exclude(progress=Progress.CLOSED)
        .order_by("-start_time", "-pk")
        .first()
    )
    if candidate is None or candidate.alert_count >= MAX_ALERTS_PER_INCIDENT:
        return None
    return candidate


def _create(*, integration: Integration, channel: Channel, event: NormalizedEvent, now: datetime) -> IngestResult:
    # Normalised here too: a channel saved before its keys were normalised on save ("labels.service") still groups.
    names = [group_key_normalise(name) if isinstance(name, str) else name for name in channel.group_keys]
    key = group_key(names, event.labels)
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
            alert_count=1,  # the alert below
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
        start_time=_monitor_time(event, now),
        last_time=now,
        monitor_time=_monitor_said(event, now),
    )
    if action == "grouped":
        incident.alert_count += 1  # its row is ours: locked by _group_target
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
        incident.save(update_fields=["last_time", "auto_resolve_at", "severity", "status", "end_time", "alert_count"])
    return _result(alert, action)


def _result(alert: Alert, action: str) -> IngestResult:
    return IngestResult(
        alert_key=alert.alert_key,
        action=action,
        alert_id=alert.pk,
        incident_id=alert.incident_id,
        channel_id=alert.channel_id,
    )


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
    said = _monitor_said(event, now)
    # The latest firing by the monitor's clock: a late copy of an earlier one (a retry) does not move it back.
    if said is not None and (alert.monitor_time is None or said > alert.monitor_time):
        alert.monitor_time = said
    alert.save()
    _touch(incident, now)
    incident_refresh_severity(incident=incident, now=now)
    incident.save(update_fields=["last_time", "auto_resolve_at", "severity", "status", "end_time"])
    return _result(alert, "merged")


def _acknowledge(*, alert: Alert, incident: Incident, now: datetime) -> IngestResult:
    if incident.progress == Progress.TRIGGERED:
        incident_acknowledge(incident=incident, by=None, source=Source.MONITOR, now=now)
    return _result(alert, "acknowledged")


def _monitor_time(event: NormalizedEvent, now: datetime) -> datetime:
    """When the monitor says the alert started or ended (Alertmanager's startsAt/endsAt, a timestamp annotation,
    PagerDuty's payload.timestamp), never later than the platform received it; the time of receipt if it says
    nothing. Grouping windows, timers and last_time keep to the time of receipt."""
    return _monitor_said(event, now) or now


def _monitor_said(event: NormalizedEvent, now: datetime) -> datetime | None:
    """The time the monitor gave the event (never later than the platform received it), or None when it gave none.
    Only these are compared with each other to put a monitor's events in order: its clock is not ours."""
    return min(event.event_time, now) if event.event_time else None


def _ends_an_earlier_firing(alert: Alert, event: NormalizedEvent, now: datetime) -> bool:
    """Whether a recovery is dated before the latest firing of the open alert, by the monitor's own clock: the
    resolution of an earlier firing, delivered after the alert fired again (an HA Alertmanager peer, a retry), which
    must not close the firing one."""
    said = _monitor_said(event, now)
    return said is not None and alert.monitor_time is not None and said < alert.monitor_time


def _recover(*, alert: Alert, incident: Incident, event: NormalizedEvent, now: datetime) -> IngestResult:
    # A recovery only adds labels the alert did not have; it never rewrites what the firing events said.
    alert.labels = {**event.labels, **alert.labels}
    alert.status = EventStatus.OK
    alert.progress = AlertProgress.CLOSED
    alert.end_time = max(_monitor_time(event, now), alert.start_time)
    alert.monitor_time = _monitor_said(event, now)  # the end, by the monitor's clock, or None if it gave none
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
        incident.save(update_fields=["last_time", "auto_resolve_at", "severity", "status", "end_time"])
        return _result(alert, "recovered")
    incident.status = EventStatus.OK
    incident.end_time = now
    incident.save(update_fields=["last_time", "auto_resolve_at", "status", "end_time"])
    if incident.progress == Progress.CLOSED:
        return _result(alert, "recovered")
    if incident.channel.close_with_alerts:
        incident_close(incident=incident, now=now, source=Source.MONITOR, reason=_("All of its alerts have recovered."))
    else:
        # Kept open for someone to close: nobody is paged about it any more, until an alert fires in it again. The
        # event is dated when it is recorded, not when the batch was received (`now`, its end_time): the batch may
        # have waited in the queue while a level's timer paged, and those pages give way to it (Incident.
        # recovery_recorded_at). The incident is locked, so no page about it is written while this is.
        incident_event_record(
            incident=incident, kind=IncidentEvent.Kind.RECOVERED, now=max(now, clock.now()), source=Source.MONITOR
        )
    return _result(alert, "recovered")
