"""An incident whose alerts have all recovered while it stays open (its channel's "close with alerts" is off) pages
nobody any more — no repeat, no next level, no first page after the delay window, no new run when it is
unacknowledged or its snooze ends, no retry of a page written before — until an alert fires in it again: then it is
escalated again, as a new incident would be. A person who reopens or escalates a recovered incident still pages.
Flashduty: "Snoozed or auto-recovered incidents don't escalate" (docs/escalation.md)."""

from __future__ import annotations

import pytest

from channels_app.models import Delivery
from channels_app.preferences import person_preferences_set
from escalation.models import EscalationLevel, EscalationRule, EscalationState
from oncall.lib import queue as queue_module
from oncall.models import Incident, Source
from oncall.services import events, lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import configure_twilio, later

pytestmark = pytest.mark.django_db(transaction=True)
WEB = Source.WEB
OUTAGE = {"status": 500, "json": {"code": 20500, "message": "Internal Server Error"}}
PHONE = "+442071234567"


def event(key: str, status: str = "Critical", **labels) -> dict:
    return {"title_rule": f"{key} errors", "event_status": status, "alert_key": key, "labels": labels}


def paged(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


@pytest.fixture
def ann():
    return make_user("ann")


@pytest.fixture
def ben():
    return make_user("ben")


def repeating_rule(channel, ann, ben, *, delay: int = 0) -> EscalationRule:
    """Level 1 (ann) repeats twice, 5 minutes apart, and escalates to level 2 (ben) after 15 minutes."""
    rule = EscalationRule.objects.create(channel=channel, name="Default", delay_seconds=delay)
    first = EscalationLevel.objects.create(
        rule=rule, position=0, repeat_times=2, repeat_every_minutes=5, escalate_after_minutes=15
    )
    first.people.set([ann])
    EscalationLevel.objects.create(rule=rule, position=1).people.set([ben])
    return rule


def kept_open(**fields):
    """A channel whose incidents stay open when their alerts recover, with an integration's key."""
    channel = make_channel(close_with_alerts=False, **fields)
    return channel, make_integration(channel=channel)[1]


def test_a_recovered_incident_kept_open_is_not_escalated_further(client, clock, mailoutbox, ann, ben):
    channel, key = kept_open()
    repeating_rule(channel, ann, ben)
    push(client, key, event("cpu"))
    assert paged(mailoutbox) == ["ann"]
    later(clock, minutes=1)
    push(client, key, event("cpu", "Ok"))  # the problem is gone; the incident stays open
    incident = Incident.objects.get()
    assert (incident.status, incident.progress) == ("Ok", "Triggered")
    for _ in range(8):
        later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann"], "neither level 1's repeats nor level 2 page about a recovered incident"
    assert EscalationState.objects.get().status == "recovered"
    assert incident.timeline.filter(kind="escalation_ended").get().message == (
        "All alerts of the incident have recovered: nobody is notified until one fires again."
    )


def test_an_incident_recovered_within_the_delay_window_pages_nobody(client, clock, mailoutbox, ann, ben):
    channel, key = kept_open()
    repeating_rule(channel, ann, ben, delay=120)
    push(client, key, event("flappy"))
    later(clock, seconds=60)
    push(client, key, event("flappy", "Ok"))  # recovered before anyone was told
    later(clock, seconds=60)
    later(clock, minutes=30)
    assert paged(mailoutbox) == []


def test_a_step_due_before_the_recovery_is_dispatched_pages_nobody(client, clock, mailoutbox, ann, ben, monkeypatch):
    """The recovery's incident event waits (the rest of its push is not in, or its process died after commit) while
    level 1's repeat falls due: the repeat does not page either."""
    channel, key = kept_open()
    repeating_rule(channel, ann, ben)
    push(client, key, event("cpu"))
    with monkeypatch.context() as patch:
        patch.setattr(events, "incident_events_dispatch", lambda **kwargs: 0)
        later(clock, minutes=4)
        push(client, key, event("cpu", "Ok"))
        later(clock, minutes=1)  # the repeat's timer runs before the event is dispatched
    later(clock, minutes=30)
    assert paged(mailoutbox) == ["ann"]
    incident = Incident.objects.get()
    assert incident.timeline.filter(kind="escalation_ended").count() == 1, "stopped once, said once"
    assert not incident.events.filter(dispatched_at__isnull=True).exists()


def test_an_alert_firing_again_escalates_the_incident_again_from_level_one_after_the_delay(
    client, clock, mailoutbox, ann, ben
):
    channel, key = kept_open(group_keys=["service"])
    repeating_rule(channel, ann, ben, delay=60)
    push(client, key, event("cpu", service="api"))
    later(clock, seconds=60)
    assert paged(mailoutbox) == ["ann"]
    later(clock, minutes=2)
    push(client, key, event("cpu", "Ok", service="api"))
    later(clock, minutes=10)
    push(client, key, event("disk", service="api"))  # joins the recovered incident: the problem is back
    incident = Incident.objects.get()
    assert incident.status == "Critical"
    later(clock, seconds=59)
    assert paged(mailoutbox) == ["ann"], "the rule's delay window applies again, as to a new incident"
    later(clock, seconds=1)
    assert paged(mailoutbox) == ["ann", "ann"]
    later(clock, minutes=5)
    later(clock, minutes=5)
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann", "ann", "ann", "ann", "ben"], "its repeats and next level follow as before"
    assert incident.timeline.filter(
        kind="assigned", message="An alert fires again: escalation rule Default starts again from level 1."
    ).exists()


def test_an_alert_firing_again_in_an_acknowledged_incident_pages_nobody(client, clock, mailoutbox, ann, ben):
    channel, key = kept_open(group_keys=["service"])
    repeating_rule(channel, ann, ben)
    push(client, key, event("cpu", service="api"))
    lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)
    later(clock, minutes=1)
    push(client, key, event("cpu", "Ok", service="api"))
    later(clock, minutes=1)
    push(client, key, event("disk", service="api"))
    for _ in range(6):
        later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann"], "ann is working on it"


