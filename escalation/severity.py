"""A severity rise during an escalation: the incident is paged for its new severity (docs/escalation.md).

An unassigned incident chooses its rule again; one whose escalation has notified a level has that level notified
again, for what it had not sent, without changing when it repeats or escalates.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from channels_app.bots.filters import BotFilter, bot_skip_reason
from channels_app.bots.services import bots_that_posted
from channels_app.models import Bot, Delivery
from escalation import engine
from escalation.models import EscalationState
from escalation.services import (
    LevelTurn,
    Status,
    escalation_start,
    level_page,
    level_post,
    level_reach,
    locked_state,
    record_notifications,
)
from oncall.models import Incident, Progress, Severity, TimelineEntry


def escalation_severity_raised(
    *, incident: Incident, now: datetime, at: datetime, previous: str | None = None
) -> EscalationState | None:
    """An incident's severity rose at `at` (from `previous`). Only a triggered incident is paged for it: an
    acknowledged one is in someone's hands, and a snoozed or closed one, or one whose alerts have all recovered,
    is not paged at all.

    No rule matched it so far (unassigned): choose again, for its new severity. Its escalation has notified a level
    (running on it, or finished after the last one): notify that level again for the new severity — only the people
    and methods it has not reached that way in this run, and only the bots that left the incident out for its old
    severity and take the new one — without changing when it repeats or escalates. An escalation that has not
    notified its first level yet does so for the severity the incident has then. A started escalation keeps its
    rule; a stopped one and an incident in people's hands are left alone."""
    state = locked_state(incident)
    if state is None or incident.progress != Progress.TRIGGERED or incident.all_alerts_recovered:
        return state  # a rise by hand of an incident whose alerts have all recovered pages nobody either
    if previous is not None and Severity.rank(incident.severity) <= Severity.rank(previous):
        return state  # lowered again before this rise was dispatched: nothing more to page for
    if state.status == Status.UNASSIGNED:
        return escalation_start(incident=incident, now=now, at=at)
    if state.status in (Status.RUNNING, Status.FINISHED) and state.snapshot and state.level_started_at is not None:
        _level_notify_for_severity(incident=incident, state=state, previous=previous, now=now)
    return state


def _level_notify_for_severity(
    *, incident: Incident, state: EscalationState, previous: str | None, now: datetime
) -> None:
    """Notify the level the escalation is on (or ended on) again, for the incident's new severity. The caller holds
    the incident and its escalation state, so the level's timer cannot run alongside; what it had sent is read from
    the deliveries, and each new one is keyed to the level's current round, so a second writer is a no-op."""
    snapshot = engine.Snapshot.from_json(state.snapshot)
    level, round = state.level, state.round
    plan = snapshot.levels[level]
    reach = level_reach(incident=incident, plan=plan, now=now)
    sent = set(
        Delivery.objects.filter(incident=incident, escalation_run=state.run, level=level).values_list(
            "recipient_key", "method"
        )
    )
    notify = engine.not_yet_notified(reach.notify, sent)
    skips = engine.not_yet_reported(
        reach.skips, _skips_reported(incident=incident, level=level, since=state.level_started_at)
    )
    # What the level announces when it starts: to these people (and bots) this is the first page about it.
    event = "escalated" if level > 0 else "triggered"
    turn = LevelTurn(incident, state.run, level, round, event, snapshot.template_set_id, now)
    level_page(turn, notify)
    detail = {
        "rule_id": snapshot.rule_id,
        "level": level,
        "round": round,
        "severity_raised": {"from": previous, "to": incident.severity},
    }
    if not plan.pages_only_bots:  # a level that only posts to bots says what it did by its bots' lines alone
        record_notifications(
            incident=incident,
            notify=notify,
            skips=skips,
            names=reach.people,
            now=now,
            message=_("Level %(level)d notified again because the severity rose to %(severity)s: %%(who)s.")
            % {"level": level + 1, "severity": incident.severity},
            nobody=_("nobody it had not notified that way already"),
            detail=detail,
        )
    bot_ids = _bots_taking_the_new_severity(incident=incident, bot_ids=plan.bots, previous=previous, event=event)
    if bot_ids:
        level_post(turn, bot_ids=bot_ids, reach=reach, detail=detail)


def _skips_reported(*, incident: Incident, level: int, since: datetime) -> set[tuple[int, str]]:
    """Whom the timeline already reported skipped, and for which method, at `level` since it was notified in this
    run (`since`, its start; earlier runs' entries are older): a rise repeats only what it has new to say."""
    details = TimelineEntry.objects.filter(
        incident=incident, kind=TimelineEntry.Kind.NOTIFY_FAILED, at__gte=since, detail__level=level
    ).values_list("detail", flat=True)
    return {(detail.get("person_id"), detail.get("method")) for detail in details}


def _bots_taking_the_new_severity(
    *, incident: Incident, bot_ids: tuple[int, ...], previous: str | None, event: str
) -> list[int]:
    """Those of a level's bots that a severity rise makes post: the ones whose severity filter left the incident
    out and now takes it, and that have not posted about it. A bot that posted already has the incident (its
    severity shows in the chat's later notices); a second trigger would read as a second incident."""
    if not bot_ids or previous is None:
        return []
    posted = set(bots_that_posted(incident=incident, bot_ids=bot_ids))
    bots = {bot.pk: bot for bot in Bot.objects.filter(pk__in=bot_ids).exclude(pk__in=posted)}
    chosen = []
    for bot_id in bot_ids:
        bot = bots.get(bot_id)
        if bot is None:
            continue
        rules = BotFilter.of(enabled=bot.enabled, severities=bot.severities, events=bot.event_types)
        was_left_out = bot_skip_reason(rules, severity=previous, event=event)
        if was_left_out and not bot_skip_reason(rules, severity=incident.severity, event=event):
            chosen.append(bot_id)
    return chosen
