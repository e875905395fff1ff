"""An incident in people's hands triggered again pages its responders anew, and a rule's run restarted or escalated
by hand pages whoever its level names now; a retry of a direct page written before (assigned at creation, added as
a responder, reassigned) gives way to a newer page to the same person, so nobody is called twice, and is still made
when nothing replaces it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels_app.models import Delivery
from channels_app.preferences import person_preferences_set
from escalation.models import EscalationLevel, EscalationRule, EscalationState, LevelSchedule
from oncall.models import Incident, Source
from oncall.services import lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_schedule, make_user, push
from tests.integration.paging import TWILIO_SID, configure_twilio, later, twilio_callback

pytestmark = pytest.mark.django_db(transaction=True)
WEB = Source.WEB
OUTAGE = {"status": 500, "json": {"code": 20500, "message": "Internal Server Error"}}
CAROL, DAVE = "+442071234567", "+442071234568"


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    return fake_providers


def calls_to(twilio, number):
    return [r for r in twilio.received("/twilio/") if r.field("To") == number]


def voice_person(name, phone):
    person = make_user(name, phone=phone, time_zone="Europe/London")
    person_preferences_set(person=person, preferences={"Critical": ["voice"]})
    return person


def assigned_to(carol, clock, *, acknowledged: bool = False) -> Incident:
    """An incident carol created by hand and assigned to herself (acknowledged by her a moment later)."""
    incident = lifecycle.incident_create(
        channel=make_channel("Databases"),
        title="DB down",
        severity="Critical",
        by=carol,
        now=clock.current,
        assign_to=[carol],
    )
    if acknowledged:
        clock.advance(seconds=2)
        lifecycle.incident_acknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
        clock.advance(seconds=2)
    return incident


def assert_called_once_more(clock, twilio, person, number) -> None:
    later(clock, minutes=10)
    rows = list(
        Delivery.objects.filter(recipient=person).order_by("pk").values_list("event", "escalation_run", "status")
    )
    placed = len(calls_to(twilio, number)) - 1  # the first request met the outage: no call
    assert placed == 1, f"{person.username} called {placed} times: {rows}"


def test_reopen_of_a_hand_assigned_incident_does_not_call_twice(clock, twilio):
    """carol is given an incident created by hand; Twilio has an outage on her first call (retry in 30 s). She
    closes it by mistake and reopens it at once: she must be called once more, not twice."""
    carol = voice_person("carol", CAROL)
    twilio.fail_next("/twilio", **OUTAGE)
    incident = assigned_to(carol, clock)
    assert Delivery.objects.get().status == "pending"
    clock.advance(seconds=5)
    lifecycle.incident_resolve(incident=incident, by=carol, source=WEB, now=clock.current)
    clock.advance(seconds=5)
    lifecycle.incident_reopen(incident=incident, by=carol, reason="oops", source=WEB, now=clock.current)
    assert_called_once_more(clock, twilio, carol, CAROL)


def test_responder_added_after_ack_then_unack_is_called_once(clock, twilio):
    """carol acknowledges her hand-assigned incident and adds dave; dave's call meets an outage (retry in 30 s).
    carol unacknowledges: the incident's responders (carol, dave) are paged again. dave must get one call for
    that, not the re-page and the old retry."""
    carol, dave = voice_person("carol", CAROL), voice_person("dave", DAVE)
    incident = assigned_to(carol, clock, acknowledged=True)
    twilio.fail_next("/twilio", **OUTAGE)
    lifecycle.incident_add_responders(incident=incident, by=carol, people=[dave], source=WEB, now=clock.current)
    assert Delivery.objects.get(recipient=dave).status == "pending"
    clock.advance(seconds=5)
    lifecycle.incident_unacknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
    assert_called_once_more(clock, twilio, dave, DAVE)


def test_reassigned_while_processing_then_unack_calls_once(clock, twilio):
    """carol acknowledges and reassigns to herself and dave (it stays Processing); dave's call meets an outage.
    carol unacknowledges: dave must be called once, not twice."""
    carol, dave = voice_person("carol", CAROL), voice_person("dave", DAVE)
    incident = assigned_to(carol, clock, acknowledged=True)
    twilio.fail_next("/twilio", **OUTAGE)
    incident = lifecycle.incident_reassign(
        incident=incident, by=carol, people=[dave, carol], source=WEB, now=clock.current
    )
    assert Incident.objects.get().progress == "Processing"
    clock.advance(seconds=5)
    lifecycle.incident_unacknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
    assert_called_once_more(clock, twilio, dave, DAVE)


# -- an incident a rule escalates: a restart of its run pages whoever its level names now --------------------------

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start


def call_status(client, twilio, number, status: str) -> None:
    """Twilio's status callback about the last call to `number`."""
    call = calls_to(twilio, number)[-1]
    code = call.field("StatusCallback").rstrip("/").split("/")[-2]
    params = {
        "AccountSid": TWILIO_SID,
        "CallSid": Delivery.objects.get(callback_code=code).provider_id,
        "From": call.field("From"),
        "To": number,
        "CallStatus": status,
    }
    assert twilio_callback(client, call.field("StatusCallback"), params).status_code == 204


