"""The voice call end to end: alert → call placed at the fake Twilio → TwiML from our endpoint → keypad press,
every callback signed for the public URL; and what a bad signature or an unknown code changes (nothing)."""

from __future__ import annotations

import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.conf import settings

from channels_app.base import SendResult
from channels_app.models import Delivery
from channels_app.outcomes import delivery_record_outcome
from channels_app.preferences import person_preferences_set
from escalation.models import EscalationState
from oncall.models import Incident, Progress
from oncall.services.lifecycle import (
    incident_acknowledge,
    incident_create,
    incident_reassign,
    incident_reopen,
    incident_resolve,
    incident_snooze,
    incident_unacknowledge,
)
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import TWILIO_SID, configure_twilio, later, twilio_callback

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {"title_rule": "Database down", "event_status": "Critical", "alert_key": "db", "labels": {"host": "db-1"}}


@pytest.fixture
def vera(clock):
    return make_user("vera", first_name="Vera", phone="+14155550123")


@pytest.fixture
def page(client, clock, settings, fake_providers, vera):
    """An alert whose rule calls Vera, then Walt after 10 minutes: the call Vera gets, as the fake Twilio saw it."""
    configure_twilio(settings, fake_providers)
    walt = make_user("walt", phone="+14155550124")
    channel = make_channel("Payments")
    make_rule(
        channel, [{"people": [vera], "methods": ["voice"], "after": 10}, {"people": [walt], "methods": ["voice"]}]
    )
    push(client, make_integration(channel=channel)[1], EVENT)
    [call] = fake_providers.wait_for("/twilio/", 1)
    return call


def call_params(call, **extra) -> dict:
    """What Twilio posts about `call`: its CallSid is the one Twilio answered with, which the call's delivery (named
    by the code in the call's URLs) recorded; a status naming another call is about an earlier one."""
    code = call.field("StatusCallback").rstrip("/").split("/")[-2]
    return {
        "AccountSid": TWILIO_SID,
        "CallSid": Delivery.objects.get(callback_code=code).provider_id,
        "From": call.field("From"),
        "To": call.field("To"),
        "CallStatus": "in-progress",
        **extra,
    }


def xml(response) -> ElementTree.Element:
    assert response["Content-Type"] == "application/xml"
    return ElementTree.fromstring(response.content)  # noqa: S314 (our own TwiML, not untrusted input)


