"""Who is on call: schedules as plain data and pure functions over them, with the moment passed in. No database.

The rules, as docs/schedules.md tells admins:

- A layer hands its rotation from one group of people to the next every `count` hours, days, weeks or months,
  counted from its start **in the schedule's wall-clock time**: a daily 09:00 handoff stays at 09:00 local time
  across daylight-saving changes (that day's shift is 23 or 25 hours long), and a monthly rotation steps by
  calendar month (a start on the 31st hands off on the last day of shorter months). A handoff time that does not
  exist on the day clocks spring forward happens when they do; one that exists twice happens the first time.
- A layer has nobody before its start, from its end on, and outside its restriction windows (daily or weekly).
  Each day's (week's) window runs from its start to its end in the schedule's wall-clock time, placed like a
  handoff (a skipped time happens at the jump, a repeated one the first time): one stretch, which the clocks
  going back do not open or close a second time. Restrictions mask the rotation; they do not pause it.
- Each group member has a role (primary, backup). For each role, the highest layer (largest position) that has
  someone in that role at the moment provides it; lower layers fill the roles, and the times, it leaves empty.
- Overrides win over every layer. One with a role replaces whoever has that role; one without a role replaces
  everyone (the person takes every role the layers have then, or primary where they have nobody). Overrides that
  overlap all apply: both people are on call. A role-only override wins over a whole one.
- Every time here is aware; results are in UTC. Local (wall-clock) times are naive datetimes, used only to step.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

UNITS = ("hour", "day", "week", "month")
ROLES = ("primary", "backup")  # the order people are listed and notified in
RESTRICTIONS = ("none", "daily", "weekly")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DAY_CLOCK = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):([0-5]\d)$")


def role_key(role: str) -> tuple[int, str]:
    """Primary before backup before any other role."""
    return (ROLES.index(role) if role in ROLES else len(ROLES), role)


# -- restriction windows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Minutes of the day (daily) or of the week (weekly; 0 is Monday 00:00), from `start` up to `end`. An end
    before its start wraps into the next day (week); equal start and end cover all of it."""

    start: int
    end: int


@dataclass(frozen=True)
class Restriction:
    kind: str = "none"  # none | daily | weekly
    windows: tuple[Window, ...] = ()

    def intervals(self, start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
        """The windows as real intervals [opens, closes) in UTC, for every local day (daily) or week (weekly, from
        Monday 00:00) that can reach into [start, end]; none when there is no restriction.

        Each opens at its start on that day's (week's) wall clock and closes at its end, on the next day (week)
        when the end is not after the start. Both are placed by `localize`, like handoffs: a time that happens
        twice counts the first time, so a window is one stretch even on the night the clocks go back.
        """
        if self.kind == "none":
            return
        first = _wall(start, tz).date() - timedelta(days=1)
        last = _wall(end, tz).date() + timedelta(days=1)
        if self.kind == "weekly":
            period = timedelta(weeks=1)
            first -= timedelta(days=first.weekday() + 7)  # the week before, which may run over into this one
        else:
            period = timedelta(days=1)
        day = first
        while day <= last:
            yield from _period_intervals(self.windows, period, day, tz)
            day += period

    def allows(self, at: datetime, tz: ZoneInfo) -> bool:
        """Whether the layer may have someone at the instant `at`, its windows read in `tz`."""
        if self.kind == "none":
            return True
        return any(opened <= at < closed for opened, closed in self.intervals(at, at, tz))


NO_RESTRICTION = Restriction()


@functools.lru_cache(maxsize=8192)
def _period_intervals(
    windows: tuple[Window, ...], period: timedelta, day: date, tz: ZoneInfo
) -> tuple[tuple[datetime, datetime], ...]:
    """The intervals of `windows` for the day (week) starting on local `day` (see Restriction.intervals). Cached:
    the ticker, rule choice and shift listings ask about the same few days over and over, and placing a time
    across a clock change is a search."""
    base = datetime(day.year, day.month, day.day)
    found = []
    for window in windows:
        opens = base + timedelta(minutes=window.start)
        closes = base + timedelta(minutes=window.end) + (period if window.end <= window.start else timedelta())
        opened, closed = localize(opens, tz), localize(closes, tz)
        if opened < closed:  # a window wholly in the hour the clocks skip has no time
            found.append((opened, closed))
    return tuple(found)


def parse_restriction(kind: str, data: object) -> Restriction:
    """Read a layer's restriction; raise ValueError saying what is wrong.

    daily: `[{"start": "09:00", "end": "18:00"}, …]`; weekly: `[{"start": "mon 09:00", "end": "fri 18:00"}, …]`.
    """
    if kind not in RESTRICTIONS:
        raise ValueError(f"restriction must be one of {', '.join(RESTRICTIONS)}")
    if kind == "none":
        if data not in (None, []):
            raise ValueError("a layer without restriction has no windows; choose daily or weekly, or clear them")
        return NO_RESTRICTION
    example = '{"start": "09:00", "end": "18:00"}' if kind == "daily" else '{"start": "mon 09:00", "end": "fri 18:00"}'
    if not isinstance(data, list) or not data:
        raise ValueError(f"a {kind} restriction needs at least one window, e.g. [{example}]")
    windows = []
    for index, item in enumerate(data):
        where = f"window {index + 1}"
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise ValueError(f"{where}: expected {example}")
        bounds = []
        for name in ("start", "end"):
            value = item[name]
            if kind == "daily":
                match = _CLOCK.match(value) if isinstance(value, str) else None
                if match is None:
                    raise ValueError(f"{where}: {name} must be a time such as 09:00 (24-hour clock)")
                bounds.append(int(match.group(1)) * 60 + int(match.group(2)))
            else:
                match = _DAY_CLOCK.match(value) if isinstance(value, str) else None
                if match is None:
                    raise ValueError(f"{where}: {name} must be a day and a time such as mon 09:00")
                day = DAYS.index(match.group(1))
                bounds.append(day * MINUTES_PER_DAY + int(match.group(2)) * 60 + int(match.group(3)))
        windows.append(Window(bounds[0], bounds[1]))
    return Restriction(kind, tuple(windows))


# -- schedules as data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    person_id: int
    role: str = "primary"


@dataclass(frozen=True)
class LayerData:
    """One layer: `groups` take turns, in order, every `count` `unit`s from `start`."""

    id: int
    start: datetime
    groups: tuple[tuple[Member, ...], ...]
    unit: str = "week"
    count: int = 1
    end: datetime | None = None
    position: int = 0  # higher wins
    name: str = ""
    restriction: Restriction = NO_RESTRICTION


@dataclass(frozen=True)
class OverrideData:
    """`person_id` takes [start, end) from the layers: one role, or every role when `role` is None."""

    id: int
    person_id: int
    start: datetime
    end: datetime
    role: str | None = None


@dataclass(frozen=True)
class ScheduleData:
    id: int
    time_zone: str
    layers: tuple[LayerData, ...] = ()
    overrides: tuple[OverrideData, ...] = ()
    name: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, order=True)
