"""Escalation decisions: rule choice (priority, time windows, filters), who a level notifies and how, and what
comes next (repeats, escalation, the end, forced escalation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from escalation.engine import (
    LevelPlan,
    Notify,
    Person,
    RuleCandidate,
    Skip,
    Snapshot,
    Step,
    choose_rule,
    escalation_step,
    first_step,
    in_time_windows,
    level_people,
    may_notify,
    next_step,
    not_yet_reported,
    parse_time_windows,
    plan_level,
    rules_read_integration,
)
from oncall.lib.filters import Subject, parse_filters

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
BERLIN = ZoneInfo("Europe/Berlin")
INCIDENT = Subject(severity="Critical", title="Disk full", labels={"service": "billing"})


def rule(id, priority=100, enabled=True, levels=1, windows=None, filters=None):
    return RuleCandidate(
        id=id,
        name=f"r{id}",
        priority=priority,
        enabled=enabled,
        level_count=levels,
        windows=parse_time_windows(windows or []),
        filters=parse_filters(filters or []),
    )


def test_first_enabled_rule_by_priority_then_age_wins():
    assert choose_rule([rule(1, 50), rule(3, 10), rule(2, 10)], INCIDENT, NOW, BERLIN).id == 2


def test_disabled_rules_and_rules_without_levels_are_skipped():
    assert choose_rule([rule(1, 1, enabled=False), rule(2, 2, levels=0), rule(3, 3)], INCIDENT, NOW, BERLIN).id == 3


def test_no_matching_rule_means_unassigned():
    assert choose_rule([rule(1, enabled=False)], INCIDENT, NOW, BERLIN) is None
    assert choose_rule([], INCIDENT, NOW, BERLIN) is None


def test_a_rule_whose_filter_the_incident_fails_is_passed_over():
    info_only = rule(1, 1, filters=[[{"key": "severity", "op": "IN", "values": ["Info"]}]])
    billing = rule(2, 2, filters=[[{"key": "labels.service", "op": "IN", "values": ["bill*"]}]])
    assert choose_rule([info_only, billing], INCIDENT, NOW, BERLIN).id == 2


@pytest.mark.parametrize(
    ("filters", "reads"),
    [
        ([], False),
        ([[{"key": "labels.integration", "op": "IN", "values": ["edge"]}]], False),
        (
            [
                [{"key": "severity", "op": "IN", "values": ["Info"]}],
                [{"key": "integration", "op": "IN", "values": ["7"]}],
            ],
            True,
        ),
        ([[{"key": "data_source_id", "op": "NOTIN", "values": ["7"]}]], True),  # Flashduty's name for it
    ],
)
def test_whether_rules_read_the_incidents_integration(filters, reads):
    """Only then is the incident's first alert read for its integration when a rule is chosen."""
    assert rules_read_integration([rule(1), rule(2, filters=filters)]) is reads
    assert rules_read_integration([]) is False


BUSINESS_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), True),  # Mon 09:00 Berlin (CET): start is inclusive
        (datetime(2026, 3, 2, 7, 59, tzinfo=UTC), False),  # Mon 08:59 Berlin
        (datetime(2026, 3, 2, 17, 0, tzinfo=UTC), False),  # Mon 18:00 Berlin: end is exclusive
        (datetime(2026, 3, 7, 10, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),  # Mon 09:00 Berlin in summer time (CEST)
        (datetime(2026, 3, 30, 16, 30, tzinfo=UTC), False),  # Mon 18:30 Berlin in summer time
    ],
)
def test_time_windows_are_read_in_the_channels_time_zone(moment, expected):
    assert in_time_windows(parse_time_windows(BUSINESS_HOURS), moment, BERLIN) is expected


def test_an_overnight_window_runs_into_the_next_day():
    nights = parse_time_windows([{"days": ["fri"], "start": "22:00", "end": "06:00"}])
    assert in_time_windows(nights, datetime(2026, 3, 6, 23, 0, tzinfo=UTC), UTC)  # Fri 23:00
    assert in_time_windows(nights, datetime(2026, 3, 7, 5, 59, tzinfo=UTC), UTC)  # Sat 05:59
    assert not in_time_windows(nights, datetime(2026, 3, 7, 6, 0, tzinfo=UTC), UTC)
    assert not in_time_windows(nights, datetime(2026, 3, 5, 23, 0, tzinfo=UTC), UTC)  # Thu night


