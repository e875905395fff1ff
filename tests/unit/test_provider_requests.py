"""Every direct-notification provider's request building and answer classification, as plain data (no database,
no network): Twilio (and its signature vector), TwiML, FCM, APNs, Web Push, the combined push outcome, email
tracking events, phone numbers and the vCard."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from xml.etree import ElementTree

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from channels_app.base import Outcome
from channels_app.providers import apns, fcm, push, twilio, webpush
from channels_app.providers.push import DeviceResult, PushMessage, combine
from channels_app.providers.sms import sms_form
from channels_app.providers.voice import call_form, caller_id_for, twiml_goodbye, twiml_message, vcard
from channels_app.tracking import email_event_report
from oncall.errors import ApplicationError
from oncall.services.contacts import phone_normalize

MESSAGE = PushMessage(
    title="[Critical] #7 db down",
    body="2 alerts",
    incident_id=7,
    severity="Critical",
    event="triggered",
    url="u",
    ttl=60,
)


# -- Twilio ------------------------------------------------------------------------------------------------------


def test_the_twilio_signature_vector_of_the_protocol_reference(settings):
    params = {"CallSid": "CA123", "Digits": "1", "AccountSid": "AC123"}
    url = "https://example.com/twilio/gather?x=1"
    assert RequestValidator("12345").compute_signature(url, params) == "w8JiE7TRnCokASuEpi8xPCzLUxo="
    settings.TWILIO_AUTH_TOKEN = "12345"
    assert twilio.signature_refusal(url, params, "w8JiE7TRnCokASuEpi8xPCzLUxo=") == ""
    changed = {**params, "Digits": "2"}
    assert (
        twilio.signature_refusal(url, changed, "w8JiE7TRnCokASuEpi8xPCzLUxo=") == "bad signature for TWILIO_AUTH_TOKEN"
    )
    assert twilio.signature_refusal(url, params, "") == "no X-Twilio-Signature"
    settings.TWILIO_AUTH_TOKEN = ""
    assert twilio.signature_refusal(url, params, "w8JiE7TRnCokASuEpi8xPCzLUxo=") == "TWILIO_AUTH_TOKEN is not set"


SHARED_KEY_SETTINGS = "key=KS0123456789abcdef0123456789abcdef,algorithm=HMAC_SHA256"
# base64(HMAC-SHA256("shared-secret", url + "AccountSidAC123CallSidCA123Digits1")), computed with hashlib.
SHARED_KEY_SIGNATURE = "73k5Z2y6rc2ZVlbeOKgMdNbM9Q07y7iKGN5O0jO+ERI="


def test_a_callback_a_webhook_rule_signed_with_a_shared_key_is_checked_with_its_secret_and_algorithm(settings):
    params = {"CallSid": "CA123", "Digits": "1", "AccountSid": "AC123"}
    url = "https://example.com/twilio/gather?x=1"
    settings.TWILIO_AUTH_TOKEN = "12345"
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = "shared-secret"
    assert twilio.signature_refusal(url, params, SHARED_KEY_SIGNATURE, SHARED_KEY_SETTINGS) == ""
    refused = "bad signature for TWILIO_WEBHOOK_SHARED_KEY_SECRET"
    assert (
        twilio.signature_refusal(url, {**params, "Digits": "2"}, SHARED_KEY_SIGNATURE, SHARED_KEY_SETTINGS) == refused
    )
    # The auth token's signature does not pass for a SharedKey, nor the SharedKey's without the header.
    token_signature = RequestValidator("12345").compute_signature(url, params)
    assert twilio.signature_refusal(url, params, token_signature, SHARED_KEY_SETTINGS) == refused
    assert twilio.signature_refusal(url, params, SHARED_KEY_SIGNATURE) == "bad signature for TWILIO_AUTH_TOKEN"
    # The algorithm is the one the header names: HMAC-SHA1 with the shared secret is not HMAC-SHA256.
    sha1_settings = SHARED_KEY_SETTINGS.replace("HMAC_SHA256", "HMAC_SHA1")
    assert twilio.signature_refusal(url, params, SHARED_KEY_SIGNATURE, sha1_settings) == refused
    unknown = SHARED_KEY_SETTINGS.replace("HMAC_SHA256", "HMAC_MD5")
    assert twilio.signature_refusal(url, params, SHARED_KEY_SIGNATURE, unknown) == refused


def test_a_shared_key_signature_fails_closed_without_the_secret(settings):
    params = {"CallSid": "CA123", "Digits": "1", "AccountSid": "AC123"}
    url = "https://example.com/twilio/gather?x=1"
    settings.TWILIO_AUTH_TOKEN = "shared-secret"  # not a fallback: the header says a SharedKey signed it
    settings.TWILIO_WEBHOOK_SHARED_KEY_SECRET = ""
    refusal = twilio.signature_refusal(url, params, SHARED_KEY_SIGNATURE, SHARED_KEY_SETTINGS)
    assert refusal == (
        "it is signed with a Webhook SharedKey (X-Twilio-Webhooks-Signature-Settings)"
        " and TWILIO_WEBHOOK_SHARED_KEY_SECRET is not set"
    )


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome", "flag", "retry_after"),
    [
        (201, {"sid": "CA1", "status": "queued"}, {}, Outcome.SENT, "", None),
        (429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "12"}, Outcome.RETRYABLE, "", 12.0),
        (500, {"code": 20500}, {}, Outcome.RETRYABLE, "", None),
        (503, None, {}, Outcome.RETRYABLE, "", None),
        (
            400,
            {"code": 21211, "message": "invalid"},
            {},
            Outcome.PERMANENT,
            "Twilio 21211: invalid 'To' phone number",
            None,
        ),
        (
            400,
            {"code": 21217, "message": "not valid"},
            {},
            Outcome.PERMANENT,
            "Twilio 21217: not a valid phone number",
            None,
        ),
        # The number takes no SMS: that SMS fails, but the phone is not flagged (it still takes calls).
        (400, {"code": 21610, "message": "unsubscribed"}, {}, Outcome.PERMANENT, "", None),
        (400, {"code": 21612, "message": "unroutable"}, {}, Outcome.PERMANENT, "", None),
        (400, {"code": 21614, "message": "not mobile"}, {}, Outcome.PERMANENT, "", None),
        (401, {"code": 20003, "message": "Authenticate"}, {}, Outcome.PERMANENT, "", None),
        (400, {"code": 21606, "message": "From is not SMS-capable"}, {}, Outcome.PERMANENT, "", None),
        (201, {"no": "sid"}, {}, Outcome.RETRYABLE, "", None),
    ],
)
def test_twilio_answers_are_classified(status, body, headers, outcome, flag, retry_after):
    result = twilio.classify(status, body, headers)
    assert (result.outcome, result.flag, result.retry_after) == (outcome, flag, retry_after)


@pytest.mark.parametrize(
    ("status", "code", "meaning"),
    [
        ("queued", "", ("accepted", "SMS queued", "")),
        ("sent", "", ("accepted", "SMS sent", "")),
        ("received", "", None),
        ("delivered", "", ("delivered", "delivered", "")),
        (
            "undelivered",
            "30005",
            (
                "refused",
                "SMS undelivered (Twilio error 30005: unknown destination handset)",
                "Twilio 30005: unknown destination handset",
            ),
        ),
        (
            "undelivered",
            "30006",
            ("refused", "SMS undelivered (Twilio error 30006: landline or unreachable carrier)", ""),
        ),
        (
            "undelivered",
            "30004",
            (
                "refused",
                "SMS undelivered (Twilio error 30004: message blocked (the recipient opted out, a do-not-disturb list"
                " or carrier filtering))",
                "",
            ),
        ),
        (
            "failed",
            "21610",
            ("refused", "SMS failed (Twilio error 21610: the recipient unsubscribed (replied STOP))", ""),
        ),
        ("undelivered", "30003", ("not_reached", "SMS undelivered (Twilio error 30003: see Twilio)", "")),
        ("undelivered", "30007", ("refused", "SMS undelivered (Twilio error 30007: see Twilio)", "")),
        ("failed", "", ("refused", "SMS failed", "")),
    ],
)
def test_sms_status_callbacks_are_classified(status, code, meaning):
    assert twilio.sms_status_report(status, code) == meaning


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        ("initiated", ("accepted", "call initiated")),
        ("ringing", ("accepted", "call ringing")),
        ("in-progress", ("accepted", "call in-progress")),
        ("answered", None),
        ("completed", ("delivered", "call completed")),
        ("busy", ("not_reached", "call busy")),
        ("no-answer", ("not_reached", "call no-answer")),
        ("failed", ("not_reached", "call failed")),
        ("canceled", ("not_reached", "call canceled")),
    ],
)
def test_call_status_callbacks_are_classified(status, meaning):
    assert twilio.call_status_report(status) == meaning


def test_the_sms_and_call_forms():
    assert sms_form(to="+1", from_="+2", body="hi", status_callback="https://x/s") == {
        "To": "+1",
        "From": "+2",
        "Body": "hi",
        "StatusCallback": "https://x/s",
    }
    form = call_form(to="+1", from_="+2", url="https://x/t", status_callback="https://x/s", timeout=30)
    assert form["Url"] == "https://x/t" and form["Method"] == "POST" and form["Timeout"] == "30"
    # Called back when dialling starts (proof that Twilio has the call) and when the call ends.
    assert form["StatusCallbackEvent"] == ["initiated", "completed"]


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("+14155550123", "+14155550100"),
        ("+442071234567", "+442071838750"),
        ("+8613800138000", "+442071838750"),  # no number in China: the first of the list
    ],
)
def test_the_caller_id_is_the_one_in_the_callees_country(to, expected):
    assert caller_id_for(to, ["+442071838750", "+14155550100"]) == expected
    assert caller_id_for(to, []) == ""


def test_the_twiml_escapes_the_text_and_wraps_it_in_a_one_digit_gather(settings):
    settings.TWILIO_SAY_LANGUAGE = "zh-CN"
    settings.TWILIO_SAY_VOICE = "Polly.Zhiyu"
    root = ElementTree.fromstring(  # noqa: S314 (built by us)
        twiml_message(text="A <b> & C", gather_url="https://x/g", again_url="https://x/t?again=1")
    )
    gather = root.find("Gather")
    assert gather.attrib["numDigits"] == "1"
    say = gather.find("Say")
    assert (say.text, say.attrib) == ("A <b> & C", {"language": "zh-CN", "voice": "Polly.Zhiyu"})
    assert root.find("Redirect").text == "https://x/t?again=1"
    end = ElementTree.fromstring(twiml_goodbye("Bye"))  # noqa: S314
    assert [child.tag for child in end] == ["Say", "Hangup"]


def test_the_twiml_of_a_text_with_control_characters_is_well_formed_xml():
    # The rendered voice text has none, but a text kept on an older delivery may.
    call = twiml_message(text="\x1b[31mERROR\x1b[0m pay\x07ment", gather_url="https://x/g", again_url=None)
    assert ElementTree.fromstring(call).find("Gather/Say").text == "ERROR pay ment"  # noqa: S314 (built by us)
    assert ElementTree.fromstring(twiml_goodbye("Bye\x0b\x1f now")).find("Say").text == "Bye now"  # noqa: S314


def test_the_vcard_lists_each_number():
    card = vcard(["+14155550100"], name="On-call, alerts")
    assert card == (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:On-call\\, alerts\r\nN:On-call\\, alerts;;;;\r\nORG:On-call\\, alerts\r\n"
        "TEL;TYPE=VOICE:+14155550100\r\nEND:VCARD\r\n"
    )


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("+86 138 0013 8000", None, "+8613800138000"),
        ("13800138000", "CN", "+8613800138000"),
        ("4155550123", "US", "+14155550123"),
    ],
)
def test_phone_numbers_are_stored_in_e164(settings, value, region, expected):
    settings.PHONE_DEFAULT_REGION = region
    assert phone_normalize(value) == expected


@pytest.mark.parametrize("value", ["4155550123", "+1 555", "", "+999 1234"])
def test_impossible_numbers_are_refused(settings, value):
    settings.PHONE_DEFAULT_REGION = None
    with pytest.raises(ApplicationError) as caught:
        phone_normalize(value)
    assert caught.value.field == "phone"


# -- FCM, APNs, Web Push -----------------------------------------------------------------------------------------


def fcm_error(status: int, code: str, message: str = "") -> dict:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}] if code else []
    return {"error": {"code": status, "message": message, "status": "X", "details": details}}


@pytest.mark.parametrize(
    ("status", "body", "outcome", "gone"),
    [
        (200, {"name": "projects/p/messages/1"}, Outcome.SENT, False),
        (404, fcm_error(404, "UNREGISTERED"), Outcome.PERMANENT, True),
        (403, fcm_error(403, "SENDER_ID_MISMATCH"), Outcome.PERMANENT, False),  # our project is wrong
        (
            400,
            fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
            Outcome.PERMANENT,
            True,
        ),
        (400, fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload"), Outcome.PERMANENT, False),
        (429, fcm_error(429, "QUOTA_EXCEEDED"), Outcome.RETRYABLE, False),
        (503, fcm_error(503, "UNAVAILABLE"), Outcome.RETRYABLE, False),
        (500, fcm_error(500, "INTERNAL"), Outcome.RETRYABLE, False),
        (401, fcm_error(401, ""), Outcome.RETRYABLE, False),
        (401, fcm_error(401, "THIRD_PARTY_AUTH_ERROR"), Outcome.PERMANENT, False),
    ],
)
def test_fcm_answers_are_classified(status, body, outcome, gone):
    result = fcm.classify(1, status, body, {})
    assert (result.outcome, result.gone) == (outcome, gone)


def test_the_fcm_message_is_high_priority_with_string_data():
    body = fcm.fcm_message("tok", MESSAGE)["message"]
    assert body["token"] == "tok"
    assert body["android"]["ttl"] == "60s"
    assert body["android"]["notification"]["channel_id"] == "oncall_critical"
    assert all(isinstance(value, str) for value in body["data"].values())


@pytest.mark.parametrize(
    ("status", "reason", "outcome", "gone"),
    [
        (200, None, Outcome.SENT, False),
        (410, "Unregistered", Outcome.PERMANENT, True),
        (410, "ExpiredToken", Outcome.PERMANENT, True),
        (400, "BadDeviceToken", Outcome.PERMANENT, False),  # the other environment than APNS_API_URL's, or malformed
        (400, "DeviceTokenNotForTopic", Outcome.PERMANENT, False),  # our APNS_TOPIC is wrong
        (400, "TopicDisallowed", Outcome.PERMANENT, False),
        (400, "BadPriority", Outcome.PERMANENT, False),
        (403, "ExpiredProviderToken", Outcome.RETRYABLE, False),
        (403, "InvalidProviderToken", Outcome.PERMANENT, False),
        (413, "PayloadTooLarge", Outcome.PERMANENT, False),
        (429, "TooManyRequests", Outcome.RETRYABLE, False),
        (503, "ServiceUnavailable", Outcome.RETRYABLE, False),
    ],
)
def test_apns_answers_are_classified(status, reason, outcome, gone):
    result = apns.classify(1, status, {"reason": reason} if reason else None, {"apns-id": "A"})
    assert (result.outcome, result.gone) == (outcome, gone)


def test_critical_alerts_can_be_turned_off():
    assert apns.apns_payload(MESSAGE, critical_alerts=True)["aps"]["interruption-level"] == "critical"
    payload = apns.apns_payload(MESSAGE, critical_alerts=False)
    assert (payload["aps"]["interruption-level"], payload["aps"]["sound"]) == ("time-sensitive", "default")
    assert payload["incident_id"] == "7"


# Within the push slots' raw limits (title 200 bytes, body 1800), but JSON doubles every quote and backslash.
ESCAPED = dataclasses.replace(
    MESSAGE, title='"db" \\ ' * 28, body='\\"' * 900, url="https://oncall.example.test/incidents/7/"
)


def test_an_apns_payload_whose_escaping_would_pass_4096_bytes_has_its_body_shortened():
    payload = apns.apns_payload(ESCAPED, critical_alerts=True)
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")  # as apns.push() sends
    assert 4000 < len(encoded) <= apns.PAYLOAD_LIMIT
    alert = payload["aps"]["alert"]
    assert alert["title"] == ESCAPED.title
    assert alert["body"].endswith("…") and ESCAPED.body.startswith(alert["body"][:-1])
    assert apns.apns_payload(MESSAGE, critical_alerts=True)["aps"]["alert"]["body"] == MESSAGE.body


def test_a_web_push_record_whose_escaping_would_pass_4096_bytes_has_its_body_shortened():
    payload = webpush.webpush_payload(ESCAPED)
    assert 3900 < len(payload) <= webpush.RECORD_LIMIT - 103  # aes128gcm's header, tag and padding delimiter
    document = json.loads(payload)
    assert document["title"] == ESCAPED.title
    assert document["body"].endswith("…") and ESCAPED.body.startswith(document["body"][:-1])
    assert json.loads(webpush.webpush_payload(MESSAGE))["body"] == MESSAGE.body


def test_an_fcm_payload_whose_escaping_would_pass_4096_bytes_has_its_body_shortened():
    # A title and body in Chinese, each within its slot's bytes (200, 1800): requests writes JSON with non-ASCII
    # escaped, 6 bytes a character, and the notification passes 4096 bytes unless shortened.
    message = dataclasses.replace(MESSAGE, title="告" * 66, body="告警" * 300)
    sent = fcm.fcm_message("token", message)["message"]
    assert 3800 < len(json.dumps({"notification": sent["notification"], "data": sent["data"]})) <= fcm.PAYLOAD_LIMIT
    body = sent["notification"]["body"]
    assert body.endswith("…") and message.body.startswith(body[:-1])
    assert fcm.fcm_message("token", MESSAGE)["message"]["notification"]["body"] == MESSAGE.body


def test_a_title_is_shortened_too_when_the_body_is_not_enough():
    huge = dataclasses.replace(MESSAGE, title='"' * 3000, body="x")
    shortened = push.shortened(huge, size=lambda m: len(json.dumps([m.title, m.body])), limit=1000)
    assert shortened.body == "…" and shortened.title.endswith("…") and len(json.dumps([shortened.title, "…"])) <= 1000


@pytest.mark.parametrize(
    ("status", "outcome", "gone"),
    [
        (201, Outcome.SENT, False),
        (202, Outcome.SENT, False),
        (404, Outcome.PERMANENT, True),
        (410, Outcome.PERMANENT, True),
        (413, Outcome.PERMANENT, False),
        (403, Outcome.PERMANENT, False),
        (429, Outcome.RETRYABLE, False),
        (502, Outcome.RETRYABLE, False),
    ],
)
def test_web_push_answers_are_classified(status, outcome, gone):
    result = webpush.classify(1, status, {})
    assert (result.outcome, result.gone) == (outcome, gone)


def test_the_web_push_request_is_encrypted_and_vapid_signed(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    settings.WEBPUSH_VAPID_PRIVATE_KEY = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    receiver = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = receiver.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    subscription = {
        "endpoint": "https://push.example.test/send/1",
        "keys": {
            "p256dh": base64.urlsafe_b64encode(point).rstrip(b"=").decode(),
            "auth": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),
        },
    }
    url, headers, body = webpush.webpush_request(subscription, MESSAGE, now=1_700_000_000)
    assert url == "https://push.example.test/send/1"
    assert headers["Content-Encoding"] == "aes128gcm" and headers["TTL"] == "60" and headers["Topic"] == "incident-7"
    assert (
        headers["Authorization"].startswith("vapid t=")
        and f"k={webpush.vapid_public_key()}" in headers["Authorization"]
    )
    assert b"db down" not in body and len(body) > 86


def test_a_push_is_sent_when_any_device_took_it():
    results = [
        DeviceResult.permanent(1, "android", "gone", gone=True),
        DeviceResult.retryable(2, "ios", "503"),
        DeviceResult.sent(3, "web", "loc"),
    ]
    combined = combine(results)
    assert (combined.outcome, combined.gone_devices, combined.pushed_devices) == (Outcome.SENT, (1,), (3,))


def test_a_push_is_retried_when_a_failure_may_pass_and_permanent_otherwise():
    retry = combine([DeviceResult.permanent(1, "ios", "bad"), DeviceResult.retryable(2, "web", "429", 60.0)])
    assert (retry.outcome, retry.retry_after) == (Outcome.RETRYABLE, 60.0)
    permanent = combine([DeviceResult.permanent(1, "ios", "bad key")])
    assert permanent.outcome == Outcome.PERMANENT and "bad key" in permanent.error


# -- email tracking ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "reason", "soft", "kind", "flags"),
    [
        ("delivered", None, False, "delivered", False),
        ("bounced", "bounced", False, "refused", True),
        ("bounced", "bounced", True, "refused", False),
        ("rejected", "invalid", False, "refused", True),
        ("rejected", "spam", False, "refused", False),
        ("failed", None, False, "refused", False),
        ("opened", None, False, None, False),
        ("deferred", None, False, None, False),
    ],
)
def test_email_tracking_events_are_classified(event, reason, soft, kind, flags):
    report = email_event_report(event_type=event, reject_reason=reason, description="why", esp="Postmark", soft=soft)
    assert (report.kind if report else None, bool(report and report.flag)) == (kind, flags)
