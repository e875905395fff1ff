"""What people do to incidents: acknowledge, unacknowledge, close, reopen, snooze, wake, reassign, add
responders, comment, merge, edit and create by hand.

Each service locks the incident row, refuses an illegal transition with IllegalTransition (never ignores it),
writes a timeline entry saying who, when and from where, and records the incident event the escalation
engine reacts to once the transaction commits. What it writes is stamped no earlier than the moment it got the
lock (see _locked), so the order of the stamps is the order in which writers held the incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from oncall.errors import ApplicationError, IllegalTransition
from oncall.lib import clock
from oncall.models import (
    Alert,
    Channel,
    EventBatch,
    EventStatus,
    Incident,
    IncidentEvent,
    Progress,
    Responder,
    Severity,
    Source,
    TimelineEntry,
    User,
)
from oncall.services.events import incident_event_record
from oncall.services.incidents import (
    auto_resolve_at,
    incident_close,
    incident_open,
    incident_refresh_severity,
    timeline_add,
)

SNOOZE_MIN_MINUTES = 1
SNOOZE_MAX_MINUTES = 1440
COMMENT_MAX = 2000
REASON_MAX = 500
TITLE_MAX = 512
# The longest the ticker holds back a snooze's end or an auto-resolve for events accepted before it and not yet
# processed (the worker is behind, or a batch waits for its retry): long enough for a worker catching up and a
# failing batch's first retries (ingest.BATCH_RETRY), short enough that a page due at the end of a snooze is never
# later than this for it. A batch set aside for good (failed_at) holds nothing back.
PENDING_EVENTS_WAIT = timedelta(minutes=2)


def _lock(incident: Incident | int) -> Incident:
    pk = incident.pk if isinstance(incident, Incident) else incident
    return Incident.objects.select_for_update(of=("self",)).select_related("channel").get(pk=pk)


def _locked(incident: Incident | int, now: datetime) -> tuple[Incident, datetime]:
    """The incident, locked, and the time to stamp what the service writes.

    The caller read `now` before it waited for the lock; whatever held the incident meanwhile (a level's timer
    writing pages, as escalation's timer_fire does, reading the time again once it holds the incident) stamped its
    rows later than that. What this service writes is decided after them and must not look older: an
    acknowledgement older than a page written before it would let that page go out (outcomes.no_longer_needed).
    """
    return _lock(incident), max(now, clock.now())


def _name(person: User | None) -> str:
    return person.display_name if person else _("the system")


def _require_open(incident: Incident, action: str) -> None:
    if incident.progress == Progress.CLOSED:
        raise IllegalTransition(
            _("Incident #%(n)s is closed; it cannot be %(action)s.") % {"n": incident.number, "action": action}
        )


@transaction.atomic
def incident_acknowledge(*, incident: Incident, by: User | None, source: str, now: datetime) -> Incident:
    """`by` takes the incident: the first acknowledgement moves it to Processing and stops the escalation.

    Anyone may acknowledge, not only responders (they become one); `by` is None when the monitor itself
    acknowledges (PagerDuty's event_action=acknowledge). Acknowledging twice is harmless.
    """
    incident, now = _locked(incident, now)
    _require_open(incident, _("acknowledged"))
    if by is not None:
        responder, _created = Responder.objects.get_or_create(
            incident=incident, person=by, defaults={"assigned_at": now}
        )
        if responder.acknowledged_at is not None and incident.progress == Progress.PROCESSING:
            return incident
        responder.acknowledged_at = now
        responder.save(update_fields=["acknowledged_at"])
        message = _("Acknowledged by %(person)s.") % {"person": _name(by)}
    else:
        if incident.progress == Progress.PROCESSING:
            return incident
        message = _("Acknowledged by the monitor.")
    incident.progress = Progress.PROCESSING
    incident.ack_time = incident.ack_time or now
    incident.save(update_fields=["progress", "ack_time"])
    timeline_add(
        incident=incident, kind=TimelineEntry.Kind.ACKNOWLEDGED, message=message, now=now, actor=by, source=source
    )
    incident_event_record(incident=incident, kind=IncidentEvent.Kind.ACKNOWLEDGED, now=now, actor=by, source=source)
    return incident


@transaction.atomic
def incident_unacknowledge(*, incident: Incident, by: User, source: str, now: datetime) -> Incident:
    """`by` gives the incident back. When nobody acknowledges it any more it is Triggered again (escalation
    restarts); a snooze ends with it."""
    incident, now = _locked(incident, now)
    _require_open(incident, _("unacknowledged"))
    responder = Responder.objects.filter(incident=incident, person=by, acknowledged_at__isnull=False).first()
    if responder is None:
        raise IllegalTransition(
            _("%(person)s has not acknowledged incident #%(n)s.") % {"person": _name(by), "n": incident.number}
        )
    responder.acknowledged_at = None
    responder.save(update_fields=["acknowledged_at"])
    still_acked = Responder.objects.filter(incident=incident, acknowledged_at__isnull=False).exists()
    if not still_acked:
        incident.progress = Progress.TRIGGERED
        incident.snoozed_until = None
        incident.save(update_fields=["progress", "snoozed_until"])
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.UNACKNOWLEDGED,
        message=_("Unacknowledged by %(person)s.") % {"person": _name(by)},
        now=now,
        actor=by,
        source=source,
        detail={"back_to_triggered": not still_acked},
    )
    if not still_acked:
        incident_event_record(
            incident=incident, kind=IncidentEvent.Kind.UNACKNOWLEDGED, now=now, actor=by, source=source
        )
    return incident


@transaction.atomic
def incident_resolve(*, incident: Incident, by: User | None, source: str, now: datetime, reason: str = "") -> Incident:
    """Close an incident by hand. Its open alerts close with it (a still-firing source opens a new alert)."""
    incident, now = _locked(incident, now)
    incident.snoozed_until = None
    incident.auto_resolve_at = None
    incident.save(update_fields=["snoozed_until", "auto_resolve_at"])
    return incident_close(incident=incident, now=now, by=by, source=source, reason=reason[:REASON_MAX])


@transaction.atomic
def incident_reopen(*, incident: Incident, by: User, reason: str, source: str, now: datetime) -> Incident:
    """Bring a closed incident back to Triggered; people are notified again from the first level. An incident merged
    into another is not reopened: its alerts are the other's now."""
    incident, now = _locked(incident, now)
    if incident.progress != Progress.CLOSED:
        raise IllegalTransition(
            _("Incident #%(n)s is not closed; only a closed incident can be reopened.") % {"n": incident.number}
        )
    if incident.merged_into_id is not None:
        # Its alerts live in the target now: reopened, it would page again for nothing it holds, beside the target.
        raise IllegalTransition(
            _("Incident #%(n)s was merged into #%(into)s; reopen or handle #%(into)s instead.")
            % {"n": incident.number, "into": incident.merged_into_id}
        )
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("A reason is required to reopen an incident."), field="reason")
    incident.progress = Progress.TRIGGERED
    incident.close_time = None
    incident.closed_by = None
    incident.ack_time = None
    incident.snoozed_until = None
    # The person declares it active again: it no longer counts as recovered (its status still says what its alerts
    # last said), so it escalates, and is paged again when unacknowledged or woken, until an alert recovers again.
    incident.end_time = None
    # Closing cleared it; without it again a reopened incident no event ever comes for would stay open for good.
    incident.auto_resolve_at = auto_resolve_at(incident.channel, now)
    incident.save(
        update_fields=[
            "progress",
            "close_time",
            "closed_by",
            "ack_time",
            "snoozed_until",
            "end_time",
            "auto_resolve_at",
        ]
    )
    Responder.objects.filter(incident=incident).update(acknowledged_at=None)
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.REOPENED,
        message=_("Reopened by %(person)s: %(reason)s") % {"person": _name(by), "reason": reason[:REASON_MAX]},
        now=now,
        actor=by,
        source=source,
        detail={"reason": reason[:REASON_MAX]},
    )
    incident_event_record(
        incident=incident,
        kind=IncidentEvent.Kind.REOPENED,
        now=now,
        actor=by,
        source=source,
        detail={"reason": reason[:REASON_MAX]},
    )
    return incident


