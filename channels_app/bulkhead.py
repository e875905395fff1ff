"""The delivery bulkhead: a provider that hangs or answers slowly cannot take every worker.

Every attempt to a provider (a bot's host and port, Twilio's API, the email or app-push method) first takes a row
in ProviderCall under a lock on the provider's ProviderHealth row, so workers on any number of hosts agree on how
many attempts are in flight to it. How many may be:

- one (`DELIVERY_BULKHEAD_SLOW_LIMIT`) while the provider is slow: an attempt has been in flight longer than
  `DELIVERY_BULKHEAD_SLOW_SECONDS`, or its last attempt took that long (a timeout always does);
- one more for each attempt that finished quickly since then (so a provider never seen, or just recovered, is
  tried with one attempt first and then with more as its answers come back), up to
  `DELIVERY_BULKHEAD_MAX_IN_FLIGHT` (0: no cap).

An attempt over the limit goes back to pending for `DELIVERY_BULKHEAD_DEFER_SECONDS` (the ticker hands it out
again) and is not counted as an attempt: waiting for a slow provider never uses up a page's retries. Attempts to
other providers go on with the workers left free.

A provider that was answering fast and hangs all at once can still take the workers that picked up its messages
in the first `DELIVERY_BULKHEAD_SLOW_SECONDS`; they come back within the request deadline (HTTP_TOTAL_TIMEOUT),
after which the provider gets one worker. A cap below the number of worker processes
(`DELIVERY_BULKHEAD_MAX_IN_FLIGHT`) closes that window, at the price of fewer parallel sends to a healthy provider.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Least

from channels_app import registry
from channels_app.base import provider_key_of
from channels_app.bots.services import BOT_METHOD, bot_target
from channels_app.models import Delivery, ProviderCall, ProviderHealth

logger = logging.getLogger(__name__)

# Fast answers beyond this add nothing: the streak only needs to outgrow any sensible number of workers.
STREAK_CAP = 1000


def allowed_in_flight(
    *,
    fast_streak: int,
    oldest_started_at: datetime | None,
    now: datetime,
    slow_after: timedelta,
    slow_limit: int,
    max_in_flight: int = 0,
) -> int:
    """How many attempts may be in flight at once to a provider that answered `fast_streak` attempts quickly in a
    row, whose oldest attempt in flight started at `oldest_started_at` (None: none is)."""
    if oldest_started_at is not None and now - oldest_started_at >= slow_after:
        return slow_limit  # it is slow right now, whatever it was before
    allowed = slow_limit + fast_streak
    return min(allowed, max_in_flight) if max_in_flight else allowed


def provider_key(delivery: Delivery) -> str | None:
    """Which provider an attempt at `delivery` calls (attempts with the same key share a bulkhead); None when it
    calls none (a bot deleted meanwhile)."""
    if delivery.method == BOT_METHOD:
        if delivery.bot is None:
            return None
        return provider_key_of(bot_target(delivery.bot).url) or None
    try:
        return registry.method(delivery.method).provider_key()
    except registry.UnknownMethod:
        return None


class Admission:
    """An attempt admitted to its provider, as a context manager: leaving it frees the attempt's place and, when
    the attempt went to the provider (`observe`), remembers how quickly the provider answered."""

    def __init__(self, *, call_id: int | None, provider_id: int | None, attempts: int, now: datetime) -> None:
        self.call_id, self.provider_id, self.attempts, self.now = call_id, provider_id, attempts, now
        self.started = time.monotonic()
        self.answered = False

    def observe(self, delivery: Delivery) -> Delivery:
        """Note what became of the attempt and return `delivery`. One that went back to waiting without counting
        (a bot's pacing, a provider's "too fast") says nothing about how fast the provider answers."""
        waited = delivery.status == Delivery.Status.PENDING and delivery.attempts < self.attempts
        self.answered = not waited
        return delivery

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.call_id is None:
            return
        seconds = time.monotonic() - self.started
        if self.answered:
            health = ProviderHealth.objects.filter(pk=self.provider_id)
            if seconds >= settings.DELIVERY_BULKHEAD_SLOW_SECONDS:
                health.update(fast_streak=0, last_seconds=seconds, last_slow_at=self.now)
            else:
                health.update(fast_streak=Least(F("fast_streak") + 1, STREAK_CAP), last_seconds=seconds)
        # A row without dependants: one statement, not the collector's transaction around it.
        ProviderCall.objects.filter(pk=self.call_id)._raw_delete(ProviderCall.objects.db)


def provider_call_begin(*, delivery: Delivery, now: datetime) -> Admission | None:
    """Admit an attempt at `delivery` (claimed: attempts counted) to its provider, or None when the provider has as
    many attempts in flight as it may have now (the caller defers the delivery)."""
    key = provider_key(delivery)
    if key is None:
        return Admission(call_id=None, provider_id=None, attempts=delivery.attempts, now=now)
    key = key[:300]
    with transaction.atomic():
        health = ProviderHealth.objects.select_for_update().filter(key=key).first()
        if health is None:  # a provider never called before (the key is unique: a racing worker's row is taken)
            ProviderHealth.objects.get_or_create(key=key)
            health = ProviderHealth.objects.select_for_update().get(key=key)
        me = _holder()
        live: list[datetime] = []
        stale: list[int] = []
        for pk, started_at, lease_until, holder in ProviderCall.objects.filter(provider=health).values_list(
            "pk", "started_at", "lease_until", "holder"
        ):
            if lease_until <= now or _holder_gone(holder):
                stale.append(pk)
            elif holder != me:
                # This thread's own calls are over (it is here, not waiting for a provider): a delivery made while
                # recording another's outcome (an IM fallback, with tasks run inline) does not wait for itself.
                live.append(started_at)
        if stale:
            ProviderCall.objects.filter(pk__in=stale).delete()
        allowed = allowed_in_flight(
            fast_streak=health.fast_streak,
            oldest_started_at=min(live, default=None),
            now=now,
            slow_after=timedelta(seconds=settings.DELIVERY_BULKHEAD_SLOW_SECONDS),
            slow_limit=settings.DELIVERY_BULKHEAD_SLOW_LIMIT,
            max_in_flight=settings.DELIVERY_BULKHEAD_MAX_IN_FLIGHT,
        )
        if len(live) >= allowed:
            logger.info(
                "Delivery %s waits: %d attempt(s) in flight to %s, which may have %d now",
                delivery.pk,
                len(live),
                key,
                allowed,
            )
            return None
        call = ProviderCall.objects.create(
            provider=health,
            delivery=delivery,
            started_at=now,
            lease_until=now + timedelta(seconds=settings.DELIVERY_SEND_LEASE_SECONDS),
            holder=me,
        )
    return Admission(call_id=call.pk, provider_id=health.pk, attempts=delivery.attempts, now=now)


def delivery_defer(*, delivery: Delivery, now: datetime) -> Delivery:
    """Back to pending for a few seconds without counting the attempt: its provider is busy with slow attempts."""
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now + timedelta(seconds=settings.DELIVERY_BULKHEAD_DEFER_SECONDS),
        lease_until=None,
        attempts=F("attempts") - 1,
    )
    delivery.refresh_from_db()
    return delivery


def _holder() -> str:
    # Taken at each call, not at import: django-q2's worker processes are forked after the import.
    return f"{socket.gethostname()}/{os.getpid()}/{threading.get_ident()}"


def _holder_gone(holder: str) -> bool:
    """Whether the worker process holding a call is known to be gone (only knowable on this host)."""
    host, _sep, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
