"""Deliveries: written before sending, claimed by one worker at a time, retried with backoff, never doubled."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from channels_app import bulkhead, registry
from channels_app.base import SendResult
from channels_app.bots.fallback import bot_fallback_send
from channels_app.bots.sending import BOT_METHOD, bot_delivery_send
from channels_app.bots.services import kind_label
from channels_app.deliveries import SEND_TASK, PlannedDelivery, attempt_still_ours, deliveries_create
from channels_app.messages import delivery_actor, message_context
from channels_app.models import Delivery
from channels_app.outcomes import (
    deliveries_settle_interrupted,
    delivery_record_outcome,
    no_longer_needed,
    template_failures_record,
)
from channels_app.preferences import person_preferences
from channels_app.quotas import quota_notice_send, quota_take
from channels_app.templating import render_slots
from oncall.lib import claims, http, queue
from oncall.lib.logs import log_context
from oncall.models import User

logger = logging.getLogger(__name__)

# An attempt's requests must end by this share of its lease (DELIVERY_SEND_LEASE_SECONDS), and this long before its
# worker task would be killed (Q_TIMEOUT): the rest is for recording the outcome.
ATTEMPT_SHARE_OF_LEASE = 0.8
TASK_KILL_MARGIN_SECONDS = 3.0
PERSON_KEY = "person:"

__all__ = [
    "PlannedDelivery",
    "deliveries_create",
    "deliveries_enqueue_due",
    "delivery_send",
    "method_address",
    "method_unreachable_reason",
    "person_methods",
]


def person_methods(*, person: User, severity: str) -> list[str]:
    """How `person` wants to be reached about an incident of `severity` when notified directly (their personal
    preferences, or the defaults for a severity they never set)."""
    return person_preferences(person=person).get(severity, [])


def method_address(*, person: User, method: str) -> str | None:
    """Where `person` is reached by `method`, or None when they cannot be (no verified contact, a flagged one, no
    linked device); `method_unreachable_reason` says which."""
    return registry.method(method).address_for(person)


def method_unreachable_reason(*, person: User, method: str) -> str:
    """Why `person` cannot be reached by `method`, in the words the timeline uses."""
    return registry.method(method).unreachable_reason(person)


def delivery_send(*, delivery_id: int, now: datetime) -> Delivery | None:
    """Make one attempt at a delivery, if it is due and no other worker holds it; record the outcome."""
    lease = timedelta(seconds=settings.DELIVERY_SEND_LEASE_SECONDS)
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(
        status=Delivery.Status.SENDING,
        lease_until=now + lease,
        attempts=F("attempts") + 1,
        last_attempt_at=now,
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("incident__channel", "recipient", "template_set", "bot").get(
        pk=delivery_id
    )
    with log_context(incident_id=delivery.incident_id):
        return _delivery_admitted(delivery=delivery, lease=lease, now=now)


def _delivery_admitted(*, delivery: Delivery, lease: timedelta, now: datetime) -> Delivery | None:
    """The claimed attempt, if the bulkhead lets it call its provider now, within its deadline."""
    # The bulkhead: a provider that hangs gets only its share of the workers; the rest waits without spending
    # attempts, and other providers' messages go on.
    admission = bulkhead.provider_call_begin(delivery=delivery, now=now)
    if admission is None:
        return bulkhead.delivery_defer(delivery=delivery, now=now)
    # The attempt's requests end well before its lease does, and before the worker would kill the task, so its
    # outcome is recorded: an attempt still sending when its lease ran out (or its task was killed) would be taken
    # for a dead worker's and sent again alongside, in full.
    seconds = lease.total_seconds() * ATTEMPT_SHARE_OF_LEASE
    task_left = queue.task_seconds_left()
    if task_left is not None:
        seconds = min(seconds, task_left - TASK_KILL_MARGIN_SECONDS)
    with admission, http.attempt_deadline(now + timedelta(seconds=seconds)):
        return admission.observe(_delivery_attempt(delivery=delivery, now=now))


def _delivery_attempt(*, delivery: Delivery, now: datetime) -> Delivery:
    if delivery.method == BOT_METHOD:
        return bot_delivery_send(delivery=delivery, now=now)
    incident = delivery.incident
    needless = no_longer_needed(delivery)
    if needless:
        # A page that is no longer needed wakes someone for nothing, whether it is a retry or a first attempt that
        # waited (a queue backlog, the bulkhead, a lost hand-over the ticker picked up).
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.CANCELLED, lease_until=None, error=needless
        )
        return delivery
    method = registry.method(delivery.method)
    if delivery.recipient_key.startswith(PERSON_KEY):
        unreachable = _recipient_unreachable(delivery=delivery, method=method)
        if unreachable:
            return _unreachable(delivery=delivery, method=method, reason=unreachable, now=now)
    try:
        context = message_context(
            incident=incident,
            event=delivery.event,
            now=now,
            level=delivery.level,
            round=delivery.round,
            recipient=delivery.recipient,
            recipient_address=delivery.address,
            actor=delivery_actor(delivery),
            fallback=delivery.state.get("fallback_for"),
        )
        template_set = delivery.template_set
        rendered = render_slots(method.slots, bodies=template_set.bodies if template_set else None, context=context)
        template_failures_record(delivery=delivery, rendered=rendered, now=now)
        message = {name: item.text for name, item in rendered.items()}
        kept = {}
        if method.kept_slots:
            # Kept before the provider is called: its callbacks (the call's TwiML fetch) may come before it answers.
            delivery.state = {**delivery.state, "message": {name: message[name] for name in method.kept_slots}}
            kept = {"state": delivery.state}
        if not attempt_still_ours(delivery, **kept):
            # The lease ran out while this worker was held up after its claim (a lock wait, a slow render): the
            # ticker has handed the delivery to another worker, whose attempt is the one that counts.
            logger.warning(
                "Delivery %s: the attempt is no longer this worker's (its lease ran out); not sent", delivery.pk
            )
            delivery.refresh_from_db()
            return delivery
        if method.quota_setting and delivery.recipient is not None:
            # Taken by the attempt that calls the provider, and only by it.
            limit = getattr(settings, method.quota_setting)
            if not quota_take(person=delivery.recipient, method=method.key, limit=limit, now=now):
                return _quota_reached(delivery=delivery, method=method, limit=limit, now=now)
        left = http.attempt_seconds_left()
        if left is not None and left <= 0:
            # oncall.lib.http makes no request past the attempt's deadline, but not every provider goes through it
            # (email does not): none is called once the attempt's time is up, and the attempt is recorded as one
            # whose request had no time left (retried after the backoff, if it is still this worker's).
            result = SendResult.retryable(
                _("%(method)s was not sent: the attempt had run out of time") % {"method": method.label}
            )
        else:
            result = method.send(message=message, context=context, address=delivery.address, delivery=delivery)
    except Exception as exc:
        # A bug in a provider must not lose the page: record it and retry like any transient failure.
        logger.exception("Delivery %s: provider %s raised", delivery.pk, delivery.method)
        result = SendResult.retryable(f"unexpected error: {type(exc).__name__}: {exc}")
    return delivery_record_outcome(delivery=delivery, result=result, now=now)


def _recipient_unreachable(*, delivery: Delivery, method) -> str:
    """Why the page's person cannot be reached by its method now ("" when they can). The person's current reachable
    address is followed: a number or address they replaced (and verified) since the page was written is where this
    attempt goes, and the delivery keeps it (the same delivery, so still one page per person per method)."""
    person = delivery.recipient
    if person is None:
        return _("the person was deleted")
    if not person.is_active:
        return _("person is no longer active")
    address = method.address_for(person)
    if not address:
        return method.unreachable_reason(person)
    if address != delivery.address:
        logger.info("Delivery %s: the person's %s address changed since it was written", delivery.pk, method.key)
        delivery.address = address
        Delivery.objects.filter(pk=delivery.pk).update(address=address)
    return ""


def _unreachable(*, delivery: Delivery, method, reason: str, now: datetime) -> Delivery:
    """The page's person was deactivated, or their contact for the method flagged or removed, since it was written:
    it fails without being sent, and the timeline says why (as a level's skip does)."""
    message = _("%(method)s to %(who)s not sent: %(reason)s.") % {
        "method": method.label,
        "who": delivery.recipient.display_name if delivery.recipient else delivery.address,
        "reason": reason,
    }
    return delivery_record_outcome(
        delivery=delivery,
        result=SendResult.permanent(reason, detail={"unreachable": True}),
        now=now,
        timeline_message=message,
    )


def _quota_reached(*, delivery: Delivery, method, limit: int, now: datetime) -> Delivery:
    """The recipient's daily quota for the method is used up: the page is not sent, the timeline says so and the
    person is told by email (once a day)."""
    person = delivery.recipient
    error = _("quota reached: %(n)d %(method)s today for this person") % {"n": limit, "method": method.label}
    message = _("%(method)s to %(who)s not sent: quota reached (%(n)d per day, %(setting)s).") % {
        "method": method.label,
        "who": person.display_name,
        "n": limit,
        "setting": method.quota_setting,
    }
    delivery = delivery_record_outcome(
        delivery=delivery,
        result=SendResult.permanent(error, detail={"quota": True}),
        now=now,
        timeline_message=message,
    )
    quota_notice_send(
        person=person,
        method=method.key,
        method_label=str(method.label),
        limit=limit,
        setting=method.quota_setting,
        now=now,
    )
    return delivery


def deliveries_enqueue_due(*, now: datetime, limit: int = 500) -> int:
    """Hand due deliveries to the worker: retries whose time has come, and any whose worker died mid-attempt
    (settled first: recorded as sent when the provider's callback shows it had the message, else sent again, or
    failed when that was its last allowed attempt)."""
    for delivery in deliveries_settle_interrupted(now=now, limit=limit):
        bot = delivery.bot if delivery.method == BOT_METHOD else None
        if bot is not None and bot.enabled:
            # A bot message given up on is a failed one like any other: its people get the bot's fallback reminder.
            bot_fallback_send(delivery=delivery, bot=bot, kind_label=kind_label(bot.kind), now=now)
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    # One transaction: with the database broker the tasks commit with the claims, so a ticker that dies here
    # leaves neither a claim without its task nor a task without its claim.
    with transaction.atomic():
        # Oldest due first: a bot's messages due in the same second go out in the order they were written.
        lease = timedelta(seconds=settings.TIMER_LEASE_SECONDS)
        ids = claims.claim_due(due, now=now, lease=lease, limit=limit, order=("next_attempt_at", "pk"))
        for delivery_id in ids:
            queue.enqueue(SEND_TASK, delivery_id, group="delivery")
    return len(ids)