def test_an_overnight_window_on_sunday_runs_into_monday():
    weekend = parse_time_windows([{"days": ["sun"], "start": "22:00", "end": "06:00"}])
    assert in_time_windows(weekend, datetime(2026, 3, 8, 22, 0, tzinfo=UTC), UTC)  # Sun 22:00
    assert in_time_windows(weekend, datetime(2026, 3, 9, 5, 59, tzinfo=UTC), UTC)  # Mon 05:59
    assert not in_time_windows(weekend, datetime(2026, 3, 9, 6, 0, tzinfo=UTC), UTC)
    assert not in_time_windows(weekend, datetime(2026, 3, 8, 5, 0, tzinfo=UTC), UTC)  # Sun 05:00, after a Sat
    assert not in_time_windows(weekend, datetime(2026, 3, 10, 5, 0, tzinfo=UTC), UTC)  # Tue 05:00


def test_a_window_with_equal_start_and_end_is_the_whole_calendar_day():
    sunday = parse_time_windows([{"days": ["sun"], "start": "09:00", "end": "09:00"}])
    assert not in_time_windows(sunday, datetime(2026, 3, 7, 23, 59, tzinfo=UTC), UTC)  # Sat 23:59
    assert in_time_windows(sunday, datetime(2026, 3, 8, 0, 0, tzinfo=UTC), UTC)  # Sun 00:00
    assert in_time_windows(sunday, datetime(2026, 3, 8, 23, 59, tzinfo=UTC), UTC)  # Sun 23:59
    assert not in_time_windows(sunday, datetime(2026, 3, 9, 0, 0, tzinfo=UTC), UTC)  # Mon 00:00


# Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC, so 02:00-03:00 happens twice.
FIRST_0210, FIRST_0240 = datetime(2026, 10, 25, 0, 10, tzinfo=UTC), datetime(2026, 10, 25, 0, 40, tzinfo=UTC)
SECOND_0210, SECOND_0240 = datetime(2026, 10, 25, 1, 10, tzinfo=UTC), datetime(2026, 10, 25, 1, 40, tzinfo=UTC)
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LATE_SHIFT = [{"days": EVERY_DAY, "start": "14:30", "end": "02:30"}]
EARLY_SHIFT = [{"days": EVERY_DAY, "start": "02:30", "end": "14:30"}]


def test_a_window_opened_at_the_first_0230_stays_open_through_the_repeated_hour():
    early = parse_time_windows(EARLY_SHIFT)
    assert not in_time_windows(early, FIRST_0210, BERLIN)
    assert in_time_windows(early, FIRST_0240, BERLIN)
    assert in_time_windows(early, SECOND_0210, BERLIN), "40 minutes after it opened"
    assert in_time_windows(early, SECOND_0240, BERLIN)


def test_a_window_closed_at_the_first_0230_does_not_reopen_in_the_repeated_hour():
    late = parse_time_windows(LATE_SHIFT)
    assert in_time_windows(late, FIRST_0210, BERLIN)
    assert not in_time_windows(late, FIRST_0240, BERLIN)
    assert not in_time_windows(late, SECOND_0210, BERLIN), "40 minutes after it closed"
    assert not in_time_windows(late, SECOND_0240, BERLIN)


def test_the_rule_that_took_over_at_the_first_0230_keeps_the_repeated_hour():
    late, early = rule(1, 1, windows=LATE_SHIFT), rule(2, 2, windows=EARLY_SHIFT)
    assert choose_rule([late, early], INCIDENT, FIRST_0210, BERLIN).id == 1
    assert choose_rule([late, early], INCIDENT, FIRST_0240, BERLIN).id == 2
    assert choose_rule([late, early], INCIDENT, SECOND_0210, BERLIN).id == 2
    assert choose_rule([early], INCIDENT, SECOND_0210, BERLIN).id == 2


def test_a_window_ending_in_the_repeated_hour_closes_the_first_time_and_one_starting_there_opens_then():
    until = parse_time_windows([{"days": ["sat"], "start": "22:00", "end": "02:30"}])
    since = parse_time_windows([{"days": ["sun"], "start": "02:30", "end": "04:00"}])
    moments = (FIRST_0210, FIRST_0240, SECOND_0210)
    assert [in_time_windows(until, moment, BERLIN) for moment in moments] == [True, False, False]
    assert [in_time_windows(since, moment, BERLIN) for moment in moments] == [False, True, True]


