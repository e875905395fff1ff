"""The call's script fetch and its key presses name the call (Twilio's CallSid, sent on every request to the call's
Url and to its Gather action), as its status callbacks do. So a call Twilio placed although its answer to our
request never reached us is settled by the person answering it and is not placed a second time, and a press on an
earlier call is told apart from one on the call the delivery recorded."""

from __future__ import annotations

import pytest
from django.conf import settings

from channels_app.base import SendResult
from channels_app.models import Delivery
from channels_app.outcomes import delivery_record_outcome
from oncall.models import Incident, Progress
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import TWILIO_SID, configure_twilio, later, twilio_callback

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {"title_rule": "Database down", "event_status": "Critical", "alert_key": "db"}
VERA = "+14155550123"
CALL_1 = "CA" + "7" * 32  # the call Twilio placed although its answer to our request never arrived
SLOW = {"status": 500, "json": {"code": 20500, "message": "slow"}, "delay": 2.5}


@pytest.fixture
def paging_vera(client, clock, settings, fake_providers):
    """A rule that calls Vera (again after 30 s while she is not reached); returns what pages her."""
    configure_twilio(settings, fake_providers)
    vera = make_user("vera", first_name="Vera", phone=VERA)
    channel = make_channel("Payments")
    make_rule(channel, [{"people": [vera], "methods": ["voice"], "after": 30}])
    settings.HTTP_TOTAL_TIMEOUT = 1
    key = make_integration(channel=channel)[1]
    return lambda: push(client, key, EVENT)


@pytest.fixture
def unanswered_call(fake_providers, paging_vera):
    """Vera's call request timed out on our side, but Twilio placed the call (CALL_1)."""
    fake_providers.fail_next("/twilio", **SLOW)
    paging_vera()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.provider_id) == ("pending", 1, "")
    assert delivery.attempt_log[-1].get("unanswered")
    return delivery


def calls_to_vera(fake_providers) -> list:
    return [call for call in fake_providers.received("/twilio/") if call.field("To") == VERA]


def form(call_sid: str | None = CALL_1, **extra) -> dict:
    """What Twilio posts about the call `call_sid` (None: a form without a CallSid)."""
    sid = {"CallSid": call_sid} if call_sid else {}
    return {"AccountSid": TWILIO_SID, **sid, "To": VERA, "CallStatus": "in-progress", **extra}


def hook(delivery: Delivery, path: str) -> str:
    return f"{settings.PUBLIC_URL}/hooks/twilio/voice/{delivery.callback_code}/{path}"


def retry_comes_due(clock) -> None:
    later(clock, seconds=30)
    later(clock, seconds=5)


def called_once_when_the_retry_comes_due(clock, fake_providers) -> Delivery:
    """The retry's time passes; Vera was called once, and the delivery holds that call."""
    retry_comes_due(clock)
    delivery = Delivery.objects.get()
    assert len(calls_to_vera(fake_providers)) == 1, delivery.attempt_log
    assert (delivery.status, delivery.provider_id) == ("delivered", CALL_1)
    return delivery


def completed(client, delivery: Delivery) -> None:
    """Twilio's status callback: the call (CALL_1) completed after 40 s."""
    status = form(CallStatus="completed", CallDuration="40")
    assert twilio_callback(client, hook(delivery, "status/"), status).status_code == 204


def test_a_person_who_answered_and_pressed_9_is_not_called_a_second_time(
    client, clock, fake_providers, unanswered_call
):
    # Vera answers: Twilio fetches the script, she presses 9 to hear it again, and hangs up to open the app.
    assert twilio_callback(client, hook(unanswered_call, "twiml/"), form()).status_code == 200
    assert twilio_callback(client, hook(unanswered_call, "gather/"), form(Digits="9")).status_code == 200
    assert Incident.objects.get().progress == Progress.TRIGGERED

    retry_comes_due(clock)

    delivery = Delivery.objects.get()
    assert len(calls_to_vera(fake_providers)) == 1, delivery.attempt_log
    assert (delivery.status, delivery.attempts, delivery.provider_id) == ("delivered", 1, CALL_1)
    assert delivery.next_attempt_at is None


def test_a_call_whose_script_twilio_fetched_is_not_placed_a_second_time(client, clock, fake_providers, unanswered_call):
    """Twilio fetches the script only once the call is answered. Vera listens to it twice, presses nothing and
    hangs up (to acknowledge in the app)."""
    assert twilio_callback(client, hook(unanswered_call, "twiml/"), form()).status_code == 200
    assert twilio_callback(client, hook(unanswered_call, "twiml/?again=1"), form()).status_code == 200
    called_once_when_the_retry_comes_due(clock, fake_providers)


def test_a_key_press_does_not_keep_the_calls_completed_status_from_settling_it(
    client, clock, fake_providers, unanswered_call
):
    assert twilio_callback(client, hook(unanswered_call, "gather/"), form(Digits="9")).status_code == 200
    completed(client, unanswered_call)
    called_once_when_the_retry_comes_due(clock, fake_providers)


