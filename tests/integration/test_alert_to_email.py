"""End to end with the worker in sync mode: an event becomes an incident, a timeline and an email; the ticker
escalates on time; a recovery stops it; nothing is sent twice."""

from __future__ import annotations

import pytest

from channels_app.models import Delivery
from escalation.models import EscalationState
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Incident
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {
    "title_rule": "CPU above 90% on db-1",
    "event_status": "Critical",
    "alert_key": "cpu-db-1",
    "labels": {"host": "db-1"},
}


@pytest.fixture
def setup():
    alice = make_user("alice", first_name="Alice", last_name="Chen")
    bob = make_user("bob", first_name="Bob")
    channel = make_channel("Production")
    rule = make_rule(channel, [{"people": [alice], "after": 30}, {"people": [bob], "after": 30}], name="Default")
    _, key = make_integration(channel=channel)
    return {"alice": alice, "bob": bob, "channel": channel, "rule": rule, "key": key}


def run_ticker():
    return tick(now=clock_module.now())


def test_an_event_becomes_an_incident_a_timeline_and_an_email(client, clock, setup, mailoutbox):
    response = push(client, setup["key"], EVENT)
    assert response.status_code == 200

    incident = Incident.objects.get()
    assert list(incident.timeline.values_list("kind", flat=True)) == ["opened", "assigned", "notified"]
    assert incident.timeline.get(kind="notified").message == "Level 1 notified Alice Chen (email)."
    assert list(incident.responders.values_list("username", flat=True)) == ["alice"]

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["alice@example.com"]
    assert mail.subject == f"[Critical] #{incident.number} CPU above 90% on db-1"
    assert f"https://oncall.example.test/incidents/{incident.pk}/" in mail.body
    html = mail.alternatives[0][0]
    assert "CPU above 90% on db-1" in html

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.method, delivery.address, delivery.level) == (
        "sent",
        1,
        "email",
        "alice@example.com",
        0,
    )
    assert delivery.provider_id and delivery.sent_at == clock.current


def test_a_second_identical_event_sends_no_second_email(client, clock, setup, mailoutbox):
    push(client, setup["key"], EVENT)
    clock.advance(seconds=20)
    push(client, setup["key"], EVENT)
    run_ticker()
    assert len(mailoutbox) == 1
    assert Delivery.objects.count() == 1
    assert Incident.objects.count() == 1


def test_the_ticker_escalates_to_the_next_level_after_the_timeout_then_ends(client, clock, setup, mailoutbox):
    push(client, setup["key"], EVENT)
    incident = Incident.objects.get()

    clock.advance(minutes=29, seconds=59)
    run_ticker()
    assert len(mailoutbox) == 1, "not yet: level 1 waits 30 minutes"

    clock.advance(seconds=1)
    run_ticker()
    assert [m.to for m in mailoutbox] == [["alice@example.com"], ["bob@example.com"]]
    assert mailoutbox[1].subject.startswith("[Escalated] [Critical]")
    assert incident.timeline.filter(kind="escalated").exists()
    assert EscalationState.objects.get().level == 1

    clock.advance(minutes=30)
    run_ticker()
    state = EscalationState.objects.get()
    assert state.status == "finished"
    assert incident.timeline.filter(kind="escalation_ended").exists()
    run_ticker()
    assert len(mailoutbox) == 2


def test_a_recovery_closes_the_incident_and_stops_the_escalation(client, clock, setup, mailoutbox):
    push(client, setup["key"], EVENT)
    clock.advance(minutes=3)
    push(client, setup["key"], {**EVENT, "event_status": "Ok"})
    incident = Incident.objects.get()
    assert incident.progress == "Closed"
    assert EscalationState.objects.get().status == "finished"
    clock.advance(minutes=60)
    run_ticker()
    assert len(mailoutbox) == 1, "bob is never paged for a recovered incident"


def test_editing_the_rule_after_the_incident_opened_does_not_change_it(client, clock, setup, mailoutbox):
    push(client, setup["key"], EVENT)
    carol = make_user("carol")
    second = setup["rule"].levels.get(position=1)
    second.people.set([carol])
    clock.advance(minutes=30)
    run_ticker()
    assert [m.to for m in mailoutbox] == [["alice@example.com"], ["bob@example.com"]]


def test_a_channel_without_rules_leaves_the_incident_unassigned(client, clock, mailoutbox):
    _, key = make_integration(channel=make_channel("Quiet"))
    push(client, key, EVENT)
    incident = Incident.objects.get()
    assert incident.timeline.filter(kind="unassigned").exists()
    assert EscalationState.objects.get().status == "unassigned"
    assert mailoutbox == []


def test_a_person_without_an_email_is_skipped_and_the_timeline_says_why(client, clock, mailoutbox):
    nomail = make_user("nomail", email="")
    channel = make_channel()
    make_rule(channel, [{"people": [nomail]}])
    _, key = make_integration(channel=channel)
    push(client, key, EVENT)
    incident = Incident.objects.get()
    skipped = incident.timeline.get(kind="notify_failed")
    assert "no verified email contact" in skipped.message
    assert mailoutbox == []