@transaction.atomic
def incident_snooze(*, incident: Incident, by: User, minutes: int, source: str, now: datetime) -> Incident:
    """Pause an acknowledged incident for 1 to 1440 minutes; when the time is up it is Triggered again."""
    if not isinstance(minutes, int) or not SNOOZE_MIN_MINUTES <= minutes <= SNOOZE_MAX_MINUTES:
        raise ApplicationError(
            _("minutes must be a whole number from %(lo)d to %(hi)d.")
            % {"lo": SNOOZE_MIN_MINUTES, "hi": SNOOZE_MAX_MINUTES},
            field="minutes",
        )
    incident, now = _locked(incident, now)
    _require_open(incident, _("snoozed"))
    if incident.progress != Progress.PROCESSING:
        raise IllegalTransition(
            _("Incident #%(n)s must be acknowledged before it can be snoozed.") % {"n": incident.number}
        )
    incident.snoozed_until = now + timedelta(minutes=minutes)
    incident.save(update_fields=["snoozed_until"])
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.SNOOZED,
        message=_("Snoozed by %(person)s for %(minutes)d minutes.") % {"person": _name(by), "minutes": minutes},
        now=now,
        actor=by,
        source=source,
        detail={"minutes": minutes, "until": incident.snoozed_until.isoformat()},
    )
    incident_event_record(
        incident=incident,
        kind=IncidentEvent.Kind.SNOOZED,
        now=now,
        actor=by,
        source=source,
        detail={"until": incident.snoozed_until.isoformat()},
    )
    return incident


