"""Who is on call: rotations by hour, day, week and month, handoffs to the second, daylight saving in two time zones,
layer start and end, restrictions, roles, layer precedence, overrides and the shift listing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from escalation.engine import LevelPlan, ScheduleTarget, Snapshot, level_people
from escalation.rotation import (
    LayerData,
    Member,
    OverrideData,
    ScheduleData,
    Shift,
    localize,
    on_call,
    on_call_by_role,
    parse_restriction,
    person_stretches,
    shifts,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
A, B, C, D, E = 1, 2, 3, 4, 5


def group(*people: int, role: str = "primary") -> tuple[Member, ...]:
    return tuple(Member(person, role) for person in people)


def layer(start: datetime, *groups, id: int = 1, unit: str = "week", count: int = 1, **fields) -> LayerData:
    groups = tuple(g if isinstance(g, tuple) else group(g) for g in groups)
    return LayerData(id=id, start=start, groups=groups, unit=unit, count=count, **fields)


def schedule(*layers: LayerData, tz: str = "UTC", overrides: tuple[OverrideData, ...] = ()) -> ScheduleData:
    return ScheduleData(id=7, time_zone=tz, layers=layers, overrides=overrides, name="Ops")


def local(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz)


# -- rotation tables --------------------------------------------------------------------------------------------


def test_a_weekly_rotation_of_three_groups_over_twelve_weeks():
    start = local(BERLIN, 2026, 1, 5, 9, 0)  # a Monday, 09:00
    s = schedule(layer(start, A, B, C), tz="Europe/Berlin")
    table = [on_call(s, start + timedelta(weeks=week, days=2)) for week in range(12)]
    assert table == [(A,), (B,), (C,)] * 4


def test_every_unit_and_count_hands_over_in_turn_over_many_periods():
    start = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    cases = {
        ("hour", 8): timedelta(hours=8),
        ("day", 1): timedelta(days=1),
        ("day", 3): timedelta(days=3),
        ("week", 2): timedelta(weeks=2),
    }
    for (unit, count), period in cases.items():
        s = schedule(layer(start, A, B, C, D, unit=unit, count=count))
        seen = [on_call(s, start + n * period + period / 2)[0] for n in range(40)]
        assert seen == [A, B, C, D] * 10, (unit, count)


def test_a_monthly_rotation_steps_by_calendar_month_and_keeps_to_the_last_day():
    start = local(BERLIN, 2026, 1, 31, 10, 0)
    s = schedule(layer(start, A, B, C, unit="month"), tz="Europe/Berlin")
    listed = shifts(s, start, local(BERLIN, 2026, 7, 1))
    assert [(x.person_id, x.start.astimezone(BERLIN).strftime("%m-%d %H:%M")) for x in listed] == [
        (A, "01-31 10:00"),
        (B, "02-28 10:00"),
        (C, "03-31 10:00"),
        (A, "04-30 10:00"),
        (B, "05-31 10:00"),
        (C, "06-30 10:00"),
    ]
    every_two = schedule(layer(start, A, B, unit="month", count=2), tz="Europe/Berlin")
    assert on_call(every_two, local(BERLIN, 2026, 3, 31, 9, 59)) == (A,)
    assert on_call(every_two, local(BERLIN, 2026, 3, 31, 10, 0)) == (B,)


def test_the_handoff_happens_at_the_exact_second():
    start = local(BERLIN, 2026, 2, 2, 9, 0)
    s = schedule(layer(start, A, B, unit="day"), tz="Europe/Berlin")
    handoff = local(BERLIN, 2026, 2, 3, 9, 0)
    assert on_call(s, handoff - timedelta(seconds=1)) == (A,)
    assert on_call(s, handoff) == (B,)
    assert on_call(s, handoff + timedelta(days=1) - timedelta(microseconds=1)) == (B,)
    assert on_call(s, handoff + timedelta(days=1)) == (A,)


def test_a_group_of_several_people_is_on_call_together():
    s = schedule(layer(datetime(2026, 1, 5, tzinfo=UTC), group(A, B), group(C)))
    assert on_call(s, datetime(2026, 1, 6, tzinfo=UTC)) == (A, B)
    assert on_call(s, datetime(2026, 1, 13, tzinfo=UTC)) == (C,)


def test_a_layer_has_nobody_before_its_start_and_from_its_end():
    start, end = datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 20, 9, tzinfo=UTC)
    s = schedule(layer(start, A, B, end=end))
    assert on_call(s, start - timedelta(seconds=1)) == ()
    assert on_call(s, start) == (A,)
    assert on_call(s, end - timedelta(seconds=1)) == (A,)  # third week: A again
    assert on_call(s, end) == ()
    assert on_call(schedule(layer(start)), start) == ()  # a layer without groups


# -- daylight saving ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [(BERLIN, (2026, 3, 29), (2026, 10, 25)), (NEW_YORK, (2026, 3, 8), (2026, 11, 1))],
    ids=["Europe/Berlin", "America/New_York"],
)
def test_a_daily_09_00_handoff_stays_at_09_00_local_across_both_changes(tz, spring, autumn):
    start = local(tz, spring[0], spring[1], spring[2] - 3, 9, 0)
    s = schedule(layer(start, A, B, unit="day"), tz=tz.key)
    for day in (spring, autumn):
        listed = shifts(s, local(tz, *day) - timedelta(days=2), local(tz, *day) + timedelta(days=2))
        inner = listed[1:-1]
        assert {x.start.astimezone(tz).strftime("%H:%M:%S") for x in inner} == {"09:00:00"}
        lengths = [(x.end - x.start) / timedelta(hours=1) for x in inner]
        expected = 23 if day == spring else 25
        assert sorted(lengths) == sorted([24, 24, expected]), lengths
    # And the on-call answer agrees to the second on the changed day.
    handoff = local(tz, *spring, 9, 0)
    before, after = on_call(s, handoff - timedelta(seconds=1)), on_call(s, handoff)
    assert before != after and len(before) == len(after) == 1


def test_new_york_a_handoff_in_the_skipped_hour_happens_when_the_clocks_jump():
    start = local(NEW_YORK, 2026, 3, 1, 2, 30)  # Sundays 02:30; on 2026-03-08 02:30 does not exist
    s = schedule(layer(start, A, B), tz="America/New_York")
    jump = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 02:00 EST becomes 03:00 EDT
    assert on_call(s, jump - timedelta(seconds=1)) == (A,)
    assert on_call(s, jump) == (B,)
    assert localize(datetime(2026, 3, 8, 2, 30), NEW_YORK) == jump


def test_berlin_a_handoff_in_the_repeated_hour_happens_the_first_time():
    start = local(BERLIN, 2026, 10, 18, 2, 30)  # Sundays 02:30; on 2026-10-25 it happens twice
    s = schedule(layer(start, A, B), tz="Europe/Berlin")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert on_call(s, first - timedelta(seconds=1)) == (A,)
    assert on_call(s, first) == (B,)
    assert on_call(s, first + timedelta(hours=1)) == (B,)  # 02:30 CET: no second handoff


def test_new_york_an_hourly_rotation_follows_the_wall_clock_through_the_autumn_change():
    start = local(NEW_YORK, 2026, 10, 31, 22, 0)
    s = schedule(layer(start, A, B, C, unit="hour"), tz="America/New_York")
    listed = shifts(s, start, local(NEW_YORK, 2026, 11, 1, 4, 0))
    labels = [
        (x.person_id, x.start.astimezone(NEW_YORK).strftime("%H:%M"), (x.end - x.start).seconds // 3600) for x in listed
    ]
    # 22, 23, 00, 01 (EDT, lasting two hours: 01:00 comes twice), 02, 03 local
    assert labels == [
        (A, "22:00", 1),
        (B, "23:00", 1),
        (C, "00:00", 1),
        (A, "01:00", 2),
        (B, "02:00", 1),
        (C, "03:00", 1),
    ]


# -- restrictions -------------------------------------------------------------------------------------------------


def test_a_daily_restriction_masks_the_rotation_without_pausing_it():
    start = local(BERLIN, 2026, 3, 2, 0, 0)
    hours = parse_restriction("daily", [{"start": "09:00", "end": "17:00"}])
    s = schedule(layer(start, A, B, unit="day", restriction=hours), tz="Europe/Berlin")
    assert on_call(s, local(BERLIN, 2026, 3, 2, 8, 59, 59)) == ()
    assert on_call(s, local(BERLIN, 2026, 3, 2, 9, 0)) == (A,)
    assert on_call(s, local(BERLIN, 2026, 3, 2, 16, 59, 59)) == (A,)
    assert on_call(s, local(BERLIN, 2026, 3, 2, 17, 0)) == ()
    assert on_call(s, local(BERLIN, 2026, 3, 3, 12, 0)) == (B,)
    listed = shifts(s, start, local(BERLIN, 2026, 3, 4))
    assert [(x.person_id, x.start.astimezone(BERLIN).hour, x.end.astimezone(BERLIN).hour) for x in listed] == [
        (A, 9, 17),
        (B, 9, 17),
    ]


def test_an_overnight_daily_restriction_runs_past_midnight_across_daylight_saving():
    start = local(NEW_YORK, 2026, 3, 1, 12, 0)
    nights = parse_restriction("daily", [{"start": "22:00", "end": "06:00"}])
    s = schedule(layer(start, A, unit="week", restriction=nights), tz="America/New_York")
    listed = shifts(s, local(NEW_YORK, 2026, 3, 6, 12), local(NEW_YORK, 2026, 3, 10, 12))
    spans = [
        (x.start.astimezone(NEW_YORK).strftime("%d %H:%M"), x.end.astimezone(NEW_YORK).strftime("%d %H:%M"))
        for x in listed
    ]
    assert spans == [
        ("06 22:00", "07 06:00"),
        ("07 22:00", "08 06:00"),
        ("08 22:00", "09 06:00"),
        ("09 22:00", "10 06:00"),
    ]
    assert (listed[1].end - listed[1].start) == timedelta(hours=7)  # the night the clocks spring forward


def test_an_overnight_daily_restriction_lasts_nine_hours_the_night_the_clocks_go_back():
    nights = parse_restriction("daily", [{"start": "22:00", "end": "06:00"}])
    s = schedule(layer(local(NEW_YORK, 2026, 10, 1), A, restriction=nights), tz="America/New_York")
    [night] = shifts(s, local(NEW_YORK, 2026, 10, 31, 12), local(NEW_YORK, 2026, 11, 1, 12))
    assert (night.start, night.end) == (local(NEW_YORK, 2026, 10, 31, 22), local(NEW_YORK, 2026, 11, 1, 6))
    assert night.end - night.start == timedelta(hours=9)


def test_weekly_restrictions_cover_business_days_and_wrap_over_the_weekend():
    start = local(BERLIN, 2026, 3, 2, 0, 0)  # Monday
    office = parse_restriction("weekly", [{"start": "mon 09:00", "end": "fri 18:00"}])
    weekend = parse_restriction("weekly", [{"start": "fri 18:00", "end": "mon 09:00"}])
    s_office = schedule(layer(start, A, restriction=office), tz="Europe/Berlin")
    s_weekend = schedule(layer(start, B, restriction=weekend), tz="Europe/Berlin")
    for moment, expected_office, expected_weekend in [
        (local(BERLIN, 2026, 3, 2, 8, 59), (), (B,)),
        (local(BERLIN, 2026, 3, 2, 9, 0), (A,), ()),
        (local(BERLIN, 2026, 3, 4, 3, 0), (A,), ()),  # Wednesday night: one continuous window
        (local(BERLIN, 2026, 3, 6, 17, 59), (A,), ()),
        (local(BERLIN, 2026, 3, 6, 18, 0), (), (B,)),
        (local(BERLIN, 2026, 3, 8, 12, 0), (), (B,)),
    ]:
        assert on_call(s_office, moment) == expected_office, moment
        assert on_call(s_weekend, moment) == expected_weekend, moment


# Follow the sun, read in Berlin time: Europe covers 02:30-14:30, America 14:30-02:30. Both windows meet at 02:30,
# the wall-clock time that happens twice on 25 October 2026 (02:30 CEST = 00:30 UTC, 02:30 CET = 01:30 UTC).
EUROPE_HOURS = parse_restriction("daily", [{"start": "02:30", "end": "14:30"}])
AMERICA_HOURS = parse_restriction("daily", [{"start": "14:30", "end": "02:30"}])


def test_a_handover_at_0230_on_the_autumn_night_does_not_hand_back_for_the_repeated_half_hour():
    """America hands over to Europe when 02:30 first comes, as a handoff would; when the clocks go back to 02:00
    the schedule does not give the night back to America for half an hour."""
    begin = local(BERLIN, 2026, 10, 1, 2, 30)
    s = schedule(
        layer(begin, A, id=1, position=1, restriction=AMERICA_HOURS),
        layer(begin, B, id=2, position=2, restriction=EUROPE_HOURS),
        tz="Europe/Berlin",
    )
    assert on_call(s, datetime(2026, 10, 25, 0, 29, 59, tzinfo=UTC)) == (A,)  # 02:29:59 CEST
    assert on_call(s, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == (B,)  # the first 02:30
    assert on_call(s, datetime(2026, 10, 25, 1, 10, tzinfo=UTC)) == (B,)  # 02:10 CET, after the clocks went back
    assert on_call(s, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == (B,)  # the second 02:30
    listed = [
        (x.person_id, x.start, x.end)
        for x in shifts(s, datetime(2026, 10, 24, 22, tzinfo=UTC), local(BERLIN, 2026, 10, 26))
    ]
    assert listed == [
        (A, datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (B, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), local(BERLIN, 2026, 10, 25, 14, 30)),  # 14 hours that day
        (A, local(BERLIN, 2026, 10, 25, 14, 30), local(BERLIN, 2026, 10, 26)),
    ]


def test_a_window_opened_in_the_repeated_hour_has_no_hole_and_closes_there_once():
    """Alone, 02:30-14:30 stays open from the first 02:30 to 14:30: nobody-on-call for the repeated half hour
    would lose a page. And a window ending at 02:30 closes at the first 02:30, not again at the second."""
    begin = local(BERLIN, 2026, 10, 1, 2, 30)
    day = schedule(layer(begin, B, restriction=EUROPE_HOURS), tz="Europe/Berlin")
    night = schedule(layer(begin, A, restriction=AMERICA_HOURS), tz="Europe/Berlin")
    for minute in range(0, 121, 5):  # 00:00 to 02:00 UTC: 02:00 CEST to 03:00 CET, every wall time twice
        moment = datetime(2026, 10, 25, 0, 0, tzinfo=UTC) + timedelta(minutes=minute)
        before_first_0230 = minute < 30
        assert on_call(day, moment) == (() if before_first_0230 else (B,)), moment
        assert on_call(night, moment) == ((A,) if before_first_0230 else ()), moment


def test_windows_meeting_in_the_repeated_hour_hand_over_once_each_way():
    """Two windows in a row, 01:00-02:15 and 02:15-04:00 in one layer and another layer's 02:15-02:45 over it, on
    the autumn night: each bound counts the first time its wall time comes."""
    begin = local(BERLIN, 2026, 10, 1, 0, 0)
    s = schedule(
        layer(begin, A, id=1, position=1, restriction=parse_restriction("daily", [{"start": "01:00", "end": "02:15"}])),
        layer(begin, B, id=2, position=2, restriction=parse_restriction("daily", [{"start": "02:15", "end": "04:00"}])),
        layer(begin, C, id=3, position=3, restriction=parse_restriction("daily", [{"start": "02:15", "end": "02:45"}])),
        tz="Europe/Berlin",
    )
    listed = [
        (x.person_id, x.start.strftime("%H:%M"), x.end.strftime("%H:%M"))  # UTC
        for x in shifts(s, local(BERLIN, 2026, 10, 25, 0, 30), local(BERLIN, 2026, 10, 25, 5))
    ]
    assert listed == [
        (A, "23:00", "00:15"),  # 01:00 CEST to the first 02:15
        (C, "00:15", "00:45"),  # the first 02:15 to the first 02:45
        (B, "00:45", "03:00"),  # then B until 04:00 CET, through the whole repeated hour
    ]


def test_a_weekly_window_is_one_stretch_over_the_autumn_night():
    """A weekly window from Sunday 02:30 round to Sunday 02:10 leaves 20 minutes out each week; on the autumn
    Sunday those are the first 02:10 to the first 02:30, not again when the clocks have gone back."""
    begin = local(BERLIN, 2026, 10, 1, 0, 0)
    week = parse_restriction("weekly", [{"start": "sun 02:30", "end": "sun 02:10"}])
    s = schedule(layer(begin, A, restriction=week), tz="Europe/Berlin")
    listed = shifts(s, local(BERLIN, 2026, 10, 24), local(BERLIN, 2026, 10, 26))
    assert [(x.start, x.end) for x in listed] == [
        (local(BERLIN, 2026, 10, 24), datetime(2026, 10, 25, 0, 10, tzinfo=UTC)),  # closes at the first 02:10
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), local(BERLIN, 2026, 10, 26)),  # opens at the first 02:30
    ]
    assert on_call(s, datetime(2026, 10, 25, 1, 20, tzinfo=UTC)) == (A,)  # 02:20 CET: open, not closed again


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("daily", [], "needs at least one window"),
        ("daily", [{"start": "9:00", "end": "17:00"}], "window 1: start must be a time"),
        ("daily", [{"start": "09:00"}], "window 1: expected"),
        ("weekly", [{"start": "monday 09:00", "end": "fri 18:00"}], "start must be a day and a time"),
        ("none", [{"start": "09:00", "end": "17:00"}], "without restriction has no windows"),
        ("hourly", [], "restriction must be one of"),
    ],
)
def test_a_wrong_restriction_says_what_is_wrong(kind, data, message):
    with pytest.raises(ValueError, match=message):
        parse_restriction(kind, data)


# -- roles, layers, overrides --------------------------------------------------------------------------------------

MONDAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def two_roles() -> LayerData:
    return layer(MONDAY, group(A) + group(B, role="backup"), group(C) + group(D, role="backup"))


def test_roles_answer_separately_and_together_primary_first():
    s = schedule(two_roles())
    at = MONDAY + timedelta(days=1)
    assert on_call(s, at, "primary") == (A,)
    assert on_call(s, at, "backup") == (B,)
    assert on_call(s, at) == (A, B)
    assert on_call_by_role(s, at + timedelta(weeks=1)) == {"primary": (C,), "backup": (D,)}


def test_a_higher_layer_wins_where_it_has_someone_and_lower_layers_fill_the_rest():
    days = ("mon", "tue", "wed", "thu", "fri")
    office = parse_restriction("weekly", [{"start": f"{day} 09:00", "end": f"{day} 17:00"} for day in days])
    base = layer(MONDAY, A, id=1, position=1)
    daytime = layer(MONDAY, C, id=2, position=2, restriction=office)
    s = schedule(base, daytime)
    assert on_call(s, MONDAY + timedelta(hours=10)) == (C,)
    assert on_call(s, MONDAY + timedelta(hours=20)) == (A,)
    assert on_call(s, MONDAY + timedelta(days=5, hours=10)) == (A,)  # Saturday
    backups = layer(MONDAY, group(E, role="backup"), id=3, position=3)
    with_backup = schedule(base, daytime, backups)
    assert on_call_by_role(with_backup, MONDAY + timedelta(hours=10)) == {"primary": (C,), "backup": (E,)}


def test_an_override_without_a_role_takes_every_role_for_its_time():
    takeover = OverrideData(1, E, MONDAY + timedelta(hours=12), MONDAY + timedelta(hours=18))
    s = schedule(two_roles(), overrides=(takeover,))
    assert on_call_by_role(s, MONDAY + timedelta(hours=11, minutes=59, seconds=59)) == {"primary": (A,), "backup": (B,)}
    assert on_call_by_role(s, MONDAY + timedelta(hours=12)) == {"primary": (E,), "backup": (E,)}
    assert on_call(s, MONDAY + timedelta(hours=12)) == (E,)
    assert on_call(s, MONDAY + timedelta(hours=18)) == (A, B)


def test_a_role_override_replaces_only_that_role_and_beats_a_whole_one():
    backup = OverrideData(1, E, MONDAY + timedelta(hours=12), MONDAY + timedelta(hours=18), role="backup")
    s = schedule(two_roles(), overrides=(backup,))
    assert on_call_by_role(s, MONDAY + timedelta(hours=13)) == {"primary": (A,), "backup": (E,)}
    whole = OverrideData(2, C, MONDAY + timedelta(hours=10), MONDAY + timedelta(hours=20))
    both = schedule(two_roles(), overrides=(backup, whole))
    assert on_call_by_role(both, MONDAY + timedelta(hours=13)) == {"primary": (C,), "backup": (E,)}
    assert on_call_by_role(both, MONDAY + timedelta(hours=19)) == {"primary": (C,), "backup": (C,)}


def test_an_override_fills_a_gap_as_primary_and_overlapping_overrides_both_apply():
    hours = parse_restriction("daily", [{"start": "09:00", "end": "17:00"}])
    s = schedule(
        layer(MONDAY, A, restriction=hours),
        overrides=(
            OverrideData(1, B, MONDAY + timedelta(hours=20), MONDAY + timedelta(hours=23)),
            OverrideData(2, C, MONDAY + timedelta(hours=22), MONDAY + timedelta(hours=26)),
        ),
    )
    assert on_call_by_role(s, MONDAY + timedelta(hours=21)) == {"primary": (B,)}
    assert on_call(s, MONDAY + timedelta(hours=22, minutes=30)) == (B, C)
    assert on_call(s, MONDAY + timedelta(hours=25)) == (C,)
    assert on_call(s, MONDAY + timedelta(hours=26)) == ()


# -- the shift listing -------------------------------------------------------------------------------------------


def test_shifts_join_what_layers_and_overrides_give_one_person_and_cut_at_the_range():
    office = parse_restriction("daily", [{"start": "09:00", "end": "17:00"}])
    s = schedule(
        layer(MONDAY, A, id=1, position=1),
        layer(MONDAY, A, B, id=2, position=2, unit="day", restriction=office),
        overrides=(
            OverrideData(1, D, MONDAY + timedelta(days=1, hours=12), MONDAY + timedelta(days=1, hours=14), "backup"),
        ),
    )
    listed = shifts(s, MONDAY + timedelta(hours=6), MONDAY + timedelta(days=2))
    hours = [
        (x.person_id, x.role, (x.start - MONDAY) // timedelta(hours=1), (x.end - MONDAY) // timedelta(hours=1))
        for x in listed
    ]
    assert hours == [
        (A, "primary", 6, 33),  # layer 1 all night, layer 2 (also A) Monday daytime: one stretch
        (B, "primary", 33, 41),  # Tuesday 09:00 to 17:00 from layer 2
        (D, "backup", 36, 38),
        (A, "primary", 41, 48),
    ]
    assert shifts(s, MONDAY, MONDAY) == ()


def test_person_stretches_join_a_persons_roles_into_one_stretch():
    t = MONDAY
    found = [
        Shift(t, t + timedelta(hours=8), A, "primary"),
        Shift(t + timedelta(hours=8), t + timedelta(hours=10), A, "backup"),
        Shift(t + timedelta(hours=12), t + timedelta(hours=14), A, "primary"),
        Shift(t, t + timedelta(hours=3), B, "backup"),
    ]
    assert person_stretches(found) == [
        Shift(t, t + timedelta(hours=10), A, "primary"),
        Shift(t, t + timedelta(hours=3), B, "backup"),
        Shift(t + timedelta(hours=12), t + timedelta(hours=14), A, "primary"),
    ]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_the_shift_listing_agrees_with_who_is_on_call_at_any_moment(tz):
    """Random moments over two months spanning a daylight-saving change: the listing and on_call agree."""
    zone = ZoneInfo(tz)
    start = local(zone, 2026, 2, 20, 7, 30)
    s = schedule(
        layer(start, A, B, C, id=1, position=1, unit="day", count=2),
        layer(
            start,
            group(D) + group(E, role="backup"),
            group(B),
            id=2,
            position=2,
            unit="hour",
            count=10,
            restriction=parse_restriction(
                "daily", [{"start": "22:00", "end": "02:30"}, {"start": "08:00", "end": "12:00"}]
            ),
        ),
        layer(
            start,
            C,
            id=3,
            position=3,
            unit="week",
            restriction=parse_restriction("weekly", [{"start": "sat 00:00", "end": "mon 00:00"}]),
        ),
        tz=tz,
        overrides=(OverrideData(1, E, local(zone, 2026, 3, 10, 1), local(zone, 2026, 3, 12, 5)),),
    )
    begin, end = local(zone, 2026, 2, 25), local(zone, 2026, 4, 20)
    listed = shifts(s, begin, end)
    rng = random.Random(20260308)
    for _ in range(400):
        moment = begin + timedelta(seconds=rng.randrange(int((end - begin).total_seconds())))
        expected = on_call_by_role(s, moment)
        from_listing: dict[str, list[int]] = {}
        for x in listed:
            if x.start <= moment < x.end:
                from_listing.setdefault(x.role, []).append(x.person_id)
        assert {role: sorted(people) for role, people in expected.items()} == {
            role: sorted(people) for role, people in from_listing.items()
        }, moment


# -- escalation levels ----------------------------------------------------------------------------------------------


def test_a_level_reaches_people_on_call_for_its_schedule_targets_once_each():
    plan = LevelPlan(people=(A,), schedules=(ScheduleTarget(7, "primary", "Ops"), ScheduleTarget(8, None, "DBA")))
    on_call_now = {(7, "primary"): (B, A), (8, None): (C, B)}
    assert level_people(plan, {}, on_call_now) == (A, B, C)
    assert level_people(plan, {}) == (A,)


def test_snapshots_keep_schedule_targets_and_old_snapshots_still_read():
    plan = LevelPlan(people=(A,), schedules=(ScheduleTarget(7, "backup", "Ops"),))
    snapshot = Snapshot(rule_id=1, rule_name="r", levels=(plan,))
    assert Snapshot.from_json(snapshot.to_json()) == snapshot
    old = snapshot.to_json()
    del old["levels"][0]["schedules"]
    assert Snapshot.from_json(old).levels[0].schedules == ()