def handed_to_dave_then_unacknowledged(client, clock, twilio, *, added_at: timedelta) -> Delivery:
    """The rule's level 1 calls whoever is on call: carol until 09:30, then dave. An alert at 09:00 calls carol,
    who acknowledges it; at `added_at` past 09:00 she adds dave as a responder (a direct page, by his own
    preferences); dave does not answer, so that call is to be made again in 30 s; 5 s later carol unacknowledges
    it by mistake and the rule starts again from level 1. Returns dave's direct page."""
    carol, dave = voice_person("carol", CAROL), voice_person("dave", DAVE)
    shifts = make_schedule(
        "DB on call",
        layers=[{"start": START - timedelta(days=1, minutes=-30), "unit": "day", "groups": [[carol], [dave]]}],
    )
    channel = make_channel("Databases")
    rule = EscalationRule.objects.create(channel=channel, name="DB on call")
    level = EscalationLevel.objects.create(
        rule=rule, position=0, critical_methods=["voice"], warning_methods=["voice"], info_methods=["voice"]
    )
    LevelSchedule.objects.create(level=level, schedule=shifts, role="primary")
    push(client, make_integration(channel=channel)[1], {"title_rule": "DB down", "event_status": "Critical"})
    assert len(calls_to(twilio, CAROL)) == 1
    clock.advance(minutes=5)
    incident = lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=carol, source=WEB, now=clock.current)
    clock.advance(seconds=(START + added_at - clock.current).total_seconds())
    lifecycle.incident_add_responders(incident=incident, by=carol, people=[dave], source=WEB, now=clock.current)
    direct = Delivery.objects.get(recipient=dave, event="assigned")
    call_status(client, twilio, DAVE, "no-answer")
    assert Delivery.objects.get(pk=direct.pk).status == "pending"  # called again in 30 s
    clock.advance(seconds=5)
    lifecycle.incident_unacknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
    assert EscalationState.objects.get().status == "running"
    return direct


def test_a_direct_page_gives_way_to_the_restarted_rules_page_to_the_same_person(client, clock, twilio):
    """dave took over the shift at 09:30 and was added at 09:31: the restarted rule calls him as the one on call.
    The retry of his unanswered call for being added would ring beside it: it is not made."""
    direct = handed_to_dave_then_unacknowledged(client, clock, twilio, added_at=timedelta(minutes=31))
    assert len(calls_to(twilio, DAVE)) == 2  # added as a responder; on call when the rule started again
    later(clock, seconds=26)
    later(clock, minutes=5)
    assert len(calls_to(twilio, DAVE)) == 2, "dave was called twice at once"
    direct.refresh_from_db()
    on_call = Delivery.objects.get(recipient__username="dave", event="triggered")
    assert (on_call.status, on_call.escalation_run) == ("sent", 2)
    assert (direct.status, direct.error) == (
        "cancelled",
        f"A newer page about the incident went to this person since (delivery #{on_call.pk}); it replaces this one.",
    )


