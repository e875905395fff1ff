"""The voice call's keypad and Twilio's status callbacks, as services: what each callback means for the delivery
and the incident. The views (channels_app.hooks) check Twilio's signature before calling any of these.

A callback names its delivery by the unguessable code in its URL; an unknown code changes nothing (Twilio gets a
polite answer, so it does not retry).
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from channels_app.models import Delivery
from channels_app.outcomes import Report, delivery_report
from channels_app.providers import twilio
from channels_app.providers.voice import GATHER, TWIML, twiml_goodbye, twiml_message
from oncall.errors import IllegalTransition
from oncall.models import Progress, Source
from oncall.services.lifecycle import incident_acknowledge, incident_resolve


def _delivery(code: str, method: str) -> Delivery | None:
    if not code:
        return None
    return Delivery.objects.select_related("incident", "recipient").filter(callback_code=code, method=method).first()


def _spoken(delivery: Delivery) -> str:
    kept = (delivery.state.get("message") or {}).get("voice")
    if kept:
        return kept
    incident = delivery.incident
    return _("%(severity)s incident %(n)d: %(title)s.") % {
        "severity": incident.severity,
        "n": incident.number,
        "title": incident.title[:200],
    }


def _script(delivery: Delivery | None, *, code: str, again: bool = False, prefix: str = "") -> str:
    """The TwiML a call plays: the message and the keypad menu; the second time round, goodbye without a key."""
    if delivery is None:
        return twiml_goodbye(_("This call is no longer valid. Goodbye."))
    incident = delivery.incident
    if incident.progress == Progress.CLOSED:
        return twiml_goodbye(_("Incident %(n)d is already closed. Goodbye.") % {"n": incident.number})
    return twiml_message(
        text=f"{prefix} {_spoken(delivery)}".strip(),
        gather_url=twilio.callback_url(GATHER, code),
        again_url=None if again else twilio.callback_url(TWIML, code, "again=1"),
    )


def _answered(delivery: Delivery, *, reason: str, sid: str, now: datetime, **detail) -> None:
    """Report that the call `sid` (Twilio's CallSid) reached the person. Naming the call lets a report settle the
    attempt whose request got no answer although Twilio placed this call (it is not placed again), and keeps a
    report about an earlier call from counting for the current one."""
    report = Report("delivered", reason, detail=detail, provider_id=sid[:200])
    delivery_report(delivery_id=delivery.pk, report=report, now=now)


def keypad_script(*, code: str, now: datetime, again: bool = False, sid: str = "") -> str:
    """Twilio fetching the call's script, which it does once the call is answered: reports the call `sid` as
    having reached the person, and answers with the message and the keypad menu."""
    delivery = _delivery(code, "voice")
    if delivery is not None:
        _answered(delivery, reason="call answered", sid=sid, now=now)
    return _script(delivery, code=code, again=again)


def keypad_press(*, code: str, digits: str, now: datetime, sid: str = "") -> str:
    """A key pressed during the call `sid` (Twilio's CallSid): 1 acknowledges and 2 closes the incident as the
    called person (from the voice call), 9 repeats the message; any other key says so and repeats. Answers with the
    TwiML to play."""
    delivery = _delivery(code, "voice")
    if delivery is None:
        return twiml_goodbye(_("This call is no longer valid. Goodbye."))
    # A key was pressed, so the call reached the person.
    _answered(delivery, reason="key pressed", sid=sid, now=now, digits=digits[:5])
    incident, person = delivery.incident, delivery.recipient
    number = incident.number
    try:
        if digits == "1":
            incident_acknowledge(incident=incident, by=person, source=Source.VOICE, now=now)
            return twiml_goodbye(_("Incident %(n)d is acknowledged. Goodbye.") % {"n": number})
        if digits == "2":
            if incident.progress == Progress.CLOSED:
                raise IllegalTransition("closed")
            incident_resolve(
                incident=incident, by=person, source=Source.VOICE, now=now, reason=_("Closed from the phone keypad.")
            )
            return twiml_goodbye(_("Incident %(n)d is closed. Goodbye.") % {"n": number})
    except IllegalTransition:
        return twiml_goodbye(_("Incident %(n)d is already closed. Goodbye.") % {"n": number})
    if digits == "9":
        return _script(delivery, code=code)
    return _script(delivery, code=code, prefix=_("That key does nothing."))


def call_status(*, code: str, status: str, now: datetime, duration: str = "", sid: str = "") -> None:
    """Twilio's call status: initiated (and the other interim ones) says Twilio has the call; completed is
    delivered; busy, no-answer, failed and canceled are not reached (called again after the backoff, up to the
    attempt limit). `sid` is Twilio's CallSid."""
    meaning = twilio.call_status_report(status)
    delivery = _delivery(code, "voice")
    if meaning is None or delivery is None:
        return
    kind, reason = meaning
    detail = {"status": status[:20], **({"duration": duration[:10]} if duration else {})}
    report = Report(kind, reason, detail=detail, provider_id=sid[:200])
    delivery_report(delivery_id=delivery.pk, report=report, now=now)


def sms_status(*, code: str, status: str, error_code: str, now: datetime, sid: str = "") -> None:
    """Twilio's SMS status: queued, sent (and the other interim ones) say Twilio has it; delivered is delivered;
    failed or undelivered with a number error fails the delivery and flags the phone; with a temporary error it is
    sent again after the backoff. `sid` is Twilio's MessageSid."""
    meaning = twilio.sms_status_report(status, error_code)
    delivery = _delivery(code, "sms")
    if meaning is None or delivery is None:
        return
    kind, reason, flag = meaning
    detail = {"status": status[:20], **({"error_code": error_code[:10]} if error_code else {})}
    report = Report(kind, reason, flag=flag, detail=detail, provider_id=sid[:200])
    delivery_report(delivery_id=delivery.pk, report=report, now=now)
