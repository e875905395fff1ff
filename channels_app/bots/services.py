"""Bots: which of a level's bots post (and why the others do not), the deliveries they get, who a message
mentions, what a bot's answers leave on it, and the admin's "send test message"."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from channels_app import registry
from channels_app.base import BotMessage, BotTarget, Mention, Outcome, SendResult
from channels_app.bots.filters import BotFilter, bot_skip_reason
from channels_app.bots.pacing import bot_pause, bot_slot_reserve
from channels_app.deliveries import PlannedDelivery, deliveries_create
from channels_app.messages import person_card
from channels_app.models import Bot, Delivery, MappingEntry
from channels_app.templating import build_context, render_slot
from oncall.models import Incident, User

BOT_METHOD = "bot"
# Kept on a message cancelled as no longer needed when an earlier attempt may have posted it: the chat may have the
# incident, so its later notices still go to the bot.
MAY_HAVE_POSTED = "may_have_posted"
REDACTED = "••••"


@dataclass(frozen=True)
class BotRef:
    id: int
    name: str
    kind: str  # the kind's label

    def describe(self) -> str:
        if not self.kind:
            return self.name
        return _("%(kind)s bot %(name)s") % {"kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class BotPlan:
    """What a step did with its bots: the ones that post, and the ones that do not with the reason."""

    posting: list[BotRef] = field(default_factory=list)
    skipped: list[tuple[BotRef, str]] = field(default_factory=list)


def bot_ref(bot: Bot) -> BotRef:
    return BotRef(bot.pk, bot.name, str(kind_label(bot.kind)))


def kind_label(kind: str) -> str:
    try:
        return str(registry.bot_kind(kind).label)
    except registry.UnknownBotKind:
        return kind


def bot_target(bot: Bot) -> BotTarget:
    provider = registry.bot_kind(bot.kind)
    return BotTarget(
        id=bot.pk,
        name=bot.name,
        url=bot.url or provider.default_url,
        secret=bot.secret,
        chat_ids=tuple(str(chat) for chat in bot.chat_ids),
        message_format=bot.message_format,
        at_all=bot.at_all,
    )


def bot_deliveries_create(
    *,
    incident: Incident,
    bot_ids: Sequence[int],
    event: str,
    people_ids: Sequence[int],
    now: datetime,
    run: int,
    level: int,
    round: int,
    event_id: int | None = None,
    template_set_id: int | None = None,
) -> BotPlan:
    """Write one delivery per bot that passes its filters (enabled, severity, event type) for a message about
    `incident` announcing `event`; `people_ids` are who it is about (mentioned, and reminded should it fail)."""
    bots = {bot.pk: bot for bot in Bot.objects.filter(pk__in=bot_ids)}
    plan = BotPlan()
    planned = []
    for bot_id in dict.fromkeys(bot_ids):
        bot = bots.get(bot_id)
        if bot is None:
            plan.skipped.append((BotRef(bot_id, _("bot #%(id)s") % {"id": bot_id}, ""), _("the bot was deleted")))
            continue
        rules = BotFilter.of(enabled=bot.enabled, severities=bot.severities, events=bot.event_types)
        reason = bot_skip_reason(rules, severity=incident.severity, event=event)
        if reason:
            plan.skipped.append((bot_ref(bot), reason))
            continue
        plan.posting.append(bot_ref(bot))
        planned.append(
            PlannedDelivery(
                recipient_key=f"bot:{bot.pk}",
                address=bot.name,
                method=BOT_METHOD,
                bot_id=bot.pk,
                state={"people": list(dict.fromkeys(people_ids))},
            )
        )
    deliveries_create(
        incident=incident,
        run=run,
        level=level,
        round=round,
        event=event,
        planned=planned,
        now=now,
        event_id=event_id,
        template_set_id=template_set_id,
    )
    return plan


def bots_that_posted(*, incident: Incident, bot_ids: Sequence[int]) -> list[int]:
    """Those of `bot_ids` that posted (or are about to post, or may have posted) about `incident`, in the order
    given."""
    posted = set(
        Delivery.objects.filter(incident=incident, bot_id__in=bot_ids)
        .exclude(status=Delivery.Status.FAILED)
        .exclude(Q(status=Delivery.Status.CANCELLED) & ~Q(state__has_key=MAY_HAVE_POSTED))
        .values_list("bot_id", flat=True)
    )
    return [bot_id for bot_id in dict.fromkeys(bot_ids) if bot_id in posted]


def bot_mentions(*, bot: Bot, people: Sequence[User]) -> tuple[Mention, ...]:
    """Who a message to `bot` @mentions: the active `people`, with their verified phone and their user id in the
    bot's mapping table (by email). Nobody when the bot's @mentions are off."""
    if not bot.mentions:
        return ()
    active = [person for person in people if person.is_active]
    im_ids: dict[str, str] = {}
    if bot.mapping_table_id:
        emails = {person.email.lower() for person in active if person.email}
        entries = (
            MappingEntry.objects.filter(table_id=bot.mapping_table_id)
            .annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails)
            .values_list("email_lower", "im_id")
        )
        im_ids = dict(entries)
    mentions = []
    for person in active:
        card = person_card(person)
        mentions.append(
            Mention(
                person_id=person.pk,
                name=card["name"],
                email=card["email"],
                phone=card["phone"],
                im_id=im_ids.get(person.email.lower(), "") if person.email else "",
            )
        )
    return tuple(mentions)


def message_event_id(delivery: Delivery) -> str:
    """A stable id for one message (the same on every attempt), 24 hex digits like Flashduty's event ids."""
    return hashlib.sha256(delivery.dedup_key.encode()).hexdigest()[:24]


