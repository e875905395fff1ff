"""The one place that reacts to incident events: start, stop, restart escalations, notify people and tell the
bots that posted about the incident."""

from __future__ import annotations

from django.dispatch import receiver

from escalation import bots, services, severity
from escalation.models import EscalationState
from oncall.models import IncidentEvent
from oncall.signals import incident_event

Kind = IncidentEvent.Kind


@receiver(incident_event, dispatch_uid="escalation.on_incident_event")
def on_incident_event(sender, *, event: IncidentEvent, incident, now, **kwargs) -> None:
    kind = event.kind
    if kind == Kind.OPENED:
        assigned = event.detail.get("assigned_ids")
        if assigned:
            # Assigned to people directly when created: they are notified, no rule escalates it.
            services.escalation_hand_over(incident=incident, now=now)
            services.notify_people(incident=incident, person_ids=assigned, event_id=event.pk, now=now)
        else:
            # For when it opened: a dispatch delayed by a crash must not choose the other side of a time window.
            services.escalation_start(incident=incident, now=now, at=event.created_at)
    elif kind == Kind.ACKNOWLEDGED:
        services.escalation_acknowledged(incident=incident, now=now)
    elif kind == Kind.SNOOZED:
        services.escalation_stop(incident=incident, now=now)
    elif kind == Kind.ESCALATED and event.detail.get("manual"):
        # Escalated by hand; the escalation's own "escalated" events are announcements, not requests.
        services.escalation_jump(incident=incident, level=event.detail["level"], now=now)
    elif kind in (Kind.UNACKNOWLEDGED, Kind.WOKEN, Kind.REOPENED):
        # Triggered again: the rule starts over, or the responders of an incident in people's hands are paged (not
        # for an incident whose alerts have all recovered, unless a person reopened it).
        services.escalation_restart(incident=incident, event_id=event.pk, now=now, reopened=kind == Kind.REOPENED)
    elif kind == Kind.RECOVERED:
        services.escalation_recovered(incident=incident, now=now)
    elif kind == Kind.FIRING_AGAIN:
        services.escalation_fire_again(incident=incident, event_id=event.pk, now=now)
    elif kind == Kind.CLOSED:
        services.escalation_stop(incident=incident, now=now, status=EscalationState.Status.FINISHED)
    elif kind == Kind.REASSIGNED:
        # A reassigned incident is in the named people's hands: the rule no longer escalates it.
        services.escalation_hand_over(incident=incident, now=now)
        services.notify_people(incident=incident, person_ids=event.detail["person_ids"], event_id=event.pk, now=now)
    elif kind == Kind.SEVERITY_RAISED:
        # A rule may page for the new severity when none matched the old one; a started escalation keeps its rule
        # and notifies its current level again for the new severity.
        severity.escalation_severity_raised(
            incident=incident, now=now, at=event.created_at, previous=event.detail.get("from")
        )
    elif kind == Kind.RESPONDERS_ADDED:
        services.notify_people(incident=incident, person_ids=event.detail["person_ids"], event_id=event.pk, now=now)
    # Lifecycle events (acknowledged, closed, escalated…) go to the bots already in the conversation.
    bots.bots_announce(incident=incident, event=event, now=now)