def test_unacknowledging_a_recovered_incident_pages_nobody_until_an_alert_fires_again(
    client, clock, mailoutbox, ann, ben
):
    channel, key = kept_open(group_keys=["service"])
    repeating_rule(channel, ann, ben)
    push(client, key, event("cpu", service="api"))
    incident = lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)
    later(clock, minutes=1)
    push(client, key, event("cpu", "Ok", service="api"))
    later(clock, minutes=1)
    lifecycle.incident_unacknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    for _ in range(6):
        later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann"], "unacknowledged, but there is nothing to be paged about"
    assert "nobody is notified until one fires again" in incident.timeline.get(kind="escalation_ended").message
    push(client, key, event("disk", service="api"))
    assert paged(mailoutbox) == ["ann", "ann"], "the problem is back and nobody has it"


def test_the_end_of_a_snooze_of_a_recovered_incident_pages_nobody(client, clock, mailoutbox, ann, ben):
    channel, key = kept_open()
    repeating_rule(channel, ann, ben)
    push(client, key, event("cpu"))
    incident = lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)
    lifecycle.incident_snooze(incident=incident, by=ann, minutes=60, source=WEB, now=clock.current)
    later(clock, minutes=10)
    push(client, key, event("cpu", "Ok"))
    later(clock, minutes=50)
    incident.refresh_from_db()
    assert (incident.progress, incident.snoozed_until) == ("Triggered", None), "the snooze ended"
    for _ in range(6):
        later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann"]


