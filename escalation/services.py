"""Starting, running and stopping escalations. Rows are locked incident, then escalation state, then timer.

The decisions (which rule, who, how, what next) are the pure functions of escalation.engine; this module loads
rows, calls them, writes deliveries, timeline entries and timers, and hands work to the worker.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils.translation import gettext as _

from channels_app.models import Delivery
from channels_app.services import (
    PlannedDelivery,
    deliveries_create,
    method_address,
    method_unreachable_reason,
    person_methods,
)
from escalation import engine
from escalation.bots import level_bots_post
from escalation.models import EscalationRule, EscalationState, Timer
from escalation.recovery import recovered_during_run, recovery_hold
from escalation.schedules import schedule_targets_on_call
from escalation.snapshots import rule_snapshot
from oncall.lib import claims, clock, queue
from oncall.lib.filters import Subject, parse_saved_filters
from oncall.lib.logs import log_context
from oncall.models import (
    Alert,
    Channel,
    Incident,
    IncidentEvent,
    Progress,
    Responder,
    Team,
    TimelineEntry,
    User,
)
from oncall.services.events import incident_event_record
from oncall.services.incidents import timeline_add

FIRE_TASK = "escalation.tasks.timer_fire"
Status = EscalationState.Status
logger = logging.getLogger(__name__)


def incident_subject(incident: Incident, *, integration: bool = True) -> Subject:
    """An incident as filter conditions see it (its integration: the one of its first alert). Without
    `integration` (no condition to test looks at it) the integration is left out, and the alert is not read."""
    alerts = Alert.objects.filter(incident=incident).select_related("integration").order_by("pk")
    first = alerts.first() if integration else None
    return Subject(
        severity=incident.severity,
        title=incident.title,
        description=incident.description,
        integration_id=first.integration_id if first else None,
        integration_name=first.integration.name if first else "",
        labels=incident.labels,
    )


def _timer_schedule(*, state: EscalationState, step: engine.Step, now: datetime) -> Timer:
    due_now = step.due_at <= now
    timer = Timer.objects.create(
        state=state,
        kind=Timer.Kind.LEVEL if step.kind == "level" else Timer.Kind.END,
        token=state.token,
        level=step.level,
        round=step.round,
        due_at=step.due_at,
        # A step due now goes straight to the worker; the lease keeps the ticker off it unless that hand-over
        # never happens (the process died after commit), in which case the ticker picks it up when it ends.
        lease_until=now + timedelta(seconds=settings.TIMER_LEASE_SECONDS) if due_now else None,
        created_at=now,
    )
    if due_now:
        queue.enqueue(FIRE_TASK, timer.pk, group="escalation", leased=True)
    return timer


def _cancel_timers(state: EscalationState, now: datetime) -> None:
    Timer.objects.filter(state=state, done_at__isnull=True).update(done_at=now)


def locked_state(incident: Incident) -> EscalationState | None:
    return EscalationState.objects.select_for_update().filter(incident=incident).first()


def _runs_so_far(incident: Incident) -> int:
    """The highest escalation run the incident's deliveries were written for (0: none yet).

    A state that starts its first run (a new one, or one no rule had taken) counts on from here: the incident may
    have had a state before (deleted, or from before states were kept), and a run number used again would give its
    deliveries the keys of that run's, so they would be dropped as already sent while the timeline says they went.
    """
    return Delivery.objects.filter(incident=incident).aggregate(run=Max("escalation_run"))["run"] or 0


def _saved_time_windows(data: object, *, rule: str) -> tuple[engine.TimeWindow, ...] | None:
    """The time windows of a rule as saved; None, with an error in the log naming `rule`, when they cannot be read
    (saved past the admin's checks, or by an older version): the rule is then left out, like one whose filters
    cannot be read, rather than failing the escalation of every incident of its channel."""
    try:
        return engine.parse_time_windows(data)
    except ValueError as exc:
        logger.error("%s has invalid time windows (%s); ignored", rule, exc)
        return None


def _channel_time_zone(channel: Channel) -> ZoneInfo:
    """The channel's time zone for its rules' time windows; UTC, with an error in the log, when the saved name is
    no time zone (any more)."""
    try:
        return ZoneInfo(channel.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        logger.error(
            "Channel %s has an unknown time zone %r; its time windows are read in UTC", channel.pk, channel.time_zone
        )
        return ZoneInfo("UTC")


def escalation_start(*, incident: Incident, now: datetime, at: datetime | None = None) -> EscalationState:
    """Choose the channel's first matching rule, freeze it on the incident and schedule its first level.

    `at` is when the incident opened (its event's time; default `now`): the rule is chosen for that moment and
    level 1 is due after the delay window counted from it, so an event dispatched late (its process died after
    committing) pages as it would have on time; a first level already due then is notified at once.
    The incident row must be locked by the caller (the event dispatcher does).
    """
    state = locked_state(incident)
    if state is not None and (state.run > 0 or state.status == Status.DIRECT):
        return state  # already started, or in people's hands
    # Only how many levels each rule has matters to the choice: the chosen rule's are read when it is frozen.
    rules = list(
        EscalationRule.objects.filter(channel_id=incident.channel_id)
        .annotate(level_count=Count("levels"))
        .order_by("priority", "id")
    )
    candidates = []
    for rule in rules:
        name = f"Escalation rule {rule.pk} of channel {rule.channel_id}"
        filters = parse_saved_filters(rule.filters, rule=name)
        windows = _saved_time_windows(rule.time_windows, rule=name)
        if filters is None or windows is None:
            continue
        candidates.append(
            engine.RuleCandidate(
                id=rule.pk,
                name=rule.name,
                priority=rule.priority,
                enabled=rule.enabled,
                level_count=rule.level_count,
                windows=windows,
                filters=filters,
            )
        )
    tz = _channel_time_zone(incident.channel)
    at = at or now
    subject = incident_subject(incident, integration=engine.rules_read_integration(candidates))
    chosen = engine.choose_rule(candidates, subject, at, tz)
    if state is None:
        state = EscalationState(incident=incident, started_at=now)
    if chosen is None:
        state.status = Status.UNASSIGNED
        state.save()
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.UNASSIGNED,
            message=_("No escalation rule of channel %(channel)s matched; nobody is notified.")
            % {"channel": incident.channel.name},
            now=now,
            detail={"rules": [rule.name for rule in rules]},
        )
        return state
    rule = next(r for r in rules if r.pk == chosen.id)
    snapshot = rule_snapshot(rule)
    state.rule = rule
    state.snapshot = snapshot.to_json()
    message = _("Escalation rule %(rule)s applies.") % {"rule": rule.name}
    if snapshot.delay:
        message += " " + _("First notification after a delay of %(s)d seconds.") % {"s": snapshot.delay.total_seconds()}
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ASSIGNED,
        message=message,
        now=now,
        detail={"rule_id": rule.pk, "rule_name": rule.name, "delay_seconds": int(snapshot.delay.total_seconds())},
    )
    state.run = _runs_so_far(incident)  # its first run: the guard above let only a state without one through
    return _begin_run(state=state, step=engine.first_step(snapshot, started_at=at), now=now)


def _begin_run(*, state: EscalationState, step: engine.Step, now: datetime) -> EscalationState:
    """Start a new run of the frozen rule at `step`; the previous run's timers become stale."""
    if state.pk is not None:  # a new state has no timers yet
        _cancel_timers(state, now)
    state.status = Status.RUNNING
    state.run += 1
    state.token = uuid.uuid4()
    state.level = step.level
    state.round = 0
    state.level_started_at = None
    state.started_at = now
    state.save()
    _timer_schedule(state=state, step=step, now=now)
    return state


def escalation_restart(
    *, incident: Incident, event_id: int, now: datetime, reopened: bool = False
) -> EscalationState | None:
    """Notify again from the first level (after an unacknowledge, a wake or a reopen, incident event `event_id`),
    with the rule frozen when the incident opened. An incident that never had a rule gets one chosen now; one
    assigned to people directly notifies its responders again instead, and no rule takes it over.

    An incident whose alerts have all recovered is not notified again when it is unacknowledged or woken: it is
    when an alert fires in it again (escalation_fire_again). One a person reopens (`reopened`) is: they are asking
    for it."""
    state = locked_state(incident)
    if incident.all_alerts_recovered and not reopened:
        recovery_hold(incident=incident, state=state, now=now)
        return state
    return _start_again(
        incident=incident,
        state=state,
        event_id=event_id,
        now=now,
        message=_("Escalation rule %(rule)s starts again from level 1."),
    )


def escalation_fire_again(*, incident: Incident, event_id: int, now: datetime) -> EscalationState | None:
    """An alert fires in an incident whose alerts had all recovered (it stayed open: its channel does not close
    incidents with their alerts), incident event `event_id`. It is escalated again as a new incident would be —
    the frozen rule from level 1, after the rule's delay window; an incident no rule took has the rules tried again,
    one in people's hands has its responders notified again — unless someone has it (acknowledged, snoozed), an
    escalation is running (a person escalated it by hand), or it recovered again before this was handled."""
    state = locked_state(incident)
    if incident.progress != Progress.TRIGGERED or incident.all_alerts_recovered:
        return state
    if state is not None and state.status == Status.RUNNING:
        return state
    return _start_again(
        incident=incident,
        state=state,
        event_id=event_id,
        now=now,
        message=_("An alert fires again: escalation rule %(rule)s starts again from level 1."),
        delayed=True,
    )


def _start_again(
    *,
    incident: Incident,
    state: EscalationState | None,
    event_id: int,
    now: datetime,
    message: str,
    delayed: bool = False,
) -> EscalationState | None:
    """A new run of the frozen rule from level 1, now or (`delayed`) after the rule's delay window."""
    if state is not None and state.status == Status.DIRECT:
        _responders_notify_again(incident=incident, state=state, event_id=event_id, now=now)
        return state
    if state is None or not state.snapshot:
        if state is not None:
            state.run = 0
            state.save(update_fields=["run"])
        return escalation_start(incident=incident, now=now)
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ASSIGNED,
        message=message % {"rule": state.snapshot.get("rule_name")},
        now=now,
        detail={"rule_id": state.snapshot.get("rule_id"), "restart": True},
    )
    snapshot = engine.Snapshot.from_json(state.snapshot)
    step = engine.first_step(snapshot, started_at=now) if delayed else engine.Step("level", 0, 0, now)
    return _begin_run(state=state, step=step, now=now)


def escalation_recovered(*, incident: Incident, now: datetime) -> None:
    """Every alert of an incident that stays open has recovered: a running escalation stops (no repeat, no next
    level, no first notification after the delay window); it starts again if an alert fires in it again."""
    state = locked_state(incident)
    if state is not None and state.status == Status.RUNNING:
        recovery_hold(incident=incident, state=state, now=now)


def _responders_notify_again(*, incident: Incident, state: EscalationState, event_id: int, now: datetime) -> None:
    """Page the responders of an incident in people's hands again, as a new run: a retry of the pages of an
    earlier one (written before the incident was acknowledged) then gives way to these."""
    state.run += 1
    state.token = uuid.uuid4()
    state.save(update_fields=["run", "token", "updated_at"])
    person_ids = list(
        Responder.objects.filter(incident=incident).order_by("assigned_at", "id").values_list("person_id", flat=True)
    )
    notify_people(
        incident=incident,
        person_ids=person_ids,
        event_id=event_id,
        now=now,
        event="triggered",
        run=state.run,
        message=_("Notified %(who)s again: the incident is assigned to them directly."),
    )


def escalation_hand_over(*, incident: Incident, now: datetime) -> EscalationState:
    """Put an incident in people's hands (assigned when created by hand, or reassigned): a running escalation
    stops, and no rule escalates it any more unless someone escalates it to a level by hand. The rule frozen
    earlier is kept for that."""
    state = locked_state(incident)
    if state is None:
        state = EscalationState(incident=incident, started_at=now, run=_runs_so_far(incident))
    elif state.status == Status.RUNNING:
        _cancel_timers(state, now)
    state.status = Status.DIRECT
    state.token = uuid.uuid4()
    state.save()
    return state


def escalation_jump(*, incident: Incident, level: int, now: datetime) -> EscalationState | None:
    """Escalate by hand: notify `level` of the frozen rule now and go on from there. A reassigned incident is
    the rule's again (an incident assigned directly when created has no rule to escalate by)."""
    state = locked_state(incident)
    if state is None or not state.snapshot:
        return None
    snapshot = engine.Snapshot.from_json(state.snapshot)
    if not 0 <= level < len(snapshot.levels):
        return None
    return _begin_run(state=state, step=engine.Step("level", level, 0, now), now=now)


def escalation_level_count(incident: Incident) -> int:
    """How many levels the incident's frozen rule has (0: it has none)."""
    state = EscalationState.objects.filter(incident=incident).first()
    return len(state.snapshot.get("levels", ())) if state and state.snapshot else 0


def escalation_stop(*, incident: Incident, now: datetime, status: str = Status.STOPPED) -> None:
    """Stop an incident's escalation: its pending timers become stale and are marked done."""
    state = locked_state(incident)
    if state is None or state.status != Status.RUNNING:
        return
    state.status = status
    state.token = uuid.uuid4()
    state.save(update_fields=["status", "token", "updated_at"])
    _cancel_timers(state, now)


def escalation_acknowledged(*, incident: Incident, now: datetime) -> None:
    """An acknowledgement stops the escalation, unless the current level forces escalation: then its repeats stop
    and the next level is still notified when the level times out (unless the incident is closed by then)."""
    state = locked_state(incident)
    if state is None or state.status != Status.RUNNING:
        return
    snapshot = engine.Snapshot.from_json(state.snapshot)
    if state.level_started_at is None or not snapshot.levels[state.level].force_escalate:
        escalation_stop(incident=incident, now=now)
        return
    _cancel_timers(state, now)
    step = engine.escalation_step(snapshot, level=state.level, level_started_at=state.level_started_at)
    _timer_schedule(state=state, step=step, now=now)
    if step.kind == "end":  # the last level: there is no next level to force
        message = _("Level %(n)d forces escalation, but it is the last level: the escalation ends at %(at)s.")
    else:
        message = _(
            "Level %(n)d forces escalation: the next level is notified at %(at)s unless the incident is closed."
        )
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ASSIGNED,
        message=message % {"n": state.level + 1, "at": step.due_at.strftime("%Y-%m-%d %H:%M:%S %Z")},
        now=now,
        detail={"forced": True, "level": state.level},
    )


