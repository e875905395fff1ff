"""Bots in escalation: a level posts to its bots, and bots already in an incident's conversation hear what happens
to it. Which bots post is decided by channels_app (each bot's filters); this module says when, about whom, and
records it in the timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.translation import gettext as _

from channels_app.bots.services import BotPlan, bot_deliveries_create, bots_that_posted
from escalation import engine
from escalation.models import EscalationState
from oncall.models import Incident, IncidentEvent, Responder, TimelineEntry
from oncall.services.incidents import timeline_add


def level_bots_post(
    *,
    incident: Incident,
    bot_ids: Sequence[int],
    event: str,
    people_ids: Sequence[int],
    run: int,
    level: int,
    round: int,
    template_set_id: int | None,
    now: datetime,
    detail: dict,
) -> BotPlan:
    """A level runs: post to its bots that pass their filters, about (and mentioning) the level's people."""
    plan = bot_deliveries_create(
        incident=incident,
        bot_ids=bot_ids,
        event=event,
        people_ids=people_ids,
        now=now,
        run=run,
        level=level,
        round=round,
        template_set_id=template_set_id,
    )
    _record(incident=incident, plan=plan, now=now, detail=detail)
    return plan


def _record(*, incident: Incident, plan: BotPlan, now: datetime, detail: dict) -> None:
    """One timeline entry for the bots that post, one per bot that does not, with the reason."""
    if plan.posting:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFIED,
            message=_("Posted to %(bots)s.") % {"bots": ", ".join(bot.describe() for bot in plan.posting)},
            now=now,
            detail={**detail, "bots": [bot.id for bot in plan.posting]},
        )
    for bot, reason in plan.skipped:
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFIED,
            message=_("Not posted to %(bot)s: %(reason)s.") % {"bot": bot.describe(), "reason": reason},
            now=now,
            detail={**detail, "bot_id": bot.id, "skipped": reason},
        )


# Incident events a bot can be told about, by the bot event type they announce.
BOT_EVENTS_OF = {
    IncidentEvent.Kind.ACKNOWLEDGED: "acknowledged",
    IncidentEvent.Kind.UNACKNOWLEDGED: "unacknowledged",
    IncidentEvent.Kind.SNOOZED: "snoozed",
    IncidentEvent.Kind.WOKEN: "woken",
    IncidentEvent.Kind.CLOSED: "closed",
    IncidentEvent.Kind.REOPENED: "reopened",
    IncidentEvent.Kind.ESCALATED: "escalated",
    IncidentEvent.Kind.REASSIGNED: "reassigned",
}


def bots_announce(*, incident: Incident, event: IncidentEvent, now: datetime) -> BotPlan | None:
    """Tell the bots of the incident's frozen rule that already posted about it what just happened to it (those
    subscribed to the event type and its severity), once per incident event, mentioning its responders."""
    bot_event = BOT_EVENTS_OF.get(event.kind)
    if bot_event is None or event.detail.get("manual"):
        # A manual escalation is a request; the level it runs announces itself.
        return None
    state = EscalationState.objects.filter(incident=incident).first()
    if state is None or not state.snapshot:
        return None
    snapshot = engine.Snapshot.from_json(state.snapshot)
    bot_ids = list(snapshot.bot_ids())
    if event.kind == IncidentEvent.Kind.ESCALATED and 0 <= event.detail.get("level", -1) < len(snapshot.levels):
        # The level escalated to posts to its own bots itself.
        own = set(snapshot.levels[event.detail["level"]].bots)
        bot_ids = [bot_id for bot_id in bot_ids if bot_id not in own]
    posted = bots_that_posted(incident=incident, bot_ids=bot_ids)
    if not posted:
        return None
    responders = list(
        Responder.objects.filter(incident=incident).order_by("assigned_at", "id").values_list("person_id", flat=True)
    )
    plan = bot_deliveries_create(
        incident=incident,
        bot_ids=posted,
        event=bot_event,
        people_ids=responders,
        now=now,
        run=state.run,
        level=state.level,
        round=0,
        event_id=event.pk,
        template_set_id=snapshot.template_set_id,
    )
    _record(incident=incident, plan=plan, now=now, detail={"event_id": event.pk, "event": bot_event})
    return plan
