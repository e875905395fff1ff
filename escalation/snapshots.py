"""Freezing an escalation rule into plain data (engine.Snapshot) when an incident takes it: later edits of the
rule, its levels or whom they name do not change an escalation under way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import CharField, Value

from escalation import engine
from escalation.models import EscalationLevel, EscalationRule, LevelSchedule
from oncall.models import Severity


def rule_snapshot(rule: EscalationRule) -> engine.Snapshot:
    """Freeze a rule and its levels into plain data."""
    levels = []
    if "levels" in getattr(rule, "_prefetched_objects_cache", {}):
        rule_levels = sorted(rule.levels.all(), key=lambda level: (level.position, level.pk))  # read with the rule
    else:
        rule_levels = list(rule.levels.order_by("position", "id"))
    targets = _level_targets([level.pk for level in rule_levels])
    for level in rule_levels:
        named = targets.get(level.pk, _LevelTargets())
        levels.append(
            engine.LevelPlan(
                people=tuple(sorted(named.people)),
                teams=tuple(sorted(named.teams)),
                schedules=tuple(target for _, target in sorted(named.schedules)),
                emails=tuple(level.emails),
                follow_preferences=level.follow_preferences,
                methods={
                    Severity.CRITICAL: tuple(level.critical_methods),
                    Severity.WARNING: tuple(level.warning_methods),
                    Severity.INFO: tuple(level.info_methods),
                },
                escalate_after=timedelta(minutes=level.escalate_after_minutes),
                force_escalate=level.force_escalate,
                repeat_times=level.repeat_times,
                repeat_every=timedelta(minutes=level.repeat_every_minutes),
                bots=tuple(sorted(named.bots)),
            )
        )
    return engine.Snapshot(
        rule_id=rule.pk,
        rule_name=rule.name,
        levels=tuple(levels),
        delay=timedelta(seconds=rule.delay_seconds),
        template_set_id=rule.template_set_id,
    )


@dataclass
class _LevelTargets:
    """The ids a level names (its schedule targets with the LevelSchedule id, for their order)."""

    people: list[int] = field(default_factory=list)
    teams: list[int] = field(default_factory=list)
    bots: list[int] = field(default_factory=list)
    schedules: list[tuple[int, engine.ScheduleTarget]] = field(default_factory=list)


def _level_targets(level_ids: list[int]) -> dict[int, _LevelTargets]:
    """Whom and what each level names, read in one statement: the ids of its people, teams and bots (the rows of
    its many-to-many tables; no model instances) and its schedule targets with their schedule's name."""
    if not level_ids:
        return {}
    text = CharField()

    def named(through, column: str, kind: str):
        return through.objects.filter(escalationlevel_id__in=level_ids).values_list(
            "escalationlevel_id",
            Value(kind, output_field=text),
            column,
            Value("", output_field=text),
            Value("", output_field=text),
            "id",
        )

    rows = named(EscalationLevel.people.through, "user_id", "people").union(
        named(EscalationLevel.teams.through, "team_id", "teams"),
        named(EscalationLevel.bots.through, "bot_id", "bots"),
        LevelSchedule.objects.filter(level_id__in=level_ids)
        .order_by()
        .values_list("level_id", Value("schedules", output_field=text), "schedule_id", "role", "schedule__name", "id"),
        all=True,
    )
    targets: dict[int, _LevelTargets] = {}
    for level_id, kind, target_id, role, name, row_id in rows:
        found = targets.setdefault(level_id, _LevelTargets())
        if kind == "schedules":
            found.schedules.append((row_id, engine.ScheduleTarget(target_id, role or None, name)))
        else:
            getattr(found, kind).append(target_id)
    return targets