def notify_people(
    *,
    incident: Incident,
    person_ids: list[int],
    event_id: int,
    now: datetime,
    event: str = "assigned",
    run: int = 0,
    message: str | None = None,
) -> None:
    """Notify people an incident was handed to directly (reassigned, added as responders, assigned at creation;
    or, as `event` "triggered", its responders when it is triggered again), once per incident event, by their own
    notification methods. `message` is the timeline's, with %(who)s for whom."""
    users = {user.pk: user for user in User.objects.filter(pk__in=person_ids)}
    people = {pk: engine.Person(pk, user.display_name, user.is_active) for pk, user in users.items()}
    methods = {pk: person_methods(person=user, severity=incident.severity) for pk, user in users.items()}
    addresses, reasons = _addresses(users, methods)
    notify, skips = engine.plan_level(
        person_ids, people=people, methods=methods, addresses=addresses, severity=incident.severity, reasons=reasons
    )
    deliveries_create(
        incident=incident,
        run=run,
        level=0,
        round=0,
        event=event,
        planned=[_planned(n) for n in notify],
        now=now,
        event_id=event_id,
    )
    record_notifications(
        incident=incident,
        notify=notify,
        skips=skips,
        names=people,
        now=now,
        message=message or _("Notified %(who)s directly."),
        detail={"event_id": event_id},
    )