class Shift:
    """A person on call in one role from `start` up to `end`."""

    start: datetime
    end: datetime
    person_id: int
    role: str = field(default="primary")


# -- wall-clock time --------------------------------------------------------------------------------------------


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def localize(local: datetime, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the wall clock in `tz` reads `local` or later.

    For an ordinary time that is the time itself; for one that happens twice (clocks going back), its first
    occurrence; for one that never happens (clocks springing forward over it), the moment of the jump.
    """
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == local:
        return first
    # In a gap. fold=1 reads it with the offset after the jump (an earlier instant, whose wall clock is still
    # before `local`), fold=0 with the offset before it (a later instant, already past it): the jump is between.
    low = int(local.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), tz) >= local:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _add_months(local: datetime, months: int) -> datetime:
    year, month = divmod(local.month - 1 + months, 12)
    year += local.year
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)


# -- one layer --------------------------------------------------------------------------------------------------


def handoff(layer: LayerData, index: int, tz: ZoneInfo) -> datetime:
    """When turn `index` of the layer begins (turn 0 at the layer's start), in UTC."""
    start = layer.start.astimezone(UTC)
    if index <= 0:
        return start
    origin = _wall(start, tz)
    steps = index * layer.count
    if layer.unit == "hour":
        local = origin + timedelta(hours=steps)
    elif layer.unit == "day":
        local = origin + timedelta(days=steps)
    elif layer.unit == "week":
        local = origin + timedelta(weeks=steps)
    elif layer.unit == "month":
        local = _add_months(origin, steps)
    else:
        raise ValueError(f"unknown rotation unit {layer.unit!r}")
    return max(localize(local, tz), start)


def turn(layer: LayerData, at: datetime, tz: ZoneInfo) -> int | None:
    """Which turn of the layer's rotation `at` falls in; None before the layer starts or from its end on."""
    at = at.astimezone(UTC)
    if at < layer.start or (layer.end is not None and at >= layer.end):
        return None
    origin, local = _wall(layer.start, tz), _wall(at, tz)
    if layer.unit == "month":
        guess = ((local.year - origin.year) * 12 + local.month - origin.month) // layer.count
    else:
        size = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[layer.unit]
        guess = int((local - origin) / (size * layer.count))
    # The guess reads wall-clock time, which daylight saving bends by an hour: settle it on the real handoffs.
    index = max(guess, 0)
    while index > 0 and handoff(layer, index, tz) > at:
        index -= 1
    while handoff(layer, index + 1, tz) <= at:
        index += 1
    return index


def layer_members(layer: LayerData, at: datetime, tz: ZoneInfo) -> tuple[Member, ...]:
    """Who the layer has at `at`: its group whose turn it is, unless outside its restriction windows."""
    if not layer.groups:
        return ()
    index = turn(layer, at, tz)
    if index is None or not layer.restriction.allows(at, tz):
        return ()
    return layer.groups[index % len(layer.groups)]


# -- the whole schedule -----------------------------------------------------------------------------------------


def on_call_by_role(schedule: ScheduleData, at: datetime) -> dict[str, tuple[int, ...]]:
    """Everyone on call at `at`, by role (primary first); roles nobody holds are absent."""
    at = at.astimezone(UTC)
    tz = schedule.tz
    slots: dict[str, tuple[int, ...]] = {}
    for layer in sorted(schedule.layers, key=lambda item: (item.position, item.id), reverse=True):
        by_role: dict[str, list[int]] = {}
        for member in layer_members(layer, at, tz):
            by_role.setdefault(member.role, []).append(member.person_id)
        for role, people in by_role.items():
            slots.setdefault(role, tuple(dict.fromkeys(people)))
    active = sorted((o for o in schedule.overrides if o.start <= at < o.end), key=lambda o: (o.start, o.id))
    whole = tuple(dict.fromkeys(o.person_id for o in active if o.role is None))
    if whole:
        slots = dict.fromkeys(slots or (ROLES[0],), whole)
    by_role_override: dict[str, list[int]] = {}
    for override in active:
        if override.role is not None:
            by_role_override.setdefault(override.role, []).append(override.person_id)
    for role, people in by_role_override.items():
        slots[role] = tuple(dict.fromkeys(people))
    return {role: slots[role] for role in sorted(slots, key=role_key) if slots[role]}


def on_call(schedule: ScheduleData, at: datetime, role: str | None = None) -> tuple[int, ...]:
    """The ids of the people on call for `schedule` at `at`: in `role`, or in any role (primary first), once each."""
    slots = on_call_by_role(schedule, at)
    if role is not None:
        return slots.get(role, ())
    return tuple(dict.fromkeys(person for people in slots.values() for person in people))


def change_points(schedule: ScheduleData, start: datetime, end: datetime) -> list[datetime]:
    """Every instant in [start, end] at which who is on call may change, sorted, with `start` and `end`."""
    tz = schedule.tz
    points = {start, end}
    for layer in schedule.layers:
        points.add(layer.start.astimezone(UTC))
        if layer.end is not None:
            points.add(layer.end.astimezone(UTC))
        first = turn(layer, max(start, layer.start), tz)
        if first is not None or start < layer.start:
            index = (first or 0) + 1
            while True:
                moment = handoff(layer, index, tz)
                if moment > end or (layer.end is not None and moment >= layer.end):
                    break
                points.add(moment)
                index += 1
        for bounds in layer.restriction.intervals(start, end, tz):
            points.update(bounds)
    for override in schedule.overrides:
        points.update((override.start.astimezone(UTC), override.end.astimezone(UTC)))
    return sorted(point for point in points if start <= point <= end)


def shifts(schedule: ScheduleData, start: datetime, end: datetime) -> tuple[Shift, ...]:
    """Who is on call in which role from `start` up to `end`, as shifts sorted by start, role and person.

    A shift is the whole stretch a person holds a role without a break, whichever layers or overrides make it up;
    shifts running over `start` or `end` are cut there.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return ()
    points = change_points(schedule, start, end)
    opened: dict[tuple[int, str], datetime] = {}
    found: list[Shift] = []
    for begin in points[:-1]:
        current = [(person, role) for role, people in on_call_by_role(schedule, begin).items() for person in people]
        for key in [key for key in opened if key not in current]:
            found.append(Shift(opened.pop(key), begin, *key))
        for key in current:
            opened.setdefault(key, begin)
    found.extend(Shift(since, end, *key) for key, since in opened.items())
    return tuple(sorted(found, key=lambda s: (s.start, role_key(s.role), s.person_id, s.end)))


def person_stretches(found: Sequence[Shift]) -> list[Shift]:
    """Shifts joined per person, whatever the role: one stretch for each time a person goes on call without a
    break (the role is the first one they hold). What a shift reminder is about."""
    by_person: dict[int, list[Shift]] = {}
    for item in sorted(found, key=lambda s: (s.start, role_key(s.role))):
        stretches = by_person.setdefault(item.person_id, [])
        if stretches and item.start <= stretches[-1].end:
            last = stretches[-1]
            stretches[-1] = Shift(last.start, max(last.end, item.end), last.person_id, last.role)
        else:
            stretches.append(item)
    return sorted((s for items in by_person.values() for s in items), key=lambda s: (s.start, s.person_id))
