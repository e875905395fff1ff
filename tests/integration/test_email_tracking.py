"""Email through an ESP (django-anymail's Postmark backend against the fake Postmark API) and the ESP's tracking
webhook, authenticated with HTTP basic auth: delivered, hard and soft bounces, refusals; and a webhook without a
configured secret or with the wrong one changes nothing."""

from __future__ import annotations

import base64

import pytest

from channels_app.models import Delivery
from oncall.models import Incident, User
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import later

pytestmark = pytest.mark.django_db(transaction=True)

HOOK = "/hooks/anymail/postmark/tracking/"
SECRET = "postmark:hook-secret"


@pytest.fixture
def postmark(settings, fake_providers):
    fake_providers.postmark_tokens.add("pm-server-token")
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "pm-server-token",
        "POSTMARK_API_URL": fake_providers.url("/postmark/"),
        "WEBHOOK_SECRET": SECRET,
    }
    return fake_providers


@pytest.fixture
def eve(clock):
    return make_user("eve", first_name="Eve")


@pytest.fixture
def key(eve):
    channel = make_channel()
    make_rule(channel, [{"people": [eve], "methods": ["email"]}])
    return make_integration(channel=channel)[1]


def hook(client, body: dict, *, secret: str | None = SECRET):
    headers = {}
    if secret is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(secret.encode()).decode()
    return client.post(HOOK, data=body, content_type="application/json", **headers)


def delivered(message_id: str) -> dict:
    return {
        "RecordType": "Delivery",
        "MessageID": message_id,
        "Recipient": "eve@example.com",
        "DeliveredAt": "2026-03-02T09:00:05Z",
        "Details": "Test delivery webhook details",
        "Tag": "",
        "ServerID": 1,
        "Metadata": {},
    }


def bounced(message_id: str, kind: str = "HardBounce") -> dict:
    return {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": kind,
        "TypeCode": 1,
        "MessageID": message_id,
        "Email": "eve@example.com",
        "BouncedAt": "2026-03-02T09:00:05Z",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Tag": "",
        "Metadata": {},
    }


def test_the_email_goes_to_the_esp_and_its_message_id_is_kept(client, clock, postmark, key):
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    [sent] = postmark.received("/postmark/")
    assert sent.json["To"] == "eve@example.com"
    assert sent.json["HtmlBody"] and sent.json["TextBody"]
    delivery = Delivery.objects.get()
    assert delivery.status == "sent" and len(delivery.provider_id) == 36


def test_the_delivered_event_marks_the_delivery_delivered(client, clock, postmark, key):
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    delivery = Delivery.objects.get()
    response = hook(client, delivered(delivery.provider_id))
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == ("delivered", clock.current)
    assert delivery.attempt_log[-1]["callback"] == "delivered"


def test_a_hard_bounce_fails_the_delivery_and_flags_the_address(client, clock, postmark, key, eve):
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    delivery = Delivery.objects.get()
    assert hook(client, bounced(delivery.provider_id)).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    eve.refresh_from_db()
    assert eve.email_flagged.startswith("bounced (Postmark): The server was unable to deliver")
    assert eve.reachable_email is None
    entry = Incident.objects.get().timeline.filter(kind="notify_failed").last()
    assert "email bounced" in entry.message and "flagged" in entry.message
    # The next page skips the address and says why.
    push(client, key, {"title_rule": "cpu", "event_status": "Warning"})
    skipped = Incident.objects.get(title="cpu").timeline.get(kind="notify_failed")
    assert skipped.message.startswith("Skipped Eve (email): email address flagged: bounced (Postmark)")


def test_a_soft_bounce_fails_the_delivery_but_keeps_the_address(client, clock, postmark, key, eve):
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    delivery = Delivery.objects.get()
    hook(client, bounced(delivery.provider_id, "SoftBounce"))
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    eve.refresh_from_db()
    assert eve.email_flagged == ""


def test_an_address_the_esp_refuses_fails_at_once_and_is_flagged(client, clock, postmark, key, eve):
    postmark.postmark_inactive.add("eve@example.com")
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    eve.refresh_from_db()
    assert eve.email_flagged.startswith("refused by the mail server")


def test_an_esp_outage_is_retried(client, clock, postmark, key):
    postmark.fail_next("/postmark", status=500, json={"ErrorCode": 500, "Message": "Internal error"})
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    assert Delivery.objects.get().status == "pending"
    later(clock, seconds=30)
    assert Delivery.objects.get().status == "sent"