def _addresses(users: dict[int, User], methods) -> tuple[dict, dict]:
    """Where each person is reached by each of their methods, and why not where they cannot be."""
    addresses, reasons = {}, {}
    for pk, user in users.items():
        for method in methods[pk]:
            addresses[(pk, method)] = address = method_address(person=user, method=method)
            if not address and user.is_active:
                reasons[(pk, method)] = method_unreachable_reason(person=user, method=method)
    return addresses, reasons


def _planned(notify: engine.Notify) -> PlannedDelivery:
    return PlannedDelivery(
        recipient_key=notify.recipient_key, address=notify.address, method=notify.method, recipient_id=notify.person_id
    )


def record_notifications(
    *,
    incident: Incident,
    notify,
    skips,
    names,
    now: datetime,
    message: str,
    detail: dict,
    nobody: str | None = None,
) -> None:
    def name(person_id) -> str:
        person = names.get(person_id)
        return person.name if person else _("person %(id)s") % {"id": person_id}

    who = ", ".join(f"{name(n.person_id) if n.person_id else n.address} ({n.method})" for n in notify)
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.NOTIFIED,
        message=message % {"who": who or nobody or _("nobody")},
        now=now,
        detail={
            **detail,
            "notified": [{"person_id": n.person_id, "method": n.method, "address": n.address} for n in notify],
            "skipped": [{"person_id": s.person_id, "method": s.method, "reason": s.reason} for s in skips],
        },
    )
    for skip in skips:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFY_FAILED,
            message=_("Skipped %(who)s (%(method)s): %(reason)s.")
            % {"who": name(skip.person_id), "method": skip.method, "reason": skip.reason},
            now=now,
            detail={"person_id": skip.person_id, "method": skip.method, "reason": skip.reason, **detail},
        )