# -- what the answers leave on the bot ---------------------------------------------------------------------------


def bot_secrets(bot: Bot) -> list[str]:
    """Every part of the bot's settings that must never be shown or logged: its secret and the tokens in its URL
    (query values and long path segments)."""
    found = [bot.secret] if bot.secret else []
    parts = urlsplit(bot.url or "")
    found += [value for _key, value in parse_qsl(parts.query) if len(value) >= 6]
    found += [segment for segment in parts.path.split("/") if len(segment) >= 16]
    return sorted({item for item in found if item}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact_result(result: SendResult, secrets: Sequence[str]) -> SendResult:
    """The result with every secret replaced, in its error and in the provider's answer kept on the delivery."""
    if not secrets:
        return result
    detail = {key: redact(value, secrets) if isinstance(value, str) else value for key, value in result.detail.items()}
    return replace(result, error=redact(result.error, secrets), detail=detail)


def masked_url(url: str) -> str:
    """A webhook URL as the admin shows it: scheme, host and the last four characters."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…{url[-4:]}"


def bot_record_answer(*, bot: Bot, result: SendResult, now: datetime) -> None:
    """Keep the bot's last success or last error; apply what the provider told us to change (a Telegram group
    that moved); hold the bot when the provider said "too fast"."""
    changes_chats = bool(result.bot_changes and result.bot_changes.get("chat_ids") is not None)
    if result.outcome == Outcome.SENT and not changes_chats and not result.rate_limited:
        # The common case, on every message: one statement, no lock.
        Bot.objects.filter(pk=bot.pk).update(last_success_at=now, updated_at=timezone.now())
        return
    with transaction.atomic():
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        fields = ["updated_at"]
        if result.outcome == Outcome.SENT:
            locked.last_success_at = now
            fields.append("last_success_at")
        else:
            locked.last_error, locked.last_error_at = result.error[:2000], now
            fields += ["last_error", "last_error_at"]
        chats = result.bot_changes.get("chat_ids") if result.bot_changes else None
        if chats is not None:
            # Only the chats this message moved: another change made meanwhile is kept.
            moved = dict(zip(bot.chat_ids, chats, strict=False))
            locked.chat_ids = [moved.get(chat, chat) for chat in locked.chat_ids]
            bot.chat_ids = locked.chat_ids
            fields.append("chat_ids")
        locked.save(update_fields=fields)
    if result.rate_limited and result.retry_after:
        bot_pause(bot_id=bot.pk, until=now + timedelta(seconds=result.retry_after))


# -- the admin's test message ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestAnswer:
    """What a test message came to, as the admin shows it (secrets removed)."""

    bot: str
    outcome: str
    error: str
    http_status: int | None
    response: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SENT


def bot_test_context(*, bot: Bot, person: User | None, now: datetime) -> dict[str, Any]:
    """A made-up incident that says it is a test, about `person` (mentioned, when the bot mentions people)."""
    url = settings.PUBLIC_URL + reverse("admin:channels_app_bot_change", args=[bot.pk])
    people = [person_card(person)] if person is not None else []
    incident = {
        "id": 0,
        "number": 0,
        "title": _("Test message from the on-call platform: no action needed"),
        "description": _("An admin sent this from the bot's page to check that messages arrive."),
        "severity": "Info",
        "status": "Info",
        "progress": "Triggered",
        "channel": _("Test"),
        "labels": {},
        "start_time": now,
        "last_time": now,
    }
    return build_context(
        incident=incident,
        alerts=[],
        alert_count=0,
        active_alert_count=0,
        responders=[{**card, "assigned_at": now, "acknowledged_at": None} for card in people],
        event="triggered",
        now=now,
        detail_url=url,
        ack_url=url,
        time_zone=settings.TIME_ZONE,
        event_id=f"test-{uuid.uuid4().hex[:19]}",
        event_time=now,
        people=people,
    )


def bot_test_send(*, bot: Bot, person: User | None, now: datetime) -> TestAnswer:
    """Send the bot a test message now (respecting its pacing) and return the provider's answer, redacted.

    The answer is kept as the bot's last success or error, like any message's.
    """
    provider = registry.bot_kind(bot.kind)
    target = bot_target(bot)
    mentions = bot_mentions(bot=bot, people=[person] if person is not None else [])
    secrets = bot_secrets(bot)
    slot = bot_slot_reserve(
        bot_id=bot.pk,
        limits=provider.rate_limits,
        weight=provider.requests_for(target, mentions),
        now=now,
        only_now=True,
    )
    if slot > now:
        wait = max(1, math.ceil((slot - now).total_seconds()))
        return TestAnswer(
            bot.name,
            Outcome.RETRYABLE,
            ngettext(
                "The bot is at its rate limit; try again in %(n)d second.",
                "The bot is at its rate limit; try again in %(n)d seconds.",
                wait,
            )
            % {"n": wait},
            None,
            "",
        )
    context = bot_test_context(bot=bot, person=person, now=now)
    text = render_slot(provider.slot, bodies=None, context=context).text
    try:
        result = provider.send(bot=target, message=BotMessage(text, context, mentions), now=now)
    except Exception as exc:  # a provider bug shows as an error, not as a server error page
        result = SendResult.permanent(f"unexpected error: {type(exc).__name__}: {exc}")
    result = redact_result(result, secrets)
    bot_record_answer(bot=bot, result=result, now=now)
    return TestAnswer(
        bot=bot.name,
        outcome=result.outcome,
        error=result.error,
        http_status=result.detail.get("http_status"),
        response=str(result.detail.get("response", "")),
        detail=dict(result.detail),
    )
