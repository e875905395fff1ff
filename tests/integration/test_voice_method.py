"""The voice method's answers from the fake Twilio: each class of error, retry then success, exhaustion and the
daily quota. (The keypad and the call status callbacks: test_voice_keypad.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels_app.models import Delivery
from oncall.models import Incident
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import configure_twilio, later

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+442071234567"


def event(key: str = "api") -> dict:
    return {"title_rule": f"{key} down", "event_status": "Critical", "alert_key": key}


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    return fake_providers


@pytest.fixture
def val(clock):
    return make_user("val", phone=PHONE, time_zone="Europe/London")


@pytest.fixture
def key(val):
    channel = make_channel()
    make_rule(channel, [{"people": [val], "methods": ["voice"]}])
    return make_integration(channel=channel)[1]


def test_the_call_comes_from_the_caller_id_in_the_callees_country(client, clock, twilio, key):
    push(client, key, event())
    [call] = twilio.received("/twilio/")
    assert (call.field("To"), call.field("From")) == (PHONE, "+442071838750")
    assert Delivery.objects.get().state["message"]["voice"].startswith("Critical incident")


def test_a_number_that_cannot_be_called_fails_and_flags_the_phone(client, clock, twilio, key, val):
    twilio.fail_next("/twilio", status=400, json={"code": 21214, "message": "'To' phone number cannot be reached"})
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    val.refresh_from_db()
    assert val.phone_flagged == "Twilio 21214: the number cannot be reached"


def test_a_refused_status_callback_url_places_the_call_again_at_once_without_it(client, clock, twilio, key):
    """Twilio 21609 on a call: the person is still called, straight away, with the keypad but without status
    callbacks, and the delivery says no status report will come."""
    twilio.fail_next(
        "/twilio",
        status=400,
        json={"code": 21609, "message": "The StatusCallback URL is not a valid URL.", "status": 400},
    )
    push(client, key, event())
    refused, placed = twilio.received("/twilio/")
    assert refused.field("StatusCallback") is not None
    assert (placed.field("To"), placed.field("Url")) == (PHONE, refused.field("Url"))
    assert [name for name in placed.form if name.startswith("StatusCallback")] == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.provider_id[:2]) == ("sent", 1, "CA")
    assert "no status report will come" in delivery.attempt_log[-1]["status_callback"]


def test_a_twilio_outage_is_retried_then_the_call_goes_through(client, clock, twilio, key):
    twilio.fail_next("/twilio", status=500, json={"code": 20500, "message": "Internal Server Error"})
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.next_attempt_at) == ("pending", clock.current + timedelta(seconds=30))
    later(clock, seconds=30)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(twilio.received("/twilio/")) == 2


def test_retries_stop_after_the_last_attempt(client, clock, twilio, key):
    twilio.fail_next("/twilio", status=503, text="down", times=10)
    push(client, key, event())
    for wait in (30, 120, 300, 300):
        later(clock, seconds=wait)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert len(twilio.received("/twilio/")) == 4
    assert "failed after 4 attempt(s)" in Incident.objects.get().timeline.get(kind="notify_failed").message


def test_the_daily_voice_quota_stops_calls_and_tells_the_person_once(client, clock, twilio, key, settings, mailoutbox):
    settings.VOICE_DAILY_QUOTA = 1
    for name in ("a", "b", "c"):
        push(client, key, event(name))
    assert len(twilio.received("/twilio/")) == 1
    assert list(Delivery.objects.order_by("pk").values_list("status", flat=True)) == ["sent", "failed", "failed"]
    entry = Incident.objects.get(title="b down").timeline.get(kind="notify_failed")
    assert entry.message == "Voice call to val not sent: quota reached (1 per day, VOICE_DAILY_QUOTA)."
    assert len(mailoutbox) == 1 and "Voice call" in mailoutbox[0].subject


def test_without_twilio_settings_the_call_fails_saying_what_is_missing(client, clock, settings, key):
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert "TWILIO_ACCOUNT_SID" in delivery.error and "TWILIO_VOICE_FROM" in delivery.error