def test_a_direct_page_nothing_replaces_is_still_retried_after_the_rule_restarts(client, clock, twilio):
    """dave was added at 09:20, while carol was still on call: the restarted rule calls carol, not him. Nothing
    replaces his unanswered call, so it is made again."""
    direct = handed_to_dave_then_unacknowledged(client, clock, twilio, added_at=timedelta(minutes=20))
    assert len(calls_to(twilio, DAVE)) == 1
    assert len(calls_to(twilio, CAROL)) == 2  # the restarted rule called carol again
    later(clock, seconds=26)
    assert len(calls_to(twilio, DAVE)) == 2
    direct.refresh_from_db()
    assert (direct.status, direct.attempts) == ("sent", 2)


def test_a_direct_sms_retry_gives_way_to_the_level_the_incident_was_escalated_to_by_hand(client, clock, twilio):
    """carol hands the incident to dave (a direct page by SMS, his preference), whose SMS meets a Twilio outage
    (retry in 30 s); 5 s later she escalates it by hand to level 2, which texts dave: one SMS, not two."""
    carol = voice_person("carol", CAROL)
    dave = make_user("dave", phone=DAVE, time_zone="Europe/London")
    person_preferences_set(person=dave, preferences={"Critical": ["sms"]})
    channel = make_channel("Databases")
    make_rule(channel, [{"people": [carol], "methods": ["voice"]}, {"people": [dave], "methods": ["sms"]}])
    push(client, make_integration(channel=channel)[1], {"title_rule": "DB down", "event_status": "Critical"})
    twilio.fail_next("/twilio", **OUTAGE)
    incident = lifecycle.incident_reassign(
        incident=Incident.objects.get(), by=carol, people=[dave], source=WEB, now=clock.current
    )
    direct = Delivery.objects.get(recipient=dave, event="assigned")
    assert direct.status == "pending"
    clock.advance(seconds=5)
    lifecycle.incident_escalate(incident=incident, by=carol, level=1, source=WEB, now=clock.current)
    later(clock, seconds=1)
    later(clock, seconds=30)
    later(clock, minutes=5)
    texts = [r for r in twilio.received("/twilio/") if r.path.endswith("Messages.json") and r.field("To") == DAVE]
    assert len(texts) == 2, "the outage took the first request; dave must get one SMS, not two"
    escalated = Delivery.objects.get(recipient=dave, event="escalated")
    direct.refresh_from_db()
    assert (escalated.status, direct.status) == ("sent", "cancelled")


def test_a_direct_voice_retry_does_not_give_way_to_a_newer_email_to_the_same_person(client, clock, twilio):
    """Level 1 calls carol; level 2 (after a minute) emails dave. At 09:00:50 carol adds dave as a responder: a
    direct call by his own preference, met by a Twilio outage (retried in 30 s). At 09:01 level 2 emails dave. An
    email does not ring: his call is still placed."""
    carol = make_user("carol", phone=CAROL, time_zone="Europe/London")
    dave = voice_person("dave", DAVE)
    channel = make_channel("Databases")
    make_rule(
        channel, [{"people": [carol], "methods": ["voice"], "after": 1}, {"people": [dave], "methods": ["email"]}]
    )
    push(client, make_integration(channel=channel)[1], {"title_rule": "DB down", "event_status": "Critical"})
    clock.advance(seconds=50)
    twilio.fail_next("/twilio", **OUTAGE)
    lifecycle.incident_add_responders(
        incident=Incident.objects.get(), by=carol, people=[dave], source=WEB, now=clock.current
    )
    direct = Delivery.objects.get(recipient=dave, event="assigned")
    later(clock, seconds=10)  # 09:01:00: level 2 emails dave
    assert Delivery.objects.get(recipient=dave, event="escalated").status == "sent"
    later(clock, seconds=21)  # the call's retry is due
    later(clock, minutes=5)
    direct.refresh_from_db()
    assert len(calls_to(twilio, DAVE)) == 2, f"dave's phone never rang: {direct.status}: {direct.error}"