@pytest.mark.parametrize("secret", [None, "postmark:wrong"])
def test_a_webhook_without_the_right_credentials_changes_nothing(client, clock, postmark, key, eve, secret):
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    delivery = Delivery.objects.get()
    response = hook(client, bounced(delivery.provider_id), secret=secret)
    assert response.status_code in (400, 401, 403)
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    eve.refresh_from_db()
    assert eve.email_flagged == ""


def test_without_a_configured_secret_the_webhook_is_closed(client, clock, postmark, key, settings):
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}
    delivery = Delivery.objects.get()
    response = hook(client, delivered(delivery.provider_id), secret=None)
    assert response.status_code == 403
    assert Delivery.objects.get().status == "sent"


def test_events_about_unknown_messages_are_accepted_and_ignored(client, clock, postmark):
    assert hook(client, delivered("00000000-0000-0000-0000-000000000000")).status_code == 200
    assert Delivery.objects.count() == 0


def _brevo(event: str, reason: str) -> dict:
    return {"event": event, "email": "eve@example.com", "message-id": "msg-1@esp", "reason": reason, "ts_epoch": 1}


def _sendgrid(kind: str, reason: str) -> list[dict]:
    return [
        {
            "event": "bounce",
            "type": kind,
            "email": "eve@example.com",
            "smtp-id": "<msg-1@esp>",
            "reason": reason,
            "timestamp": 1772442005,
            "anymail_id": "msg-1@esp",
        }
    ]


@pytest.mark.parametrize(
    ("esp", "body", "flagged"),
    [
        ("brevo", _brevo("soft_bounce", "mailbox full"), ""),
        ("brevo", _brevo("hard_bounce", "no such user"), "bounced (Brevo): no such user"),
        ("sendgrid", _sendgrid("blocked", "451 4.7.1 temporarily deferred"), ""),
        ("sendgrid", _sendgrid("bounce", "550 5.1.1 no such user"), "bounced (SendGrid): 550 5.1.1 no such user"),
        ("postmark", {**bounced("msg-1@esp", "VirusNotification"), "Description": "virus"}, ""),
    ],
    ids=["brevo-soft", "brevo-hard", "sendgrid-blocked", "sendgrid-bounce", "postmark-virus"],
)
def test_only_a_hard_bounce_of_the_address_flags_it_whichever_esp_reports_it(
    client, clock, key, eve, settings, esp, body, flagged
):
    """anymail reports a full mailbox, a receiver's temporary block and a virus as a bounce too; each fails that
    email, but only a bounce that says the address is bad keeps the person from email pages."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    Delivery.objects.update(provider_id="msg-1@esp", status="sent")
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    response = client.post(
        f"/hooks/anymail/{esp}/tracking/", data=body, content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200
    assert Delivery.objects.get().status == "failed"
    eve.refresh_from_db()
    assert eve.email_flagged == flagged


def test_a_sparkpost_soft_bounce_does_not_flag_the_address(client, clock, settings):
    """SparkPost wraps its event ({"msys": {"message_event": {...}}}); a mailbox-full bounce (class 22) fails the
    email and leaves the address alone, as the other soft bounces do (docs/people.md)."""
    eve = make_user("eve", first_name="Eve")
    channel = make_channel()
    make_rule(channel, [{"people": [eve], "methods": ["email"]}])
    key = make_integration(channel=channel)[1]
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    push(client, key, {"title_rule": "disk full", "event_status": "Warning"})
    Delivery.objects.update(provider_id="msg-1@esp", status="sent")
    body = [
        {
            "msys": {
                "message_event": {
                    "type": "bounce",
                    "bounce_class": "22",
                    "event_id": "92356927693813856",
                    "transmission_id": "msg-1@esp",
                    "raw_rcpt_to": "eve@example.com",
                    "rcpt_to": "eve@example.com",
                    "raw_reason": "552 5.2.2 Mailbox full",
                    "reason": "552 5.2.2 Mailbox full",
                    "timestamp": "1772442005",
                }
            }
        }
    ]
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    response = client.post(
        "/hooks/anymail/sparkpost/tracking/", data=body, content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200
    assert Delivery.objects.get().status == "failed"
    assert User.objects.get(pk=eve.pk).email_flagged == "", "a full mailbox flagged the address"