@transaction.atomic
def incident_wake(*, incident: Incident, by: User | None, source: str, now: datetime) -> Incident:
    """End a snooze (by hand, or because its time is up): the incident is Triggered again and re-notifies."""
    incident, now = _locked(incident, now)
    if incident.snoozed_until is None or incident.progress == Progress.CLOSED:
        raise IllegalTransition(_("Incident #%(n)s is not snoozed.") % {"n": incident.number})
    expired = incident.snoozed_until <= now
    incident.snoozed_until = None
    incident.progress = Progress.TRIGGERED
    incident.save(update_fields=["snoozed_until", "progress"])
    Responder.objects.filter(incident=incident).update(acknowledged_at=None)
    if by is None:
        message = _("Snooze ended; the incident is triggered again.")
    else:
        message = _("Woken by %(person)s; the incident is triggered again.") % {"person": _name(by)}
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.WOKEN,
        message=message,
        now=now,
        actor=by,
        source=source,
        detail={"expired": expired},
    )
    incident_event_record(incident=incident, kind=IncidentEvent.Kind.WOKEN, now=now, actor=by, source=source)
    return incident


def _people_names(people: Sequence[User]) -> str:
    return ", ".join(person.display_name for person in people)


@transaction.atomic
def incident_reassign(*, incident: Incident, by: User, people: Sequence[User], source: str, now: datetime) -> Incident:
    """Hand the incident to `people` instead of its current responders; they are notified.

    An acknowledged incident stays acknowledged only if one of the new responders had acknowledged it.
    """
    people = list(dict.fromkeys(people))
    if not people:
        raise ApplicationError(_("Name at least one person to assign the incident to."), field="people")
    incident, now = _locked(incident, now)
    _require_open(incident, _("reassigned"))
    acked = dict(Responder.objects.filter(incident=incident).values_list("person_id", "acknowledged_at"))
    Responder.objects.filter(incident=incident).exclude(person__in=people).delete()
    for person in people:
        Responder.objects.update_or_create(
            incident=incident,
            person=person,
            defaults={"assigned_at": now, "acknowledged_at": acked.get(person.pk)},
        )
    if incident.progress == Progress.PROCESSING and not any(acked.get(p.pk) for p in people):
        incident.progress = Progress.TRIGGERED
        incident.snoozed_until = None
        incident.save(update_fields=["progress", "snoozed_until"])
    ids = [person.pk for person in people]
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.REASSIGNED,
        message=_("Reassigned by %(by)s to %(people)s.") % {"by": _name(by), "people": _people_names(people)},
        now=now,
        actor=by,
        source=source,
        detail={"person_ids": ids},
    )
    incident_event_record(
        incident=incident,
        kind=IncidentEvent.Kind.REASSIGNED,
        now=now,
        actor=by,
        source=source,
        detail={"person_ids": ids},
    )
    return incident


