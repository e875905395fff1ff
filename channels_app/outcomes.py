"""What became of a delivery: the answer to each attempt, and what providers report later (a call not answered,
an SMS undelivered, an email bounced). Each is appended to the delivery's attempt log; failures reach the
incident's timeline; a temporary failure is attempted again after a backoff, through the ticker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.base import Outcome, SendResult
from channels_app.models import Delivery
from channels_app.templating import Rendered
from oncall.models import Incident, IncidentEvent, Progress, Responder, TimelineEntry
from oncall.services.contacts import contact_flag
from oncall.services.devices import devices_pushed, devices_remove
from oncall.services.incidents import timeline_add

logger = logging.getLogger(__name__)

# Waits before attempts 2, 3, 4...; the last value repeats.
RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5))
# A level's messages: its pages, its bots' posts and their IM fallback reminders.
TRIGGER_EVENTS = ("triggered", "refired", "escalated")
# Every page to a person about an incident that asks them to act: a level's, and a direct one (assigned when the
# incident was created, reassigned, added as a responder).
PAGE_EVENTS = (*TRIGGER_EVENTS, "assigned")
LOG_MAX = 50
# A provider's "too fast" answer (a bot's rate limit) does not count as a failed attempt for this long after the
# message was written: it is delayed, not dropped. Past it, such answers count like any temporary failure.
RATE_LIMIT_PATIENCE = timedelta(hours=1)
RATE_LIMIT_DEFAULT_WAIT = 30.0
# What a delivery keeps of the provider's callbacks about the attempt in flight: a final report to apply once the
# attempt is recorded, and the proof that the provider has the message (which settles an interrupted attempt).
PROVIDER_PROOFS = ("early_report", "provider_seen")


def backoff(attempts: int) -> timedelta:
    return RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF)) - 1]


def no_longer_needed(delivery: Delivery) -> str:
    """Why a page need not be attempted (again) ("" when it still is).

    Its incident closed; or someone acknowledged it after the page was written (the latest acknowledgement counts:
    after an unacknowledge, a wake or a manual escalation the incident is paged anew, and acknowledging it again
    stops those pages too; a forced escalation pages an acknowledged incident, and that page still counts); or
    all of its alerts recovered after the page was written, and none fires again (a page a person asked for later,
    reopening or escalating a recovered incident, still counts); or
    the escalation run that wrote it was superseded (restarted, or escalated by hand: the new run pages anew); or
    the incident was reassigned since (the people it names are paged anew, the others no longer need to be); or,
    for a direct page, a newer page about the incident went to its person by its method since (it replaces this one).
    """
    if delivery.event not in PAGE_EVENTS:
        return ""
    incident = delivery.incident
    if incident.progress == Progress.CLOSED:
        return _("The incident closed before it was sent.")
    if incident.progress == Progress.PROCESSING:
        acknowledged = _last_acknowledged(incident)
        if acknowledged is not None and acknowledged >= delivery.created_at:
            return _("The incident was acknowledged meanwhile.")
    if _recovered_since(delivery):
        return _("All of the incident's alerts recovered meanwhile.")
    if delivery.event in TRIGGER_EVENTS and delivery.escalation_run and _run_superseded(delivery):
        return _("The escalation started again since; its new run notifies anew.")
    if _reassigned_since(delivery):
        return _("The incident was reassigned since; the people it names are notified anew.")
    if delivery.event == "assigned":
        if _responders_paged_again_since(delivery):
            return _("The incident was triggered again since; its responders are notified anew.")
        newer = _newer_page_to_recipient(delivery)
        if newer is not None:
            return _(
                "A newer page about the incident went to this person since (delivery #%(id)s); it replaces this one."
            ) % {"id": newer}
    return ""


def _last_acknowledged(incident) -> datetime | None:
    """When the incident was last acknowledged, by a person or by the monitor (`ack_time` is the first time)."""
    return (
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.ACKNOWLEDGED)
        .order_by("-created_at", "-pk")
        .values_list("created_at", flat=True)
        .first()
    )


def _recovered_since(delivery: Delivery) -> bool:
    """Whether every alert of the incident has recovered (none fired again since, nobody reopened it), and the
    platform recorded that no earlier than the page was written: a page a timer wrote while the recovery waited in
    the ingest queue gives way to it too."""
    recorded = delivery.incident.recovery_recorded_at()
    return recorded is not None and recorded >= delivery.created_at


def _run_superseded(delivery: Delivery) -> bool:
    """Whether the incident's escalation has started a later run than the one that wrote the delivery. Read
    through the incident's `escalation` relation (the escalation app's state), not imported from that app."""
    return Incident.objects.filter(pk=delivery.incident_id, escalation__run__gt=delivery.escalation_run).exists()


def _responders_paged_again_since(delivery: Delivery) -> bool:
    """Whether the incident, in people's hands, was triggered again after a direct page was written: it then
    pages all its responders anew (escalation's "direct" state), and the earlier page would be a second one.
    Unacknowledged or woken while all its alerts have recovered, it pages nobody: a page written since the recovery
    (a person reassigned it then) still counts."""
    again = Q(kind=IncidentEvent.Kind.REOPENED)
    if not delivery.incident.all_alerts_recovered:
        again |= Q(kind__in=(IncidentEvent.Kind.UNACKNOWLEDGED, IncidentEvent.Kind.WOKEN))
    return IncidentEvent.objects.filter(
        again,
        incident_id=delivery.incident_id,
        incident__escalation__status="direct",
        created_at__gt=delivery.created_at,
    ).exists()


def _newer_page_to_recipient(delivery: Delivery) -> int | None:
    """A page about the incident written for the direct page's person by its method after it, and not given up
    on (the id of the first): an escalation run started again (unacknowledged, woken, reopened, escalated by hand)
    whose level names them now, whatever the escalation's state. Retrying the earlier page would ring beside it.
    A direct page that nothing replaces is still made, also when the newer page is by another method (an email
    does not ring)."""
    if delivery.recipient_id is None:
        return None
    return (
        Delivery.objects.filter(
            incident_id=delivery.incident_id,
            recipient_id=delivery.recipient_id,
            method=delivery.method,
            event__in=PAGE_EVENTS,
            created_at__gt=delivery.created_at,
        )
        .exclude(status__in=(Delivery.Status.FAILED, Delivery.Status.CANCELLED))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def _reassigned_since(delivery: Delivery) -> bool:
    """Whether the incident was reassigned after the page was written. A reassignment pages everyone it names anew
    (a retry of an earlier page to one of them would be a second page) and takes the incident from everyone else.
    One at the very moment the page was written supersedes it only if its recipient is no longer a responder: the
    reassignment's own pages may be written at that moment."""
    reassigned = (
        IncidentEvent.objects.filter(
            incident_id=delivery.incident_id, kind=IncidentEvent.Kind.REASSIGNED, created_at__gte=delivery.created_at
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if reassigned is None:
        return False
    if reassigned > delivery.created_at:
        return True
    return (
        delivery.recipient_id is not None
        and not Responder.objects.filter(incident_id=delivery.incident_id, person_id=delivery.recipient_id).exists()
    )


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


def _failed_after(delivery: Delivery, error: str) -> str:
    """The timeline's line for a page that failed for good."""
    return _("%(method)s to %(address)s failed after %(n)d attempt(s): %(error)s") % {
        "method": _label(delivery),
        "address": delivery.address,
        "n": delivery.attempts,
        "error": error,
    }


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
    flag a contact that cannot be reached, forget devices whose token is gone.

    A provider callback about the attempt that came before this (kept on the delivery) is applied once the attempt
    is recorded as sent. An attempt that got no answer (a timeout, a reset) but whose provider called back about it was
    accepted: it is recorded as sent, not retried, so the person is not paged twice.
    """
    early = None
    with transaction.atomic():
        # Locked, so a provider callback arriving now is either in what is read here or comes after the attempt is
        # recorded; the state and the log are re-read because callbacks may have added to them during the attempt.
        current = (
            Delivery.objects.select_for_update()
            .filter(pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts)
            .values_list("state", "attempt_log")
            .first()
        )
        updated = 0
        if current is not None:
            state, delivery.attempt_log = current
            early = state.get("early_report")
            proof = early or state.get("provider_seen")
            if proof and result.outcome == Outcome.RETRYABLE and not result.rate_limited:
                result = SendResult.sent(
                    str(proof.get("provider_id", "")),
                    detail={**dict(result.detail), "reconciled": True, "unanswered": result.error[:300]},
                )
            fields = _outcome_fields(delivery, result, now)
            fields["state"] = {key: value for key, value in state.items() if key not in PROVIDER_PROOFS}
            if result.progress is not None:
                fields["state"]["progress"] = dict(result.progress)
            updated = Delivery.objects.filter(
                pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts
            ).update(**fields)
        gave_up = updated and fields["status"] == Delivery.Status.FAILED
        flagged = updated and result.outcome == Outcome.PERMANENT and _flag(delivery, result.flag)
        if gave_up:
            message = timeline_message or _failed_after(delivery, result.error[:300])
            if flagged:
                message += " " + _("The contact is flagged and receives nothing until it is verified again.")
            _fail_timeline(delivery, message, now, error=result.error[:500], flagged=bool(flagged))
        if updated:
            if result.gone_devices:  # devices_remove is atomic: a savepoint and its release for nothing otherwise
                devices_remove(device_ids=result.gone_devices)
            if result.pushed_devices:  # only app pushes name any: no update to build for nothing otherwise
                devices_pushed(device_ids=result.pushed_devices, now=now)
    if updated and not any(hasattr(value, "resolve_expression") for value in fields.values()):
        # What was written is what the row now holds (it was locked): no need to read it back.
        for name, value in fields.items():
            setattr(delivery, name, value)
    else:
        delivery.refresh_from_db()
    if updated and result.outcome == Outcome.SENT and early:
        # The provider's callback came before this attempt was recorded; it applies now.
        delivery_report(delivery_id=delivery.pk, report=Report(**early), now=now)
        delivery.refresh_from_db()
    return delivery


def deliveries_settle_interrupted(*, now: datetime, limit: int = 500) -> list[Delivery]:
    """Settle the attempts whose worker died mid-send (still "sending" after their lease), so that none is lost and
    none is sent twice when that can be known. Returns the deliveries it gave up on (see below), for the caller to
    do what else a failure entails (a bot's IM fallback).

    By a method whose provider calls back about every message it accepts (`reports_back`: Twilio's SMS and calls),
    a callback about the attempt proves the provider has it: the attempt is recorded as sent with the provider's
    id, and a final report (delivered, not reached...) applies as usual. Without one, the attempt waits
    DELIVERY_RECONCILE_SECONDS after its lease for a callback, then is sent again. By any other method we cannot
    know whether the provider got it, and a lost page is worse than a repeated one: it is sent again at once,
    carrying the same markers (email Message-ID, push collapse id, webhook Idempotency-Key) so that the receiver
    can recognise the repeat.

    An interrupted attempt counts like any other: once it was the last of DELIVERY_MAX_ATTEMPTS, the delivery
    fails (the timeline says so) instead of being sent again. A page whose worker dies every time (killed at
    Q_TIMEOUT, out of memory, a crash while recording the provider's answer) would otherwise be sent again every
    lease, for ever.
    """
    grace = timedelta(seconds=settings.DELIVERY_RECONCILE_SECONDS)
    interrupted = (
        Delivery.objects.filter(status=Delivery.Status.SENDING, lease_until__lt=now)
        .select_related("incident", "recipient")
        .order_by("lease_until")[:limit]
    )
    given_up = []
    for delivery in interrupted:
        reports_back = delivery.method in registry.METHODS and registry.method(delivery.method).reports_back
        proof = next((delivery.state[key] for key in PROVIDER_PROOFS if key in delivery.state), None)
        if reports_back and proof:
            logger.warning(
                "Delivery %s: its worker stopped mid-attempt; the provider's callback shows it was sent", delivery.pk
            )
            delivery_record_outcome(
                delivery=delivery,
                result=SendResult.sent(str(proof.get("provider_id", "")), detail={"reconciled": True}),
                now=now,
            )
            continue
        if reports_back and delivery.lease_until + grace > now:
            continue  # the provider may still call back about it
        if reports_back:
            error = _("The previous attempt was interrupted and the provider did not report on it within %(n)d s.") % {
                "n": settings.DELIVERY_RECONCILE_SECONDS
            }
        else:
            error = _("The previous attempt was interrupted.")
        entry = {"attempt": delivery.attempts, "outcome": "interrupted", "error": error}
        attempt = Delivery.objects.filter(
            pk=delivery.pk,
            status=Delivery.Status.SENDING,
            attempts=delivery.attempts,
            lease_until=delivery.lease_until,
        )
        if reports_back:
            # A callback landing meanwhile wins: the provider has it after all.
            attempt = attempt.exclude(state__has_key="early_report").exclude(state__has_key="provider_seen")
        if delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            if _interrupted_give_up(delivery=delivery, attempt=attempt, error=error, entry=entry, now=now):
                given_up.append(delivery)
            continue
        if attempt.update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            lease_until=None,
            error=error,
            attempt_log=_log(delivery, entry, now),
        ):
            logger.warning("Delivery %s: its worker stopped mid-attempt; it is sent again", delivery.pk)
    return given_up


def _interrupted_give_up(*, delivery: Delivery, attempt, error: str, entry: Mapping[str, Any], now: datetime) -> bool:
    """Fail a delivery whose last allowed attempt was interrupted, if `attempt` (the row while it is still that
    attempt) still matches; the timeline says so as for any failure."""
    with transaction.atomic():
        fields = {"status": Delivery.Status.FAILED, "lease_until": None, "error": error}
        fields["attempt_log"] = _log(delivery, entry, now)
        if not attempt.update(**fields):
            return False
        for name, value in fields.items():
            setattr(delivery, name, value)
        if delivery.bot_id is not None:
            message = _("Bot %(bot)s could not post after %(n)d attempt(s): %(error)s") % {
                "bot": delivery.address,
                "n": delivery.attempts,
                "error": error,
            }
        else:
            message = _failed_after(delivery, error)
        _fail_timeline(delivery, message, now, error=error, flagged=False, interrupted=True)
    logger.warning(
        "Delivery %s: its worker stopped mid-attempt on the last allowed attempt (%d); it failed",
        delivery.pk,
        delivery.attempts,
    )
    return True


def _outcome_fields(delivery: Delivery, result: SendResult, now: datetime) -> dict:
    """The delivery's fields after an attempt with this result: sent, pending again (after a backoff or a rate
    limit's wait) or failed."""
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
        fields.update(status=Delivery.Status.FAILED)
    return fields


@dataclass(frozen=True)
class Report:
    """What a provider reported after accepting a message.

    kind: "accepted" (the provider has it, nothing more yet: an SMS queued or sent, a call initiated or ringing),
    "delivered" (it reached the person), "not_reached" (worth another attempt: a call not answered, an SMS the
    carrier could not deliver now) or "refused" (never will: a hard bounce, an undeliverable number).
    `provider_id` is the provider's id for the message, when the report names it (Twilio's CallSid, MessageSid).
    """

    kind: str
    reason: str = ""
    flag: str = ""  # for "refused": flag the contact with this reason
    detail: Mapping[str, Any] = field(default_factory=dict)
    provider_id: str = ""

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "flag": self.flag,
            "detail": dict(self.detail),
            "provider_id": self.provider_id,
        }


def delivery_report(*, delivery_id: int, report: Report, now: datetime) -> Delivery | None:
    """Apply what the provider reported about a delivery it had accepted.

    Reports about a delivery still being sent are kept: a final one is applied when the attempt is recorded, and
    any one proves the provider has the message should the worker die before recording it (see
    deliveries_settle_interrupted). "accepted" says nothing new about a delivery already recorded and is dropped;
    other reports about a delivery already settled (failed, cancelled) are logged and change nothing, and so are
    reports naming another message than the one the delivery recorded (an earlier attempt's), except one that
    shows the provider has the message of an attempt that got no answer (see _reconcile_unanswered).
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
        status = delivery.status
        if (
            status == Delivery.Status.PENDING
            and report.kind in ("accepted", "delivered")
            and _unanswered(delivery)
            # It names a message, and not one an earlier attempt recorded: a report that names none (a key
            # press without its CallSid) cannot tell the unanswered attempt's message from an earlier one.
            and report.provider_id
            and report.provider_id != delivery.provider_id
        ):
            return _reconcile_unanswered(delivery, report, now)
        if report.kind == "accepted" and status != Delivery.Status.SENDING:
            return delivery
        entry = {"callback": report.kind, "reason": report.reason[:300], **dict(report.detail)}
        if report.provider_id:
            entry["provider_id"] = report.provider_id[:200]
        # Once an attempt is recorded, the delivery holds the id of the message it sent; a report naming another
        # message is about an earlier attempt (a call whose answer timed out, rang out after the retry reached the
        # person) or an earlier number. It is kept in the log and changes nothing: no retry, no flag, no timeline.
        earlier = (
            status != Delivery.Status.SENDING
            and bool(report.provider_id)
            and bool(delivery.provider_id)
            and report.provider_id != delivery.provider_id
        )
        if earlier:
            entry["earlier_message"] = True
        delivery.attempt_log = _log(delivery, entry, now)
        fields = ["attempt_log", "updated_at"]
        stale = bool(report.provider_id) and report.provider_id == delivery.provider_id and delivery.attempts > 1
        if earlier:
            logger.info("Delivery %s: a %s report about an earlier message changes nothing", delivery.pk, report.kind)
        elif status == Delivery.Status.SENDING and not stale:
            # About the attempt in flight (its message's id is not known yet); one naming the message an earlier
            # attempt recorded is about that one, and proves nothing about this attempt.
            kept = "provider_seen" if report.kind == "accepted" else "early_report"
            delivery.state = {**delivery.state, kept: report.as_json()}
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
        if status != Delivery.Status.SENDING and any(key in delivery.state for key in PROVIDER_PROOFS):
            delivery.state = {k: v for k, v in delivery.state.items() if k not in PROVIDER_PROOFS}
            fields.append("state")
        delivery.save(update_fields=list(dict.fromkeys(fields)))
    return delivery


def _unanswered(delivery: Delivery) -> bool:
    """Whether the delivery waits to be tried again after an attempt that got no answer (a timeout, a connection
    reset: the provider may have the message): the last thing its log says is that attempt's outcome, not a report
    since about a message that may be that attempt's. A refusal (5xx, 429) means the provider does not have the
    message. A report that names no message (which call a key press without its CallSid was about is unknown)
    or the message an earlier attempt recorded (a repeated status about an earlier call) does not count."""
    log = reversed(delivery.attempt_log)
    last = next((entry for entry in log if not _report_about_another_attempt(entry, delivery)), {})
    return (
        last.get("attempt") == delivery.attempts
        and last.get("outcome") == Outcome.RETRYABLE.value
        # "timed_out": the key of attempts logged before a reset counted as unanswered (deliveries waiting at an
        # upgrade still settle).
        and bool(last.get("unanswered") or last.get("timed_out"))
        and not last.get("rate_limited")
    )


def _report_about_another_attempt(entry: Mapping[str, Any], delivery: Delivery) -> bool:
    """Whether a log entry is a provider's report not known to be about the latest attempt's message: it names no
    message, or the one an earlier attempt recorded. (Reports logged before the log kept every report's message id
    name none unless they were about an earlier message.)"""
    if "callback" not in entry or "outcome" in entry:
        return False
    named = entry.get("provider_id", "")
    return not named or named == delivery.provider_id


def _reconcile_unanswered(delivery: Delivery, report: Report, now: datetime) -> Delivery:
    """The provider reports on the message of an attempt that got no answer: it has it, so the attempt is recorded
    as sent and the retry waiting for it is not made (it would page the person twice)."""
    result = SendResult.sent(report.provider_id, detail={"reconciled": True, "callback": report.kind})
    fields = _outcome_fields(delivery, result, now)
    fields["next_attempt_at"] = None
    if report.kind == "delivered":
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=now)
    for name, value in fields.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=[*fields, "updated_at"])
    logger.info("Delivery %s: the provider has the message of the unanswered attempt; not sent again", delivery.pk)
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
