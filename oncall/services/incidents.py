"""Incident state changes. Each writes a timeline entry and, when others must react, an incident event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.db.models import Exists, Q
from django.utils.translation import gettext as _

from oncall.errors import IllegalTransition
from oncall.models import (
    Alert,
    AlertProgress,
    Channel,
    EventStatus,
    Incident,
    IncidentEvent,
    Progress,
    Severity,
    Source,
    TimelineEntry,
    User,
)
from oncall.services.events import incident_event_record


def timeline_add(
    *,
    incident: Incident,
    kind: str,
    message: str,
    now: datetime,
    actor: User | None = None,
    source: str = Source.SYSTEM,
    detail: Mapping | None = None,
) -> TimelineEntry:
    """Append one line to an incident's timeline."""
    return TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        message=message[:1000],
        at=now,
        actor=actor,
        source=source,
        detail=dict(detail or {}),
    )


def incident_open(
    *,
    channel: Channel,
    title: str,
    description: str,
    severity: str,
    labels: Mapping[str, str],
    now: datetime,
    source: str = Source.MONITOR,
    created_by: User | None = None,
    origin: str = "",
    group_key: str = "",
    assigned_ids: list[int] | None = None,
    manual_overrides: Sequence[str] = (),
    alert_count: int = 0,
) -> Incident:
    """Create a triggered incident in a channel and announce it (escalation starts once this commits).

    `assigned_ids` names people it is assigned to directly, instead of by the channel's escalation rules;
    `manual_overrides` the fields a person chose, which its alerts then never change; `alert_count` how many alerts
    the caller attaches to it in this transaction (the alert that opens it).
    """
    incident = Incident.objects.create(
        channel=channel,
        title=title,
        description=description,
        severity=severity,
        status=severity,
        progress=Progress.TRIGGERED,
        labels=dict(labels),
        start_time=now,
        last_time=now,
        created_by=created_by,
        group_key=group_key,
        auto_resolve_at=auto_resolve_at(channel, now),
        manual_overrides=sorted(manual_overrides),
        alert_count=alert_count,
    )
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.OPENED,
        message=_("Incident opened in channel %(channel)s%(origin)s.")
        % {"channel": channel.name, "origin": f" ({origin})" if origin else ""},
        now=now,
        actor=created_by,
        source=source,
    )
    incident_event_record(
        incident=incident,
        kind=IncidentEvent.Kind.OPENED,
        now=now,
        actor=created_by,
        source=source,
        detail={"assigned_ids": assigned_ids} if assigned_ids else None,
    )
    return incident


def auto_resolve_at(channel: Channel, last_event: datetime) -> datetime | None:
    """When an incident of `channel` closes by itself if no alert event arrives after `last_event`."""
    if not channel.auto_resolve_minutes:
        return None
    return last_event + timedelta(minutes=channel.auto_resolve_minutes)


def incident_refresh_severity(*, incident: Incident, now: datetime) -> None:
    """Set an open incident's severity to the highest of its open alerts, noting a change in the timeline; one
    whose alerts had all recovered fires again when a firing alert joins it (status and end_time: save both),
    announced as an incident event: its escalation may start again.

    A rise is announced as an incident event: a rule of the channel may page for the new severity when none
    did for the old one. A severity set by hand sticks. The incident row must be locked by the caller.
    """
    # Which severities its open alerts have, one EXISTS each on the (incident, progress, severity) index: reading
    # every open alert's severity made each alert of a mass firing or recovery cost more than the one before.
    open_alerts = Alert.objects.filter(incident=incident, progress=AlertProgress.TRIGGERED)
    present = (
        Incident.objects.filter(pk=incident.pk)
        .values_list(*(Exists(open_alerts.filter(severity=severity)) for severity in Severity.values))
        .get()
    )
    severities = [severity for severity, found in zip(Severity.values, present, strict=True) if found]
    if not severities:
        return
    if incident.status == EventStatus.OK:
        if incident.all_alerts_recovered:  # not reopened by a person since: that escalated it already
            incident_event_record(incident=incident, kind=IncidentEvent.Kind.FIRING_AGAIN, now=now)
        incident.end_time = None
        incident.status = incident.severity
    if "severity" in incident.manual_overrides:
        return
    highest = max(severities, key=Severity.rank)
    if highest != incident.severity:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.SEVERITY_CHANGED,
            message=_("Severity changed from %(old)s to %(new)s.") % {"old": incident.severity, "new": highest},
            now=now,
            detail={"from": incident.severity, "to": highest},
        )
        if Severity.rank(highest) > Severity.rank(incident.severity):
            incident_event_record(
                incident=incident,
                kind=IncidentEvent.Kind.SEVERITY_RAISED,
                now=now,
                detail={"from": incident.severity, "to": highest},
            )
        incident.severity = highest
    incident.status = highest


def incident_close(
    *,
    incident: Incident,
    now: datetime,
    by: User | None = None,
    source: str = Source.SYSTEM,
    reason: str = "",
) -> Incident:
    """Close an incident and its open alerts (a still-firing source then opens a new alert). Row must be locked."""
    if incident.progress == Progress.CLOSED:
        raise IllegalTransition(_("Incident #%(number)s is already closed.") % {"number": incident.number})
    incident.progress = Progress.CLOSED
    incident.close_time = now
    incident.closed_by = by
    incident.snoozed_until = None
    incident.auto_resolve_at = None
    incident.save(
        update_fields=[
            "progress",
            "close_time",
            "closed_by",
            "status",
            "end_time",
            "severity",
            "snoozed_until",
            "auto_resolve_at",
        ]
    )
    Alert.objects.filter(Q(incident=incident) & Q(progress=AlertProgress.TRIGGERED)).update(
        progress=AlertProgress.CLOSED, close_time=now
    )
    message = _("Closed by %(person)s.") % {"person": by.display_name} if by else _("Closed automatically.")
    if reason:
        message = f"{message} {reason}"
    timeline_add(incident=incident, kind=TimelineEntry.Kind.CLOSED, message=message, now=now, actor=by, source=source)
    incident_event_record(incident=incident, kind=IncidentEvent.Kind.CLOSED, now=now, actor=by, source=source)
    return incident