def timer_fire(*, timer_id: int, now: datetime) -> str:
    """Run one due timer, once. Returns what happened: "ran", "ended", "skipped", "stopped", "stale" or "gone"."""
    with log_context() as bind, transaction.atomic():
        # The timer's incident, found through the timer by the statement that locks it (rows are locked incident,
        # then state, then timer). None: the timer is gone, with its incident or deleted in the admin.
        incident = (
            Incident.objects.select_for_update(of=("self",))
            .select_related("channel")
            .filter(escalation__timers=timer_id)
            .first()
        )
        if incident is None:
            return "gone"
        bind(incident_id=incident.pk)
        # What this timer writes is decided now that it holds the incident, after whatever held it before (an
        # acknowledgement a forced level pages past): its pages must not look older than that.
        now = max(now, clock.now())
        state = EscalationState.objects.select_for_update().get(incident=incident)
        timer = Timer.objects.select_for_update().get(pk=timer_id)
        if timer.done_at is not None:
            return "stale"
        timer.done_at = now
        timer.save(update_fields=["done_at"])
        if timer.token != state.token or state.status != Status.RUNNING:
            return "stale"
        if incident.progress == Progress.CLOSED:
            escalation_stop(incident=incident, now=now, status=Status.FINISHED)
            return "stopped"
        if recovered_during_run(incident, state):
            # The recovery's incident event stops the escalation too; a step due before that event is dispatched
            # (it waits for the rest of its push, or its process died) must not page either.
            recovery_hold(incident=incident, state=state, now=now)
            return "stopped"
        snapshot = engine.Snapshot.from_json(state.snapshot)
        if timer.kind == Timer.Kind.END:
            state.status = Status.FINISHED
            state.save(update_fields=["status", "updated_at"])
            timeline_add(
                incident=incident,
                kind=TimelineEntry.Kind.ESCALATION_ENDED,
                message=_("The last level timed out; escalation has ended."),
                now=now,
            )
            return "ended"
        acknowledged = incident.progress == Progress.PROCESSING
        if not engine.may_notify(snapshot, level=timer.level, round=timer.round, acknowledged=acknowledged):
            if timer.round > 0 and snapshot.levels[timer.level].force_escalate and state.level_started_at:
                step = engine.escalation_step(snapshot, level=timer.level, level_started_at=state.level_started_at)
                _timer_schedule(state=state, step=step, now=now)
                return "skipped"
            escalation_stop(incident=incident, now=now)
            return "stopped"
        _run_level(incident=incident, state=state, snapshot=snapshot, level=timer.level, round=timer.round, now=now)
        return "ran"


