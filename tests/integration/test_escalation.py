"""The escalation engine driven through the real ticker and worker code (tasks inline) with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from channels_app import services as channel_services
from channels_app.models import Delivery
from escalation import services as escalation_services
from escalation.models import EscalationLevel, EscalationRule, EscalationState, Timer
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.lib import queue
from oncall.models import Channel, Incident, IncidentEvent, Source, User
from oncall.services import events, lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_team, make_user, push
from tests.fakes.smtp import FakeSmtpServer

pytestmark = pytest.mark.django_db(transaction=True)
WEB = Source.WEB


def event(key: str = "api", severity: str = "Critical", **labels) -> dict:
    return {"title_rule": f"{key} errors", "event_status": severity, "alert_key": key, "labels": labels}


def paged(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


def later(clock, **delta) -> None:
    clock.advance(**delta)
    tick(now=clock_module.now())


@pytest.fixture
def people():
    return {name: make_user(name) for name in ("ann", "ben", "cy", "di")}


def level(rule: EscalationRule, position: int, **fields) -> EscalationLevel:
    people = fields.pop("people", [])
    teams = fields.pop("teams", [])
    lv = EscalationLevel.objects.create(rule=rule, position=position, **fields)
    lv.people.set(people)
    lv.teams.set(teams)
    return lv


def test_level_one_then_level_two_after_the_timeout(client, clock, people, mailoutbox):
    channel = make_channel()
    make_rule(channel, [{"people": [people["ann"]], "after": 5}, {"people": [people["ben"]], "after": 5}])
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["ann"]
    later(clock, minutes=4, seconds=59)
    assert paged(mailoutbox) == ["ann"]
    later(clock, seconds=1)
    assert paged(mailoutbox) == ["ann", "ben"]


def test_a_rule_saved_with_a_severity_that_is_none_is_passed_over(client, clock, people, mailoutbox):
    """Saved before such filters were refused (or past the admin): the next rule pages, incidents still open."""
    channel = make_channel()
    stale = make_rule(channel, [{"people": [people["ann"]]}], priority=1)
    EscalationRule.objects.filter(pk=stale.pk).update(filters=[[{"key": "severity", "op": "IN", "values": ["P1"]}]])
    make_rule(channel, [{"people": [people["ben"]]}], priority=2)
    assert push(client, make_integration(channel=channel)[1], event()).status_code == 200
    assert Incident.objects.filter(channel=channel).count() == 1
    assert paged(mailoutbox) == ["ben"]


def test_a_rule_saved_with_unreadable_time_windows_is_passed_over(client, clock, people, mailoutbox, caplog):
    """Stored by an older version, a fixture load or a direct write ("Mon" and "9:00" are refused by the admin): the
    rule is left out with an error in the log, the next rule pages, and the incident's events are not held up."""
    channel = make_channel()
    office = make_rule(channel, [{"people": [people["ann"]]}], name="Office", priority=1)
    EscalationRule.objects.filter(pk=office.pk).update(
        time_windows=[{"days": ["Mon"], "start": "9:00", "end": "18:00"}]
    )
    make_rule(channel, [{"people": [people["ben"]]}], name="Catch-all", priority=2)
    push(client, make_integration(channel=channel)[1], event())
    later(clock, seconds=10)
    assert paged(mailoutbox) == ["ben"]
    assert not IncidentEvent.objects.filter(dispatched_at__isnull=True).exists()
    assert f"Escalation rule {office.pk} of channel {channel.pk} has invalid time windows" in caplog.text


