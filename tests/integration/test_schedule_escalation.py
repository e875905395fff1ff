"""Escalation levels that target schedules, driven through the real ticker and worker code with a controlled clock:
whoever is on call when the level runs is notified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels_app.models import Delivery
from escalation.models import EscalationLevel, EscalationRule, LevelSchedule, Override, Schedule
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Incident
from tests.factories import (
    make_channel,
    make_follow_the_sun_schedule,
    make_integration,
    make_schedule,
    make_unreadable_schedule,
    make_user,
    needs_postgresql_past_9999,
    push,
)

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start, a Monday


def paged(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


def later(clock, **delta) -> None:
    clock.advance(**delta)
    tick(now=clock_module.now())


def event(key: str = "api") -> dict:
    return {"title_rule": f"{key} errors", "event_status": "Critical", "alert_key": key}


@pytest.fixture
def people():
    return {name: make_user(name) for name in ("ann", "ben", "cy", "di", "ed")}


@pytest.fixture
def rotation(people) -> Schedule:
    """Daily handoff at 09:30 UTC: ann (primary) with cy (backup) until Monday 09:30, then ben with di."""
    return make_schedule(
        "Payments",
        layers=[
            {
                "start": START - timedelta(days=1, minutes=-30),
                "unit": "day",
                "groups": [[people["ann"], (people["cy"], "backup")], [people["ben"], (people["di"], "backup")]],
            }
        ],
    )


def rule_with_levels(channel, *levels: dict) -> EscalationRule:
    """levels: [{"schedules": [(schedule, role or ""), ...], "people": [...], "after": minutes}, ...]"""
    rule = EscalationRule.objects.create(channel=channel, name="On call")
    for position, spec in enumerate(levels):
        level = EscalationLevel.objects.create(
            rule=rule, position=position, escalate_after_minutes=spec.get("after", 30)
        )
        level.people.set(spec.get("people", []))
        for schedule, role in spec.get("schedules", []):
            LevelSchedule.objects.create(level=level, schedule=schedule, role=role)
    return rule


def test_each_level_reaches_whoever_is_on_call_when_it_runs(client, clock, people, rotation, mailoutbox):
    channel = make_channel()
    rule_with_levels(
        channel,
        {"schedules": [(rotation, "primary")], "after": 45},
        {"schedules": [(rotation, "backup"), (rotation, ""), (rotation, "primary")]},
    )
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["ann"]  # 09:00: ann is the primary

    later(clock, minutes=44, seconds=59)
    assert paged(mailoutbox) == ["ann"]
    later(clock, seconds=1)  # 09:45: the rotation handed over at 09:30
    assert sorted(paged(mailoutbox)[1:]) == ["ben", "di"]  # ben is reached through two targets, paged once
    incident = Incident.objects.get()
    assert Delivery.objects.filter(incident=incident, level=1).count() == 2
    notified = incident.timeline.filter(kind="notified").last()
    assert notified.detail["schedules"] == [
        {"schedule_id": rotation.pk, "role": "backup", "on_call": [people["di"].pk]},
        {"schedule_id": rotation.pk, "role": None, "on_call": [people["ben"].pk, people["di"].pk]},
        {"schedule_id": rotation.pk, "role": "primary", "on_call": [people["ben"].pk]},
    ]
    assert set(incident.responder_set.values_list("person__username", flat=True)) == {"ann", "ben", "di"}


def test_a_repeat_reaches_the_person_on_call_at_the_repeat(client, clock, people, rotation, mailoutbox):
    channel = make_channel()
    rule = rule_with_levels(channel, {"schedules": [(rotation, "primary")], "after": 60})
    EscalationLevel.objects.filter(rule=rule).update(repeat_times=2, repeat_every_minutes=20)
    push(client, make_integration(channel=channel)[1], event())
    later(clock, minutes=20)
    later(clock, minutes=20)
    assert paged(mailoutbox) == ["ann", "ann", "ben"]


def test_an_override_wins_when_the_level_runs(client, clock, people, rotation, mailoutbox):
    Override.objects.create(schedule=rotation, person=people["ed"], start=START, end=START + timedelta(hours=1))
    Override.objects.create(
        schedule=rotation, person=people["ann"], role="backup", start=START, end=START + timedelta(hours=2)
    )
    channel = make_channel()
    rule_with_levels(channel, {"schedules": [(rotation, "primary")], "after": 90}, {"schedules": [(rotation, "")]})
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["ed"]
    later(clock, minutes=90)  # 10:30: ed's override is over; ann overrides the backup until 11:00
    assert sorted(paged(mailoutbox)[1:]) == ["ann", "ben"]


def test_an_empty_schedule_notifies_nobody_says_so_and_escalation_goes_on(client, clock, people, mailoutbox):
    empty = make_schedule("Weekend desk")
    disabled = make_schedule("Old rota", enabled=False, layers=[{"start": START, "groups": [[people["cy"]]]}])
    channel = make_channel()
    rule_with_levels(
        channel,
        {"schedules": [(empty, "primary"), (disabled, "")], "after": 10},
        {"people": [people["ben"]]},
    )
    push(client, make_integration(channel=channel)[1], event())
    assert mailoutbox == []
    incident = Incident.objects.get()
    messages = list(incident.timeline.filter(kind="notify_failed").values_list("message", flat=True))
    assert messages == [
        "Nobody is on call for schedule Weekend desk (primary).",
        "Nobody is on call for schedule Old rota. The schedule is disabled.",
    ]
    assert "Level 1 notified nobody." in incident.timeline.filter(kind="notified").get().message
    later(clock, minutes=10)
    assert paged(mailoutbox) == ["ben"]


def test_the_frozen_rule_keeps_its_schedule_targets_but_asks_the_schedule_when_it_runs(
    client, clock, people, rotation, mailoutbox
):
    channel = make_channel()
    rule = rule_with_levels(channel, {"people": [people["cy"]], "after": 10}, {"schedules": [(rotation, "primary")]})
    push(client, make_integration(channel=channel)[1], event())
    LevelSchedule.objects.filter(level__rule=rule).delete()  # edits after the incident opened change nothing
    Override.objects.create(
        schedule=rotation, person=people["ed"], start=START + timedelta(minutes=5), end=START + timedelta(hours=1)
    )
    later(clock, minutes=10)
    assert paged(mailoutbox) == ["cy", "ed"]


def test_a_broken_schedule_does_not_stop_the_page_to_the_levels_other_targets(
    client, clock, people, rotation, mailoutbox
):
    Schedule.objects.filter(pk=rotation.pk).update(time_zone="Mars/Olympus_Mons")  # written around validation
    channel = make_channel()
    rule_with_levels(channel, {"schedules": [(rotation, "primary")], "people": [people["cy"]]})
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["cy"]
    failed = Incident.objects.get().timeline.get(kind="notify_failed")
    assert (
        failed.message
        == "Nobody is on call for schedule Payments (primary). The schedule could not be read; see the server log."
    )


@needs_postgresql_past_9999
def test_a_schedule_that_cannot_be_read_does_not_stop_the_page_to_the_levels_other_targets(
    client, clock, people, rotation, mailoutbox
):
    broken = make_unreadable_schedule("Checkout", person=people["ed"])
    channel = make_channel()
    rule_with_levels(channel, {"schedules": [(broken, ""), (rotation, "primary")], "people": [people["cy"]]})
    push(client, make_integration(channel=channel)[1], event())
    assert sorted(paged(mailoutbox)) == ["ann", "cy"]  # the other schedule's primary and the person named directly
    failed = Incident.objects.get().timeline.get(kind="notify_failed")
    assert failed.message == (
        "Nobody is on call for schedule Checkout. The schedule could not be read; see the server log."
    )


def test_a_deactivated_persons_turn_falls_to_the_layer_below(client, clock, people, mailoutbox):
    """ann left the company (deactivated, still in the rotation): her week is the fallback layer's, and ben's turn
    stays where it was."""
    lead = make_user("lead")
    schedule = make_schedule(
        "Payments",
        layers=[
            {"start": START - timedelta(days=30), "groups": [[lead]], "name": "fallback"},
            {"start": START - timedelta(hours=1), "groups": [[people["ann"]], [people["ben"]]], "name": "rotation"},
        ],
    )
    people["ann"].is_active = False
    people["ann"].save()
    channel = make_channel()
    rule_with_levels(channel, {"schedules": [(schedule, "primary")]})
    push(client, make_integration(channel=channel)[1], event())
    assert paged(mailoutbox) == ["lead"]
    clock.advance(weeks=1)  # ben's week
    push(client, make_integration(channel=channel)[1], event("db"))
    assert paged(mailoutbox) == ["lead", "ben"]


def test_a_deactivated_persons_turn_with_no_layer_below_says_nobody_is_on_call(client, clock, people, mailoutbox):
    schedule = make_schedule("Payments", layers=[{"start": START - timedelta(hours=1), "groups": [[people["ann"]]]}])
    Override.objects.create(
        schedule=schedule, person=people["ed"], start=START - timedelta(hours=1), end=START + timedelta(hours=1)
    )
    people["ed"].is_active = False
    people["ed"].save()
    people["ann"].is_active = False
    people["ann"].save()
    channel = make_channel()
    rule_with_levels(channel, {"schedules": [(schedule, "primary")]})
    push(client, make_integration(channel=channel)[1], event())
    assert mailoutbox == []
    failed = Incident.objects.get().timeline.filter(kind="notify_failed")
    assert list(failed.values_list("message", flat=True)) == ["Nobody is on call for schedule Payments (primary)."]


def test_an_incident_in_the_repeated_hour_pages_the_person_whose_window_opened_at_the_first_0230(
    client, clock, mailoutbox
):
    """Follow the sun in Berlin time: America 14:30-02:30, Europe 02:30-14:30. On 25 October 2026 America hands
    over at the first 02:30 (CEST); at 02:10 CET, after the clocks went back, Europe is still the one paged."""
    europe, america = make_user("europe"), make_user("america")
    schedule = make_follow_the_sun_schedule(europe=europe, america=america)
    channel = make_channel()
    rule_with_levels(channel, {"schedules": [(schedule, "primary")]})
    key = make_integration(channel=channel)[1]
    clock.current = datetime(2026, 10, 25, 0, 20, tzinfo=UTC)  # 02:20 CEST
    push(client, key, event("api"))
    clock.current = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET
    push(client, key, event("db"))
    assert paged(mailoutbox) == ["america", "europe"]