def test_a_severity_raised_by_hand_on_a_recovered_incident_pages_nobody(client, clock, mailoutbox, ann):
    """No rule took it as Warning; one takes Critical incidents. Raised by hand once its alerts recovered: the rules
    are not tried again for a problem that is gone."""
    channel, key = kept_open()
    rule = make_rule(channel, [{"people": [ann]}])
    EscalationRule.objects.filter(pk=rule.pk).update(
        filters=[[{"key": "severity", "op": "IN", "values": ["Critical"]}]]
    )
    push(client, key, event("cpu", "Warning"))
    push(client, key, event("cpu", "Ok"))
    later(clock, minutes=1)
    incident = Incident.objects.get()
    lifecycle.incident_edit(incident=incident, by=ann, severity="Critical", source=WEB, now=clock.current)
    later(clock, minutes=30)
    assert paged(mailoutbox) == []
    assert EscalationState.objects.get().status == "unassigned"


def test_reopening_a_recovered_incident_pages_and_escalates_as_before(client, clock, mailoutbox, ann, ben):
    """Closed with its alerts (the default): the person who reopens it asks for it to be handled."""
    channel = make_channel()
    make_rule(channel, [{"people": [ann], "after": 5}, {"people": [ben], "after": 5}], name="Default")
    key = make_integration(channel=channel)[1]
    push(client, key, event("cpu"))
    push(client, key, event("cpu", "Ok"))
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Closed", "Ok")
    later(clock, minutes=1)
    lifecycle.incident_reopen(incident=incident, by=ann, reason="still slow", source=WEB, now=clock.current)
    assert paged(mailoutbox) == ["ann", "ann"]
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann", "ann", "ben"]


def reopened_after_closing_with_its_alerts(
    client, clock, ann, ben, *, severity: str = "Critical", critical_only: bool = False
) -> Incident:
    """The default channel (close with alerts on): the alert recovers and the incident closes by itself; ann reopens
    it because the problem is not really gone, which pages level 1 (ann) when the rule takes it."""
    channel = make_channel()
    rule = make_rule(channel, [{"people": [ann], "after": 5}, {"people": [ben], "after": 5}], name="Default")
    if critical_only:
        EscalationRule.objects.filter(pk=rule.pk).update(
            filters=[[{"key": "severity", "op": "IN", "values": ["Critical"]}]]
        )
    key = make_integration(channel=channel)[1]
    push(client, key, event("cpu", severity))
    push(client, key, event("cpu", "Ok"))
    later(clock, minutes=1)
    incident = Incident.objects.get()
    assert incident.progress == "Closed"
    return lifecycle.incident_reopen(incident=incident, by=ann, reason="still slow", source=WEB, now=clock.current)


def test_a_reopened_incident_no_longer_counts_as_recovered(client, clock, mailoutbox, ann, ben):
    incident = reopened_after_closing_with_its_alerts(client, clock, ann, ben)
    incident.refresh_from_db()
    assert (incident.progress, incident.status, incident.end_time) == ("Triggered", "Ok", None)
    assert not incident.all_alerts_recovered


def test_the_end_of_a_snooze_of_a_reopened_incident_pages_level_one_again(client, clock, mailoutbox, ann, ben):
    """docs/incidents.md: when the snooze is up the incident "notifies from level 1"; a reopened incident is one a
    person declared active again, not a recovered one."""
    incident = reopened_after_closing_with_its_alerts(client, clock, ann, ben)
    assert paged(mailoutbox) == ["ann", "ann"]
    lifecycle.incident_acknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    lifecycle.incident_snooze(incident=incident, by=ann, minutes=30, source=WEB, now=clock.current)
    later(clock, minutes=30)
    later(clock, seconds=5)
    incident.refresh_from_db()
    assert incident.progress == "Triggered", "the snooze ended"
    assert paged(mailoutbox) == ["ann", "ann", "ann"]
    assert not incident.timeline.filter(kind="escalation_ended").exists()


def test_unacknowledging_a_reopened_incident_pages_and_escalates_again(client, clock, mailoutbox, ann, ben):
    incident = reopened_after_closing_with_its_alerts(client, clock, ann, ben)
    lifecycle.incident_acknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, minutes=1)
    lifecycle.incident_unacknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=5)
    assert paged(mailoutbox) == ["ann", "ann", "ann"], "level 1 again"
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann", "ann", "ann", "ben"], "and level 2 after it"