@dataclass(frozen=True)
class LevelReach:
    """Who a level reaches at a moment, and how, for an incident of one severity."""

    people: dict[int, engine.Person]
    notify: list[engine.Notify]
    skips: list[engine.Skip]
    schedule_answers: list
    bot_people: list[int]  # the level's active people in the order a bot mentions them


def level_reach(*, incident: Incident, plan: engine.LevelPlan, now: datetime) -> LevelReach:
    team_members: dict[int, list[int]] = {}
    if plan.teams:  # a level naming no team (people, schedules, only bots) builds no query for their members
        members = Team.members.through.objects.filter(team_id__in=plan.teams).values_list("team_id", "user_id")
        for team_id, person_id in members:
            team_members.setdefault(team_id, []).append(person_id)
    # Schedules answer for this moment: whoever is on call when the level runs (or repeats) is notified.
    schedule_answers = schedule_targets_on_call(targets=plan.schedules, now=now)
    on_call = {answer.target.key: answer.people for answer in schedule_answers}
    person_ids = engine.level_people(plan, team_members, on_call)
    users = {user.pk: user for user in User.objects.filter(pk__in=person_ids)} if person_ids else {}
    people = {pk: engine.Person(pk, user.display_name, user.is_active) for pk, user in users.items()}
    if plan.follow_preferences:
        methods = {pk: tuple(person_methods(person=user, severity=incident.severity)) for pk, user in users.items()}
    else:
        level_methods = plan.methods.get(incident.severity, ())
        methods = dict.fromkeys(users, level_methods)
    addresses, reasons = _addresses(users, methods)
    notify, skips = engine.plan_level(
        person_ids,
        people=people,
        methods=methods,
        addresses=addresses,
        emails=plan.emails,
        severity=incident.severity,
        reasons=reasons,
    )
    bot_people = [
        pk
        for pk in engine.level_people(plan, team_members, on_call, on_call_first=True)
        if pk in users and users[pk].is_active
    ]
    return LevelReach(people, notify, skips, list(schedule_answers), bot_people)


