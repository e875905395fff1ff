"""An incident in people's hands triggered again pages its responders anew; a retry of a direct page written
before (assigned at creation, added as a responder, reassigned) gives way to it, so nobody is called twice."""

from __future__ import annotations

import pytest

from channels_app.models import Delivery
from channels_app.preferences import person_preferences_set
from oncall.models import Incident, Source
from oncall.services import lifecycle
from tests.factories import make_channel, make_user
from tests.integration.paging import configure_twilio, later

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
