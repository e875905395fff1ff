"""One tick of the ticker: hand out everything that is due. Safe to run in any number of processes at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from channels_app.services import deliveries_enqueue_due
from escalation.services import timers_enqueue_due
from oncall.services.events import incident_events_dispatch_overdue


@dataclass(frozen=True)
class TickReport:
    events: int
    timers: int
    deliveries: int


def tick(*, now: datetime) -> TickReport:
    return TickReport(
        events=incident_events_dispatch_overdue(now=now),
        timers=timers_enqueue_due(now=now),
        deliveries=deliveries_enqueue_due(now=now),
    )
