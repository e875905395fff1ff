"""Starting, running and stopping escalations. Rows are locked incident, then state, then timer."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from channels_app.services import PlannedDelivery, deliveries_create, method_address, person_methods
from escalation import engine
from escalation.models import EscalationLevel, EscalationRule, EscalationState, Timer
from oncall.lib import claims, queue
from oncall.models import Incident, IncidentEvent, Progress, Responder, Severity, TimelineEntry, User
from oncall.services.events import incident_event_record
from oncall.services.incidents import timeline_add

FIRE_TASK = "escalation.tasks.timer_fire"


def rule_snapshot(rule: EscalationRule) -> engine.Snapshot:
    """Freeze a rule and its levels into plain data."""
    levels = []
    for level in rule.levels.order_by("position", "id").prefetch_related("people"):
        levels.append(
            engine.LevelPlan(
                people=tuple(person.pk for person in level.people.order_by("pk")),
                methods={
                    Severity.CRITICAL: tuple(level.critical_methods),
                    Severity.WARNING: tuple(level.warning_methods),
                    Severity.INFO: tuple(level.info_methods),
                },
                escalate_after=timedelta(minutes=level.escalate_after_minutes),
            )
        )
    return engine.Snapshot(rule_id=rule.pk, rule_name=rule.name, levels=tuple(levels))


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
        queue.enqueue(FIRE_TASK, timer.pk, group="escalation")
    return timer


def escalation_start(*, incident: Incident, now: datetime) -> EscalationState:
    """Pick the channel's first matching rule, freeze it on the incident and schedule its first level.

    The incident row must be locked by the caller (the event dispatcher does).
    """
    state = EscalationState.objects.select_for_update().filter(incident=incident).first()
    if state is not None and state.run > 0:
        return state  # already started
    rules = list(EscalationRule.objects.filter(channel_id=incident.channel_id).order_by("priority", "id"))
    level_counts = _level_counts(rules)
    candidates = [engine.RuleCandidate(r.pk, r.name, r.priority, r.enabled, level_counts.get(r.pk, 0)) for r in rules]
    facts = engine.IncidentFacts(
        id=incident.pk, severity=incident.severity, title=incident.title, labels=incident.labels
    )
    chosen = engine.choose_rule(candidates, facts, now)
    if state is None:
        state = EscalationState(incident=incident, started_at=now)
    if chosen is None:
        state.status = EscalationState.Status.UNASSIGNED
        state.save()
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.UNASSIGNED,
            message=_("No escalation rule of channel %(channel)s matched; nobody is notified.")
            % {"channel": incident.channel.name},
            now=now,
        )
        return state
    rule = next(r for r in rules if r.pk == chosen.id)
    state.rule = rule
    state.snapshot = rule_snapshot(rule).to_json()
    state.save()
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ASSIGNED,
        message=_("Escalation rule %(rule)s applies.") % {"rule": rule.name},
        now=now,
        detail={"rule_id": rule.pk, "rule_name": rule.name},
    )
    return _begin_run(state=state, now=now)


def _begin_run(*, state: EscalationState, now: datetime) -> EscalationState:
    """Start a new run of the frozen rule from its first level; older timers become stale."""
    Timer.objects.filter(state=state, done_at__isnull=True).update(done_at=now)
    state.status = EscalationState.Status.RUNNING
    state.run += 1
    state.token = uuid.uuid4()
    state.level = 0
    state.round = 0
    state.started_at = now
    state.save()
    _timer_schedule(state=state, step=engine.Step("level", 0, 0, now), now=now)
    return state


def escalation_restart(*, incident: Incident, now: datetime) -> EscalationState | None:
    """Notify again from the first level (after an unacknowledge, a wake or a reopen), with the rule frozen when
    the incident opened. An incident that never had a rule gets one chosen now."""
    state = EscalationState.objects.select_for_update().filter(incident=incident).first()
    if state is None or not state.snapshot:
        if state is not None:
            state.run = 0
            state.save(update_fields=["run"])
        return escalation_start(incident=incident, now=now)
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ASSIGNED,
        message=_("Escalation rule %(rule)s starts again from level 1.") % {"rule": state.snapshot.get("rule_name")},
        now=now,
        detail={"rule_id": state.snapshot.get("rule_id"), "restart": True},
    )
    return _begin_run(state=state, now=now)


def notify_people(*, incident: Incident, person_ids: list[int], event_id: int, now: datetime) -> None:
    """Notify people an incident was handed to directly (reassigned, added as responders, assigned at creation),
    once per incident event, by their own notification methods."""
    users = list(User.objects.filter(pk__in=person_ids, is_active=True).order_by("pk"))
    planned, reached, skipped = [], [], []
    for user in users:
        for method in person_methods(person=user, severity=incident.severity):
            address = method_address(person=user, method=method)
            if address:
                planned.append(
                    PlannedDelivery(
                        recipient_key=f"person:{user.pk}", address=address, method=method, recipient_id=user.pk
                    )
                )
                reached.append(f"{user.display_name} ({method})")
            else:
                skipped.append(f"{user.display_name} ({method})")
    deliveries_create(
        incident=incident, run=0, level=0, round=0, event="assigned", planned=planned, now=now, event_id=event_id
    )
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.NOTIFIED,
        message=_("Notified %(who)s directly.") % {"who": ", ".join(reached) or _("nobody")}
        + (" " + _("Skipped (no contact): %(who)s.") % {"who": ", ".join(skipped)} if skipped else ""),
        now=now,
        detail={"person_ids": person_ids, "event_id": event_id},
    )


def _level_counts(rules: list[EscalationRule]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for rule_id in EscalationLevel.objects.filter(rule__in=rules).values_list("rule_id", flat=True):
        counts[rule_id] = counts.get(rule_id, 0) + 1
    return counts


def escalation_stop(*, incident: Incident, now: datetime, status: str = EscalationState.Status.STOPPED) -> None:
    """Stop an incident's escalation: its pending timers become stale and are marked done."""
    state = EscalationState.objects.select_for_update().filter(incident=incident).first()
    if state is None or state.status != EscalationState.Status.RUNNING:
        return
    state.status = status
    state.token = uuid.uuid4()
    state.save(update_fields=["status", "token", "updated_at"])
    Timer.objects.filter(state=state, done_at__isnull=True).update(done_at=now)