@transaction.atomic
def incident_add_responders(
    *, incident: Incident, by: User, people: Sequence[User], source: str, now: datetime
) -> Incident:
    """Add people to the incident's responders without removing anyone; the new ones are notified."""
    people = list(dict.fromkeys(people))
    if not people:
        raise ApplicationError(_("Name at least one person to add."), field="people")
    incident, now = _locked(incident, now)
    _require_open(incident, _("given new responders"))
    existing = set(Responder.objects.filter(incident=incident).values_list("person_id", flat=True))
    added = [person for person in people if person.pk not in existing]
    if not added:
        return incident
    Responder.objects.bulk_create([Responder(incident=incident, person=p, assigned_at=now) for p in added])
    ids = [person.pk for person in added]
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.RESPONDERS_ADDED,
        message=_("%(by)s added %(people)s as responders.") % {"by": _name(by), "people": _people_names(added)},
        now=now,
        actor=by,
        source=source,
        detail={"person_ids": ids},
    )
    incident_event_record(
        incident=incident,
        kind=IncidentEvent.Kind.RESPONDERS_ADDED,
        now=now,
        actor=by,
        source=source,
        detail={"person_ids": ids},
    )
    return incident


@transaction.atomic
def incident_escalate(*, incident: Incident, by: User, level: int, source: str, now: datetime) -> Incident:
    """Escalate by hand to `level` (0-based) of the incident's escalation rule: that level is notified now and the
    escalation goes on from there. An acknowledged incident is Triggered again.

    The caller checks that the level exists (the rule belongs to the escalation app).
    """
    incident, now = _locked(incident, now)
    _require_open(incident, _("escalated"))
    if incident.progress == Progress.PROCESSING:
        incident.progress = Progress.TRIGGERED
        incident.snoozed_until = None
        incident.save(update_fields=["progress", "snoozed_until"])
        Responder.objects.filter(incident=incident).update(acknowledged_at=None)
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ESCALATED,
        message=_("%(by)s escalated the incident to level %(n)d.") % {"by": _name(by), "n": level + 1},
        now=now,
        actor=by,
        source=source,
        detail={"level": level, "manual": True},
    )
    incident_event_record(
        incident=incident,
        kind=IncidentEvent.Kind.ESCALATED,
        now=now,
        actor=by,
        source=source,
        detail={"level": level, "manual": True},
    )
    return incident


@transaction.atomic
def incident_comment(*, incident: Incident, by: User, text: str, source: str, now: datetime) -> TimelineEntry:
    """Add a comment to the incident's timeline."""
    text = (text or "").strip()
    if not text:
        raise ApplicationError(_("A comment needs some text."), field="text")
    if len(text) > COMMENT_MAX:
        raise ApplicationError(_("A comment is at most %(n)d characters.") % {"n": COMMENT_MAX}, field="text")
    incident, now = _locked(incident, now)
    return timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.COMMENT,
        message=text,
        now=now,
        actor=by,
        source=source,
        detail={"text": text},
    )


@transaction.atomic
def incident_merge(*, incident: Incident, into: Incident, by: User, source: str, now: datetime) -> Incident:
    """Move every alert of `incident` into `into` (any channel) and close `incident` as merged."""
    if incident.pk == into.pk:
        raise ApplicationError(_("An incident cannot be merged into itself."), field="target")
    # Lock both in id order, the platform-wide order for two incidents.
    first, second = sorted([incident.pk, into.pk])
    locked = {first: _lock(first), second: _lock(second)}
    incident, into = locked[incident.pk], locked[into.pk]
    now = max(now, clock.now())  # as _locked: decided after whatever held either incident
    if into.progress == Progress.CLOSED:
        raise IllegalTransition(_("Incident #%(n)s is closed; nothing can be merged into it.") % {"n": into.number})
    if incident.merged_into_id:
        raise IllegalTransition(_("Incident #%(n)s was already merged.") % {"n": incident.number})
    moved = Alert.objects.filter(incident=incident).update(incident=into)
    into.alert_count += moved
    incident.alert_count = 0
    into.last_time = max(into.last_time, incident.last_time)
    if into.auto_resolve_at is not None:
        # The alerts moved in count as its events: it must not close by itself before they have been quiet too.
        into.auto_resolve_at = max(into.auto_resolve_at, auto_resolve_at(into.channel, into.last_time) or now)
    incident_refresh_severity(incident=into, now=now)
    into.save(update_fields=["last_time", "auto_resolve_at", "severity", "status", "end_time", "alert_count"])
    timeline_add(
        incident=into,
        kind=TimelineEntry.Kind.MERGED,
        message=_("%(by)s merged incident #%(n)s (%(count)d alerts) into this one.")
        % {"by": _name(by), "n": incident.number, "count": moved},
        now=now,
        actor=by,
        source=source,
        detail={"from_incident_id": incident.pk, "alerts": moved},
    )
    incident.merged_into = into
    incident.snoozed_until = None
    incident.auto_resolve_at = None
    incident.save(update_fields=["merged_into", "snoozed_until", "auto_resolve_at", "alert_count"])
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.MERGED,
        message=_("Merged into incident #%(n)s by %(by)s.") % {"n": into.number, "by": _name(by)},
        now=now,
        actor=by,
        source=source,
        detail={"into_incident_id": into.pk},
    )
    incident_event_record(
        incident=into,
        kind=IncidentEvent.Kind.MERGED,
        now=now,
        actor=by,
        source=source,
        detail={"from_incident_id": incident.pk},
    )
    if incident.progress != Progress.CLOSED:
        incident_close(
            incident=incident,
            now=now,
            by=by,
            source=source,
            reason=_("Merged into incident #%(n)s.") % {"n": into.number},
        )
    return into