def test_an_overnight_window_lasts_9_hours_when_clocks_go_back_and_7_when_they_spring_forward():
    nights = parse_time_windows([{"days": ["sat"], "start": "22:00", "end": "06:00"}])
    autumn_close = datetime(2026, 10, 25, 5, 0, tzinfo=UTC)  # Sun 06:00 CET; opened Sat 22:00 CEST (20:00 UTC)
    assert in_time_windows(nights, datetime(2026, 10, 24, 20, 0, tzinfo=UTC), BERLIN)
    assert in_time_windows(nights, autumn_close - timedelta(seconds=1), BERLIN)
    assert not in_time_windows(nights, autumn_close, BERLIN)
    spring_close = datetime(2026, 3, 29, 4, 0, tzinfo=UTC)  # Sun 06:00 CEST; opened Sat 22:00 CET (21:00 UTC)
    assert not in_time_windows(nights, datetime(2026, 3, 28, 20, 59, tzinfo=UTC), BERLIN)
    assert in_time_windows(nights, datetime(2026, 3, 28, 21, 0, tzinfo=UTC), BERLIN)
    assert in_time_windows(nights, spring_close - timedelta(seconds=1), BERLIN)
    assert not in_time_windows(nights, spring_close, BERLIN)


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clocks_jump():
    # Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    early = parse_time_windows(EARLY_SHIFT)
    assert not in_time_windows(early, datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), BERLIN)  # 01:59:59 CET
    assert in_time_windows(early, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), BERLIN)  # 03:00 CEST
    skipped = parse_time_windows([{"days": ["sun"], "start": "02:10", "end": "02:40"}])
    assert not any(
        in_time_windows(skipped, datetime(2026, 3, 29, 0, 50, tzinfo=UTC) + timedelta(minutes=m), BERLIN)
        for m in range(0, 30)
    ), "a window wholly in the hour the clocks skip has no time"


def test_a_whole_day_window_on_the_day_the_clocks_go_back_lasts_25_hours():
    sunday = parse_time_windows([{"days": ["sun"], "start": "00:00", "end": "00:00"}])
    assert not in_time_windows(sunday, datetime(2026, 10, 24, 21, 59, tzinfo=UTC), BERLIN)  # Sat 23:59 CEST
    assert in_time_windows(sunday, datetime(2026, 10, 24, 22, 0, tzinfo=UTC), BERLIN)  # Sun 00:00 CEST
    assert in_time_windows(sunday, datetime(2026, 10, 25, 22, 59, tzinfo=UTC), BERLIN)  # Sun 23:59 CET
    assert not in_time_windows(sunday, datetime(2026, 10, 25, 23, 0, tzinfo=UTC), BERLIN)  # Mon 00:00 CET


def test_a_rule_outside_its_time_windows_does_not_apply():
    office = rule(1, 1, windows=BUSINESS_HOURS)
    fallback = rule(2, 2)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    assert choose_rule([office, fallback], INCIDENT, saturday, BERLIN).id == 2
    assert choose_rule([office, fallback], INCIDENT, NOW, BERLIN).id == 1


@pytest.mark.parametrize(
    ("windows", "reason"),
    [
        ({"days": ["mon"]}, "a list"),
        ([{"days": [], "start": "09:00", "end": "10:00"}], "days must be"),
        ([{"days": ["monday"], "start": "09:00", "end": "10:00"}], "days must be"),
        ([{"days": ["mon"], "start": "9:00", "end": "10:00"}], "start must be a time"),
        ([{"days": ["mon"], "start": "09:00", "end": "24:00"}], "end must be a time"),
    ],
)
def test_invalid_time_windows_are_refused_with_the_reason(windows, reason):
    with pytest.raises(ValueError, match=reason):
        parse_time_windows(windows)


LEVEL = LevelPlan(people=(1, 2, 1, 3), teams=(10,), emails=("DBA@example.com", "ann@example.com"))
PEOPLE = {1: Person(1, "Ann"), 2: Person(2, "Ben"), 3: Person(3, "Cy", active=False), 4: Person(4, "Di")}


def test_a_level_targets_its_people_then_its_teams_members_each_once():
    assert level_people(LEVEL, {10: [4, 2], 11: [9]}) == (1, 2, 3, 4)


def test_each_person_is_notified_once_per_method_and_skips_say_why():
    notify, skips = plan_level(
        (1, 2, 3, 4, 5),
        people=PEOPLE,
        methods={1: ("email", "sms", "email"), 2: ("email", "sms"), 3: ("email",), 4: ()},
        addresses={(1, "email"): "ann@example.com", (1, "sms"): "+4915112345678", (2, "email"): "ben@example.com"},
        emails=LEVEL.emails,
        severity="Info",
    )
    assert notify == [
        Notify(1, "email", "ann@example.com"),
        Notify(1, "sms", "+4915112345678"),
        Notify(2, "email", "ben@example.com"),
        Notify(None, "email", "DBA@example.com"),  # ann@example.com is not emailed twice
    ]
    assert skips == [
        Skip(2, "sms", "no verified sms contact"),
        Skip(3, "-", "person is no longer active"),
        Skip(4, "-", "no notification method for Info"),
        Skip(5, "-", "person is no longer active"),  # deleted since the rule was frozen
    ]
    assert [n.recipient_key for n in notify] == ["person:1", "person:1", "person:2", "email:dba@example.com"]


