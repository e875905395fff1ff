"""Helpers for the notification-method tests: the fake Twilio account, signed callbacks, the ticker."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings

from escalation.ticker import tick
from oncall.lib import clock as clock_module
from tests.fakes.twilio_signature import SharedKey, twilio_signature_headers

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


def twilio_callback(
    client,
    url: str,
    params: dict,
    *,
    token: str = TWILIO_TOKEN,
    signature: str | None = None,
    shared_key: SharedKey | None = None,
):
    """POST a form to one of our Twilio callbacks as Twilio does: form-encoded, signed for the public URL (with
    `shared_key` as a Webhook Rule signs it, when given; `signature` replaces the signature)."""
    headers = twilio_signature_headers(url, params, token=token, shared_key=shared_key)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(
        url.removeprefix(settings.PUBLIC_URL),
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={name: value for name, value in headers.items() if value},
    )


def run_ticker() -> None:
    tick(now=clock_module.now())


def later(clock, **delta) -> None:
    clock.advance(**delta)
    run_ticker()
