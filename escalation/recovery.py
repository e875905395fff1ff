"""Incidents whose alerts have all recovered while they stay open (their channel does not close incidents with their
alerts): nobody is paged about them until an alert fires in them again (docs/escalation.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils.translation import gettext as _

from escalation.models import EscalationState, Timer
from oncall.models import Incident, TimelineEntry
from oncall.services.incidents import timeline_add

Status = EscalationState.Status


def recovered_during_run(incident: Incident, state: EscalationState) -> bool:
    """Whether the incident's alerts all recovered since its escalation run began. A run a person began later
    (reopening, or escalating by hand, an incident whose alerts had recovered) is what they asked for."""
    recorded = incident.recovery_recorded_at()
    return recorded is not None and recorded >= state.started_at


def recovery_hold(*, incident: Incident, state: EscalationState | None, now: datetime) -> None:
    """Notify nobody about an incident whose alerts have all recovered: its rule's escalation stops until an alert
    fires in it again (the pages it wrote before give way too: channels_app.outcomes), and the timeline says so.
    The caller holds the incident and its escalation state."""
    if state is not None and state.snapshot and state.status != Status.DIRECT:
        Timer.objects.filter(state=state, done_at__isnull=True).update(done_at=now)
        state.status = Status.RECOVERED
        state.token = uuid.uuid4()  # a step already handed to the worker is stale
        state.save(update_fields=["status", "token", "updated_at"])
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ESCALATION_ENDED,
        message=_("All alerts of the incident have recovered: nobody is notified until one fires again."),
        now=now,
        detail={"recovered": True},
    )
