"""Escalation decisions: rule choice, who a level notifies and how, and what comes next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from escalation.engine import (
    IncidentFacts,
    LevelPlan,
    Notify,
    Person,
    RuleCandidate,
    Skip,
    Snapshot,
    Step,
    choose_rule,
    next_step,
    plan_level,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INCIDENT = IncidentFacts(id=1, severity="Critical")


def rule(id, priority=100, enabled=True, levels=1):
    return RuleCandidate(id=id, name=f"r{id}", priority=priority, enabled=enabled, level_count=levels)


def test_first_enabled_rule_by_priority_wins():
    assert choose_rule([rule(1, 50), rule(2, 10), rule(3, 10)], INCIDENT, NOW).id == 2


def test_disabled_rules_and_rules_without_levels_are_skipped():
    assert choose_rule([rule(1, 1, enabled=False), rule(2, 2, levels=0), rule(3, 3)], INCIDENT, NOW).id == 3


def test_no_enabled_rule_means_unassigned():
    assert choose_rule([rule(1, enabled=False)], INCIDENT, NOW) is None
    assert choose_rule([], INCIDENT, NOW) is None


LEVEL = LevelPlan(
    people=(1, 2, 1, 3, 4),
    methods={"Critical": ("email", "sms"), "Warning": ("email",), "Info": ()},
    escalate_after=timedelta(minutes=30),
)
PEOPLE = {1: Person(1, "Ann"), 2: Person(2, "Ben"), 3: Person(3, "Cy", active=False)}
ADDRESSES = {
    (1, "email"): "ann@example.com",
    (1, "sms"): "+4915112345678",
    (2, "email"): "ben@example.com",
    (2, "sms"): None,
}


def test_level_notifies_each_person_once_per_method_of_the_severity():
    notify, skips = plan_level(LEVEL, severity="Critical", people=PEOPLE, addresses=ADDRESSES)
    assert notify == [
        Notify(1, "email", "ann@example.com"),
        Notify(1, "sms", "+4915112345678"),
        Notify(2, "email", "ben@example.com"),
    ]
    assert Skip(2, "sms", "no sms contact") in skips
    assert Skip(3, "email", "person is no longer active") in skips
    assert Skip(4, "email", "person is no longer active") in skips  # deleted since the rule was frozen


def test_severity_chooses_the_methods():
    notify, _ = plan_level(LEVEL, severity="Warning", people=PEOPLE, addresses=ADDRESSES)
    assert {n.method for n in notify} == {"email"}
    notify, skips = plan_level(LEVEL, severity="Info", people=PEOPLE, addresses=ADDRESSES)
    assert notify == [] and skips == []


SNAPSHOT = Snapshot(rule_id=7, rule_name="Default", levels=(LEVEL, LevelPlan((2,), {}, timedelta(minutes=10))))


def test_after_a_level_its_timeout_leads_to_the_next_level():
    assert next_step(SNAPSHOT, level=0, round=0, fired_at=NOW) == Step("level", 1, 0, NOW + timedelta(minutes=30))


def test_after_the_last_level_its_timeout_ends_the_escalation():
    assert next_step(SNAPSHOT, level=1, round=0, fired_at=NOW) == Step("end", 1, 0, NOW + timedelta(minutes=10))


def test_snapshot_survives_a_round_trip_through_json():
    assert Snapshot.from_json(SNAPSHOT.to_json()) == SNAPSHOT
