"""One attempt at a bot delivery: pace it, render it, send it, record what the provider said, fall back.

Bots are not subject to the people's daily quotas. A message that has to wait for the bot's rate limit goes back
to pending until its reserved time without counting as an attempt; so does one the provider answered "too fast"
(and the bot holds every other message until the provider's window has passed). That message, and the messages
whose time fell inside the pause, keep their place in the bot's queue (see pacing.bot_queue_replan).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.base import BotMessage, Outcome, SendResult
from channels_app.bots.fallback import bot_fallback_send
from channels_app.bots.pacing import SLOT, SLOT_WEIGHT, bot_queue_replan, bot_slot_reserve, held_slot
from channels_app.bots.services import (
    BOT_METHOD,
    MAY_HAVE_POSTED,
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
from channels_app.outcomes import TRIGGER_EVENTS, delivery_record_outcome, no_longer_needed, template_failures_record
from channels_app.templating import render_slot
from oncall.models import TimelineEntry, User
from oncall.services.incidents import timeline_add

logger = logging.getLogger(__name__)

__all__ = ["BOT_METHOD", "bot_delivery_send"]

# The attempts (their numbers) whose worker went on to call the provider, kept on the delivery.
CALLED = "called"


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
    # Whether the message is still needed matters only to a retry: a first attempt goes out whatever the answer
    # (see below), so it does not ask.
    needless = no_longer_needed(delivery) if delivery.attempts > 1 else ""
    late = bool(needless)
    if late:
        # A first attempt still goes out (the chat then sees the whole story), and so does a retry while nothing
        # can have put the incident in the chat; a message that may be there already is not posted a second time.
        cancelled = _stale_retry_cancel(delivery=delivery, bot=bot, needless=needless, now=now)
        if cancelled is not None:
            return cancelled
    provider = registry.bot_kind(bot.kind)
    target = bot_target(bot)
    people = _people(delivery)
    mentions = bot_mentions(bot=bot, people=people)
    weight = provider.requests_for(target, mentions)
    held = held_slot(delivery.state)
    if held is None:
        slot = bot_slot_reserve(bot_id=bot.pk, limits=provider.rate_limits, weight=weight, now=now)
        if slot > now:
            return _wait_for(delivery, slot, weight=weight)
    elif bot.paused_until and bot.paused_until > held:
        # The provider said "too fast" (to another message, to the admin's test) after this time was reserved, and
        # the time fell inside the pause: the message waits for the pause's end, and keeps its place among the
        # messages waiting with it, rather than reserving a time behind all of them.
        _wait_for(delivery, bot.paused_until, weight=weight, keep=held)
        bot_queue_replan(bot_id=bot.pk, limits=provider.rate_limits, now=now)
        delivery.refresh_from_db()
        return delivery
    state = {key: value for key, value in delivery.state.items() if key not in (SLOT, SLOT_WEIGHT)}
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
        # Which attempts called the provider: one whose worker dies from here on may have posted the message.
        delivery.state = {**delivery.state, CALLED: sorted({*delivery.state.get(CALLED, ()), delivery.attempts})}
        if not attempt_still_ours(delivery, state=delivery.state):
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
    if result.rate_limited and delivery.status == Delivery.Status.PENDING:
        # "Too fast": the message waits for the bot's pause (or its retry) in the place it had in the bot's queue,
        # ahead of the messages written after it, instead of reserving a time behind everything queued meanwhile.
        bot_queue_replan(bot_id=bot.pk, limits=provider.rate_limits, now=now, rejoining=delivery.pk, weight=weight)
        delivery.refresh_from_db()
    if late and delivery.status == Delivery.Status.SENT:
        _timeline(
            delivery,
            bot,
            _("Posted to %(bot)s late, as no earlier attempt had reached the chat: %(why)s"),
            needless,
            now,
            late=True,
        )
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


def _stale_retry_cancel(*, delivery: Delivery, bot: Bot, needless: str, now: datetime) -> Delivery | None:
    """Cancel the retry of a message no longer needed (`needless` says why) if the chat may have the incident
    already: an earlier attempt may have posted it, or another of the incident's messages to the bot did. The
    timeline says so. None when it still goes out: nothing can have put the incident in the chat."""
    if _earlier_attempt_may_have_posted(delivery):
        error = f"{needless} {_('An earlier attempt may have posted it.')}"
        message = _(
            "Not posted to %(bot)s again: an earlier attempt may have posted it (it was cut off before %(kind)s's "
            "answer), and it is no longer needed: %(why)s"
        )
        state = {**delivery.state, MAY_HAVE_POSTED: True}
    elif _chat_has_incident(delivery):
        error = needless
        message = _(
            "Not posted to %(bot)s: the chat has the incident from another of its messages, and this one is no "
            "longer needed: %(why)s"
        )
        state = delivery.state
    else:
        return None
    with transaction.atomic():
        if this_attempt(delivery).update(
            status=Delivery.Status.CANCELLED, lease_until=None, error=error[:2000], state=state
        ):
            _timeline(delivery, bot, message, needless, now)
    delivery.refresh_from_db()
    return delivery


def _earlier_attempt_may_have_posted(delivery: Delivery) -> bool:
    """Whether an earlier attempt called the provider and was cut off before its answer: its worker stopped
    mid-attempt, or no answer came after the request was sent (a timeout, a reset). One the provider answered (a
    refusal, "busy", a 5xx) did not post; nor did one that stopped before calling it, or whose request never left
    (a refused connection, a name that did not resolve: `may_have_arrived` false)."""
    if delivery.state.get("progress", {}).get("done"):
        return True  # a message of several requests (WeCom's mention after its markdown) got its first part in
    called = set(delivery.state.get(CALLED, ()))
    for entry in delivery.attempt_log:
        attempt = entry.get("attempt")
        if attempt not in called or attempt >= delivery.attempts:
            continue
        if entry.get("outcome") == "interrupted":
            return True
        answered = entry.get("http_status") is not None or entry.get("rate_limited")
        if entry.get("outcome") == Outcome.RETRYABLE.value and not answered and entry.get("may_have_arrived", True):
            return True
    return False


def _chat_has_incident(delivery: Delivery) -> bool:
    """Whether another message about the incident that asks for action went to the bot (posted, or may have)."""
    others = Delivery.objects.filter(
        incident_id=delivery.incident_id, bot_id=delivery.bot_id, event__in=TRIGGER_EVENTS
    ).exclude(pk=delivery.pk)
    return others.filter(
        Q(status__in=(Delivery.Status.SENT, Delivery.Status.DELIVERED)) | Q(state__has_key=MAY_HAVE_POSTED)
    ).exists()


def _timeline(delivery: Delivery, bot: Bot, message: str, why: str, now: datetime, **detail) -> None:
    ref = bot_ref(bot)
    timeline_add(
        incident=delivery.incident,
        kind=TimelineEntry.Kind.NOTIFIED,
        message=message % {"bot": ref.describe(), "kind": ref.kind, "why": why},
        now=now,
        detail={"delivery_id": delivery.pk, "bot_id": bot.pk, "no_longer_needed": why, **detail},
    )


def _people(delivery: Delivery) -> list[User]:
    ids = list(delivery.state.get("people", []))
    if not ids:
        return []  # a level that pages nobody directly: no query to build for nothing
    users = {user.pk: user for user in User.objects.filter(pk__in=ids)}
    return [users[pk] for pk in ids if pk in users]


def _wait_for(delivery: Delivery, until: datetime, *, weight: int, keep: datetime | None = None) -> Delivery:
    """Back to pending until `until`, holding that time (or the time it held, `keep`, for the bot's queue to move);
    being paced is not an attempt."""
    if keep is None:
        state = {**delivery.state, SLOT: until.isoformat(), SLOT_WEIGHT: weight}
    else:
        state = {**delivery.state, SLOT: keep.isoformat(), SLOT_WEIGHT: delivery.state.get(SLOT_WEIGHT, weight)}
    this_attempt(delivery).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=until,
        lease_until=None,
        attempts=F("attempts") - 1,
        state=state,
    )
    delivery.refresh_from_db()
    return delivery
