"""Every provider callback (every route under /hooks/, read from the URL resolver) refuses a request that is unsigned
or wrongly signed, refuses everything while its credential is not configured (fails closed), and changes nothing
when it refuses; a correctly signed request gets through, so the refusals are the signature's doing.

How each callback is signed is reviewed below (SIGNERS); a callback added later fails
`test_every_callback_has_a_reviewed_signer` until it is. The Twilio voice flow end to end, with its signatures, is
in tests/integration/test_voice_keypad.py; this module is the sweep over every callback route.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from twilio.request_validator import RequestValidator

from channels_app.models import Delivery
from oncall.models import Incident, Progress, TimelineEntry
from tests.fakes.twilio_signature import SharedKey, twilio_signature_headers
from tests.security.conftest import World
from tests.security.routes import Route, is_hook, routes

pytestmark = pytest.mark.django_db

TWILIO_TOKEN = "twilio-auth-token-for-tests-0001"
ANYMAIL_SECRET = "esp-user:esp-password-0001"
HOOKS = routes(is_hook)
# Reviewed: anymail webhooks whose ESP needs a package that is not installed (boto3) or its own signing key, which
# an operator sets only for the ESP they use: with WEBHOOK_SECRET set they refuse every request (403), no crash.
CRASHING = {
    "amazon_ses_tracking_webhook",
    "mailersend_tracking_webhook",
    "mailgun_tracking_webhook",
    "mandrill_tracking_webhook",
    "postal_tracking_webhook",
    "unisender_go_tracking_webhook",
}


def signer(route: Route) -> str:
    """Reviewed: how each callback proves where it comes from."""
    if route.key.startswith("twilio-"):
        # X-Twilio-Signature over PUBLIC_URL + path + query and the form, with TWILIO_AUTH_TOKEN (or, when
        # X-Twilio-Webhooks-Signature-Settings says a Webhook Rule's SharedKey signed it, its secret)
        return "twilio"
    if route.key.endswith("_tracking_webhook") and route.pattern.startswith("hooks/anymail/"):
        return "anymail"  # HTTP basic auth with ANYMAIL["WEBHOOK_SECRET"], checked by django-anymail
    return ""


def test_every_callback_has_a_reviewed_signer():
    assert len(HOOKS) >= 5
    assert not [route.key for route in HOOKS if not signer(route)]


def twilio_post(
    route: Route, code: str, *, token: str | None, signature: str | None = None, shared_key: SharedKey | None = None
):
    path = route.path(code=code)
    form = {"Digits": "1", "CallStatus": "completed", "MessageStatus": "failed", "ErrorCode": "30006"}
    form |= {"CallSid": "CA" + "1" * 32, "MessageSid": "SM" + "1" * 32}
    headers = {}
    if token is not None or shared_key is not None:
        headers = twilio_signature_headers(settings.PUBLIC_URL + path, form, token=token or "", shared_key=shared_key)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    headers = {name: value for name, value in headers.items() if value}
    return Client().post(path, data=urlencode(form), content_type="application/x-www-form-urlencoded", headers=headers)


def anymail_post(route: Route, *, credentials: str | None):
    headers = {}
    if credentials is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    body = {"RecordType": "Delivery", "MessageID": "m-1", "Recipient": "ann@example.com", "Details": ""}
    body["DeliveredAt"] = "2026-01-01T00:00:00Z"
    return Client(raise_request_exception=False).post(
        route.path(), data=json.dumps(body), content_type="application/json", **headers
    )


@pytest.fixture
def calls(world: World, settings, clock) -> dict[str, Delivery]:
    """A voice call and an SMS to Ann, each with its callback code, as if Twilio had them."""
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ANYMAIL_SECRET}
    incident, ann = world.ann.incident, world.ann.user
    found = {}
    for method in ("voice", "sms"):
        found[method] = Delivery.objects.create(
            incident=incident,
            recipient=ann,
            recipient_key=f"person:{ann.pk}",
            address=ann.phone,
            method=method,
            dedup_key=f"security-{method}",
            status=Delivery.Status.SENT,
            provider_id=("CA" if method == "voice" else "SM") + "1" * 32,
            callback_code=f"{method}-code-" + "k" * 32,
            created_at=clock.current,
            updated_at=clock.current,
        )
    return found


def snapshot() -> list:
    return [
        list(Delivery.objects.order_by("pk").values("pk", "status", "error", "state")),
        list(Incident.objects.order_by("pk").values("pk", "progress")),
        TimelineEntry.objects.count(),
    ]


def code_for(route: Route, calls: dict[str, Delivery]) -> str:
    return calls["sms" if "sms" in route.key else "voice"].callback_code


def test_unsigned_and_wrongly_signed_callbacks_are_refused_and_change_nothing(calls):
    before = snapshot()
    for route in HOOKS:
        if signer(route) == "twilio":
            code = code_for(route, calls)
            answers = {
                "unsigned": twilio_post(route, code, token=None),
                "garbage": twilio_post(route, code, token=None, signature="bm90LWEtc2lnbmF0dXJl"),
                "another token": twilio_post(route, code, token="some-other-account-token"),
                "another code": twilio_post(route, code, token=None, signature=_signature_for_other_path(route)),
                # TWILIO_WEBHOOK_SHARED_KEY_SECRET is not set: a SharedKey signature proves nothing, whatever key.
                "a SharedKey": twilio_post(route, code, token=None, shared_key=SharedKey(TWILIO_TOKEN)),
                "an empty SharedKey": twilio_post(route, code, token=None, shared_key=SharedKey("")),
            }
            assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 403), route.key
        else:
            answers = {
                "no credentials": anymail_post(route, credentials=None),
                "wrong credentials": anymail_post(route, credentials="esp-user:guessed"),
            }
            for name, response in answers.items():
                allowed = (400, 401, 403, 500) if route.key in CRASHING else (400, 401, 403)
                assert response.status_code in allowed, (route.key, name, response.status_code)
    assert snapshot() == before


def _signature_for_other_path(route: Route) -> str:
    """A genuine signature, for the same form sent to another delivery's callback: replaying it here must fail."""
    form = {"Digits": "1", "CallStatus": "completed", "MessageStatus": "failed", "ErrorCode": "30006"}
    form |= {"CallSid": "CA" + "1" * 32, "MessageSid": "SM" + "1" * 32}
    other = settings.PUBLIC_URL + route.path(code="another-code-" + "z" * 32)
    return RequestValidator(TWILIO_TOKEN).compute_signature(other, form)


