"""Voice calls through Twilio's Calls API, speaking the voice template and taking keypad answers.

The call's `Url` is our own TwiML endpoint (channels_app.keypad), never a third-party echo service: it speaks the
rendered voice slot inside `<Gather numDigits="1">`, so a key can be pressed at any time: 1 acknowledges, 2
closes, 9 repeats. Without an answer the message is repeated once, then the call ends. Every callback carries the
delivery's unguessable callback code and Twilio's signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from twilio.twiml.voice_response import VoiceResponse

from channels_app.base import NotificationMethod, SendResult, provider_key_of
from channels_app.providers import twilio
from oncall.lib.text import xml_safe

TWIML = "twilio-voice-twiml"
GATHER = "twilio-voice-gather"
STATUS_CALLBACK = "twilio-voice-status"
GATHER_TIMEOUT_SECONDS = 8


def caller_id_for(to: str, numbers: Sequence[str]) -> str:
    """The caller ID for a call to `to`: one in the callee's country (answered more often), else the first."""
    if not numbers:
        return ""
    try:
        country = phonenumbers.parse(to, None).country_code
    except phonenumbers.NumberParseException:
        return numbers[0]
    for number in numbers:
        try:
            if phonenumbers.parse(number, None).country_code == country:
                return number
        except phonenumbers.NumberParseException:
            continue
    return numbers[0]


def call_form(*, to: str, from_: str, url: str, status_callback: str, timeout: int) -> dict[str, str | list[str]]:
    """The form Twilio's Calls.json takes for one call (pure data).

    Twilio calls back when it starts dialling ("initiated": proof it has the call, seconds after the request, which
    settles an attempt whose worker died before recording the answer) and when the call ends ("completed", whose
    CallStatus says completed, busy, no-answer, failed or canceled).
    """
    return {
        "To": to,
        "From": from_,
        "Url": url,
        "Method": "POST",
        "StatusCallback": status_callback,
        "StatusCallbackMethod": "POST",
        "StatusCallbackEvent": ["initiated", "completed"],
        "Timeout": str(timeout),
    }


def _say(node, text: str) -> None:
    # A control character would make the whole TwiML unreadable (Twilio 12100: the callee hears an error and
    # cannot press a key); the rendered text has none, but a text kept on an older delivery may.
    text = " ".join(xml_safe(text).split())
    options = {"language": settings.TWILIO_SAY_LANGUAGE}
    if settings.TWILIO_SAY_VOICE:
        options["voice"] = settings.TWILIO_SAY_VOICE
    node.say(text, **options)


def twiml_message(*, text: str, gather_url: str, again_url: str | None) -> str:
    """The call's script: the message and the menu inside one Gather; with no key pressed, `again_url` (the
    message once more) or, when None, goodbye."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=GATHER_TIMEOUT_SECONDS)
    _say(gather, text)
    _say(gather, _("Press 1 to acknowledge. Press 2 to close the incident. Press 9 to hear this again."))
    if again_url:
        response.redirect(again_url, method="POST")
    else:
        _say(response, _("No key was pressed. Goodbye."))
        response.hangup()
    return response.to_xml()


def twiml_goodbye(text: str) -> str:
    """Say `text` and hang up."""
    response = VoiceResponse()
    _say(response, text)
    response.hangup()
    return response.to_xml()


def vcard(numbers: Sequence[str], *, name: str) -> str:
    """A vCard 3.0 with the caller IDs, so a phone can save them and let them through Do Not Disturb."""
    escaped = name.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{escaped}", f"N:{escaped};;;;", f"ORG:{escaped}"]
    lines += [f"TEL;TYPE=VOICE:{number}" for number in numbers]
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


class VoiceMethod(NotificationMethod):
    key = "voice"
    label = gettext_lazy("Voice call")
    slots = ("voice",)
    contact = "phone"
    quota_setting = "VOICE_DAILY_QUOTA"
    kept_slots = ("voice",)
    reports_back = True  # every accepted call reports "initiated" when dialling starts, and how it ended

    def address_for(self, person: Any) -> str | None:
        return person.reachable_phone

    def unreachable_reason(self, person: Any) -> str:
        if person.phone and person.phone_flagged:
            return f"phone number flagged: {person.phone_flagged}"
        return "no verified voice contact"

    def provider_key(self) -> str:
        return provider_key_of(settings.TWILIO_API_URL)  # calls and SMS share Twilio's API

    def send(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, delivery: Any
    ) -> SendResult:
        """Place the call; what it says is served by our TwiML endpoint from the text kept on the delivery.

        Twilio's answer: 201 is sent (the status callback says completed, which is delivered, or busy, no-answer,
        failed or canceled, which is "not reached": the person is called again after the backoff); 429 and 5xx
        are retried; number errors (21211…) are permanent and flag the phone.
        """
        missing = twilio.missing_settings("TWILIO_VOICE_FROM")
        if missing:
            return SendResult.permanent(f"Twilio is not configured for calls: set {', '.join(missing)}")
        code = delivery.callback_code
        form = call_form(
            to=address,
            from_=caller_id_for(address, settings.TWILIO_VOICE_FROM),
            url=twilio.callback_url(TWIML, code),
            status_callback=twilio.callback_url(STATUS_CALLBACK, code),
            timeout=settings.TWILIO_CALL_TIMEOUT,
        )
        return twilio.post("Calls.json", form)

    def send_test(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, person: Any
    ) -> SendResult:
        """A test call speaks its text once and hangs up: inline TwiML, no keypad and no callbacks."""
        missing = twilio.missing_settings("TWILIO_VOICE_FROM")
        if missing:
            return SendResult.permanent(f"Twilio is not configured for calls: set {', '.join(missing)}")
        return twilio.post(
            "Calls.json",
            {
                "To": address,
                "From": caller_id_for(address, settings.TWILIO_VOICE_FROM),
                "Twiml": twiml_goodbye(message["voice"]),
                "Timeout": str(settings.TWILIO_CALL_TIMEOUT),
            },
        )
