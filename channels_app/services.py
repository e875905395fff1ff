"""Deliveries: written before sending, claimed by one worker at a time, retried with backoff, never doubled."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.base import SendResult
from channels_app.messages import message_context
from channels_app.models import Delivery
from channels_app.outcomes import delivery_record_outcome, no_longer_needed
from channels_app.preferences import person_preferences
from channels_app.quotas import quota_notice_send, quota_take
from channels_app.templating import Rendered, render_slots
from oncall.lib import claims, queue
from oncall.models import Incident, IncidentEvent, Progress, TimelineEntry, User
from oncall.services.incidents import timeline_add

logger = logging.getLogger(__name__)

SEND_TASK = "channels_app.tasks.delivery_send"


@dataclass(frozen=True)
class PlannedDelivery:
    recipient_key: str
    address: str
    method: str
    recipient_id: int | None = None


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


def deliveries_create(
    *,
    incident: Incident,
    run: int,
    level: int,
    round: int,
    event: str,
    planned: Sequence[PlannedDelivery],
    now: datetime,
    event_id: int | None = None,
    template_set_id: int | None = None,
) -> list[int]:
    """Write one pending delivery per planned message and hand them to the worker once the transaction commits.

    A delivery that already exists (same incident, run, level, round, recipient and method; or, for a
    notification caused by one incident event, same event, recipient and method) is left alone: the unique key
    turns a second writer into a no-op, never into a second page.
    """
    scope = f"event/{event_id}" if event_id is not None else f"{run}/{level}/{round}"
    rows = [
        Delivery(
            incident=incident,
            escalation_run=run,
            level=level,
            round=round,
            recipient_id=item.recipient_id,
            recipient_key=item.recipient_key,
            address=item.address,
            method=item.method,
            event=event,
            template_set_id=template_set_id,
            dedup_key=Delivery.make_dedup_key(
                incident_id=incident.pk, scope=scope, recipient_key=item.recipient_key, method=item.method
            ),
            status=Delivery.Status.PENDING,
            callback_code=secrets.token_urlsafe(24),
            next_attempt_at=now,
            # Leased to the enqueue below; if that never happens, the ticker hands it out when the lease ends.
            lease_until=now + timedelta(seconds=settings.TIMER_LEASE_SECONDS),
            created_at=now,
        )
        for item in planned
    ]
    Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    ids = list(
        Delivery.objects.filter(
            dedup_key__in=[row.dedup_key for row in rows], status=Delivery.Status.PENDING
        ).values_list("pk", flat=True)
    )
    for delivery_id in ids:
        queue.enqueue(SEND_TASK, delivery_id, group="delivery")
    return ids


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
    delivery = Delivery.objects.select_related("incident__channel", "recipient", "template_set").get(pk=delivery_id)
    incident = delivery.incident
    needless = no_longer_needed(delivery)
    if needless and (delivery.attempts > 1 or incident.progress == Progress.CLOSED):
        # A retry of a page someone has acknowledged (or any page of a closed incident) would only be noise.
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.CANCELLED, lease_until=None, error=needless
        )
        return delivery
    method = registry.method(delivery.method)
    if method.quota_setting and delivery.recipient is not None:
        limit = getattr(settings, method.quota_setting)
        if not quota_take(person=delivery.recipient, method=method.key, limit=limit, now=now):
            return _quota_reached(delivery=delivery, method=method, limit=limit, now=now)
    try:
        context = message_context(
            incident=incident,
            event=delivery.event,
            now=now,
            level=delivery.level,
            round=delivery.round,
            recipient=delivery.recipient,
            recipient_address=delivery.address,
            actor=_event_actor(delivery),
        )
        template_set = delivery.template_set
        rendered = render_slots(method.slots, bodies=template_set.bodies if template_set else None, context=context)
        _record_template_failures(delivery=delivery, rendered=rendered, now=now)
        message = {name: item.text for name, item in rendered.items()}
        if method.kept_slots:
            # Kept before the provider is called: its callbacks (the call's TwiML fetch) may come before it answers.
            delivery.state = {**delivery.state, "message": {name: message[name] for name in method.kept_slots}}
            Delivery.objects.filter(pk=delivery.pk).update(state=delivery.state)
        result = method.send(message=message, context=context, address=delivery.address, delivery=delivery)
    except Exception as exc:
        # A bug in a provider must not lose the page: record it and retry like any transient failure.
        logger.exception("Delivery %s: provider %s raised", delivery.pk, delivery.method)
        result = SendResult.retryable(f"unexpected error: {type(exc).__name__}: {exc}")
    return delivery_record_outcome(delivery=delivery, result=result, now=now)


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


def _event_actor(delivery: Delivery) -> User | None:
    """Who caused the incident event a delivery announces (a reassignment, for example), if anyone."""
    if delivery.incident_event_id is None:
        return None
    event = IncidentEvent.objects.select_related("actor").filter(pk=delivery.incident_event_id).first()
    return event.actor if event else None


def _record_template_failures(*, delivery: Delivery, rendered: dict[str, Rendered], now: datetime) -> None:
    """Note on the delivery and in the timeline, once per delivery, which slots fell back to the default."""
    failed = [item for item in rendered.values() if item.error]
    if not failed or delivery.template_error:
        return
    set_name = delivery.template_set.name if delivery.template_set else _("Default")
    error = "; ".join(f"{item.slot}: {item.error}" for item in failed)
    with transaction.atomic():
        updated = Delivery.objects.filter(pk=delivery.pk, template_error="").update(template_error=error[:2000])
        if updated:
            delivery.template_error = error[:2000]
            timeline_add(
                incident=delivery.incident,
                kind=TimelineEntry.Kind.NOTIFY_FAILED,
                message=_("Template set %(set)s failed for %(slots)s, so the default was sent: %(error)s")
                % {"set": set_name, "slots": ", ".join(item.slot for item in failed), "error": error[:400]},
                now=now,
                detail={
                    "delivery_id": delivery.pk,
                    "template_set_id": delivery.template_set_id,
                    "template_set": set_name,
                    "slots": {item.slot: item.error[:500] for item in failed},
                    "fallback": True,
                },
            )


def deliveries_enqueue_due(*, now: datetime, limit: int = 500) -> int:
    """Hand due deliveries to the worker: retries whose time has come, and any whose worker died mid-attempt."""
    # An attempt whose worker vanished (lease over, still "sending"): we cannot know whether the provider got it,
    # and a lost page is worse than a doubled one, so it is attempted again.
    Delivery.objects.filter(status=Delivery.Status.SENDING, lease_until__lt=now).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        lease_until=None,
        error=_("The previous attempt was interrupted."),
    )
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    ids = claims.claim_due(due, now=now, lease=timedelta(seconds=settings.TIMER_LEASE_SECONDS), limit=limit)
    for delivery_id in ids:
        queue.enqueue(SEND_TASK, delivery_id, group="delivery")
    return len(ids)
