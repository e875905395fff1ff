"""The one place that reacts to incident events: start, stop or advance escalations."""

from __future__ import annotations

from django.dispatch import receiver

from escalation import services
from escalation.models import EscalationState
from oncall.models import IncidentEvent
from oncall.signals import incident_event


@receiver(incident_event, dispatch_uid="escalation.on_incident_event")
def on_incident_event(sender, *, event: IncidentEvent, incident, now, **kwargs) -> None:
    if event.kind == IncidentEvent.Kind.OPENED:
        services.escalation_start(incident=incident, now=now)
    elif event.kind == IncidentEvent.Kind.CLOSED:
        services.escalation_stop(incident=incident, now=now, status=EscalationState.Status.FINISHED)
