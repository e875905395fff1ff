"""SMS through Twilio's Messages API, with a status callback that marks the delivery delivered or failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from channels_app.base import NotificationMethod, SendResult, provider_key_of
from channels_app.providers import twilio

STATUS_CALLBACK = "twilio-sms-status"


def sms_form(*, to: str, from_: str, body: str, status_callback: str) -> dict[str, str]:
    """The form Twilio's Messages.json takes for one SMS (pure data)."""
    return {"To": to, "From": from_, "Body": body, "StatusCallback": status_callback}


class SmsMethod(NotificationMethod):
    key = "sms"
    label = _("SMS")
    slots = ("sms",)
    contact = "phone"
    quota_setting = "SMS_DAILY_QUOTA"
    reports_back = True  # every accepted SMS gets status callbacks (sent, delivered, failed...)

    def address_for(self, person: Any) -> str | None:
        return person.reachable_phone

    def unreachable_reason(self, person: Any) -> str:
        if person.phone and person.phone_flagged:
            return f"phone number flagged: {person.phone_flagged}"
        return "no verified sms contact"

    def provider_key(self) -> str:
        return provider_key_of(settings.TWILIO_API_URL)  # calls and SMS share Twilio's API

    def send(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, delivery: Any
    ) -> SendResult:
        """Send the rendered SMS slot (already cut to SMS_MAX_SEGMENTS) from TWILIO_SMS_FROM.

        Twilio's answer: 201 is sent (the status callback later says delivered or failed); 429 and 5xx are
        retried; 21211 and the other number errors are permanent and flag the person's phone; 21610 (STOP), 21612,
        21614 (not a mobile) say only that the number takes no SMS: permanent for this SMS, but the phone is not
        flagged, so calls to it go on.
        """
        missing = twilio.missing_settings("TWILIO_SMS_FROM")
        if missing:
            return SendResult.permanent(f"Twilio is not configured for SMS: set {', '.join(missing)}")
        form = sms_form(
            to=address,
            from_=settings.TWILIO_SMS_FROM,
            body=message["sms"],
            status_callback=twilio.callback_url(STATUS_CALLBACK, delivery.callback_code),
        )
        return twilio.post("Messages.json", form)


def sms_text_send(*, to: str, body: str) -> SendResult:
    """Send one plain SMS that belongs to no incident (a verification code): no callback, no quota."""
    missing = twilio.missing_settings("TWILIO_SMS_FROM")
    if missing:
        return SendResult.permanent(f"Twilio is not configured for SMS: set {', '.join(missing)}")
    return twilio.post("Messages.json", {"To": to, "From": settings.TWILIO_SMS_FROM, "Body": body})
