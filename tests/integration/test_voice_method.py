"""The voice method's answers from the fake Twilio: each class of error, retry then success, exhaustion and the
daily quota. (The keypad and the call status callbacks: test_voice_keypad.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels_app.models import Delivery
from channels_app.preferences import person_preferences_set
from oncall.models import Contact, Incident, Source
from oncall.services import lifecycle
from oncall.services.contacts import contact_code_create, contact_flag, contact_verify
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import TWILIO_SID, configure_twilio, later, twilio_callback

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+442071234567"
CALL_SID = "CA" + "c" * 32


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


def test_a_call_twilio_placed_before_the_connection_dropped_is_not_placed_again(client, clock, twilio, key):
    """Twilio placed the call, but the connection was reset before its answer reached us (not a timeout). Its
    status callbacks about that call, coming while the retry waits, show it has it: the call is recorded as
    placed, and the person is not called a second time."""
    twilio.drop_next("/twilio")
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "could not reach" in delivery.error
    [placed] = twilio.received("/twilio/")
    url = placed.field("StatusCallback")
    call = {"AccountSid": TWILIO_SID, "CallSid": CALL_SID, "From": placed.field("From"), "To": PHONE}
    assert twilio_callback(client, url, {**call, "CallStatus": "initiated"}).status_code == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id, delivery.next_attempt_at) == ("sent", CALL_SID, None)
    assert twilio_callback(client, url, {**call, "CallStatus": "completed", "CallDuration": "40"}).status_code == 204
    later(clock, seconds=30)
    later(clock, seconds=120)
    assert len(twilio.received("/twilio/")) == 1, "the person was called twice for one page"
    assert Delivery.objects.get().status == "delivered"


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


# -- retries no longer needed, and people no longer reachable by the number the page was written for --------------

OUTAGE = {"status": 500, "json": {"code": 20500, "message": "Internal Server Error"}}
NEW_PHONE = "+442071234599"


@pytest.fixture
def reassigned_to_val(client, clock, twilio, val):
    """val is given the incident (a direct page, by her own preferences); the call meets a Twilio outage."""
    boss = make_user("boss")  # no phone: level 1 calls nobody
    person_preferences_set(person=val, preferences={"Critical": ["voice"]})
    channel = make_channel()
    make_rule(channel, [{"people": [boss], "methods": ["voice"]}])
    push(client, make_integration(channel=channel)[1], event())
    twilio.fail_next("/twilio", **OUTAGE)
    incident = lifecycle.incident_reassign(
        incident=Incident.objects.get(), by=boss, people=[val], source=Source.WEB, now=clock.current
    )
    delivery = Delivery.objects.get(method="voice")
    assert (delivery.event, delivery.status) == ("assigned", "pending")
    return incident


def test_a_direct_page_is_not_retried_after_the_incident_is_acknowledged(clock, twilio, val, reassigned_to_val):
    clock.advance(seconds=5)
    lifecycle.incident_acknowledge(incident=reassigned_to_val, by=val, source=Source.WEB, now=clock.current)
    later(clock, minutes=1)
    assert len(twilio.received("/twilio/")) == 1
    assert Delivery.objects.get(method="voice").status == "cancelled"


def test_a_direct_page_is_not_retried_after_the_incident_is_closed(clock, twilio, val, reassigned_to_val):
    clock.advance(seconds=5)
    lifecycle.incident_resolve(incident=reassigned_to_val, by=val, source=Source.WEB, now=clock.current)
    later(clock, minutes=1)
    assert len(twilio.received("/twilio/")) == 1
    assert Delivery.objects.get(method="voice").status == "cancelled"


@pytest.fixture
def failed_first_call(client, clock, twilio, key):
    twilio.fail_next("/twilio", **OUTAGE)
    push(client, key, event())
    assert Delivery.objects.get().status == "pending"  # the retry is due in 30 s
    return Incident.objects.get()


def test_a_retry_stops_when_the_incident_is_acknowledged_a_second_time(clock, twilio, val, failed_first_call):
    incident = failed_first_call
    clock.advance(seconds=5)
    lifecycle.incident_acknowledge(incident=incident, by=val, source=Source.WEB, now=clock.current)
    clock.advance(seconds=5)
    twilio.fail_next("/twilio", **OUTAGE)
    lifecycle.incident_unacknowledge(incident=incident, by=val, source=Source.WEB, now=clock.current)
    assert Delivery.objects.get(escalation_run=2).status == "pending"
    clock.advance(seconds=5)
    lifecycle.incident_acknowledge(incident=incident, by=val, source=Source.WEB, now=clock.current)
    later(clock, minutes=1)
    assert len(twilio.received("/twilio/")) == 2
    assert list(Delivery.objects.order_by("pk").values_list("status", flat=True)) == ["cancelled", "cancelled"]


def test_a_retry_does_not_call_the_person_the_incident_was_reassigned_away_from(clock, twilio, failed_first_call):
    carol = make_user("carol")  # email only: nothing to Twilio
    clock.advance(seconds=5)
    lifecycle.incident_reassign(
        incident=failed_first_call, by=carol, people=[carol], source=Source.WEB, now=clock.current
    )
    later(clock, minutes=1)
    assert len(twilio.received("/twilio/")) == 1
    delivery = Delivery.objects.get(method="voice")
    assert (delivery.status, delivery.error) == (
        "cancelled",
        "The incident was reassigned since; the people it names are notified anew.",
    )


def test_a_retry_goes_to_the_number_the_person_verified_since(clock, twilio, val, failed_first_call):
    _row, code = contact_code_create(person=val, contact=Contact.PHONE, target=NEW_PHONE, now=clock.current)
    contact_verify(person=val, contact=Contact.PHONE, code=code, now=clock.current)
    later(clock, seconds=30)
    dialled = [call.field("To") for call in twilio.received("/twilio/") if call.path.endswith("Calls.json")]
    assert dialled == [PHONE, NEW_PHONE]
    delivery = Delivery.objects.get(method="voice")
    assert (delivery.status, delivery.address, delivery.attempts) == ("sent", NEW_PHONE, 2)


def test_a_retry_does_not_call_a_number_flagged_since(clock, twilio, val, failed_first_call):
    contact_flag(person_id=val.pk, contact="phone", address=PHONE, reason="Twilio 21211: invalid number")
    later(clock, seconds=30)
    assert len(twilio.received("/twilio/")) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == ("failed", "phone number flagged: Twilio 21211: invalid number")
    entry = failed_first_call.timeline.get(kind="notify_failed")
    assert entry.message == "Voice call to val not sent: phone number flagged: Twilio 21211: invalid number."


def test_a_retry_does_not_call_a_person_deactivated_since(clock, twilio, val, failed_first_call):
    val.is_active = False
    val.save(update_fields=["is_active"])
    later(clock, seconds=30)
    assert len(twilio.received("/twilio/")) == 1
    assert Delivery.objects.get().status == "failed"
    entry = failed_first_call.timeline.get(kind="notify_failed")
    assert entry.message == "Voice call to val not sent: person is no longer active."