@transaction.atomic
def incident_edit(
    *,
    incident: Incident,
    by: User,
    source: str,
    now: datetime,
    title: str | None = None,
    description: str | None = None,
    severity: str | None = None,
) -> Incident:
    """Change title, description or severity by hand. Edited fields stick: later alerts do not change them. A
    severity raised by hand pages a triggered incident for it, as one raised by an alert does."""
    incident, now = _locked(incident, now)
    changes: dict[str, tuple[str, str]] = {}
    if title is not None:
        title = title.strip()
        if not title:
            raise ApplicationError(_("The title cannot be empty."), field="title")
        if len(title) > TITLE_MAX:
            raise ApplicationError(_("The title is at most %(n)d characters.") % {"n": TITLE_MAX}, field="title")
        if title != incident.title:
            changes["title"] = (incident.title, title)
    if description is not None and description != incident.description:
        changes["description"] = (incident.description, description)
    if severity is not None:
        if severity not in Severity.values:
            raise ApplicationError(
                _("severity must be one of %(values)s.") % {"values": ", ".join(Severity.values)}, field="severity"
            )
        if severity != incident.severity:
            changes["severity"] = (incident.severity, severity)
    if not changes:
        return incident
    for field_name, (_old, new) in changes.items():
        setattr(incident, field_name, new)
    if "severity" in changes and incident.status != EventStatus.OK:
        incident.status = incident.severity
    incident.manual_overrides = sorted(set(incident.manual_overrides) | set(changes))
    incident.save(update_fields=[*changes, "status", "manual_overrides"])
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.EDITED,
        message=_("%(by)s changed %(fields)s.") % {"by": _name(by), "fields": ", ".join(sorted(changes))},
        now=now,
        actor=by,
        source=source,
        detail={name: {"from": old, "to": new} for name, (old, new) in changes.items()},
    )
    if "severity" in changes:
        old, new = changes["severity"]
        if Severity.rank(new) > Severity.rank(old):
            # Raised by hand, as by an alert: a triggered incident is paged for it (PagerDuty re-notifies on a rise
            # to high urgency); someone working on it (acknowledged) is not.
            incident_event_record(
                incident=incident,
                kind=IncidentEvent.Kind.SEVERITY_RAISED,
                now=now,
                actor=by,
                source=source,
                detail={"from": old, "to": new},
            )
    return incident


