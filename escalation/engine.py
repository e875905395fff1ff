"""Escalation decisions as pure functions over plain data, with `now` passed in. No database here."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from escalation import rotation
from oncall.lib import filters as filter_language

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# -- time windows -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeWindow:
    """Weekly hours: on `days` (0 = Monday) from `start` to `end`; an `end` before `start` runs overnight into the
    next day, and equal `start` and `end` mean the whole day."""

    days: frozenset[int]
    start: time
    end: time

    def weekly(self) -> tuple[rotation.Window, ...]:
        """One stretch of the week (minutes from Monday 00:00) for each of its days, as a schedule's weekly
        restriction has them: placed on the calendar the same way, so a window is one stretch on the night the
        clocks go back too, not reopened for the hour that happens twice."""
        day_length, week_length = rotation.MINUTES_PER_DAY, rotation.MINUTES_PER_WEEK
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        if start == end:  # the whole day, midnight to midnight
            start, end = 0, day_length
        elif end < start:
            end += day_length
        # Sunday's window ends in the next week: an end before its start is what the schedules read as that.
        return tuple(
            rotation.Window(day * day_length + start, (day * day_length + end) % week_length)
            for day in sorted(self.days)
        )


def parse_time_windows(data: object) -> tuple[TimeWindow, ...]:
    """Read `[{"days": ["mon", …], "start": "HH:MM", "end": "HH:MM"}, …]`; raise ValueError saying what is wrong."""
    if data in (None, []):
        return ()
    if not isinstance(data, list):
        raise ValueError('time windows are a list of {"days": [...], "start": "HH:MM", "end": "HH:MM"}')
    windows = []
    for index, item in enumerate(data):
        where = f"window {index + 1}"
        if not isinstance(item, dict):
            raise ValueError(f'{where}: expected {{"days": [...], "start": "HH:MM", "end": "HH:MM"}}')
        days = item.get("days")
        if not isinstance(days, list) or not days or any(day not in DAYS for day in days):
            raise ValueError(f"{where}: days must be a non-empty list of {', '.join(DAYS)}")
        bounds = []
        for name in ("start", "end"):
            value = item.get(name)
            match = _CLOCK.match(value) if isinstance(value, str) else None
            if match is None:
                raise ValueError(f"{where}: {name} must be a time such as 09:00 (24-hour clock)")
            bounds.append(time(int(match.group(1)), int(match.group(2))))
        windows.append(TimeWindow(frozenset(DAYS.index(day) for day in days), bounds[0], bounds[1]))
    return tuple(windows)


def in_time_windows(windows: Sequence[TimeWindow], moment: datetime, tz: ZoneInfo) -> bool:
    """Whether `moment` falls in any window read in time zone `tz` (no windows: always).

    Each day's window opens at its start and closes at its end on that day's wall clock (the next day's, overnight),
    both placed like a schedule's restriction windows: a time the clocks skip happens at the jump, one that happens
    twice happens the first time."""
    if not windows:
        return True
    weekly = rotation.Restriction("weekly", tuple(part for window in windows for part in window.weekly()))
    return weekly.allows(moment, tz)


# -- the frozen rule --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleTarget:
    """Whoever is on call in a schedule when the level runs: in `role`, or in any role when it is None."""

    schedule_id: int
    role: str | None = None
    name: str = ""  # the schedule's name when the rule was frozen, for the timeline

    @property
    def key(self) -> tuple[int, str | None]:
        return (self.schedule_id, self.role)

    def to_json(self) -> dict:
        return {"schedule_id": self.schedule_id, "role": self.role, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping) -> ScheduleTarget:
        return cls(schedule_id=data["schedule_id"], role=data.get("role"), name=data.get("name", ""))


@dataclass(frozen=True)
class LevelPlan:
    """One level of a frozen rule."""

    people: tuple[int, ...] = ()
    teams: tuple[int, ...] = ()
    schedules: tuple[ScheduleTarget, ...] = ()
    emails: tuple[str, ...] = ()
    follow_preferences: bool = False
    methods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # severity -> method keys
    escalate_after: timedelta = timedelta(minutes=30)
    force_escalate: bool = False
    repeat_times: int = 0
    repeat_every: timedelta = timedelta(minutes=10)
    bots: tuple[int, ...] = ()  # bot ids, each posting by its own filters

    @property
    def pages_only_bots(self) -> bool:
        """Whether the level names nobody to page (no people, teams, schedules or addresses) and only posts to bots:
        its timeline then tells what its bots did, and no "notified nobody" line stands beside that."""
        return bool(self.bots) and not (self.people or self.teams or self.schedules or self.emails)

    def to_json(self) -> dict:
        return {
            "people": list(self.people),
            "teams": list(self.teams),
            "schedules": [target.to_json() for target in self.schedules],
            "emails": list(self.emails),
            "follow_preferences": self.follow_preferences,
            "methods": {severity: list(keys) for severity, keys in self.methods.items()},
            "escalate_after_seconds": int(self.escalate_after.total_seconds()),
            "force_escalate": self.force_escalate,
            "repeat_times": self.repeat_times,
            "repeat_every_seconds": int(self.repeat_every.total_seconds()),
            "bots": list(self.bots),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> LevelPlan:
        return cls(
            people=tuple(data.get("people", ())),
            teams=tuple(data.get("teams", ())),
            # Snapshots frozen before schedules existed have no "schedules".
            schedules=tuple(ScheduleTarget.from_json(item) for item in data.get("schedules", ())),
            emails=tuple(data.get("emails", ())),
            follow_preferences=data.get("follow_preferences", False),
            methods={severity: tuple(keys) for severity, keys in data.get("methods", {}).items()},
            escalate_after=timedelta(seconds=data.get("escalate_after_seconds", 1800)),
            force_escalate=data.get("force_escalate", False),
            repeat_times=data.get("repeat_times", 0),
            repeat_every=timedelta(seconds=data.get("repeat_every_seconds", 600)),
            # Snapshots frozen before bots existed have no "bots".
            bots=tuple(data.get("bots", ())),
        )


@dataclass(frozen=True)
class Snapshot:
    """An escalation rule frozen when an incident opened: later edits of the rule do not change it."""

    rule_id: int
    rule_name: str
    levels: tuple[LevelPlan, ...]
    delay: timedelta = timedelta(0)
    template_set_id: int | None = None  # None: the platform's default templates

    def to_json(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "delay_seconds": int(self.delay.total_seconds()),
            "template_set_id": self.template_set_id,
            "levels": [level.to_json() for level in self.levels],
        }

    def bot_ids(self) -> tuple[int, ...]:
        """Every bot of every level, once, in level order."""
        return tuple(dict.fromkeys(bot for level in self.levels for bot in level.bots))

    @classmethod
    def from_json(cls, data: Mapping) -> Snapshot:
        return cls(
            rule_id=data["rule_id"],
            rule_name=data["rule_name"],
            levels=tuple(LevelPlan.from_json(level) for level in data["levels"]),
            delay=timedelta(seconds=data.get("delay_seconds", 0)),
            template_set_id=data.get("template_set_id"),
        )


# -- choosing a rule --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCandidate:
    id: int
    name: str
    priority: int
    enabled: bool
    level_count: int
    windows: tuple[TimeWindow, ...] = ()
    filters: filter_language.Filters = ()


def choose_rule(
    rules: Sequence[RuleCandidate], incident: filter_language.Subject, now: datetime, tz: ZoneInfo
) -> RuleCandidate | None:
    """The first rule by priority (then age) that is enabled, has a level, is in its time windows now and whose
    filter the incident passes; None: the incident stays unassigned."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if not rule.enabled or rule.level_count == 0:
            continue
        if in_time_windows(rule.windows, now, tz) and filter_language.matches(rule.filters, incident):
            return rule
    return None


def rules_read_integration(rules: Sequence[RuleCandidate]) -> bool:
    """Whether a condition of any of `rules` looks at the incident's integration: the one part of what a rule is
    tested on that is read from the incident's alerts rather than from the incident itself."""
    return any(condition.key == "integration" for rule in rules for group in rule.filters for condition in group)


# -- who a level notifies, and how ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    active: bool = True


@dataclass(frozen=True)
class Notify:
    person_id: int | None  # None for a plain email address target
    method: str
    address: str

    @property
    def recipient_key(self) -> str:
        return f"person:{self.person_id}" if self.person_id is not None else f"email:{self.address.lower()}"


@dataclass(frozen=True)
class Skip:
    person_id: int
    method: str
    reason: str


def level_people(
    level: LevelPlan,
    team_members: Mapping[int, Sequence[int]],
    on_call: Mapping[tuple[int, str | None], Sequence[int]] | None = None,
    *,
    on_call_first: bool = False,
) -> tuple[int, ...]:
    """The people a level targets: named people first, then members of its teams, then whoever is on call for its
    schedule targets (`on_call`, by target key, as the schedules answer when the level runs); each person once.

    `on_call_first`: whoever is on call before the teams' members — the order a bot mentions them in, which
    mentions only as many as its message has room for: the person on call must not be left out for a big team."""
    teams = [pk for team_id in level.teams for pk in team_members.get(team_id, ())]
    scheduled = [pk for target in level.schedules for pk in (on_call or {}).get(target.key, ())]
    ordered = [*level.people, *scheduled, *teams] if on_call_first else [*level.people, *teams, *scheduled]
    return tuple(dict.fromkeys(ordered))


def plan_level(
    person_ids: Sequence[int],
    *,
    people: Mapping[int, Person],
    methods: Mapping[int, Sequence[str]],
    addresses: Mapping[tuple[int, str], str | None],
    emails: Sequence[str] = (),
    severity: str = "",
    reasons: Mapping[tuple[int, str], str] | None = None,
) -> tuple[list[Notify], list[Skip]]:
    """Who is notified by which method, and who cannot be and why.

    `methods` gives each person's methods for this incident (the level's methods for its severity, or their own
    preferences). Each person is notified once per method; a plain email address once, and not at all when a
    person of the level is already emailed at that address. `reasons` says why a person has no address for a
    method (a flagged number, no linked device); by default, that they have no verified contact for it.
    """
    notify: list[Notify] = []
    skips: list[Skip] = []
    for person_id in dict.fromkeys(person_ids):
        person = people.get(person_id)
        person_methods = list(dict.fromkeys(methods.get(person_id, ())))
        if person is None or not person.active:
            skips.append(Skip(person_id, "-", "person is no longer active"))
            continue
        if not person_methods:
            skips.append(Skip(person_id, "-", f"no notification method for {severity or 'this severity'}"))
            continue
        for method in person_methods:
            address = addresses.get((person_id, method))
            if not address:
                reason = (reasons or {}).get((person_id, method)) or f"no verified {method} contact"
                skips.append(Skip(person_id, method, reason))
                continue
            notify.append(Notify(person_id, method, address))
    emailed = {n.address.lower() for n in notify if n.method == "email"}
    for address in dict.fromkeys(email.strip() for email in emails):
        if address and address.lower() not in emailed:
            emailed.add(address.lower())
            notify.append(Notify(None, "email", address))
    return notify, skips


def not_yet_notified(notify: Sequence[Notify], sent: Collection[tuple[str, str]]) -> list[Notify]:
    """Those of `notify` whose recipient was not reached by that method yet (`sent`: recipient keys and methods
    already sent), in order."""
    return [n for n in notify if (n.recipient_key, n.method) not in sent]


def not_yet_reported(skips: Sequence[Skip], reported: Collection[tuple[int, str]]) -> list[Skip]:
    """Those of `skips` the timeline does not say yet (`reported`: person ids and methods it already reported
    skipped), in order."""
    return [s for s in skips if (s.person_id, s.method) not in reported]


# -- what happens next ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What happens next: notify `level` (round `round`; round > 0 is a repeat) at `due_at`, or end then."""

    kind: str  # "level" or "end"
    level: int
    round: int
    due_at: datetime


def first_step(snapshot: Snapshot, *, started_at: datetime) -> Step:
    """Level 1 after the rule's delay window."""
    return Step("level", 0, 0, started_at + snapshot.delay)


def next_step(snapshot: Snapshot, *, level: int, round: int, level_started_at: datetime, now: datetime) -> Step:
    """After notifying `level` (round `round`) at `now`: its next repeat, if one is due before the level times out;
    else the next level (or the end) when it times out.

    Repeat k is due `k` intervals after the level started. One sent late (the ticker or worker was down) is followed
    by the first repeat still ahead of `now`, not by the ones missed meanwhile, which would all go out at once.
    """
    plan = snapshot.levels[level]
    escalate_at = level_started_at + plan.escalate_after
    if round < plan.repeat_times:
        next_round = round + 1
        if plan.repeat_every > timedelta(0):
            next_round = max(next_round, (now - level_started_at) // plan.repeat_every + 1)
        repeat_at = level_started_at + next_round * plan.repeat_every
        if next_round <= plan.repeat_times and repeat_at < escalate_at:
            return Step("level", level, next_round, repeat_at)
    return escalation_step(snapshot, level=level, level_started_at=level_started_at)


def escalation_step(snapshot: Snapshot, *, level: int, level_started_at: datetime) -> Step:
    """Leaving `level` when it times out: to the next level, or the end after the last one."""
    escalate_at = level_started_at + snapshot.levels[level].escalate_after
    if level + 1 < len(snapshot.levels):
        return Step("level", level + 1, 0, escalate_at)
    return Step("end", level, 0, escalate_at)


def may_notify(snapshot: Snapshot, *, level: int, round: int, acknowledged: bool) -> bool:
    """Whether a due step still notifies: not when the incident is acknowledged, except when it enters a level
    because the level before forces escalation. Repeats always stop on acknowledgement."""
    if not acknowledged:
        return True
    return round == 0 and level > 0 and snapshot.levels[level - 1].force_escalate
