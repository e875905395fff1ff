"""Helpers for the notification-method tests: the fake Twilio account, signed callbacks, the ticker."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from twilio.request_validator import RequestValidator

from escalation.ticker import tick
from oncall.lib import clock as clock_module

TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "fake-twilio-auth-token"
VOICE_FROM = ["+442071838750", "+14155550100"]
SMS_FROM = "+14155550199"


def configure_twilio(settings, fake) -> None:
    """Point Twilio at the fake server with a real-looking account the fake checks."""
    fake.twilio_accounts[TWILIO_SID] = TWILIO_TOKEN
    settings.TWILIO_API_URL = fake.url("/twilio")
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_VOICE_FROM = VOICE_FROM
    settings.TWILIO_SMS_FROM = SMS_FROM


def twilio_callback(client, url: str, params: dict, *, token: str = TWILIO_TOKEN, signature: str | None = None):
    """POST a form to one of our Twilio callbacks as Twilio does: form-encoded, signed for the public URL."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return client.post(
        url.removeprefix(settings.PUBLIC_URL),
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def run_ticker() -> None:
    tick(now=clock_module.now())


def later(clock, **delta) -> None:
    clock.advance(**delta)
    run_ticker()
