"""Pacing messages to one bot within its provider's rate limits, so a burst of incidents is delayed, never lost.

Each message reserves the earliest time at which sending it keeps every limit of its kind ("20 in any 61
seconds", "5 in any second"), after the bot's last reservation (first come, first served) and after any pause a
provider asked for. Reservations are rows (BotSend) written under a lock on the bot's row, so workers on any
number of hosts agree; a message whose time is in the future waits as a pending delivery until then.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from channels_app.base import RateLimit
from channels_app.models import Bot, BotSend

# Reservations older than the longest window no longer matter; they are deleted once this many have gathered
# (one statement every so many messages, not one per message).
STALE_KEPT = 50


def next_slot(
    *,
    reserved: Sequence[datetime],
    limits: Sequence[RateLimit],
    now: datetime,
    paused_until: datetime | None = None,
    weight: int = 1,
) -> datetime:
    """The earliest time, not before `now`, the last reservation or `paused_until`, at which `weight` more
    requests keep every limit, given the times already `reserved` (sorted, oldest first).

    Every reservation is at or before the candidate time, so moving the candidate later only empties windows:
    one pass over the limits finds it.
    """
    slot = max([now, *reserved[-1:], *([paused_until] if paused_until else [])])
    for limit in limits:
        window = timedelta(seconds=limit.seconds)
        inside = [at for at in reserved if at > slot - window]
        excess = len(inside) + min(weight, limit.count) - limit.count
        if excess > 0:
            slot = max(slot, inside[excess - 1] + window)
    return slot


def bot_slot_reserve(
    *, bot_id: int, limits: Sequence[RateLimit], weight: int, now: datetime, only_now: bool = False
) -> datetime:
    """Reserve the next time the bot may be sent `weight` requests (see next_slot) and return it. With
    `only_now`, nothing is reserved unless that time is `now` (the time is still returned)."""
    horizon = timedelta(seconds=max((limit.seconds for limit in limits), default=0))
    with transaction.atomic():
        bot = Bot.objects.select_for_update().only("pk", "paused_until").get(pk=bot_id)
        if not limits:
            return max(now, bot.paused_until or now)
        cutoff = now - horizon
        kept = list(BotSend.objects.filter(bot_id=bot_id).order_by("at").values_list("at", flat=True))
        reserved = [at for at in kept if at > cutoff]
        slot = next_slot(reserved=reserved, limits=limits, now=now, paused_until=bot.paused_until, weight=weight)
        if only_now and slot > now:
            return slot
        BotSend.objects.bulk_create([BotSend(bot_id=bot_id, at=slot) for _ in range(max(weight, 1))])
        if len(kept) - len(reserved) >= STALE_KEPT:
            BotSend.objects.filter(bot_id=bot_id, at__lte=cutoff).delete()
    return slot


def bot_pause(*, bot_id: int, until: datetime) -> None:
    """The provider said "too fast": hold every message to the bot until `until`."""
    Bot.objects.filter(pk=bot_id).filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until)).update(
        paused_until=until
    )