def test_a_severity_raised_by_hand_on_a_reopened_incident_pages(client, clock, mailoutbox, ann, ben):
    """No rule takes Warning incidents; ann reopens one and raises it to Critical: the Critical rule pages."""
    incident = reopened_after_closing_with_its_alerts(client, clock, ann, ben, severity="Warning", critical_only=True)
    assert paged(mailoutbox) == []
    lifecycle.incident_edit(incident=incident, by=ann, severity="Critical", source=WEB, now=clock.current)
    later(clock, seconds=5)
    assert paged(mailoutbox) == ["ann"]


def test_unacknowledging_a_reopened_incident_in_peoples_hands_pages_its_responders(client, clock, mailoutbox, ann, ben):
    channel = make_channel()
    make_rule(channel, [{"people": [ann]}])
    key = make_integration(channel=channel)[1]
    push(client, key, event("cpu"))
    incident = lifecycle.incident_reassign(
        incident=Incident.objects.get(), by=ann, people=[ben], source=WEB, now=clock.current
    )
    push(client, key, event("cpu", "Ok"))  # closes it
    later(clock, minutes=1)
    lifecycle.incident_reopen(incident=incident, by=ben, reason="still slow", source=WEB, now=clock.current)
    assert paged(mailoutbox) == ["ann", "ben", "ben"]
    lifecycle.incident_acknowledge(incident=incident, by=ben, source=WEB, now=clock.current)
    later(clock, minutes=1)
    lifecycle.incident_unacknowledge(incident=incident, by=ben, source=WEB, now=clock.current)
    later(clock, seconds=5)
    assert paged(mailoutbox) == ["ann", "ben", "ben", "ben"]


def test_escalating_a_recovered_incident_by_hand_pages_the_level(client, clock, mailoutbox, ann, ben):
    channel, key = kept_open()
    make_rule(channel, [{"people": [ann], "after": 5}, {"people": [ben], "after": 5}])
    push(client, key, event("cpu"))
    push(client, key, event("cpu", "Ok"))
    later(clock, minutes=10)
    lifecycle.incident_escalate(incident=Incident.objects.get(), by=ann, level=1, source=WEB, now=clock.current)
    assert paged(mailoutbox) == ["ann", "ben"]


def test_merging_a_firing_incident_into_a_recovered_one_escalates_it_again(client, clock, mailoutbox, ann, ben):
    channel, key = kept_open()
    make_rule(channel, [{"people": [ann], "after": 5}, {"people": [ben], "after": 5}])
    push(client, key, event("cpu"))
    push(client, key, event("cpu", "Ok"))
    later(clock, minutes=1)
    push(client, key, event("disk"))  # its own incident, which pages ann
    recovered, firing = Incident.objects.order_by("pk")
    assert paged(mailoutbox) == ["ann", "ann"]
    later(clock, minutes=1)
    lifecycle.incident_merge(incident=firing, into=recovered, by=ann, source=WEB, now=clock.current)
    assert paged(mailoutbox) == ["ann", "ann", "ann"], "the recovered incident fires again: level 1"
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann", "ann", "ann", "ben"]


def test_an_incident_in_peoples_hands_is_paged_again_only_when_an_alert_fires_again(
    client, clock, mailoutbox, ann, ben
):
    channel, key = kept_open(group_keys=["service"])
    make_rule(channel, [{"people": [ann]}])
    push(client, key, event("cpu", service="api"))
    incident = lifecycle.incident_reassign(
        incident=Incident.objects.get(), by=ann, people=[ben], source=WEB, now=clock.current
    )
    lifecycle.incident_acknowledge(incident=incident, by=ben, source=WEB, now=clock.current)
    later(clock, minutes=1)
    push(client, key, event("cpu", "Ok", service="api"))
    lifecycle.incident_unacknowledge(incident=incident, by=ben, source=WEB, now=clock.current)
    later(clock, minutes=30)
    assert paged(mailoutbox) == ["ann", "ben"]
    push(client, key, event("disk", service="api"))
    assert paged(mailoutbox) == ["ann", "ben", "ben"], "its responder, not the rule"
    assert EscalationState.objects.get().status == "direct"