def timer_fire(*, timer_id: int, now: datetime) -> str:
    """Run one due timer, once: returns what happened ("ran", "ended", "stale", "gone")."""
    row = Timer.objects.filter(pk=timer_id).values_list("state__incident_id", flat=True).first()
    if row is None:
        return "gone"
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=row)
        state = EscalationState.objects.select_for_update().get(incident=incident)
        timer = Timer.objects.select_for_update().get(pk=timer_id)
        if timer.done_at is not None:
            return "stale"
        timer.done_at = now
        timer.save(update_fields=["done_at"])
        if timer.token != state.token or state.status != EscalationState.Status.RUNNING:
            return "stale"
        if incident.progress == Progress.CLOSED:
            escalation_stop(incident=incident, now=now, status=EscalationState.Status.FINISHED)
            return "stale"
        if timer.kind == Timer.Kind.END:
            state.status = EscalationState.Status.FINISHED
            state.save(update_fields=["status", "updated_at"])
            timeline_add(
                incident=incident,
                kind=TimelineEntry.Kind.ESCALATION_ENDED,
                message=_("The last level timed out; escalation has ended."),
                now=now,
            )
            return "ended"
        if incident.progress == Progress.PROCESSING:
            # Acknowledged: the escalation stops here.
            escalation_stop(incident=incident, now=now)
            return "stale"
        _run_level(incident=incident, state=state, level=timer.level, round=timer.round, now=now)
        return "ran"


def _run_level(*, incident: Incident, state: EscalationState, level: int, round: int, now: datetime) -> None:
    snapshot = engine.Snapshot.from_json(state.snapshot)
    plan = snapshot.levels[level]
    users = {user.pk: user for user in User.objects.filter(pk__in=plan.people)}
    people = {pk: engine.Person(pk, user.display_name, user.is_active) for pk, user in users.items()}
    addresses = {
        (pk, method): method_address(person=user, method=method)
        for pk, user in users.items()
        for method in plan.methods.get(incident.severity, ())
    }
    notify, skips = engine.plan_level(plan, severity=incident.severity, people=people, addresses=addresses)
    event = "escalated" if level > 0 and round == 0 else ("refired" if round > 0 else "triggered")
    deliveries_create(
        incident=incident,
        run=state.run,
        level=level,
        round=round,
        event=event,
        planned=[
            PlannedDelivery(
                recipient_key=f"person:{n.person_id}",
                address=n.address,
                method=n.method,
                recipient_id=n.person_id,
            )
            for n in notify
        ],
        now=now,
    )
    notified_ids = sorted({n.person_id for n in notify})
    existing = set(Responder.objects.filter(incident=incident).values_list("person_id", flat=True))
    Responder.objects.bulk_create(
        [Responder(incident=incident, person_id=pk, assigned_at=now) for pk in notified_ids if pk not in existing]
    )
    if level > 0 and round == 0:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.ESCALATED,
            message=_("Not acknowledged in time: escalated to level %(n)d.") % {"n": level + 1},
            now=now,
            detail={"level": level},
        )
        incident_event_record(incident=incident, kind=IncidentEvent.Kind.ESCALATED, now=now, detail={"level": level})
    names = {pk: people[pk].name for pk in people}
    sent = ", ".join(f"{names.get(n.person_id, n.person_id)} ({n.method})" for n in notify) or _("nobody")
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.NOTIFIED,
        message=_("Level %(level)d notified %(who)s.") % {"level": level + 1, "who": sent},
        now=now,
        detail={
            "rule_id": snapshot.rule_id,
            "level": level,
            "round": round,
            "notified": [{"person_id": n.person_id, "method": n.method} for n in notify],
            "skipped": [{"person_id": s.person_id, "method": s.method, "reason": s.reason} for s in skips],
        },
    )
    for skip in skips:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFY_FAILED,
            message=_("Skipped %(who)s (%(method)s): %(reason)s.")
            % {
                "who": names.get(skip.person_id, f"person {skip.person_id}"),
                "method": skip.method,
                "reason": skip.reason,
            },
            now=now,
            detail={
                "person_id": skip.person_id,
                "method": skip.method,
                "reason": skip.reason,
                "level": level,
            },
        )
    state.level = level
    state.round = round
    state.save(update_fields=["level", "round", "updated_at"])
    _timer_schedule(state=state, step=engine.next_step(snapshot, level=level, round=round, fired_at=now), now=now)


def timers_enqueue_due(*, now: datetime, limit: int = 500) -> int:
    """Hand every due, unleased timer to the worker (the ticker calls this every second)."""
    due = Timer.objects.filter(done_at__isnull=True, due_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    ids = claims.claim_due(due, now=now, lease=timedelta(seconds=settings.TIMER_LEASE_SECONDS), limit=limit)
    for timer_id in ids:
        queue.enqueue(FIRE_TASK, timer_id, group="escalation")
    return len(ids)
