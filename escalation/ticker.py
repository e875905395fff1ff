"""One tick of the ticker: hand out everything that is due. Safe to run in any number of processes at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from channels_app.services import deliveries_enqueue_due
from escalation.reminders import shift_reminders_tick
from escalation.services import timers_enqueue_due
from oncall.services.events import incident_events_dispatch_overdue
from oncall.services.ingest import batches_enqueue_stalled
from oncall.services.lifecycle import incidents_auto_resolve_due, incidents_wake_due


@dataclass(frozen=True)
class TickReport:
    events: int
    timers: int
    deliveries: int
    woken: int = 0
    auto_resolved: int = 0
    batches: int = 0
    reminders: int = 0


def tick(*, now: datetime) -> TickReport:
    woken = incidents_wake_due(now=now)
    auto_resolved = incidents_auto_resolve_due(now=now)
    return TickReport(
        # Events recorded by this tick's own wakes and closes are dispatched on commit; this picks up the rest.
        events=incident_events_dispatch_overdue(now=now),
        timers=timers_enqueue_due(now=now),
        deliveries=deliveries_enqueue_due(now=now),
        woken=woken,
        auto_resolved=auto_resolved,
        batches=batches_enqueue_stalled(now=now),
        reminders=shift_reminders_tick(now=now),
    )