def test_the_call_is_placed_with_our_twiml_url_and_status_callback(page, vera):
    delivery = Delivery.objects.get()
    code = delivery.callback_code
    assert len(code) >= 32
    assert page.path == f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
    assert page.headers["content-type"] == "application/x-www-form-urlencoded"
    assert page.form == {
        "To": ["+14155550123"],
        "From": ["+14155550100"],  # the caller ID in the callee's country, not the first of the list
        "Url": [f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/twiml/"],
        "Method": ["POST"],
        "StatusCallback": [f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/status/"],
        "StatusCallbackMethod": ["POST"],
        # When dialling starts (proof Twilio has the call) and when it ends.
        "StatusCallbackEvent": ["initiated", "completed"],
        "Timeout": ["45"],
    }
    assert (delivery.status, delivery.provider_id[:2]) == ("sent", "CA")


def test_the_twiml_speaks_the_voice_template_inside_a_one_digit_gather(client, page):
    response = twilio_callback(client, page.field("Url"), call_params(page))
    assert response.status_code == 200
    root = xml(response)
    gather = root.find("Gather")
    code = Delivery.objects.get().callback_code
    assert gather.attrib == {
        "numDigits": "1",
        "action": f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/gather/",
        "method": "POST",
        "timeout": "8",
    }
    spoken = " ".join(say.text for say in gather.findall("Say"))
    number = Incident.objects.get().number
    assert f"Critical incident {number} in Payments: Database down." in spoken
    assert "Press 1 to acknowledge" in spoken
    # No key: the message once more (the redirect), whose own fallback is goodbye.
    assert root.find("Redirect").text == f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/twiml/?again=1"


def test_a_title_with_control_characters_is_spoken_in_well_formed_twiml(client, clock, settings, fake_providers, vera):
    """A monitor that puts a log line's colour codes in its title (`\\u001b[31mERROR\\u001b[0m …`) still gets a call
    whose TwiML Twilio can read: invalid XML would be error 12100, an error message instead of the incident, and
    no key to press; Twilio has taken the call by then, so nothing would retry it."""
    configure_twilio(settings, fake_providers)
    channel = make_channel("Payments")
    make_rule(channel, [{"people": [vera], "methods": ["voice"]}])
    title = "\x1b[31mERROR\x1b[0m payment worker\x07 crashed"
    push(client, make_integration(channel=channel)[1], {"title_rule": title, "event_status": "Critical"})
    [call] = fake_providers.wait_for("/twilio/", 1)

    response = twilio_callback(client, call.field("Url"), call_params(call))
    assert response.status_code == 200
    spoken = " ".join(say.text for say in xml(response).find("Gather").findall("Say"))
    assert "Payments: ERROR payment worker crashed." in spoken


def test_pressing_1_acknowledges_as_the_called_person_and_stops_the_escalation(client, clock, page, fake_providers):
    code = Delivery.objects.get().callback_code
    url = f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/gather/"
    response = twilio_callback(client, url, call_params(page, Digits="1"))
    assert response.status_code == 200
    assert "acknowledged" in " ".join(say.text for say in xml(response).findall("Say"))
    assert xml(response).find("Hangup") is not None
    incident = Incident.objects.get()
    assert incident.progress == Progress.PROCESSING
    ack = incident.timeline.get(kind="acknowledged")
    assert (ack.actor.username, ack.source) == ("vera", "voice")
    assert incident.responder_set.get(person__username="vera").acknowledged_at == clock.current
    assert EscalationState.objects.get().status == "stopped"
    assert Delivery.objects.get().status == "delivered"
    later(clock, minutes=15)
    assert len(fake_providers.received("/twilio/")) == 1  # level 2 (Walt) is never called


def test_pressing_2_closes_the_incident(client, page):
    code = Delivery.objects.get().callback_code
    response = twilio_callback(
        client, f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/gather/", call_params(page, Digits="2")
    )
    assert "closed" in " ".join(say.text for say in xml(response).findall("Say"))
    incident = Incident.objects.get()
    assert incident.progress == Progress.CLOSED
    closed = incident.timeline.get(kind="closed")
    assert (closed.actor.username, closed.source) == ("vera", "voice")


def test_pressing_9_repeats_the_message_and_another_key_says_so(client, page):
    code = Delivery.objects.get().callback_code
    gather = f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/gather/"
    again = xml(twilio_callback(client, gather, call_params(page, Digits="9")))
    assert "Database down" in " ".join(say.text for say in again.find("Gather").findall("Say"))
    other = xml(twilio_callback(client, gather, call_params(page, Digits="5")))
    assert other.find("Gather").find("Say").text.startswith("That key does nothing.")
    assert Incident.objects.get().progress == Progress.TRIGGERED


def test_no_input_repeats_the_message_once_then_hangs_up(client, page):
    first = xml(twilio_callback(client, page.field("Url"), call_params(page)))
    again_url = first.find("Redirect").text
    second = xml(twilio_callback(client, again_url, call_params(page)))
    assert "Database down" in second.find("Gather").find("Say").text
    assert second.find("Redirect") is None
    assert [child.tag for child in second] == ["Gather", "Say", "Hangup"]
    assert second.find("Say").text == "No key was pressed. Goodbye."


@pytest.mark.parametrize("signature", ["", "bad-signature", "signed-with-another-token"])
def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(client, page, signature):
    code = Delivery.objects.get().callback_code
    params = call_params(page, Digits="1")
    url = f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/gather/"
    if signature == "signed-with-another-token":
        response = twilio_callback(client, url, params, token="another-token")
    else:
        response = twilio_callback(client, url, params, signature=signature)
    assert response.status_code == 403
    for path in ("twiml", "status"):
        assert twilio_callback(client, url.replace("gather", path), params, signature="x").status_code == 403
    assert Incident.objects.get().progress == Progress.TRIGGERED
    assert Delivery.objects.get().status == "sent"
    assert EscalationState.objects.get().status == "running"


def test_the_signature_is_checked_against_the_public_url_not_the_requests_host(client, page):
    code = Delivery.objects.get().callback_code
    path = f"/hooks/twilio/voice/{code}/gather/"
    params = call_params(page, Digits="1")
    # Signed for the address the request reached (behind a proxy), not the public one Twilio was given: refused.
    response = twilio_callback(client, f"http://testserver{path}", params)
    assert response.status_code == 403
    assert Incident.objects.get().progress == Progress.TRIGGERED


def test_callbacks_are_refused_when_no_auth_token_is_configured(client, settings, page):
    code = Delivery.objects.get().callback_code
    url = f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/gather/"
    settings.TWILIO_AUTH_TOKEN = ""
    assert twilio_callback(client, url, call_params(page, Digits="1"), signature="").status_code == 403
    assert Incident.objects.get().progress == Progress.TRIGGERED


def test_an_unknown_code_answers_politely_and_changes_nothing(client, page):
    base = f"{settings.PUBLIC_URL}/hooks/twilio/voice/not-a-real-code"
    gather = twilio_callback(client, f"{base}/gather/", call_params(page, Digits="1"))
    assert gather.status_code == 200 and xml(gather).find("Hangup") is not None
    status = twilio_callback(client, f"{base}/status/", call_params(page, CallStatus="completed"))
    assert status.status_code == 204
    sms = twilio_callback(client, f"{settings.PUBLIC_URL}/hooks/twilio/sms/nope/status/", {"MessageStatus": "failed"})
    assert sms.status_code == 204
    assert Incident.objects.get().progress == Progress.TRIGGERED
    assert Delivery.objects.get().status == "sent"


def test_a_completed_call_is_delivered(client, page):
    code = Delivery.objects.get().callback_code
    response = twilio_callback(
        client,
        f"{settings.PUBLIC_URL}/hooks/twilio/voice/{code}/status/",
        call_params(page, CallStatus="completed", CallDuration="31"),
    )
    assert response.status_code == 204
    delivery = Delivery.objects.get()
    assert delivery.status == "delivered"
    assert delivery.attempt_log[-1]["callback"] == "delivered"
    assert delivery.attempt_log[-1]["duration"] == "31"


def test_an_unanswered_call_is_made_again_after_the_backoff_then_gives_up(client, clock, page, fake_providers):
    def calls_to_vera():
        return [call for call in fake_providers.received("/twilio/") if call.field("To") == "+14155550123"]

    for attempt, wait in enumerate((30, 120, 300, 300), start=1):
        assert len(calls_to_vera()) == attempt
        response = twilio_callback(client, page.field("StatusCallback"), call_params(page, CallStatus="no-answer"))
        assert response.status_code == 204
        later(clock, seconds=wait)
    delivery = Delivery.objects.get(address="+14155550123")
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert len(calls_to_vera()) == 4
    messages = list(Incident.objects.get().timeline.filter(kind="notify_failed").values_list("message", flat=True))
    assert sum("did not reach them (call no-answer); trying again" in m for m in messages) == 3
    assert any("did not reach them after 4 attempt(s): call no-answer" in m for m in messages)


def test_a_busy_callee_is_called_again_and_then_answers(client, clock, page, fake_providers):
    twilio_callback(client, page.field("StatusCallback"), call_params(page, CallStatus="busy"))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.next_attempt_at) == ("pending", clock.current + timedelta(seconds=30))
    later(clock, seconds=30)
    second = fake_providers.received("/twilio/")[1]
    twilio_callback(client, second.field("StatusCallback"), call_params(second, CallStatus="completed"))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert [entry.get("callback") or entry["outcome"] for entry in delivery.attempt_log] == [
        "sent",
        "not_reached",
        "sent",
        "delivered",
    ]


def test_no_second_call_after_someone_acknowledged(client, clock, page, fake_providers, vera):
    twilio_callback(client, page.field("StatusCallback"), call_params(page, CallStatus="no-answer"))
    incident_acknowledge(incident=Incident.objects.get(), by=vera, source="web", now=clock.current)
    later(clock, minutes=1)
    assert len(fake_providers.received("/twilio/")) == 1
    assert Delivery.objects.get().status == "cancelled"


def calls_to_vera(fake_providers) -> list:
    return [call for call in fake_providers.received("/twilio/") if call.field("To") == "+14155550123"]


@pytest.mark.parametrize("how", ["unack", "snooze_ran_out"])
def test_no_second_call_after_the_incident_is_acknowledged_again(client, clock, page, fake_providers, how):
    """After an unacknowledge (or a snooze that ran out) Vera is called anew; the second acknowledgement stops the
    retry of that new call, though the incident's ack_time stays the first one."""
    walt = make_user("walt2")
    clock.advance(seconds=5)
    first_ack = clock.current
    incident_acknowledge(incident=Incident.objects.get(), by=walt, source="web", now=clock.current)
    if how == "unack":
        clock.advance(seconds=5)
        incident_unacknowledge(incident=Incident.objects.get(), by=walt, source="web", now=clock.current)
    else:
        incident_snooze(incident=Incident.objects.get(), by=walt, minutes=1, source="web", now=clock.current)
        later(clock, seconds=61)  # the ticker wakes it: Triggered again, level 1 calls again
    calls = calls_to_vera(fake_providers)
    assert len(calls) == 2
    twilio_callback(client, calls[-1].field("StatusCallback"), call_params(calls[-1], CallStatus="no-answer"))
    clock.advance(seconds=2)
    incident_acknowledge(incident=Incident.objects.get(), by=walt, source="web", now=clock.current)
    later(clock, seconds=30)
    later(clock, seconds=30)
    assert len(calls_to_vera(fake_providers)) == 2
    assert Delivery.objects.get(escalation_run=2).status == "cancelled"
    assert Incident.objects.get().ack_time == first_ack


@pytest.mark.parametrize("how", ["unack", "reopen"])
def test_a_restarted_escalation_does_not_also_call_with_the_previous_runs_retry(
    client, clock, page, fake_providers, how
):
    twilio_callback(client, page.field("StatusCallback"), call_params(page, CallStatus="no-answer"))
    someone = make_user("someone")
    clock.advance(seconds=5)
    if how == "unack":
        incident_acknowledge(incident=Incident.objects.get(), by=someone, source="web", now=clock.current)
        clock.advance(seconds=5)
        incident_unacknowledge(incident=Incident.objects.get(), by=someone, source="web", now=clock.current)
    else:
        incident_resolve(incident=Incident.objects.get(), by=someone, source="web", now=clock.current)
        clock.advance(seconds=5)
        incident_reopen(
            incident=Incident.objects.get(), by=someone, reason="not fixed", source="web", now=clock.current
        )
    assert len(calls_to_vera(fake_providers)) == 2  # the new run called her again at once
    later(clock, seconds=30)  # the previous run's retry comes due
    later(clock, seconds=5)
    assert len(calls_to_vera(fake_providers)) == 2
    old = Delivery.objects.get(escalation_run=1)
    assert (old.status, old.error) == ("cancelled", "The escalation started again since; its new run notifies anew.")


@pytest.fixture
def vera_by_phone(vera, settings, fake_providers):
    configure_twilio(settings, fake_providers)
    person_preferences_set(person=vera, preferences={"Critical": ["voice"]})
    return vera


def test_no_second_call_after_ack_for_an_incident_assigned_at_creation(client, clock, fake_providers, vera_by_phone):
    incident = incident_create(
        channel=make_channel("Payments"),
        title="DB down",
        severity="Critical",
        by=make_user("creator"),
        now=clock.current,
        assign_to=[vera_by_phone],
    )
    [call] = fake_providers.wait_for("/twilio/", 1)
    response = twilio_callback(client, call.field("StatusCallback"), call_params(call, CallStatus="no-answer"))
    assert response.status_code == 204
    incident_acknowledge(incident=incident, by=vera_by_phone, source="app", now=clock.current)
    later(clock, minutes=1)
    later(clock, minutes=3)
    assert len(fake_providers.received("/twilio/")) == 1
    assert Delivery.objects.get().status == "cancelled"


def test_no_second_call_after_ack_for_a_reassigned_incident(client, clock, fake_providers, vera_by_phone):
    boss = make_user("boss")
    incident = incident_create(
        channel=make_channel("Payments"), title="DB down", severity="Critical", by=boss, now=clock.current
    )
    incident_reassign(incident=incident, by=boss, people=[vera_by_phone], source="web", now=clock.current)
    [call] = fake_providers.wait_for("/twilio/", 1)
    twilio_callback(client, call.field("StatusCallback"), call_params(call, CallStatus="busy"))
    incident_acknowledge(incident=incident, by=boss, source="web", now=clock.current)
    later(clock, minutes=1)
    later(clock, minutes=3)
    assert len(calls_to_vera(fake_providers)) == 1
    assert Delivery.objects.get(event="assigned").status == "cancelled"


def test_a_status_that_arrives_before_the_call_is_recorded_is_applied_after(client, clock, page):
    params = call_params(page, CallStatus="completed")
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", provider_id="")  # Twilio has not answered yet
    twilio_callback(client, page.field("StatusCallback"), params)
    delivery.refresh_from_db()
    assert delivery.status == "sending" and delivery.state["early_report"]["kind"] == "delivered"
    delivery_record_outcome(delivery=delivery, result=SendResult.sent(params["CallSid"]), now=clock.current)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert "early_report" not in delivery.state


def test_the_code_in_the_url_is_unguessable_and_differs_per_delivery(client, clock, page, fake_providers):
    codes = set(Delivery.objects.values_list("callback_code", flat=True))
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", code) for code in codes)


def test_a_late_no_answer_about_an_earlier_call_does_not_call_again_after_the_retry_reached_the_person(
    client, clock, settings, fake_providers, vera
):
    """Call 1's API answer timed out, so it was retried; call 2 reached Vera. Call 1's final status (it rang out)
    comes after that: it is about call 1, not the call that reached her, so she is not called a third time."""
    configure_twilio(settings, fake_providers)
    channel = make_channel()
    make_rule(channel, [{"people": [vera], "methods": ["voice"], "after": 30}])
    settings.HTTP_TOTAL_TIMEOUT = 1
    fake_providers.fail_next("/twilio", status=500, json={"code": 20500, "message": "slow"}, delay=2.5)
    push(client, make_integration(channel=channel)[1], EVENT)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.attempt_log[-1].get("unanswered")
    later(clock, seconds=30)
    first, second = fake_providers.received("/twilio/")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    twilio_callback(client, second.field("StatusCallback"), call_params(second, CallStatus="completed"))
    assert Delivery.objects.get().status == "delivered"

    call_1 = call_params(first, CallStatus="no-answer", CallSid="CA" + "1" * 32)
    assert twilio_callback(client, first.field("StatusCallback"), call_1).status_code == 204
    later(clock, seconds=120)
    later(clock, seconds=300)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(fake_providers.received("/twilio/")) == 2, "Vera was called again after she was reached"
    late = delivery.attempt_log[-1]
    assert (late["callback"], late["provider_id"], late["earlier_message"]) == ("not_reached", call_1["CallSid"], True)
    assert not Incident.objects.get().timeline.filter(kind="notify_failed").exists()