@transaction.atomic
def incident_create(
    *,
    channel: Channel,
    title: str,
    severity: str,
    by: User,
    now: datetime,
    description: str = "",
    source: str = Source.WEB,
    assign_to: Sequence[User] = (),
) -> Incident:
    """Open an incident by hand (no alerts, no labels). It is escalated by the channel's rules, or, when
    `assign_to` names people, assigned to them directly.

    The title and severity were chosen by a person: like fields edited by hand, alerts merged in later do not
    change them (a Warning alert does not lower an incident someone opened as Critical).
    """
    title = (title or "").strip()
    if not title:
        raise ApplicationError(_("The title cannot be empty."), field="title")
    if len(title) > TITLE_MAX:
        raise ApplicationError(_("The title is at most %(n)d characters.") % {"n": TITLE_MAX}, field="title")
    if severity not in Severity.values:
        raise ApplicationError(
            _("severity must be one of %(values)s.") % {"values": ", ".join(Severity.values)}, field="severity"
        )
    people = list(dict.fromkeys(assign_to))
    incident = incident_open(
        channel=channel,
        title=title,
        description=description,
        severity=severity,
        labels={},
        now=now,
        source=source,
        created_by=by,
        origin=_("created by %(person)s") % {"person": _name(by)},
        assigned_ids=[person.pk for person in people],
        manual_overrides=("severity", "title"),
    )
    if people:
        Responder.objects.bulk_create([Responder(incident=incident, person=p, assigned_at=now) for p in people])
    return incident


def _not_waiting_for_events(due: QuerySet[Incident], field: str, *, now: datetime) -> QuerySet[Incident]:
    """The `due` incidents less those with an event accepted no later than their `field` (the end of the snooze,
    the auto-resolve deadline) that the worker has yet to process, for at most PENDING_EVENTS_WAIT after it.

    Such an event may change what is due: a trigger keeps the incident open (its alert is still firing), a recovery
    closes it (nobody is to be paged for it). Acting first would close an incident whose alert then opens a second
    one and pages again, or page for an incident the next moment closes. The events that matter are those of the
    integrations whose alerts the incident holds (a recovery or a repeat names its alert's key in its integration);
    one subquery in the ticker's query, evaluated only for incidents already due.
    """
    pending = EventBatch.objects.filter(
        integration__alerts__incident=OuterRef("pk"),
        failed_at__isnull=True,
        received_at__lte=OuterRef(field),
    )
    return due.exclude(Q(**{f"{field}__gt": now - PENDING_EVENTS_WAIT}) & Exists(pending))


def incidents_wake_due(*, now: datetime, limit: int = 200) -> int:
    """Wake every incident whose snooze has run out (the ticker calls this every tick).

    One with an event accepted before its snooze ended and not yet processed waits for it (a recovery closes it
    rather than paging), for at most PENDING_EVENTS_WAIT.
    """
    woken = 0
    due = Incident.objects.filter(snoozed_until__lte=now).exclude(progress=Progress.CLOSED)
    due = _not_waiting_for_events(due, "snoozed_until", now=now)
    for pk in list(due.order_by("snoozed_until").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            incident = Incident.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if incident is None or incident.snoozed_until is None or incident.snoozed_until > now:
                continue  # another ticker has it, or it was woken meanwhile
            incident_wake(incident=incident, by=None, source=Source.SYSTEM, now=now)
            woken += 1
    return woken


def incidents_auto_resolve_due(*, now: datetime, limit: int = 200) -> int:
    """Close open incidents that received no alert event for their channel's auto-resolve time.

    One with an event accepted before its deadline and not yet processed waits for it (a repeat of a firing alert
    keeps it open), for at most PENDING_EVENTS_WAIT.
    """
    closed = 0
    due = Incident.objects.filter(auto_resolve_at__lte=now).exclude(progress=Progress.CLOSED)
    due = _not_waiting_for_events(due, "auto_resolve_at", now=now)
    for pk in list(due.order_by("auto_resolve_at").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            incident = Incident.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if incident is None or incident.auto_resolve_at is None or incident.auto_resolve_at > now:
                continue
            if incident.progress == Progress.CLOSED:
                continue
            # The channel's setting as it is now: turned off or lengthened since the incident's deadline was set,
            # the incident stays open (for good, or until the longer time has passed).
            minutes = incident.channel.auto_resolve_minutes
            deadline = auto_resolve_at(incident.channel, incident.last_time)
            incident.auto_resolve_at = deadline if deadline is not None and deadline > now else None
            incident.save(update_fields=["auto_resolve_at"])
            if deadline is None or deadline > now:
                continue
            incident_close(
                incident=incident,
                now=now,
                source=Source.SYSTEM,
                reason=_("No alert event for %(m)d minutes (auto-resolve).") % {"m": minutes},
            )
            closed += 1
    return closed
