"""Recording incident events and dispatching them to the receivers of `oncall.signals.incident_event`."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef

from oncall.lib import clock
from oncall.lib.logs import log_context
from oncall.models import EventBatch, Incident, IncidentEvent, Source, User
from oncall.signals import incident_event

logger = logging.getLogger(__name__)

# An event not dispatched this long after it was written is picked up by the ticker (its process died first).
DISPATCH_GRACE = timedelta(seconds=5)

_held: contextvars.ContextVar[bool] = contextvars.ContextVar("incident_events_held", default=False)


@contextmanager
def incident_events_held() -> Iterator[None]:
    """Events recorded inside are not dispatched when their transaction commits: ingest holds those of a push's
    batches until its last batch is in (`incident_events_dispatch_held`), so a push split into batches escalates
    as one would (an incident a later batch raises to Critical is escalated as Critical). The overdue sweep leaves
    them alone while a batch of their push waits its first try; a batch that fails releases them."""
    token = _held.set(True)
    try:
        yield
    finally:
        _held.reset(token)


def incident_event_record(
    *,
    incident: Incident,
    kind: str,
    now: datetime,
    actor: User | None = None,
    source: str = Source.SYSTEM,
    detail: dict | None = None,
) -> IncidentEvent:
    """Write an incident event in the current transaction; it is dispatched once that transaction commits."""
    event = IncidentEvent.objects.create(
        incident=incident, kind=kind, actor=actor, source=source, detail=detail or {}, created_at=now
    )
    if not _held.get():
        incident_id = incident.pk
        transaction.on_commit(lambda: incident_events_dispatch(incident_id=incident_id), robust=True)
    return event


def incident_events_dispatch(*, incident_id: int, now: datetime | None = None) -> int:
    """Send every undispatched event of one incident to the receivers, oldest first; return how many.

    The incident row is locked, so two dispatchers (the committing process and the ticker) never hand the same
    event out twice, and an incident's events are always received in the order they happened.
    """
    with log_context(incident_id=incident_id), transaction.atomic():
        incident = (
            Incident.objects.select_for_update(of=("self",)).select_related("channel").filter(pk=incident_id).first()
        )
        if incident is None:
            return 0
        events = list(IncidentEvent.objects.filter(incident=incident, dispatched_at__isnull=True).order_by("id"))
        for event in events:
            at = now or clock.now()
            incident_event.send(sender=IncidentEvent, event=event, incident=incident, now=at)
            event.dispatched_at = at
            event.save(update_fields=["dispatched_at"])
        return len(events)


def incident_events_dispatch_held(*, at: datetime) -> int:
    """Dispatch the events held for the push received `at` (its batches are all in); return how many."""
    incident_ids = (
        IncidentEvent.objects.filter(dispatched_at__isnull=True, created_at=at)
        .order_by("incident_id")
        .values_list("incident_id", flat=True)
        .distinct()
    )
    count = 0
    for incident_id in list(incident_ids):
        try:
            count += incident_events_dispatch(incident_id=incident_id)
        except Exception:
            logger.exception("Dispatching events of incident %s failed; the ticker will", incident_id)
    return count


def incident_events_dispatch_overdue(*, now: datetime, limit: int = 200) -> int:
    """Dispatch events whose writer died before dispatching them (the ticker calls this every tick).

    A sweep takes at most `limit` incidents, going on from where the last one stopped and around: incidents whose
    dispatch keeps failing cannot take every sweep's places and leave later incidents' events waiting for good.
    """
    pending = IncidentEvent.objects.filter(dispatched_at__isnull=True, created_at__lte=now - DISPATCH_GRACE).exclude(
        # Held for a push whose later batches still wait (incident_events_held): their time is the push's. Not
        # once one of those failed: the pages of what is in do not wait for its retries.
        Exists(EventBatch.objects.filter(received_at=OuterRef("created_at"), failed_at__isnull=True, attempts=0))
    )

    def first(count: int, **after):
        ids = pending.filter(**after).order_by("incident_id").values_list("incident_id", flat=True).distinct()
        return list(ids[:count])

    incident_ids = first(limit, incident_id__gt=_sweep.after)
    if len(incident_ids) < limit:
        incident_ids += first(limit - len(incident_ids), incident_id__lte=_sweep.after)
    _sweep.after = incident_ids[-1] if len(incident_ids) == limit else 0
    count = 0
    for incident_id in incident_ids:
        try:
            count += incident_events_dispatch(incident_id=incident_id, now=now)
        except Exception:
            # One incident's failure must not hold up the others; it is retried on a later sweep.
            logger.exception("Dispatching events of incident %s failed", incident_id)
    return count


class _Sweep:
    """Where this process's last sweep of overdue events stopped (an incident id; 0: at the start)."""

    after = 0


_sweep = _Sweep()
