"""Pacing messages to one bot within its provider's rate limits, so a burst of incidents is delayed, never lost.

Each message reserves the earliest time at which sending it keeps every limit of its kind ("20 in any 61
seconds", "5 in any second"), after the bot's last reservation (first come, first served) and after any pause a
provider asked for. Reservations are rows (BotSend) written under a lock on the bot's row, so workers on any
number of hosts agree; a message whose time is in the future waits as a pending delivery until then, holding its
time in its state (SLOT, and SLOT_WEIGHT: how many requests it reserved).

When the provider says "too fast" anyway (someone else posted to the robot), the bot is paused; the message it
refused and the messages whose time fell inside the pause are given their times again in the order they were
written (bot_queue_replan), so none of them goes to the back of the queue, and the times they gave up no longer
count against the limits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from channels_app.base import RateLimit
from channels_app.models import Bot, BotSend, Delivery

# Reservations older than the longest window no longer matter; they are deleted once this many have gathered
# (one statement every so many messages, not one per message).
STALE_KEPT = 50
# What a waiting delivery keeps in its state: its reserved time, and how many requests it reserved.
SLOT = "slot"
SLOT_WEIGHT = "slot_weight"


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


@dataclass(frozen=True)
class Waiting:
    """A message waiting for its turn: how many requests it takes, and the earliest time it may go (a retry's
    time; None: as soon as its turn comes)."""

    weight: int = 1
    not_before: datetime | None = None


def queue_slots(
    *,
    reserved: Sequence[datetime],
    limits: Sequence[RateLimit],
    now: datetime,
    paused_until: datetime | None = None,
    waiting: Sequence[Waiting],
) -> list[datetime]:
    """The times of the `waiting` messages, taken in the order given (the order they were written): each the
    earliest that keeps every limit with the `reserved` times (sorted: the messages that went out or are going
    out) and the times of the messages before it (see next_slot), so that none goes ahead of an older one."""
    reserved = list(reserved)
    slots = []
    for message in waiting:
        earliest = max(now, message.not_before) if message.not_before else now
        slot = next_slot(
            reserved=reserved, limits=limits, now=earliest, paused_until=paused_until, weight=message.weight
        )
        reserved.extend([slot] * max(message.weight, 1))
        slots.append(slot)
    return slots


def held_slot(state: Mapping) -> datetime | None:
    """The time a delivery holds for its bot (None: it holds none)."""
    return datetime.fromisoformat(state[SLOT]) if SLOT in state else None


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


def bot_queue_replan(
    *, bot_id: int, limits: Sequence[RateLimit], now: datetime, rejoining: int | None = None, weight: int = 1
) -> None:
    """Give the bot's waiting messages their times again, in the order they were written, within the limits and
    after the bot's pause: called when the provider said "too fast", so that the message it refused (`rejoining`:
    a pending delivery of `weight` requests, which holds no time and may not go before its retry's time) and the
    messages whose time fell inside the pause keep their place instead of joining the back of the queue.

    The times they held are given up, so they no longer count against the limits. Messages being sent keep
    theirs (they are in use); so do messages that hold a time without saying how many requests it was for.
    """
    horizon = timedelta(seconds=max((limit.seconds for limit in limits), default=0))
    with transaction.atomic():
        bot = Bot.objects.select_for_update().only("pk", "paused_until").get(pk=bot_id)
        # Locked too (bot first, as everywhere), so a worker cannot claim one while its time is being moved.
        waiting_rows = Q(state__has_key=SLOT) if rejoining is None else Q(state__has_key=SLOT) | Q(pk=rejoining)
        queue = []
        for delivery in (
            # skip_locked: a row another transaction holds (a worker claiming it, the admin deleting the bot, which
            # locks the deliveries before the bot) keeps its time; waiting for it would deadlock with the latter.
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(waiting_rows, bot_id=bot_id, status=Delivery.Status.PENDING)
            .order_by("created_at", "pk")
            .only("pk", "state", "attempts", "next_attempt_at", "created_at")
        ):
            if delivery.pk == rejoining:
                requests = weight
            elif SLOT_WEIGHT in delivery.state:
                requests = int(delivery.state[SLOT_WEIGHT])
            else:
                continue
            queue.append((delivery, requests))
        if not queue:
            return
        given_up = Counter()
        for delivery, requests in queue:
            held = held_slot(delivery.state)
            if held is not None:
                given_up[held] += requests
        freed = []
        for pk, at in BotSend.objects.filter(bot_id=bot_id, at__in=list(given_up)).values_list("pk", "at"):
            if given_up[at] > 0:
                given_up[at] -= 1
                freed.append(pk)
        BotSend.objects.filter(pk__in=freed).delete()
        reserved = list(
            BotSend.objects.filter(bot_id=bot_id, at__gt=now - horizon).order_by("at").values_list("at", flat=True)
        )
        # A message waiting for its retry's backoff past the pause holds no time: it reserves one when it is due,
        # so the messages written after it go when the pause ends instead of queueing behind its backoff.
        opens = max(now, bot.paused_until) if bot.paused_until else now
        backing_off = [
            (delivery, requests)
            for delivery, requests in queue
            if delivery.next_attempt_at > opens
            and (held_slot(delivery.state) is None or delivery.next_attempt_at > held_slot(delivery.state))
        ]
        for delivery, _requests in backing_off:
            state = {key: value for key, value in delivery.state.items() if key not in (SLOT, SLOT_WEIGHT)}
            Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING, attempts=delivery.attempts).update(
                lease_until=None, state=state
            )
        queue = [entry for entry in queue if entry not in backing_off]
        waiting = []
        for delivery, requests in queue:
            held = held_slot(delivery.state)
            # A message that waits for more than its turn (its retry's time) does not go before then.
            later = held is None or delivery.next_attempt_at > held
            waiting.append(Waiting(weight=requests, not_before=delivery.next_attempt_at if later else None))
        slots = queue_slots(reserved=reserved, limits=limits, now=now, paused_until=bot.paused_until, waiting=waiting)
        if limits:
            BotSend.objects.bulk_create(
                [
                    BotSend(bot_id=bot_id, at=slot)
                    for (_delivery, requests), slot in zip(queue, slots, strict=True)
                    for _ in range(max(requests, 1))
                ]
            )
        for (delivery, requests), slot in zip(queue, slots, strict=True):
            Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING, attempts=delivery.attempts).update(
                next_attempt_at=slot,
                lease_until=None,
                state={**delivery.state, SLOT: slot.isoformat(), SLOT_WEIGHT: requests},
            )


def bot_pause(*, bot_id: int, until: datetime) -> None:
    """The provider said "too fast": hold every message to the bot until `until`."""
    Bot.objects.filter(pk=bot_id).filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until)).update(
        paused_until=until
    )