def test_a_channel_saved_with_an_unknown_time_zone_reads_time_windows_in_utc(client, clock, people, mailoutbox, caplog):
    channel = make_channel()
    Channel.objects.filter(pk=channel.pk).update(time_zone="Mars/Olympus")
    office = make_rule(channel, [{"people": [people["ann"]]}], name="Office", priority=1)
    EscalationRule.objects.filter(pk=office.pk).update(
        time_windows=[{"days": ["mon"], "start": "09:00", "end": "10:00"}]
    )
    make_rule(channel, [{"people": [people["ben"]]}], name="Catch-all", priority=2)
    push(client, make_integration(channel=channel)[1], event())  # Monday 09:00 UTC
    assert paged(mailoutbox) == ["ann"]
    assert f"Channel {channel.pk} has an unknown time zone 'Mars/Olympus'" in caplog.text


def test_a_rule_saved_with_a_severity_in_lower_case_applies(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = make_rule(channel, [{"people": [people["ann"]]}], priority=1)
    EscalationRule.objects.filter(pk=rule.pk).update(
        filters=[[{"key": "severity", "op": "IN", "values": ["critical"]}]]
    )
    make_rule(channel, [{"people": [people["ben"]]}], priority=2)
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["ann"]


def test_rules_filtering_on_the_integration_take_the_incidents_of_its_alerts(client, clock, people, mailoutbox):
    """By its name, or by its id under Flashduty's key (data_source_id): the integration of the incident's first
    alert."""
    channel = make_channel()
    _, edge_key = make_integration(channel=channel, name="Edge")
    core, core_key = make_integration(channel=channel, name="Core")
    by_name = make_rule(channel, [{"people": [people["ann"]]}], priority=1)
    by_id = make_rule(channel, [{"people": [people["ben"]]}], priority=2)
    make_rule(channel, [{"people": [people["cy"]]}], priority=3)
    EscalationRule.objects.filter(pk=by_name.pk).update(
        filters=[[{"key": "integration", "op": "IN", "values": ["Edge"]}]]
    )
    EscalationRule.objects.filter(pk=by_id.pk).update(
        filters=[[{"key": "data_source_id", "op": "IN", "values": [str(core.pk)]}]]
    )
    push(client, edge_key, event("edge"))
    push(client, core_key, event("core"))
    push(client, make_integration(channel=channel, name="Other")[1], event("other"))
    assert paged(mailoutbox) == ["ann", "ben", "cy"]


def test_the_delay_window_holds_the_first_page_and_a_close_meanwhile_pages_nobody(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = make_rule(channel, [{"people": [people["ann"]]}])
    EscalationRule.objects.filter(pk=rule.pk).update(delay_seconds=120)
    _, key = make_integration(channel=channel)
    push(client, key, event("flappy"))
    later(clock, seconds=119)
    assert mailoutbox == []
    push(client, key, event("flappy", "Ok"))  # recovers within the window: closes the incident
    later(clock, seconds=1)
    later(clock, minutes=30)
    assert mailoutbox == []
    assert "delay of 120 seconds" in Incident.objects.get().timeline.get(kind="assigned").message

    push(client, key, event("steady"))
    later(clock, seconds=120)
    assert paged(mailoutbox) == ["ann"]


def test_rules_apply_in_their_time_windows_in_the_channels_time_zone(client, clock, people, mailoutbox):
    channel = make_channel(time_zone="Asia/Shanghai")
    office = make_rule(channel, [{"people": [people["ann"]]}], name="Office hours", priority=1)
    EscalationRule.objects.filter(pk=office.pk).update(
        time_windows=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}]
    )
    make_rule(channel, [{"people": [people["ben"]]}], name="Nights", priority=2)
    _, key = make_integration(channel=channel)
    clock.current = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
    push(client, key, event("day"))
    clock.current = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 22:00 in Shanghai
    push(client, key, event("night"))
    assert paged(mailoutbox) == ["ann", "ben"]


EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_the_shift_that_took_over_at_the_first_0230_is_paged_in_the_repeated_hour(client, clock, people, mailoutbox):
    """Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:00-03:00 happens twice. The late shift (14:30-02:30)
    handed over to the early shift (02:30-14:30) at the first 02:30; at the second 02:10, 40 minutes later, the
    early shift's person is paged, not the late shift's again."""
    channel = make_channel(time_zone="Europe/Berlin")
    late = make_rule(channel, [{"people": [people["ann"]]}], name="Late shift", priority=1)
    early = make_rule(channel, [{"people": [people["ben"]]}], name="Early shift", priority=2)
    EscalationRule.objects.filter(pk=late.pk).update(
        time_windows=[{"days": EVERY_DAY, "start": "14:30", "end": "02:30"}]
    )
    EscalationRule.objects.filter(pk=early.pk).update(
        time_windows=[{"days": EVERY_DAY, "start": "02:30", "end": "14:30"}]
    )
    _, key = make_integration(channel=channel)
    clock.current = datetime(2026, 10, 25, 0, 20, tzinfo=UTC)  # 02:20 CEST: before the handover
    push(client, key, event("before"))
    clock.current = datetime(2026, 10, 25, 0, 40, tzinfo=UTC)  # 02:40 CEST: after it
    push(client, key, event("after"))
    clock.current = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET: 40 minutes after it
    push(client, key, event("repeated"))
    rules = [state.snapshot["rule_name"] for state in EscalationState.objects.order_by("incident_id")]
    assert rules == ["Late shift", "Early shift", "Early shift"]
    assert paged(mailoutbox) == ["ann", "ben", "ben"]


def test_a_rule_whose_window_opened_at_the_first_0230_pages_in_the_repeated_hour(client, clock, people, mailoutbox):
    """The only rule, 02:30-14:30 in Berlin: an incident at the second 02:10 (CET), 40 minutes after its window
    opened, is paged rather than left unassigned."""
    channel = make_channel(time_zone="Europe/Berlin")
    early = make_rule(channel, [{"people": [people["ben"]]}], name="Early shift")
    EscalationRule.objects.filter(pk=early.pk).update(
        time_windows=[{"days": EVERY_DAY, "start": "02:30", "end": "14:30"}]
    )
    clock.current = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET; the window opened at 00:30 UTC
    push(client, make_integration(channel=channel)[1], event())
    assert EscalationState.objects.get().status == EscalationState.Status.RUNNING
    assert paged(mailoutbox) == ["ben"]


def test_a_rule_is_chosen_for_when_the_incident_opened_not_when_its_event_was_dispatched(
    client, clock, people, mailoutbox, monkeypatch
):
    channel = make_channel()
    office = make_rule(channel, [{"people": [people["ann"]], "after": 5}], name="Office", priority=1)
    EscalationRule.objects.filter(pk=office.pk).update(
        time_windows=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}]
    )
    make_rule(channel, [{"people": [people["ben"]]}], name="Nights", priority=2)
    clock.current = datetime(2026, 3, 2, 17, 59, 58, tzinfo=UTC)  # Monday, in office hours
    with monkeypatch.context() as patch:
        patch.setattr(events, "incident_events_dispatch", lambda **kw: 0)  # the process dies after commit
        push(client, make_integration(channel=channel)[1], event())
    later(clock, seconds=7)  # the ticker dispatches the event after its grace period, at 18:00:05
    assert paged(mailoutbox) == ["ann"], "opened at 17:59:58, in office hours"
    # Level 1 was due when the incident opened, so it was notified at once; its timeout counts from then.
    state = EscalationState.objects.get()
    assert state.level_started_at == clock.current
    assert state.timers.get(done_at__isnull=True).due_at == clock.current + timedelta(minutes=5)


def test_the_delay_window_counts_from_when_the_incident_opened(client, clock, people, mailoutbox, monkeypatch):
    channel = make_channel()
    rule = make_rule(channel, [{"people": [people["ann"]]}])
    EscalationRule.objects.filter(pk=rule.pk).update(delay_seconds=60)
    with monkeypatch.context() as patch:
        patch.setattr(events, "incident_events_dispatch", lambda **kw: 0)  # the process dies after commit
        push(client, make_integration(channel=channel)[1], event())
    later(clock, seconds=7)
    assert mailoutbox == []
    assert EscalationState.objects.get().timers.get().due_at == clock.current + timedelta(seconds=53)
    later(clock, seconds=53)
    assert paged(mailoutbox) == ["ann"]


