"""Twilio callbacks signed with a Webhook Rule's SharedKey: Twilio then signs X-Twilio-Signature with the key's
secret and the algorithm it names in X-Twilio-Webhooks-Signature-Settings (HMAC-SHA256), not with the auth token.
They are checked against TWILIO_WEBHOOK_SHARED_KEY_SECRET, and refused (403, nothing changes) while it is unset."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings

from channels_app.models import Delivery
from oncall.models import Incident, Progress
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.fakes.twilio_signature import SharedKey
from tests.integration.paging import configure_twilio, twilio_callback
from tests.integration.test_voice_keypad import call_params, page, vera  # noqa: F401 (fixtures reused)

pytestmark = pytest.mark.django_db(transaction=True)

SHARED_KEY = SharedKey("shared-key-secret-0123456789abcdef")


def gather_url() -> str:
    return f"{settings.PUBLIC_URL}/hooks/twilio/voice/{Delivery.objects.get().callback_code}/gather/"


def test_a_keypad_press_signed_with_a_shared_key_acknowledges(client, settings, page):  # noqa: F811
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = SHARED_KEY.secret
    response = twilio_callback(client, gather_url(), call_params(page, Digits="1"), shared_key=SHARED_KEY)
    assert response.status_code == 200, f"Twilio's SharedKey-signed keypad press was refused ({response.status_code})"
    assert Incident.objects.get().progress == Progress.PROCESSING


def test_callbacks_signed_with_the_auth_token_still_pass_once_a_shared_key_is_set(client, settings, page):  # noqa: F811
    """A Webhook Rule covers the URLs it matches; the others are still signed with the auth token."""
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = SHARED_KEY.secret
    assert twilio_callback(client, gather_url(), call_params(page, Digits="1")).status_code == 200
    assert Incident.objects.get().progress == Progress.PROCESSING


def test_a_shared_key_signature_is_refused_while_its_secret_is_not_set(client, settings, page, caplog):  # noqa: F811
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = ""
    with caplog.at_level(logging.WARNING, logger="channels_app.hooks"):
        response = twilio_callback(client, gather_url(), call_params(page, Digits="1"), shared_key=SHARED_KEY)
    assert response.status_code == 403
    assert Incident.objects.get().progress == Progress.TRIGGERED
    [line] = [record.getMessage() for record in caplog.records if record.name == "channels_app.hooks"]
    assert line == (
        "Refused a Twilio callback to voice: it is signed with a Webhook SharedKey"
        " (X-Twilio-Webhooks-Signature-Settings) and TWILIO_WEBHOOK_SHARED_KEY_SECRET is not set"
    )
    assert SHARED_KEY.secret not in caplog.text and settings.TWILIO_AUTH_TOKEN not in caplog.text


def test_a_shared_key_header_does_not_let_the_auth_token_or_another_secret_sign(client, settings, page):  # noqa: F811
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = SHARED_KEY.secret
    params = call_params(page, Digits="1")
    forged = SharedKey(settings.TWILIO_AUTH_TOKEN)  # the header, but the auth token's key
    assert twilio_callback(client, gather_url(), params, shared_key=forged).status_code == 403
    guessed = SharedKey("a-guessed-secret")
    assert twilio_callback(client, gather_url(), params, shared_key=guessed).status_code == 403
    assert Incident.objects.get().progress == Progress.TRIGGERED


@pytest.mark.parametrize(
    ("shared_key", "secret", "answer", "status"),
    [
        (SHARED_KEY, SHARED_KEY.secret, 204, "delivered"),
        (SHARED_KEY, "", 403, "sent"),
        (None, "", 204, "delivered"),  # no Webhook Rule: signed with the auth token, as before
    ],
)
def test_status_callbacks_twilio_signs_with_a_shared_key_are_applied_only_with_its_secret(
    clock, settings, fake_providers, live_server, client, shared_key, secret, answer, status
):
    """Twilio itself (the fake, over real HTTP to a live server) reports the SMS delivered. Signed with a Webhook
    Rule's SharedKey, the report is applied with the secret set and refused without it (the SMS stays sent);
    with no rule, it is signed with the auth token and applied as before."""
    configure_twilio(settings, fake_providers)
    settings.PUBLIC_URL = live_server.url
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = secret
    fake_providers.twilio_shared_key = shared_key
    fake_providers.twilio_status_callbacks["Messages.json"] = ["delivered"]
    channel = make_channel("Ops")
    make_rule(channel, [{"people": [make_user("sam", phone="+14155550123")], "methods": ["sms"]}])
    push(client, make_integration(channel=channel)[1], {"title_rule": "cpu", "event_status": "Warning"})
    [(url, reported, answered)] = fake_providers.callbacks_made
    assert (url.startswith(live_server.url), reported, answered) == (True, "delivered", answer)
    assert Delivery.objects.get().status == status
