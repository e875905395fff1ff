"""Escalation decisions as pure functions over plain data, with `now` passed in. No database here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LevelPlan:
    """One level of a frozen rule."""

    people: tuple[int, ...]
    methods: Mapping[str, tuple[str, ...]]  # severity -> method keys
    escalate_after: timedelta

    def to_json(self) -> dict:
        return {
            "people": list(self.people),
            "methods": {severity: list(keys) for severity, keys in self.methods.items()},
            "escalate_after_seconds": int(self.escalate_after.total_seconds()),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> LevelPlan:
        return cls(
            people=tuple(data.get("people", ())),
            methods={severity: tuple(keys) for severity, keys in data.get("methods", {}).items()},
            escalate_after=timedelta(seconds=data.get("escalate_after_seconds", 1800)),
        )


@dataclass(frozen=True)
class Snapshot:
    """An escalation rule frozen when an incident opened: later edits of the rule do not change it."""

    rule_id: int
    rule_name: str
    levels: tuple[LevelPlan, ...]

    def to_json(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "levels": [lv.to_json() for lv in self.levels],
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Snapshot:
        return cls(
            rule_id=data["rule_id"],
            rule_name=data["rule_name"],
            levels=tuple(LevelPlan.from_json(level) for level in data["levels"]),
        )


@dataclass(frozen=True)
class RuleCandidate:
    id: int
    name: str
    priority: int
    enabled: bool
    level_count: int


@dataclass(frozen=True)
class IncidentFacts:
    id: int
    severity: str
    title: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def choose_rule(rules: Sequence[RuleCandidate], incident: IncidentFacts, now: datetime) -> RuleCandidate | None:
    """The first enabled rule, by priority then age, that has at least one level."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if rule.enabled and rule.level_count > 0:
            return rule
    return None


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    active: bool = True


@dataclass(frozen=True)
class Notify:
    person_id: int
    method: str
    address: str


@dataclass(frozen=True)
class Skip:
    person_id: int
    method: str
    reason: str


def plan_level(
    level: LevelPlan,
    *,
    severity: str,
    people: Mapping[int, Person],
    addresses: Mapping[tuple[int, str], str | None],
) -> tuple[list[Notify], list[Skip]]:
    """Who is notified by which method at this level, and who cannot be and why.

    A person named twice is notified once per method; people who left (deactivated or deleted) and people with
    no address for a method are skipped with a reason.
    """
    methods = level.methods.get(severity, ())
    notify: list[Notify] = []
    skips: list[Skip] = []
    seen: set[tuple[int, str]] = set()
    for person_id in level.people:
        person = people.get(person_id)
        for method in methods:
            if (person_id, method) in seen:
                continue
            seen.add((person_id, method))
            if person is None or not person.active:
                skips.append(Skip(person_id, method, "person is no longer active"))
                continue
            address = addresses.get((person_id, method))
            if not address:
                skips.append(Skip(person_id, method, f"no {method} contact"))
                continue
            notify.append(Notify(person_id, method, address))
    return notify, skips


@dataclass(frozen=True)
class Step:
    """What happens next: notify `level` (round `round`) at `due_at`, or end the escalation then."""

    kind: str  # "level" or "end"
    level: int
    round: int
    due_at: datetime


def next_step(snapshot: Snapshot, *, level: int, round: int, fired_at: datetime) -> Step:
    """After notifying `level`, wait its escalate-after time, then go to the next level or end."""
    plan = snapshot.levels[level]
    due = fired_at + plan.escalate_after
    if level + 1 < len(snapshot.levels):
        return Step("level", level + 1, 0, due)
    return Step("end", level, round, due)