def test_every_callback_refuses_everything_while_its_credential_is_not_set(calls, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.ANYMAIL = {key: value for key, value in settings.ANYMAIL.items() if key != "WEBHOOK_SECRET"}
    settings.ANYMAIL_WEBHOOK_SECRET = ""
    before = snapshot()
    for route in HOOKS:
        if signer(route) == "twilio":
            # Signed with an empty key, as a forger would who guessed that none is configured.
            for token in ("", TWILIO_TOKEN):
                assert twilio_post(route, code_for(route, calls), token=token).status_code == 403, route.key
        else:
            for credentials in (None, ":", ANYMAIL_SECRET):
                assert anymail_post(route, credentials=credentials).status_code == 403, route.key
    assert snapshot() == before


def test_a_correctly_signed_callback_gets_through(calls):
    """The control of the tests above: the same requests, signed right, are answered and take effect."""
    for route in HOOKS:
        if signer(route) == "twilio":
            response = twilio_post(route, code_for(route, calls), token=TWILIO_TOKEN)
            assert response.status_code in (200, 204), (route.key, response.status_code)
    assert Incident.objects.get(pk=calls["voice"].incident_id).progress == Progress.PROCESSING  # pressed 1
    assert Delivery.objects.get(pk=calls["sms"].pk).status != Delivery.Status.SENT  # the failed SMS is recorded
    postmark = next(route for route in HOOKS if route.key == "postmark_tracking_webhook")
    response = anymail_post(postmark, credentials=ANYMAIL_SECRET)
    assert response.status_code == 200, response.status_code


def test_no_callback_crashes_on_a_request_it_refuses(calls):
    crashing = {route.key for route in HOOKS if route.key in CRASHING}
    assert crashing == CRASHING
    assert [anymail_post(route, credentials=None).status_code for route in HOOKS if route.key in CRASHING] == [
        403
    ] * len(CRASHING)