def test_a_press_that_names_no_call_neither_settles_the_attempt_nor_keeps_its_call_from_settling_it(
    client, clock, fake_providers, unanswered_call
):
    """A press whose form has no CallSid cannot say which call it was on; the call's own completed status, which
    names it, still settles the attempt."""
    assert twilio_callback(client, hook(unanswered_call, "gather/"), form(None, Digits="9")).status_code == 200
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.provider_id) == ("pending", "")
    completed(client, unanswered_call)
    called_once_when_the_retry_comes_due(clock, fake_providers)


def test_pressing_1_on_the_unanswered_call_acknowledges_once_even_when_twilio_repeats_the_press(
    client, clock, fake_providers, unanswered_call
):
    for _ in range(2):
        response = twilio_callback(client, hook(unanswered_call, "gather/"), form(Digits="1"))
        assert response.status_code == 200 and b"acknowledged" in response.content

    retry_comes_due(clock)

    incident = Incident.objects.get()
    assert incident.progress == Progress.PROCESSING
    assert incident.timeline.filter(kind="acknowledged").count() == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.provider_id) == ("delivered", 1, CALL_1)
    assert len(calls_to_vera(fake_providers)) == 1


def test_a_press_on_the_earlier_call_does_not_count_for_the_call_the_retry_placed(
    client, clock, fake_providers, unanswered_call
):
    """Call 1's request timed out and nobody answered it within 30 s, so call 2 was placed. Vera picks up call 1
    after all and presses 9 on it: the delivery recorded call 2, which is still ringing and may not reach her; the
    press is kept in the log as about an earlier call and does not mark the delivery delivered."""
    retry_comes_due(clock)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    call_2 = delivery.provider_id

    assert twilio_callback(client, hook(delivery, "gather/"), form(Digits="9")).status_code == 200

    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id) == ("sent", call_2)
    press = delivery.attempt_log[-1]
    assert (press["callback"], press["provider_id"], press["earlier_message"]) == ("delivered", CALL_1, True)
    completed = form(call_2, CallStatus="completed", CallDuration="20")
    assert twilio_callback(client, hook(delivery, "status/"), completed).status_code == 204
    assert Delivery.objects.get().status == "delivered"


def test_a_press_on_the_previous_call_while_the_retry_is_being_sent_does_not_settle_the_retry(
    client, clock, fake_providers, paging_vera
):
    """Call A was recorded and reported busy; while the retry's request is in flight a press about call A arrives.
    It proves nothing about the retry's call: when that request gets no answer, the retry is made again."""
    paging_vera()
    delivery = Delivery.objects.get()
    call_a = delivery.provider_id
    assert twilio_callback(client, hook(delivery, "status/"), form(call_a, CallStatus="busy")).status_code == 204
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=2)  # the retry's request in flight

    assert twilio_callback(client, hook(delivery, "gather/"), form(call_a, Digits="9")).status_code == 200

    delivery.refresh_from_db()
    assert "early_report" not in delivery.state and "provider_seen" not in delivery.state
    delivery = delivery_record_outcome(
        delivery=delivery, result=SendResult.retryable("timed out", detail={"unanswered": True}), now=clock.current
    )
    assert (delivery.status, delivery.attempts) == ("pending", 2)


def test_a_repeated_status_about_the_earlier_call_does_not_keep_the_unanswered_retry_from_settling(
    client, clock, fake_providers, paging_vera
):
    """Call A rang busy; the retry's request timed out although Twilio placed call B. Twilio repeats call A's busy
    status, then reports call B initiated: call B settles the retry and Vera is not called a third time."""
    paging_vera()
    delivery = Delivery.objects.get()
    call_a, call_b = delivery.provider_id, CALL_1
    busy = form(call_a, CallStatus="busy")
    assert twilio_callback(client, hook(delivery, "status/"), busy).status_code == 204
    fake_providers.fail_next("/twilio", **SLOW)
    later(clock, seconds=30)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 2)
    assert delivery.attempt_log[-1].get("unanswered")

    assert twilio_callback(client, hook(delivery, "status/"), busy).status_code == 204
    initiated = form(call_b, CallStatus="initiated")
    assert twilio_callback(client, hook(delivery, "status/"), initiated).status_code == 204
    later(clock, seconds=120)
    later(clock, seconds=5)

    delivery.refresh_from_db()
    assert len(calls_to_vera(fake_providers)) == 2, delivery.attempt_log
    assert (delivery.status, delivery.attempts, delivery.provider_id) == ("sent", 2, call_b)


def test_answering_a_recorded_call_marks_it_delivered_naming_the_call(client, clock, fake_providers, paging_vera):
    paging_vera()
    delivery = Delivery.objects.get()
    assert delivery.status == "sent"
    assert twilio_callback(client, hook(delivery, "twiml/"), form(delivery.provider_id)).status_code == 200
    answered = Delivery.objects.get()
    assert answered.status == "delivered"
    assert (answered.attempt_log[-1]["reason"], answered.attempt_log[-1]["provider_id"]) == (
        "call answered",
        delivery.provider_id,
    )