# -- retries of pages written before the recovery ------------------------------------------------------------------


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    return fake_providers


@pytest.fixture
def val(clock):
    person = make_user("val", phone=PHONE, time_zone="Europe/London")
    person_preferences_set(person=person, preferences={"Critical": ["voice"]})
    return person


def test_a_retry_of_a_call_is_given_up_when_the_incidents_alerts_recover(client, clock, twilio, val):
    """As when it is acknowledged: the call would wake val for a problem that is gone."""
    channel, key = kept_open()
    make_rule(channel, [{"people": [val], "methods": ["voice"]}])
    twilio.fail_next("/twilio", **OUTAGE)
    push(client, key, event("cpu"))
    assert Delivery.objects.get().status == "pending"  # the retry is due in 30 s
    later(clock, seconds=10)
    push(client, key, event("cpu", "Ok"))
    later(clock, minutes=1)
    assert len(twilio.received("/twilio/")) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == ("cancelled", "All of the incident's alerts recovered meanwhile.")


def test_a_page_a_person_asked_for_after_the_recovery_is_still_retried(client, clock, twilio, val):
    """ann reassigns the recovered incident to herself and val while she has it (it stays acknowledged); val's call
    meets an outage. ann giving it back pages nobody (nothing fires), so val's retry is not replaced: it rings."""
    ann = make_user("ann")
    channel, key = kept_open()
    make_rule(channel, [{"people": [ann]}])
    push(client, key, event("cpu"))
    push(client, key, event("cpu", "Ok"))
    incident = lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)
    later(clock, minutes=1)
    twilio.fail_next("/twilio", **OUTAGE)
    lifecycle.incident_reassign(incident=incident, by=ann, people=[ann, val], source=WEB, now=clock.current)
    assert Delivery.objects.get(method="voice").status == "pending"
    later(clock, seconds=5)
    lifecycle.incident_unacknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=30)
    assert len(twilio.received("/twilio/")) == 2
    assert Delivery.objects.get(method="voice").status == "sent"


def test_a_call_written_while_the_recovery_waited_in_the_queue_is_not_retried(client, clock, twilio, val, monkeypatch):
    """Rule delay 60 s. The alert recovers at 59 s, but the ingest worker is busy and takes the recovery's batch a
    few seconds later. Meanwhile level 1's timer calls val at 60 s (the recovery is not in yet) and the call meets
    an outage. The recovery is received before the call was written but recorded after it: the retry gives way."""
    channel, key = kept_open()
    rule = make_rule(channel, [{"people": [val], "methods": ["voice"]}])
    EscalationRule.objects.filter(pk=rule.pk).update(delay_seconds=60)
    push(client, key, event("cpu"))
    later(clock, seconds=59)
    with monkeypatch.context() as patch:
        patch.setattr(queue_module, "enqueue", lambda *args, **kwargs: None)  # the worker is busy
        assert push(client, key, event("cpu", "Ok")).status_code == 200
    assert Incident.objects.get().status == "Critical", "the recovery waits in the queue"
    twilio.fail_next("/twilio", **OUTAGE)
    later(clock, seconds=1)  # 60 s: level 1's timer calls val; the provider answers 500
    assert len(twilio.received("/twilio/")) == 1
    assert Delivery.objects.get().status == "pending"
    for _ in range(20):  # the ticker hands the waiting batch to the worker; the recovery goes in
        later(clock, seconds=1)
    incident = Incident.objects.get()
    assert (incident.status, incident.escalation.status) == ("Ok", "recovered")
    assert incident.end_time < Delivery.objects.get().created_at, "dated when it was received"
    later(clock, seconds=15)  # 95 s: the retry was due at 90 s
    assert len(twilio.received("/twilio/")) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == ("cancelled", "All of the incident's alerts recovered meanwhile.")