def test_the_incident_filter_chooses_the_rule(client, clock, people, mailoutbox):
    channel = make_channel()
    db_rule = make_rule(channel, [{"people": [people["ann"]]}], name="Databases", priority=1)
    EscalationRule.objects.filter(pk=db_rule.pk).update(
        filters=[[{"key": "labels.service", "op": "IN", "values": ["postgres*", "/^mysql/"]}]]
    )
    make_rule(channel, [{"people": [people["ben"]]}], name="Everything else", priority=2)
    _, key = make_integration(channel=channel)
    push(client, key, event("a", service="postgres-main"))
    push(client, key, event("b", service="checkout"))
    push(client, key, event("c", service="mysql-replica"))
    assert paged(mailoutbox) == ["ann", "ben", "ann"]


def test_an_unassigned_incident_whose_severity_rises_is_paged_by_a_rule_for_its_new_severity(
    client, clock, people, mailoutbox
):
    channel = make_channel()
    critical = make_rule(channel, [{"people": [people["ann"]], "after": 5}, {"people": [people["ben"]]}])
    EscalationRule.objects.filter(pk=critical.pk).update(
        filters=[[{"key": "severity", "op": "IN", "values": ["Critical"]}]]
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Warning"))
    assert mailoutbox == []
    assert EscalationState.objects.get().status == "unassigned"
    later(clock, minutes=1)
    push(client, key, event("a", "Critical"))
    assert paged(mailoutbox) == ["ann"]
    incident = Incident.objects.get()
    assert incident.events.get(kind="severity_raised").detail == {"from": "Warning", "to": "Critical"}
    assert incident.timeline.filter(kind="assigned").get().message == f"Escalation rule {critical.name} applies."
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann", "ben"], "the rule's levels run from the rise"


def test_a_started_escalation_keeps_its_rule_when_the_severity_rises(client, clock, people, mailoutbox):
    channel = make_channel()
    critical = make_rule(channel, [{"people": [people["ann"]]}], name="Critical", priority=1)
    EscalationRule.objects.filter(pk=critical.pk).update(
        filters=[[{"key": "severity", "op": "IN", "values": ["Critical"]}]]
    )
    make_rule(channel, [{"people": [people["ben"]]}], name="Everything else", priority=2)
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Warning"))
    push(client, key, event("a", "Critical"))
    assert paged(mailoutbox) == ["ben"]
    assert EscalationState.objects.get().rule.name == "Everything else"


def test_an_acknowledged_unassigned_incident_is_not_paged_when_its_severity_rises(client, clock, people, mailoutbox):
    channel = make_channel()
    critical = make_rule(channel, [{"people": [people["ann"]]}])
    EscalationRule.objects.filter(pk=critical.pk).update(
        filters=[[{"key": "severity", "op": "IN", "values": ["Critical"]}]]
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Warning"))
    incident = lifecycle.incident_acknowledge(
        incident=Incident.objects.get(), by=people["di"], source=WEB, now=clock.current
    )
    push(client, key, event("a", "Critical"))
    assert mailoutbox == []
    assert EscalationState.objects.get().status == "unassigned", "someone has it in hand: no rule takes it over"
    lifecycle.incident_unacknowledge(incident=incident, by=people["di"], source=WEB, now=clock.current)
    assert paged(mailoutbox) == ["ann"], "unacknowledged, it escalates by the rule for its severity now"


def test_teams_and_plain_addresses_are_targets_and_everyone_is_paged_once(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Teams")
    dba = make_team("DBA", members=[people["ann"], people["ben"]])
    level(rule, 0, people=[people["ann"]], teams=[dba], emails=["dba-pager@example.com", "ben@example.com"])
    push(client, make_integration(channel=channel)[1], event())
    assert sorted(paged(mailoutbox)) == ["ann", "ben", "dba-pager"]
    assert Delivery.objects.count() == 3


def test_a_level_repeats_until_acknowledged(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Repeats")
    level(rule, 0, people=[people["ann"]], repeat_times=3, repeat_every_minutes=5, escalate_after_minutes=30)
    level(rule, 1, people=[people["ben"]])
    push(client, make_integration(channel=channel)[1], event())
    later(clock, minutes=5)
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann", "ann", "ann"]
    assert mailoutbox[1].subject.startswith("[Reminder]")
    incident = Incident.objects.get()
    assert "again (repeat 2 of 3)" in incident.timeline.filter(kind="notified").last().message
    lifecycle.incident_acknowledge(incident=incident, by=people["ann"], source=WEB, now=clock.current)
    later(clock, minutes=5)
    later(clock, minutes=60)
    assert paged(mailoutbox) == ["ann", "ann", "ann"]


def test_repeats_missed_during_an_outage_are_not_sent_in_a_burst(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Repeats")
    level(rule, 0, people=[people["ann"]], repeat_times=6, repeat_every_minutes=5, escalate_after_minutes=60)
    level(rule, 1, people=[people["ben"]])
    push(client, make_integration(channel=channel)[1], event())
    clock.advance(minutes=16)  # the ticker and worker were down over repeats 1 to 3
    tick(now=clock_module.now())
    assert paged(mailoutbox) == ["ann", "ann"], "one late repeat, not three at once"
    later(clock, minutes=4)
    assert paged(mailoutbox) == ["ann", "ann", "ann"]
    incident = Incident.objects.get()
    assert "again (repeat 4 of 6)" in incident.timeline.filter(kind="notified").last().message
    for _ in range(8):
        later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann"] * 5 + ["ben"], "repeats 5 and 6 at 25 and 30; the level times out at 60"


def test_repeats_then_escalation_when_nobody_answers(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Repeats")
    level(rule, 0, people=[people["ann"]], repeat_times=6, repeat_every_minutes=4, escalate_after_minutes=10)
    level(rule, 1, people=[people["ben"]], escalate_after_minutes=10)
    push(client, make_integration(channel=channel)[1], event())
    for _ in range(5):
        later(clock, minutes=2)
    # ann at 0, 4 and 8 (12 would be after the 10-minute timeout); ben at 10; then the end at 20.
    assert paged(mailoutbox) == ["ann", "ann", "ann", "ben"]
    later(clock, minutes=10)
    assert EscalationState.objects.get().status == "finished"


def test_force_escalation_pages_the_next_level_despite_the_acknowledgement(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Forced")
    level(
        rule,
        0,
        people=[people["ann"]],
        force_escalate=True,
        escalate_after_minutes=15,
        repeat_times=2,
        repeat_every_minutes=5,
    )
    level(rule, 1, people=[people["ben"]], escalate_after_minutes=15)
    level(rule, 2, people=[people["cy"]])
    push(client, make_integration(channel=channel)[1], event())
    later(clock, minutes=3)
    incident = lifecycle.incident_acknowledge(
        incident=Incident.objects.get(), by=people["ann"], source=WEB, now=clock.current
    )
    assert "forces escalation" in incident.timeline.filter(kind="assigned").last().message
    later(clock, minutes=5)
    assert paged(mailoutbox) == ["ann"], "repeats stop on acknowledgement"
    later(clock, minutes=7)
    assert paged(mailoutbox) == ["ann", "ben"], "level 1 forces escalation at 15 minutes"
    later(clock, minutes=15)
    assert paged(mailoutbox) == ["ann", "ben"], "level 2 does not force it"


def forced_to_ben(client) -> tuple[User, User]:
    """Level 1 pages ann and forces escalation after 5 minutes; level 2 pages ben. An incident is open."""
    ann, ben = make_user("ann"), make_user("ben")
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Forced")
    level(rule, 0, people=[ann], force_escalate=True, escalate_after_minutes=5)
    level(rule, 1, people=[ben], escalate_after_minutes=30)
    push(client, make_integration(channel=channel)[1], event())
    return ann, ben


def test_a_forced_levels_page_written_after_the_ack_is_retried_until_its_person_acknowledges(client, clock, smtp_port):
    """Level 1 forces escalation: ann acknowledges, ben (level 2) is paged anyway, and his page, which the mail
    server refuses, is retried (it was written after ann's acknowledgement) until ben acknowledges too."""
    ann, ben = forced_to_ben(client)
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, minutes=5)  # ben's page; the mail server is down
    bens = Delivery.objects.get(recipient=ben)
    assert (bens.status, bens.attempts) == ("pending", 1)
    later(clock, seconds=30)
    bens.refresh_from_db()
    assert (bens.status, bens.attempts) == ("pending", 2), "ann's earlier acknowledgement does not stop it"
    clock.advance(seconds=5)
    lifecycle.incident_acknowledge(incident=incident, by=ben, source=WEB, now=clock.current)
    server = FakeSmtpServer(smtp_port).start()
    try:
        for _ in range(12):
            later(clock, seconds=30)
        received = list(server.received)
    finally:
        server.stop()
    assert received == []
    bens.refresh_from_db()
    assert bens.status == "cancelled"


def test_a_forced_last_level_acknowledged_says_the_escalation_ends_not_that_a_next_level_is_notified(
    client, clock, people, mailoutbox
):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Only")
    level(rule, 0, people=[people["ann"]], force_escalate=True, escalate_after_minutes=15)
    push(client, make_integration(channel=channel)[1], event())
    incident = lifecycle.incident_acknowledge(
        incident=Incident.objects.get(), by=people["ann"], source=WEB, now=clock.current
    )
    assert incident.timeline.filter(kind="assigned").last().message == (
        "Level 1 forces escalation, but it is the last level: the escalation ends at 2026-03-02 09:15:00 UTC."
    )
    later(clock, minutes=15)
    assert EscalationState.objects.get().status == "finished"
    assert paged(mailoutbox) == ["ann"]


def test_force_escalation_stops_when_the_incident_closes(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Forced")
    level(rule, 0, people=[people["ann"]], force_escalate=True, escalate_after_minutes=15)
    level(rule, 1, people=[people["ben"]])
    push(client, make_integration(channel=channel)[1], event())
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(incident=incident, by=people["ann"], source=WEB, now=clock.current)
    later(clock, minutes=10)
    lifecycle.incident_resolve(incident=incident, by=people["ann"], source=WEB, now=clock.current)
    later(clock, minutes=10)
    assert paged(mailoutbox) == ["ann"]


def test_a_person_escalates_by_hand_to_a_chosen_level(client, clock, people, mailoutbox):
    channel = make_channel()
    make_rule(
        channel,
        [
            {"people": [people["ann"]], "after": 30},
            {"people": [people["ben"]], "after": 30},
            {"people": [people["cy"]]},
        ],
    )
    push(client, make_integration(channel=channel)[1], event())
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(incident=incident, by=people["ann"], source=WEB, now=clock.current)
    api = APIClient()
    api.force_authenticate(people["ann"])
    assert api.post(f"/api/v1/incidents/{incident.pk}/escalate/", {"level": 4}, format="json").status_code == 400
    response = api.post(f"/api/v1/incidents/{incident.pk}/escalate/", {"level": 3}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["progress"] == "Triggered"
    assert paged(mailoutbox) == ["ann", "cy"]
    entry = incident.timeline.filter(kind="escalated").first()
    assert (entry.actor, entry.source, entry.message) == (
        people["ann"],
        "web",
        "ann escalated the incident to level 3.",
    )
    later(clock, minutes=30)
    assert EscalationState.objects.get().status == "finished"
    assert paged(mailoutbox) == ["ann", "cy"]


def test_levels_that_follow_preferences_reach_people_their_way(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Preferences")
    level(rule, 0, people=[people["ann"]], follow_preferences=True, critical_methods=[])
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["ann"]


def test_a_severity_without_methods_skips_people_and_says_why(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Critical only")
    level(rule, 0, people=[people["ann"]], info_methods=[])
    push(client, make_integration(channel=channel)[1], event(severity="Info"))
    assert mailoutbox == []
    skipped = Incident.objects.get().timeline.get(kind="notify_failed")
    assert skipped.message == "Skipped ann (-): no notification method for Info."


def test_rule_edits_after_the_incident_opened_change_nothing_for_it(client, clock, people, mailoutbox):
    channel = make_channel()
    rule = make_rule(channel, [{"people": [people["ann"]], "after": 10}, {"people": [people["ben"]]}])
    push(client, make_integration(channel=channel)[1], event())
    EscalationLevel.objects.filter(rule=rule, position=1).get().people.set([people["di"]])
    EscalationLevel.objects.filter(rule=rule, position=0).update(escalate_after_minutes=1)
    later(clock, minutes=1)
    assert paged(mailoutbox) == ["ann"]
    later(clock, minutes=9)
    assert paged(mailoutbox) == ["ann", "ben"]


def test_overdue_timers_found_at_start_up_run_at_once(client, clock, people, mailoutbox):
    channel = make_channel()
    make_rule(channel, [{"people": [people["ann"]], "after": 5}, {"people": [people["ben"]]}])
    push(client, make_integration(channel=channel)[1], event())
    clock.advance(hours=3)  # the ticker was down for three hours
    tick(now=clock_module.now())
    assert paged(mailoutbox) == ["ann", "ben"]
    state = EscalationState.objects.get()
    assert state.level == 1 and state.level_started_at == clock.current
    assert state.timers.filter(done_at__isnull=True).get().due_at == clock.current + timedelta(minutes=30)


def test_a_forced_levels_page_decided_while_an_acknowledgement_held_the_incident_goes_out(
    client, clock, mailoutbox, monkeypatch
):
    """Level 1 times out at T and forces escalation; its timer's worker takes T as its time, then waits for the
    incident, which ann is acknowledging at T+300 ms. Level 2's page, decided after her acknowledgement, is sent:
    it is not taken for a page her acknowledgement came after."""
    ann, ben = forced_to_ben(client)
    assert paged(mailoutbox) == ["ann"]
    timer = Timer.objects.get(done_at__isnull=True)
    clock.current = timer.due_at + timedelta(milliseconds=300)
    with monkeypatch.context() as patch:  # the acknowledgement's own dispatch comes after the timer's
        patch.setattr(events, "incident_events_dispatch", lambda **kwargs: 0)
        lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)
    clock.advance(milliseconds=1)
    assert escalation_services.timer_fire(timer_id=timer.pk, now=timer.due_at) == "ran"
    page = Delivery.objects.get(recipient=ben)
    assert page.status != Delivery.Status.CANCELLED, page.error
    assert paged(mailoutbox) == ["ann", "ben"]


def test_a_timer_runs_for_its_own_incident_once_and_one_deleted_since_is_gone(client, clock, people, mailoutbox):
    """The statement that locks a timer's incident finds it through the timer; a timer deleted after it was handed
    out (with its incident, or in the admin) is gone."""
    channel = make_channel()
    make_rule(channel, [{"people": [people["ann"]], "after": 5}, {"people": [people["ben"]]}])
    _, key = make_integration(channel=channel)
    push(client, key, event("api"))
    push(client, key, event("db"))
    first, _ = Incident.objects.order_by("pk")
    timer = Timer.objects.get(state__incident=first, done_at__isnull=True)
    clock.current = timer.due_at

    assert escalation_services.timer_fire(timer_id=timer.pk, now=timer.due_at) == "ran"
    assert Delivery.objects.filter(recipient=people["ben"]).get().incident == first
    assert paged(mailoutbox) == ["ann", "ann", "ben"]
    assert escalation_services.timer_fire(timer_id=timer.pk, now=timer.due_at) == "stale"
    Timer.objects.filter(pk=timer.pk).delete()
    assert escalation_services.timer_fire(timer_id=timer.pk, now=timer.due_at) == "gone"


def level_two_page_written_while_a_person_waited(client, clock, monkeypatch) -> tuple[User, Delivery]:
    """Level 1 (ann) times out at T and level 2 pages ben. Someone presses a button at T-200 ms (the request reads
    its time then) while the level-2 timer's worker holds the incident: the timer writes ben's page at T, and no
    worker has taken it yet when the person's action, which waited for the lock, is written at T+5 ms."""
    ann, ben = make_user("ann"), make_user("ben")
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Plain")
    level(rule, 0, people=[ann], escalate_after_minutes=5)
    level(rule, 1, people=[ben], escalate_after_minutes=30)
    push(client, make_integration(channel=channel)[1], event())
    timer = Timer.objects.get(done_at__isnull=True)
    clock.current = timer.due_at
    with monkeypatch.context() as patch:  # ben's page is written; its send waits for a worker
        patch.setattr(queue, "enqueue", lambda func, *args, **kwargs: None)
        assert escalation_services.timer_fire(timer_id=timer.pk, now=timer.due_at) == "ran"
    clock.advance(milliseconds=5)
    return ann, Delivery.objects.get(recipient=ben)


def test_a_page_written_while_an_acknowledgement_waited_for_the_incident_is_not_sent_after_it(
    client, clock, mailoutbox, monkeypatch
):
    """ann's acknowledgement is recorded after ben's page was written, before a worker takes it: the page is no
    longer needed and is not sent (nor retried) for an incident ann has acknowledged — even though her request read
    its time before the page was written."""
    ann, page = level_two_page_written_while_a_person_waited(client, clock, monkeypatch)
    pressed_at = page.created_at - timedelta(milliseconds=200)
    recorded_at = clock.current
    lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=pressed_at)

    clock.advance(milliseconds=5)  # a worker takes ben's page
    channel_services.delivery_send(delivery_id=page.pk, now=clock.current)
    page.refresh_from_db()
    assert paged(mailoutbox) == ["ann"], "ben is not paged for an incident ann acknowledged before his page went out"
    assert (page.status, page.error) == ("cancelled", "The incident was acknowledged meanwhile.")
    assert Incident.objects.get().ack_time == recorded_at, "recorded when it had the incident, after the level's pages"


def test_a_page_written_while_a_reassignment_waited_for_the_incident_is_not_sent_after_it(
    client, clock, mailoutbox, monkeypatch
):
    """ann hands the incident to cy; her reassignment is recorded after ben's level-2 page was written, before a
    worker takes it. The incident is cy's: ben's page is no longer needed."""
    ann, page = level_two_page_written_while_a_person_waited(client, clock, monkeypatch)
    cy = make_user("cy")
    pressed_at = page.created_at - timedelta(milliseconds=200)
    lifecycle.incident_reassign(incident=Incident.objects.get(), by=ann, people=[cy], source=WEB, now=pressed_at)

    clock.advance(milliseconds=5)
    channel_services.delivery_send(delivery_id=page.pk, now=clock.current)
    page.refresh_from_db()
    assert page.status == "cancelled", page.error
    assert "reassigned since" in page.error
    assert paged(mailoutbox) == ["ann", "cy"]
