"""One attempt at a bot delivery: pace it, render it, send it, record what the provider said, fall back.

Bots are not subject to the people's daily quotas. A message that has to wait for the bot's rate limit goes back
to pending until its reserved time without counting as an attempt; so does one the provider answered "too fast"
(and the bot holds every other message until the provider's window has passed).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.base import BotMessage, SendResult
from channels_app.bots.fallback import bot_fallback_send
from channels_app.bots.pacing import bot_slot_reserve
from channels_app.bots.services import (
    BOT_METHOD,
    bot_mentions,
    bot_record_answer,
    bot_ref,
    bot_secrets,
    bot_target,
    kind_label,
    message_event_id,
    redact_result,
)
from channels_app.deliveries import attempt_still_ours, this_attempt
from channels_app.messages import delivery_actor, message_context
from channels_app.models import Bot, Delivery
from channels_app.outcomes import delivery_record_outcome, no_longer_needed, template_failures_record
from channels_app.templating import render_slot
from oncall.models import TimelineEntry, User
from oncall.services.incidents import timeline_add

logger = logging.getLogger(__name__)

__all__ = ["BOT_METHOD", "bot_delivery_send"]


def bot_delivery_send(*, delivery: Delivery, now: datetime) -> Delivery:
    """Attempt a bot delivery the caller has claimed (status sending, attempts counted)."""
    bot = delivery.bot
    if bot is None:
        return delivery_record_outcome(
            delivery=delivery,
            result=SendResult.permanent(_("the bot was deleted")),
            now=now,
            timeline_message=_("Bot %(name)s was deleted before its message went out.") % {"name": delivery.address},
        )
    if not bot.enabled:
        return _bot_disabled(delivery=delivery, bot=bot, now=now)
    label = kind_label(bot.kind)
    needless = no_longer_needed(delivery)
    if needless and delivery.attempts > 1:
        # A first attempt still goes out (the chat then sees the whole story); retries of a stale message do not.
        this_attempt(delivery).update(status=Delivery.Status.CANCELLED, lease_until=None, error=needless)
        return delivery
    provider = registry.bot_kind(bot.kind)
    target = bot_target(bot)
    people = _people(delivery)
    mentions = bot_mentions(bot=bot, people=people)
    if not _slot_is_ours(delivery, bot, now):
        slot = bot_slot_reserve(
            bot_id=bot.pk, limits=provider.rate_limits, weight=provider.requests_for(target, mentions), now=now
        )
        if slot > now:
            return _wait_for(delivery, slot)
    state = {key: value for key, value in delivery.state.items() if key != "slot"}
    if state != delivery.state:
        # Only the attempt this worker claimed gives its time up: a worker that lost it changes nothing.
        this_attempt(delivery).update(state=state)
        delivery.state = state
    secrets = bot_secrets(bot)
    try:
        context = message_context(
            incident=delivery.incident,
            event=delivery.event,
            now=now,
            level=delivery.level,
            round=delivery.round,
            actor=delivery_actor(delivery),
            event_id=message_event_id(delivery),
            event_time=delivery.created_at,
            people=people,
        )
        template_set = delivery.template_set
        rendered = render_slot(provider.slot, bodies=template_set.bodies if template_set else None, context=context)
        template_failures_record(delivery=delivery, rendered={rendered.slot: rendered}, now=now)
        message = BotMessage(rendered.text, context, mentions, progress=delivery.state.get("progress", {}))
        if not attempt_still_ours(delivery):
            # The lease ran out while this worker was held up after its claim (a lock wait, a slow render): the
            # ticker has handed the message to another worker, whose attempt is the one that counts. Posting now
            # would show the chat the message twice, whatever this worker's clock says about its deadline.
            logger.warning(
                "Delivery %s: the attempt is no longer this worker's (its lease ran out); not posted", delivery.pk
            )
            delivery.refresh_from_db()
            return delivery
        result = provider.send(bot=target, message=message, now=now)
    except Exception as exc:
        # A bug in a provider must not lose the message: record it and retry like any transient failure.
        logger.exception("Delivery %s: bot provider %s raised", delivery.pk, bot.kind)
        result = SendResult.retryable(f"unexpected error: {type(exc).__name__}")
    result = redact_result(result, secrets)
    failed_message = _("%(kind)s bot %(bot)s could not post after %(n)d attempt(s): %(error)s") % {
        "kind": label,
        "bot": bot.name,
        "n": delivery.attempts,
        "error": result.error[:300],
    }
    delivery = delivery_record_outcome(delivery=delivery, result=result, now=now, timeline_message=failed_message)
    bot_record_answer(bot=bot, result=result, now=now)
    if delivery.status == Delivery.Status.FAILED:
        bot_fallback_send(delivery=delivery, bot=bot, kind_label=label, now=now)
    return delivery


def _bot_disabled(*, delivery: Delivery, bot: Bot, now: datetime) -> Delivery:
    """An admin disabled the bot while its message waited (for its time, a retry, a worker): the message is
    cancelled, not failed, and nobody gets an IM fallback reminder for a bot switched off on purpose."""
    reason = _("the bot was disabled")
    with transaction.atomic():
        if this_attempt(delivery).update(status=Delivery.Status.CANCELLED, lease_until=None, error=reason):
            timeline_add(
                incident=delivery.incident,
                kind=TimelineEntry.Kind.NOTIFIED,
                message=_("Not posted to %(bot)s: %(reason)s.") % {"bot": bot_ref(bot).describe(), "reason": reason},
                now=now,
                detail={"delivery_id": delivery.pk, "bot_id": bot.pk, "skipped": reason},
            )
    delivery.refresh_from_db()
    return delivery


def _people(delivery: Delivery) -> list[User]:
    ids = list(delivery.state.get("people", []))
    users = {user.pk: user for user in User.objects.filter(pk__in=ids)}
    return [users[pk] for pk in ids if pk in users]


def _slot_is_ours(delivery: Delivery, bot: Bot, now: datetime) -> bool:
    """Whether the delivery already holds a reserved time that has come, and no pause came after it."""
    if "slot" not in delivery.state:
        return False
    return not (bot.paused_until and bot.paused_until > now)


def _wait_for(delivery: Delivery, slot: datetime) -> Delivery:
    """Back to pending until the reserved time; being paced is not an attempt."""
    state = {**delivery.state, "slot": slot.isoformat()}
    this_attempt(delivery).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=slot,
        lease_until=None,
        attempts=F("attempts") - 1,
        state=state,
    )
    delivery.refresh_from_db()
    return delivery