def test_only_skips_the_timeline_does_not_say_yet_are_reported_again():
    skips = [
        Skip(1, "sms", "no verified sms contact"),
        Skip(1, "voice", "no verified voice contact"),
        Skip(2, "-", "-"),
    ]
    assert not_yet_reported(skips, {(1, "sms"), (2, "email")}) == [skips[1], skips[2]]
    assert not_yet_reported(skips, set()) == skips


L1 = LevelPlan(people=(1,), escalate_after=timedelta(minutes=30), repeat_times=2, repeat_every=timedelta(minutes=10))
L2 = LevelPlan(people=(2,), escalate_after=timedelta(minutes=15), force_escalate=True)
L3 = LevelPlan(people=(3,), escalate_after=timedelta(minutes=5), repeat_times=6, repeat_every=timedelta(minutes=2))
SNAPSHOT = Snapshot(rule_id=7, rule_name="Default", levels=(L1, L2, L3), delay=timedelta(seconds=90))


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def test_the_first_level_waits_for_the_delay_window():
    assert first_step(SNAPSHOT, started_at=NOW) == Step("level", 0, 0, NOW + timedelta(seconds=90))


def test_repeats_come_every_interval_until_the_level_times_out():
    assert next_step(SNAPSHOT, level=0, round=0, level_started_at=NOW, now=NOW) == Step("level", 0, 1, at(10))
    assert next_step(SNAPSHOT, level=0, round=1, level_started_at=NOW, now=at(10)) == Step("level", 0, 2, at(20))
    assert next_step(SNAPSHOT, level=0, round=2, level_started_at=NOW, now=at(20)) == Step("level", 1, 0, at(30))


def test_repeats_that_would_come_after_the_timeout_give_way_to_escalation():
    # L3 repeats 6 times every 2 minutes but times out after 5: rounds at 2 and 4, then the end at 5.
    assert next_step(SNAPSHOT, level=2, round=1, level_started_at=NOW, now=at(2)) == Step("level", 2, 2, at(4))
    assert next_step(SNAPSHOT, level=2, round=2, level_started_at=NOW, now=at(4)) == Step("end", 2, 0, at(5))


def test_a_repeat_sent_late_is_followed_by_the_first_repeat_still_ahead_not_by_the_missed_ones():
    # L1 repeats twice every 10 minutes and times out at 30. Repeat 1 (due at 10) goes out a few seconds late:
    # repeat 2 is still due at 20.
    assert next_step(SNAPSHOT, level=0, round=1, level_started_at=NOW, now=at(10.1)) == Step("level", 0, 2, at(20))
    # Repeat 1 goes out at 21 after an outage: repeat 2 (due at 20) is passed over, the level times out at 30.
    assert next_step(SNAPSHOT, level=0, round=1, level_started_at=NOW, now=at(21)) == Step("level", 1, 0, at(30))
    # Six repeats every 5 minutes, timeout at 60: repeat 1 (due at 5) sent at 16 is followed by repeat 4 at 20.
    often = LevelPlan(repeat_times=6, repeat_every=timedelta(minutes=5), escalate_after=timedelta(minutes=60))
    often = Snapshot(7, "Often", (often,))
    assert next_step(often, level=0, round=1, level_started_at=NOW, now=at(16)) == Step("level", 0, 4, at(20))
    assert next_step(often, level=0, round=4, level_started_at=NOW, now=at(20)) == Step("level", 0, 5, at(25))


def test_a_level_without_repeats_escalates_and_the_last_one_ends():
    assert next_step(SNAPSHOT, level=1, round=0, level_started_at=NOW, now=NOW) == Step("level", 2, 0, at(15))
    assert escalation_step(SNAPSHOT, level=2, level_started_at=NOW) == Step("end", 2, 0, at(5))


@pytest.mark.parametrize(
    ("level", "round", "acknowledged", "expected"),
    [
        (0, 0, False, True),
        (0, 0, True, False),  # acknowledged during the delay window: nobody is paged
        (0, 1, True, False),  # repeats stop on acknowledgement
        (1, 0, True, False),  # level 1 does not force escalation
        (2, 0, True, True),  # level 2 forces it: level 3 is paged despite the acknowledgement
        (2, 1, True, False),  # but level 3's repeats stop
    ],
)
def test_what_an_acknowledgement_still_lets_through(level, round, acknowledged, expected):
    assert may_notify(SNAPSHOT, level=level, round=round, acknowledged=acknowledged) is expected


def test_snapshot_survives_a_round_trip_through_json():
    assert Snapshot.from_json(SNAPSHOT.to_json()) == SNAPSHOT