@dataclass(frozen=True)
class LevelTurn:
    """One notification of a level: of which incident, escalation run, level and round, announcing which event
    (triggered, escalated, refired), in which template set, at what time."""

    incident: Incident
    run: int
    level: int
    round: int
    event: str
    template_set_id: int | None
    now: datetime


def level_page(turn: LevelTurn, notify) -> None:
    """Write the level's deliveries to the people in `notify` (handed to the worker on commit); they become
    responders."""
    if not notify:  # a level that only posts to bots, or reaches nobody: nothing to write, nobody to add
        return
    deliveries_create(
        incident=turn.incident,
        run=turn.run,
        level=turn.level,
        round=turn.round,
        event=turn.event,
        planned=[_planned(n) for n in notify],
        now=turn.now,
        template_set_id=turn.template_set_id,
    )
    _responders_add(incident=turn.incident, notify=notify, now=turn.now)


def level_post(turn: LevelTurn, *, bot_ids, reach: LevelReach, detail: dict) -> None:
    """Post the level's message to `bot_ids`, mentioning the people it reaches."""
    level_bots_post(
        incident=turn.incident,
        bot_ids=bot_ids,
        event=turn.event,
        people_ids=reach.bot_people,
        run=turn.run,
        level=turn.level,
        round=turn.round,
        template_set_id=turn.template_set_id,
        now=turn.now,
        detail=detail,
    )


