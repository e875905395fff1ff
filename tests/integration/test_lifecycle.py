"""The incident lifecycle through its services, with the escalation reacting as people expect."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps

from escalation.models import EscalationState
from escalation.ticker import tick
from oncall.errors import ApplicationError, IllegalTransition
from oncall.lib import clock as clock_module
from oncall.models import Alert, Incident, Source
from oncall.services import lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)
WEB = Source.WEB


@pytest.fixture
def world(client, clock):
    people = {name: make_user(name) for name in ("alice", "bob", "carol", "dave")}
    channel = make_channel("Production")
    make_rule(channel, [{"people": [people["alice"]], "after": 30}, {"people": [people["bob"]], "after": 30}])
    _, key = make_integration(channel=channel)
    push(client, key, {"title_rule": "Checkout errors", "event_status": "Critical", "alert_key": "checkout"})
    return {"incident": Incident.objects.get(), "channel": channel, "key": key, **people}


def recipients(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


def later(clock, **delta) -> None:
    clock.advance(**delta)
    tick(now=clock_module.now())


def fresh(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def test_acknowledging_stops_the_escalation(world, clock, mailoutbox):
    later(clock, minutes=3)
    incident = lifecycle.incident_acknowledge(
        incident=world["incident"], by=world["alice"], source=WEB, now=clock.current
    )
    assert (incident.progress, incident.ack_time) == ("Processing", clock.current)
    later(clock, minutes=60)
    assert recipients(mailoutbox) == ["alice"], "bob is not paged for an acknowledged incident"
    entry = incident.timeline.get(kind="acknowledged")
    assert (entry.actor, entry.source) == (world["alice"], "web")


def test_unacknowledging_the_last_ack_triggers_and_notifies_again(world, clock, mailoutbox):
    lifecycle.incident_acknowledge(incident=world["incident"], by=world["alice"], source=WEB, now=clock.current)
    lifecycle.incident_acknowledge(incident=world["incident"], by=world["carol"], source=WEB, now=clock.current)
    clock.advance(minutes=5)
    incident = lifecycle.incident_unacknowledge(
        incident=world["incident"], by=world["carol"], source=WEB, now=clock.current
    )
    assert incident.progress == "Processing", "alice still acknowledges it"
    incident = lifecycle.incident_unacknowledge(
        incident=world["incident"], by=world["alice"], source=WEB, now=clock.current
    )
    assert incident.progress == "Triggered"
    assert recipients(mailoutbox) == ["alice", "alice"]
    later(clock, minutes=30)
    assert recipients(mailoutbox) == ["alice", "alice", "bob"]


def test_only_someone_who_acknowledged_can_unacknowledge(world, clock):
    with pytest.raises(IllegalTransition, match="has not acknowledged"):
        lifecycle.incident_unacknowledge(incident=world["incident"], by=world["bob"], source=WEB, now=clock.current)


def test_snooze_needs_an_acknowledgement_and_expiry_triggers_again(world, clock, mailoutbox):
    with pytest.raises(IllegalTransition, match="must be acknowledged"):
        lifecycle.incident_snooze(
            incident=world["incident"], by=world["alice"], minutes=10, source=WEB, now=clock.current
        )
    lifecycle.incident_acknowledge(incident=world["incident"], by=world["alice"], source=WEB, now=clock.current)
    for bad in (0, 1441, "10"):
        with pytest.raises(ApplicationError) as caught:
            lifecycle.incident_snooze(
                incident=world["incident"], by=world["alice"], minutes=bad, source=WEB, now=clock.current
            )
        assert caught.value.field == "minutes"
    incident = lifecycle.incident_snooze(
        incident=world["incident"], by=world["alice"], minutes=10, source=WEB, now=clock.current
    )
    assert incident.snoozed_until == clock.current + timedelta(minutes=10)
    later(clock, minutes=9, seconds=59)
    assert fresh(incident).progress == "Processing"
    later(clock, seconds=1)
    incident = fresh(incident)
    assert (incident.progress, incident.snoozed_until) == ("Triggered", None)
    assert incident.timeline.get(kind="woken").message == "Snooze ended; the incident is triggered again."
    assert recipients(mailoutbox) == ["alice", "alice"], "notified again from level 1"


def test_waking_by_hand_ends_the_snooze_at_once(world, clock, mailoutbox):
    lifecycle.incident_acknowledge(incident=world["incident"], by=world["alice"], source=WEB, now=clock.current)
    lifecycle.incident_snooze(incident=world["incident"], by=world["alice"], minutes=60, source=WEB, now=clock.current)
    incident = lifecycle.incident_wake(incident=world["incident"], by=world["bob"], source=WEB, now=clock.current)
    assert incident.progress == "Triggered"
    with pytest.raises(IllegalTransition, match="not snoozed"):
        lifecycle.incident_wake(incident=incident, by=world["bob"], source=WEB, now=clock.current)
    later(clock, minutes=61)
    assert recipients(mailoutbox) == ["alice", "alice", "bob"]


def test_closing_stops_everything_and_closed_incidents_refuse_acknowledgement(world, clock, mailoutbox):
    incident = lifecycle.incident_resolve(incident=world["incident"], by=world["alice"], source=WEB, now=clock.current)
    assert (incident.progress, incident.closed_by) == ("Closed", world["alice"])
    assert Alert.objects.get().progress == "Closed", "a manual close closes the alerts too"
    with pytest.raises(IllegalTransition, match="closed"):
        lifecycle.incident_acknowledge(incident=incident, by=world["alice"], source=WEB, now=clock.current)
    with pytest.raises(IllegalTransition):
        lifecycle.incident_resolve(incident=incident, by=world["alice"], source=WEB, now=clock.current)
    later(clock, hours=2)
    assert recipients(mailoutbox) == ["alice"]


def test_reopening_needs_a_reason_and_notifies_again(world, clock, mailoutbox):
    with pytest.raises(IllegalTransition, match="not closed"):
        lifecycle.incident_reopen(
            incident=world["incident"], by=world["alice"], reason="x", source=WEB, now=clock.current
        )
    lifecycle.incident_resolve(incident=world["incident"], by=world["alice"], source=WEB, now=clock.current)
    with pytest.raises(ApplicationError) as caught:
        lifecycle.incident_reopen(
            incident=world["incident"], by=world["alice"], reason="  ", source=WEB, now=clock.current
        )
    assert caught.value.field == "reason"
    clock.advance(minutes=10)
    incident = lifecycle.incident_reopen(
        incident=world["incident"], by=world["bob"], reason="still failing", source=WEB, now=clock.current
    )
    assert (incident.progress, incident.close_time) == ("Triggered", None)
    assert "still failing" in incident.timeline.get(kind="reopened").message
    assert recipients(mailoutbox) == ["alice", "alice"]
    assert EscalationState.objects.get().run == 2


def test_reassigning_hands_the_incident_over_and_stops_the_rule(world, clock, mailoutbox):
    lifecycle.incident_acknowledge(incident=world["incident"], by=world["alice"], source=WEB, now=clock.current)
    incident = lifecycle.incident_reassign(
        incident=world["incident"], by=world["alice"], people=[world["carol"]], source=WEB, now=clock.current
    )
    assert incident.progress == "Triggered", "carol has not acknowledged it"
    assert list(incident.responders.values_list("username", flat=True)) == ["carol"]
    assert recipients(mailoutbox) == ["alice", "carol"]
    later(clock, hours=2)
    assert recipients(mailoutbox) == ["alice", "carol"], "no rule escalation after a reassignment"
    with pytest.raises(ApplicationError):
        lifecycle.incident_reassign(incident=incident, by=world["alice"], people=[], source=WEB, now=clock.current)


def test_adding_responders_notifies_them_and_the_rule_keeps_escalating(world, clock, mailoutbox):
    lifecycle.incident_add_responders(
        incident=world["incident"],
        by=world["alice"],
        people=[world["dave"], world["alice"]],
        source=WEB,
        now=clock.current,
    )
    assert recipients(mailoutbox) == ["alice", "dave"]
    assert "dave" in world["incident"].timeline.get(kind="responders_added").message
    later(clock, minutes=30)
    assert recipients(mailoutbox) == ["alice", "dave", "bob"]


def test_comments_land_in_the_timeline(world, clock):
    entry = lifecycle.incident_comment(
        incident=world["incident"], by=world["bob"], text="Looking at the DB", source=Source.API, now=clock.current
    )
    assert (entry.kind, entry.message, entry.actor, entry.source) == (
        "comment",
        "Looking at the DB",
        world["bob"],
        "api",
    )
    with pytest.raises(ApplicationError):
        lifecycle.incident_comment(incident=world["incident"], by=world["bob"], text=" ", source=WEB, now=clock.current)
    with pytest.raises(ApplicationError):
        lifecycle.incident_comment(
            incident=world["incident"], by=world["bob"], text="x" * 2001, source=WEB, now=clock.current
        )


def test_merging_moves_the_alerts_and_closes_the_merged_incident(world, client, clock):
    push(client, world["key"], {"title_rule": "Payment errors", "event_status": "Warning", "alert_key": "payment"})
    other = Incident.objects.exclude(pk=world["incident"].pk).get()
    into = lifecycle.incident_merge(
        incident=other, into=world["incident"], by=world["bob"], source=WEB, now=clock.current
    )
    assert sorted(into.alerts.values_list("alert_key", flat=True)) == ["checkout", "payment"]
    other = fresh(other)
    assert (other.progress, other.merged_into) == ("Closed", into)
    assert Alert.objects.filter(progress="Triggered").count() == 2, "moved alerts stay open"
    with pytest.raises(IllegalTransition):
        lifecycle.incident_merge(incident=into, into=other, by=world["bob"], source=WEB, now=clock.current)
    with pytest.raises(ApplicationError):
        lifecycle.incident_merge(incident=into, into=into, by=world["bob"], source=WEB, now=clock.current)


def test_a_merged_incident_is_not_reopened_and_pages_nobody_again(world, client, clock, mailoutbox):
    """The second incident of an outage is merged into the first, which holds every alert and which alice has
    acknowledged. Reopening the merged one (alert-less) is refused and points at the target: reopened, it would
    page alice again from level 1 for alerts that live, acknowledged, in the target."""
    push(client, world["key"], {"title_rule": "Payment errors", "event_status": "Critical", "alert_key": "payment"})
    target = world["incident"]
    merged = Incident.objects.exclude(pk=target.pk).get()
    lifecycle.incident_acknowledge(incident=target, by=world["alice"], source=WEB, now=clock.current)
    lifecycle.incident_merge(incident=merged, into=target, by=world["alice"], source=WEB, now=clock.current)
    assert recipients(mailoutbox) == ["alice", "alice"]

    clock.advance(minutes=5)
    with pytest.raises(IllegalTransition) as caught:
        lifecycle.incident_reopen(incident=merged, by=world["bob"], reason="fixed?", source=WEB, now=clock.current)
    assert caught.value.message == (
        f"Incident #{merged.pk} was merged into #{target.pk}; reopen or handle #{target.pk} instead."
    )
    later(clock, minutes=60)
    merged = fresh(merged)
    assert (merged.progress, merged.merged_into_id) == ("Closed", target.pk), "it still says where its alerts went"
    assert not merged.timeline.filter(kind="reopened").exists()
    assert recipients(mailoutbox) == ["alice", "alice"], "nobody is paged again for an incident with no alerts"


def test_an_incident_created_by_hand_follows_the_rule_or_its_assignees(world, clock, mailoutbox):
    by_rule = lifecycle.incident_create(
        channel=world["channel"],
        title="Customer reports slowness",
        severity="Warning",
        by=world["dave"],
        now=clock.current,
    )
    assert (by_rule.labels, by_rule.created_by, by_rule.alerts.count()) == ({}, world["dave"], 0)
    assert recipients(mailoutbox) == ["alice", "alice"]
    lifecycle.incident_create(
        channel=world["channel"],
        title="Planned failover",
        severity="Info",
        by=world["dave"],
        now=clock.current,
        assign_to=[world["carol"]],
    )
    assert recipients(mailoutbox) == ["alice", "alice", "carol"]
    with pytest.raises(ApplicationError) as caught:
        lifecycle.incident_create(
            channel=world["channel"], title="x", severity="High", by=world["dave"], now=clock.current
        )
    assert caught.value.field == "severity"


def test_a_reopened_incident_still_closes_by_itself_when_no_event_comes(client, clock):
    _, key = make_integration(channel=make_channel(auto_resolve_minutes=60))
    push(client, key, {"title_rule": "Disk full", "event_status": "Warning", "alert_key": "disk"})
    incident = Incident.objects.get()
    alice = make_user("alice")
    lifecycle.incident_resolve(incident=incident, by=alice, source=WEB, now=clock.current)
    later(clock, minutes=5)
    lifecycle.incident_reopen(incident=incident, by=alice, reason="not fixed", source=WEB, now=clock.current)
    assert fresh(incident).auto_resolve_at == clock.current + timedelta(minutes=60)
    later(clock, minutes=59)
    assert fresh(incident).progress == "Triggered"
    later(clock, minutes=2)
    assert fresh(incident).progress == "Closed"


# An incident in people's hands (assigned when created by hand, or reassigned): triggered again, it pages them.


def create_assigned(channel, person, clock) -> Incident:
    return lifecycle.incident_create(
        channel=channel, title="DB down", severity="Critical", by=person, now=clock.current, assign_to=[person]
    )


def test_an_incident_assigned_by_hand_pages_its_responder_again_when_its_snooze_ends(clock, mailoutbox):
    channel = make_channel("Databases")  # no escalation rule: assigning by hand is how people get its incidents
    carol = make_user("carol")
    incident = create_assigned(channel, carol, clock)
    assert recipients(mailoutbox) == ["carol"]
    lifecycle.incident_acknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
    lifecycle.incident_snooze(incident=incident, by=carol, minutes=10, source=WEB, now=clock.current)
    later(clock, minutes=11)
    incident = fresh(incident)
    assert incident.progress == "Triggered"
    assert recipients(mailoutbox) == ["carol", "carol"], "paged again when the snooze ended"
    assert "A new incident needs your attention" in mailoutbox[-1].body
    assert not incident.timeline.filter(kind="unassigned").exists(), "no rule is looked for"
    assert "Notified carol (email) again" in incident.timeline.filter(kind="notified").latest("pk").message
    later(clock, hours=2)
    assert recipients(mailoutbox) == ["carol", "carol"], "paged once per time it is triggered again"


@pytest.mark.parametrize("how", ["unacknowledge", "reopen"])
def test_an_incident_assigned_by_hand_pages_its_responder_again_when_triggered_again(clock, mailoutbox, how):
    carol = make_user("carol")
    incident = create_assigned(make_channel("Databases"), carol, clock)
    lifecycle.incident_acknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
    if how == "unacknowledge":
        lifecycle.incident_unacknowledge(incident=incident, by=carol, source=WEB, now=clock.current)
    else:
        lifecycle.incident_resolve(incident=incident, by=carol, source=WEB, now=clock.current)
        lifecycle.incident_reopen(incident=incident, by=carol, reason="back", source=WEB, now=clock.current)
    assert fresh(incident).progress == "Triggered"
    assert recipients(mailoutbox) == ["carol", "carol"]
    later(clock, hours=2)
    assert recipients(mailoutbox) == ["carol", "carol"]


def test_an_incident_assigned_by_hand_in_a_channel_with_rules_pages_its_responder_not_the_rule(
    world, clock, mailoutbox
):
    incident = create_assigned(world["channel"], world["carol"], clock)
    lifecycle.incident_acknowledge(incident=incident, by=world["carol"], source=WEB, now=clock.current)
    lifecycle.incident_unacknowledge(incident=incident, by=world["carol"], source=WEB, now=clock.current)
    later(clock, hours=2)
    # alice: level 1 for the incident that came in by alert (the world's), before and after 30 minutes; bob after.
    mine = [mail.to[0].split("@")[0] for mail in mailoutbox if "DB down" in mail.subject]
    assert mine == ["carol", "carol"], "the rule's people are not paged for an incident assigned to carol"


def test_a_reassigned_incident_pages_its_responders_not_the_rule_when_its_snooze_ends(world, clock, mailoutbox):
    incident = lifecycle.incident_reassign(
        incident=world["incident"], by=world["alice"], people=[world["carol"]], source=WEB, now=clock.current
    )
    lifecycle.incident_add_responders(
        incident=incident, by=world["carol"], people=[world["dave"]], source=WEB, now=clock.current
    )
    lifecycle.incident_acknowledge(incident=incident, by=world["carol"], source=WEB, now=clock.current)
    lifecycle.incident_snooze(incident=incident, by=world["carol"], minutes=10, source=WEB, now=clock.current)
    assert recipients(mailoutbox) == ["alice", "carol", "dave"]
    later(clock, minutes=11)
    assert fresh(incident).progress == "Triggered"
    assert recipients(mailoutbox)[3:] == ["carol", "dave"], "its responders, not the rule's level 1 (alice)"
    later(clock, hours=2)
    assert recipients(mailoutbox)[3:] == ["carol", "dave"], "the rule no longer escalates it"
    assert not incident.timeline.filter(kind="assigned", message__contains="starts again").exists()


def test_a_deactivated_responder_is_skipped_when_an_incident_in_peoples_hands_is_triggered_again(
    world, clock, mailoutbox
):
    incident = lifecycle.incident_reassign(
        incident=world["incident"],
        by=world["alice"],
        people=[world["carol"], world["dave"]],
        source=WEB,
        now=clock.current,
    )
    lifecycle.incident_acknowledge(incident=incident, by=world["carol"], source=WEB, now=clock.current)
    world["dave"].is_active = False
    world["dave"].save()
    lifecycle.incident_unacknowledge(incident=incident, by=world["carol"], source=WEB, now=clock.current)
    assert recipients(mailoutbox) == ["alice", "carol", "dave", "carol"]
    skipped = incident.timeline.filter(kind="notify_failed").latest("pk")
    assert "dave" in skipped.message and "no longer active" in skipped.message


def test_escalating_a_reassigned_incident_by_hand_gives_it_back_to_the_rule(world, clock, mailoutbox):
    incident = lifecycle.incident_reassign(
        incident=world["incident"], by=world["alice"], people=[world["carol"]], source=WEB, now=clock.current
    )
    lifecycle.incident_escalate(incident=incident, by=world["carol"], level=1, source=WEB, now=clock.current)
    assert recipients(mailoutbox) == ["alice", "carol", "bob"], "level 2 is notified at once"
    lifecycle.incident_acknowledge(incident=incident, by=world["bob"], source=WEB, now=clock.current)
    lifecycle.incident_unacknowledge(incident=incident, by=world["bob"], source=WEB, now=clock.current)
    assert recipients(mailoutbox) == ["alice", "carol", "bob", "alice"], "the rule starts again from level 1"
    later(clock, minutes=30)
    assert recipients(mailoutbox) == ["alice", "carol", "bob", "alice", "bob"]


def test_upgrading_marks_the_incidents_already_in_peoples_hands(world, clock):
    """Incidents assigned or reassigned before the escalation state recorded it are found by their events."""
    migration = importlib.import_module("escalation.migrations.0007_escalationstate_direct")
    assigned = create_assigned(world["channel"], world["carol"], clock)
    reassigned = lifecycle.incident_reassign(
        incident=world["incident"], by=world["alice"], people=[world["carol"]], source=WEB, now=clock.current
    )
    by_rule = lifecycle.incident_create(
        channel=world["channel"], title="Slow", severity="Warning", by=world["dave"], now=clock.current
    )
    EscalationState.objects.filter(incident=assigned).delete()  # as before: no state
    EscalationState.objects.filter(incident=reassigned).update(status="stopped")
    migration.mark_incidents_in_peoples_hands(django_apps, None)
    statuses = dict(EscalationState.objects.values_list("incident_id", "status"))
    assert statuses == {assigned.pk: "direct", reassigned.pk: "direct", by_rule.pk: "running"}
    lifecycle.incident_acknowledge(incident=assigned, by=world["carol"], source=WEB, now=clock.current)
    lifecycle.incident_unacknowledge(incident=assigned, by=world["carol"], source=WEB, now=clock.current)
    assert fresh(assigned).timeline.filter(kind="notified").count() == 2, "carol is paged again"
