"""What became of a delivery: the answer to each attempt, and what providers report later (a call not answered,
an SMS undelivered, an email bounced). Each is appended to the delivery's attempt log; failures reach the
incident's timeline; a temporary failure is attempted again after a backoff, through the ticker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.base import Outcome, SendResult
from channels_app.models import Delivery
from channels_app.templating import Rendered
from oncall.models import Progress, TimelineEntry
from oncall.services.contacts import contact_flag
from oncall.services.devices import devices_pushed, devices_remove
from oncall.services.incidents import timeline_add

# Waits before attempts 2, 3, 4...; the last value repeats.
RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5))
TRIGGER_EVENTS = ("triggered", "refired", "escalated")
LOG_MAX = 50
# A provider's "too fast" answer (a bot's rate limit) does not count as a failed attempt for this long after the
# message was written: it is delayed, not dropped. Past it, such answers count like any temporary failure.
RATE_LIMIT_PATIENCE = timedelta(hours=1)
RATE_LIMIT_DEFAULT_WAIT = 30.0


def backoff(attempts: int) -> timedelta:
    return RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF)) - 1]


def no_longer_needed(delivery: Delivery) -> str:
    """Why a page need not be attempted again ("" when it still is): its incident closed, or someone acknowledged it
    after the page was written (a forced escalation pages an acknowledged incident, and that still counts)."""
    if delivery.event not in TRIGGER_EVENTS:
        return ""
    incident = delivery.incident
    if incident.progress == Progress.CLOSED:
        return _("The incident closed before it was sent.")
    if incident.progress == Progress.PROCESSING and incident.ack_time and incident.ack_time >= delivery.created_at:
        return _("The incident was acknowledged meanwhile.")
    return ""


def _log(delivery: Delivery, entry: Mapping[str, Any], now: datetime) -> list:
    return [*delivery.attempt_log, {"at": now.isoformat(), **entry}][-LOG_MAX:]


def _who(delivery: Delivery) -> str:
    if delivery.recipient is not None:
        return f"{delivery.recipient.display_name} ({delivery.address})"
    return delivery.address


def _label(delivery: Delivery) -> str:
    try:
        return str(registry.method(delivery.method).label)
    except registry.UnknownMethod:
        return delivery.method


def _flag(delivery: Delivery, reason: str) -> bool:
    contact = registry.method(delivery.method).contact if delivery.method in registry.METHODS else None
    if not (reason and contact and delivery.recipient_id):
        return False
    return contact_flag(person_id=delivery.recipient_id, contact=contact, address=delivery.address, reason=reason)


def _fail_timeline(delivery: Delivery, message: str, now: datetime, **detail) -> None:
    timeline_add(
        incident=delivery.incident,
        kind=TimelineEntry.Kind.NOTIFY_FAILED,
        message=message,
        now=now,
        detail={"delivery_id": delivery.pk, "method": delivery.method, **detail},
    )


def delivery_record_outcome(
    *, delivery: Delivery, result: SendResult, now: datetime, timeline_message: str = ""
) -> Delivery:
    """Store what the provider answered an attempt; schedule a retry or give up, tell the timeline about failures,
    flag a contact that cannot be reached, forget devices whose token is gone."""
    entry = {
        "attempt": delivery.attempts,
        "outcome": result.outcome.value,
        "error": result.error[:500],
        "provider_id": result.provider_id[:200],
        **dict(result.detail),
    }
    if result.rate_limited:
        entry["rate_limited"] = True
    fields: dict = {"lease_until": None, "error": result.error[:2000], "attempt_log": _log(delivery, entry, now)}
    if result.progress is not None:
        fields["state"] = {**delivery.state, "progress": dict(result.progress)}
    gave_up = False
    if result.outcome == Outcome.SENT:
        fields.update(status=Delivery.Status.SENT, sent_at=now, provider_id=result.provider_id[:200], error="")
    elif (
        result.outcome == Outcome.RETRYABLE and result.rate_limited and now - delivery.created_at < RATE_LIMIT_PATIENCE
    ):
        wait = timedelta(seconds=result.retry_after or RATE_LIMIT_DEFAULT_WAIT)
        fields.update(status=Delivery.Status.PENDING, next_attempt_at=now + wait, attempts=F("attempts") - 1)
    elif result.outcome == Outcome.RETRYABLE and delivery.attempts < settings.DELIVERY_MAX_ATTEMPTS:
        wait = backoff(delivery.attempts)
        if result.retry_after:
            wait = max(wait, timedelta(seconds=result.retry_after))
        fields.update(status=Delivery.Status.PENDING, next_attempt_at=now + wait)
    else:
        gave_up = True
        fields.update(status=Delivery.Status.FAILED)
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts
        ).update(**fields)
        flagged = updated and result.outcome == Outcome.PERMANENT and _flag(delivery, result.flag)
        if updated and gave_up:
            message = timeline_message or _("%(method)s to %(address)s failed after %(n)d attempt(s): %(error)s") % {
                "method": _label(delivery),
                "address": delivery.address,
                "n": delivery.attempts,
                "error": result.error[:300],
            }
            if flagged:
                message += " " + _("The contact is flagged and receives nothing until it is verified again.")
            _fail_timeline(delivery, message, now, error=result.error[:500], flagged=bool(flagged))
        if updated:
            devices_remove(device_ids=result.gone_devices)
            devices_pushed(device_ids=result.pushed_devices, now=now)
    delivery.refresh_from_db()
    early = delivery.state.get("early_report")
    if updated and result.outcome == Outcome.SENT and early:
        # The provider's callback came before this attempt was recorded; it applies now.
        delivery_report(delivery_id=delivery.pk, report=Report(**early), now=now)
        delivery.refresh_from_db()
    return delivery


@dataclass(frozen=True)
class Report:
    """What a provider reported after accepting a message.

    kind: "delivered" (it reached the person), "not_reached" (worth another attempt: a call not answered, an SMS
    the carrier could not deliver now) or "refused" (never will: a hard bounce, an undeliverable number).
    """

    kind: str
    reason: str = ""
    flag: str = ""  # for "refused": flag the contact with this reason
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "flag": self.flag, "detail": dict(self.detail)}


def delivery_report(*, delivery_id: int, report: Report, now: datetime) -> Delivery | None:
    """Apply what the provider reported about a delivery it had accepted.

    Reports about a delivery still being sent are kept and applied when the attempt is recorded; reports about a
    delivery already settled (failed, cancelled) are logged and change nothing.
    """
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("incident", "recipient")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        entry = {"callback": report.kind, "reason": report.reason[:300], **dict(report.detail)}
        delivery.attempt_log = _log(delivery, entry, now)
        fields = ["attempt_log", "updated_at"]
        status = delivery.status
        if status == Delivery.Status.SENDING:
            delivery.state = {**delivery.state, "early_report": report.as_json()}
            fields.append("state")
        elif report.kind == "delivered" and status == Delivery.Status.SENT:
            delivery.status, delivery.delivered_at = Delivery.Status.DELIVERED, now
            fields += ["status", "delivered_at"]
        elif report.kind == "not_reached" and status in (Delivery.Status.SENT, Delivery.Status.DELIVERED):
            fields += _not_reached(delivery, report, now)
        elif report.kind == "refused" and status in (Delivery.Status.SENT, Delivery.Status.DELIVERED):
            delivery.status, delivery.error = Delivery.Status.FAILED, report.reason[:2000]
            fields += ["status", "error"]
            flagged = _flag(delivery, report.flag)
            message = _("%(method)s to %(who)s failed: %(reason)s") % {
                "method": _label(delivery),
                "who": _who(delivery),
                "reason": report.reason[:300],
            }
            if flagged:
                message += " " + _("The contact is flagged and receives nothing until it is verified again.")
            _fail_timeline(delivery, message, now, error=report.reason[:500], flagged=flagged)
        if "early_report" in delivery.state and status != Delivery.Status.SENDING:
            delivery.state = {k: v for k, v in delivery.state.items() if k != "early_report"}
            fields.append("state")
        delivery.save(update_fields=list(dict.fromkeys(fields)))
    return delivery


def _not_reached(delivery: Delivery, report: Report, now: datetime) -> list[str]:
    """A message the provider could not get to the person: attempt again after the backoff, up to the limit."""
    label, who = _label(delivery), _who(delivery)
    needless = no_longer_needed(delivery)
    if needless:
        delivery.status, delivery.error = Delivery.Status.CANCELLED, f"{report.reason}; {needless}"[:2000]
        return ["status", "error"]
    if delivery.attempts < settings.DELIVERY_MAX_ATTEMPTS:
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = now + backoff(delivery.attempts)
        delivery.error = report.reason[:2000]
        local = delivery.next_attempt_at.astimezone(delivery.incident.start_time.tzinfo)
        _fail_timeline(
            delivery,
            _("%(method)s to %(who)s did not reach them (%(reason)s); trying again at %(at)s.")
            % {"method": label, "who": who, "reason": report.reason[:200], "at": local.strftime("%H:%M:%S %Z")},
            now,
            not_reached=True,
            retry_at=delivery.next_attempt_at.isoformat(),
        )
        return ["status", "next_attempt_at", "error"]
    delivery.status, delivery.error = Delivery.Status.FAILED, report.reason[:2000]
    _fail_timeline(
        delivery,
        _("%(method)s to %(who)s did not reach them after %(n)d attempt(s): %(reason)s")
        % {"method": label, "who": who, "n": delivery.attempts, "reason": report.reason[:200]},
        now,
        not_reached=True,
    )
    return ["status", "error"]


def template_failures_record(*, delivery: Delivery, rendered: dict[str, Rendered], now: datetime) -> None:
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