def _responders_add(*, incident: Incident, notify, now: datetime) -> None:
    notified_ids = sorted({n.person_id for n in notify if n.person_id is not None})
    if not notified_ids:  # a level that only posts to bots, or reaches nobody
        return
    existing = set(Responder.objects.filter(incident=incident).values_list("person_id", flat=True))
    Responder.objects.bulk_create(
        [Responder(incident=incident, person_id=pk, assigned_at=now) for pk in notified_ids if pk not in existing]
    )


def _run_level(
    *, incident: Incident, state: EscalationState, snapshot: engine.Snapshot, level: int, round: int, now: datetime
) -> None:
    plan = snapshot.levels[level]
    reach = level_reach(incident=incident, plan=plan, now=now)
    notify, skips, schedule_answers = reach.notify, reach.skips, reach.schedule_answers
    event = "refired" if round > 0 else ("escalated" if level > 0 else "triggered")
    turn = LevelTurn(incident, state.run, level, round, event, snapshot.template_set_id, now)
    level_page(turn, notify)
    if level > 0 and round == 0:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.ESCALATED,
            message=_("Escalated to level %(n)d.") % {"n": level + 1},
            now=now,
            detail={"level": level},
        )
        incident_event_record(incident=incident, kind=IncidentEvent.Kind.ESCALATED, now=now, detail={"level": level})
    if round > 0:
        message = _("Level %(level)d notified %%(who)s again (repeat %(round)d of %(times)d).") % {
            "level": level + 1,
            "round": round,
            "times": plan.repeat_times,
        }
    else:
        message = _("Level %(level)d notified %%(who)s.") % {"level": level + 1}
    detail = {"rule_id": snapshot.rule_id, "level": level, "round": round}
    # A level that names someone says whom it reached, or that it reached nobody; one that only posts to bots says
    # what it did by its bots' lines alone.
    if not plan.pages_only_bots:
        record_notifications(
            incident=incident,
            notify=notify,
            skips=skips,
            names=reach.people,
            now=now,
            message=message,
            detail={
                **detail,
                "schedules": [
                    {"schedule_id": a.target.schedule_id, "role": a.target.role, "on_call": list(a.people)}
                    for a in schedule_answers
                ],
            },
        )
    _record_empty_schedules(incident=incident, answers=schedule_answers, now=now, detail=detail)
    # Nobody to notify directly does not end the level: its timer runs on, and its bots still post (about the
    # level's people, whom they mention and remind should the bot fail).
    if plan.bots:
        level_post(turn, bot_ids=plan.bots, reach=reach, detail=detail)
    if round == 0:
        state.level_started_at = now
    state.level = level
    state.round = round
    state.save(update_fields=["level", "round", "level_started_at", "updated_at"])
    step = engine.next_step(snapshot, level=level, round=round, level_started_at=state.level_started_at, now=now)
    _timer_schedule(state=state, step=step, now=now)


def _record_empty_schedules(*, incident: Incident, answers, now: datetime, detail: dict) -> None:
    for answer in answers:
        if answer.people:
            continue
        message = _("Nobody is on call for schedule %(schedule)s.") % {"schedule": answer.describe()}
        if answer.disabled:
            message += " " + _("The schedule is disabled.")
        elif answer.missing:
            message += " " + _("The schedule no longer exists.")
        elif answer.broken:
            message += " " + _("The schedule could not be read; see the server log.")
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFY_FAILED,
            message=message,
            now=now,
            detail={**detail, "schedule_id": answer.target.schedule_id, "role": answer.target.role, "nobody": True},
        )


def timers_enqueue_due(*, now: datetime, limit: int = 500) -> int:
    """Hand every due, unleased timer to the worker (the ticker calls this every second)."""
    due = Timer.objects.filter(done_at__isnull=True, due_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    lease = timedelta(seconds=settings.TIMER_LEASE_SECONDS)
    ids = claims.claim_due(due, now=now, lease=lease, limit=limit, order=("due_at", "pk"))  # oldest due first
    for timer_id in ids:
        queue.enqueue(FIRE_TASK, timer_id, group="escalation")
    return len(ids)
