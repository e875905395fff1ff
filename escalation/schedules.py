"""Schedules read from rows into plain data, and the questions asked of them: who is on call for an escalation
level's schedule targets, and which shifts a schedule or a person has over a time range.

The answers come from the pure functions of escalation.rotation; this module only loads and shapes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import DataError, transaction
from django.db.models import F, Prefetch, Q

from escalation import engine, rotation
from escalation.models import Layer, LayerMember, Override, Role, Schedule
from oncall.models import User

logger = logging.getLogger(__name__)


def schedules_load(*, ids: Iterable[int] | None = None, since: datetime, enabled_only: bool = False) -> list[Schedule]:
    """Schedules with what decides who is on call from `since` on: layers not ended by then (with their
    members) and overrides not over by then.

    Deactivated people's overrides are left out, and their layer memberships are marked (`person_active`) so
    that `layer_data` keeps their group's turn but empty of them: their turns fall to the layers below, as any
    turn with nobody in it does, instead of going to someone who cannot be paged or reminded."""
    queryset = Schedule.objects.all()
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    if enabled_only:
        queryset = queryset.filter(enabled=True)
    return list(
        queryset.prefetch_related(
            Prefetch(
                "layers",
                queryset=Layer.objects.filter(Q(end__isnull=True) | Q(end__gt=since)).prefetch_related(
                    Prefetch(
                        "members",
                        queryset=LayerMember.objects.annotate(person_active=F("person__is_active")).order_by(
                            "group", "id"
                        ),
                    )
                ),
            ),
            Prefetch(
                "overrides",
                queryset=Override.objects.filter(end__gt=since, person__is_active=True).order_by("start", "id"),
            ),
        )
    )


# What reading a row written around the forms' validation raises (see schedules_load_readable).
UNREADABLE = (DataError, ValueError, OverflowError)


def schedules_load_readable(*, ids: Iterable[int], since: datetime) -> tuple[dict[int, Schedule], set[int]]:
    """`schedules_load` that tells which schedules could not be read instead of failing for all of them: the
    schedules loaded, by id, and the ids of those that could not be. A row written around the forms' validation (a
    time past year 9999 in UTC, which PostgreSQL stores but no datetime holds) then blanks its own schedule only
    (logged here), not every schedule loaded with it.

    Only what a stored value no datetime holds raises counts (DataError on PostgreSQL, ValueError/OverflowError on
    SQLite): a passing database error (a lock or statement timeout) goes up, so the level's step rolls back and runs
    again once its lease ends, late rather than skipping whoever is on call."""
    ids = sorted(set(ids))
    if not ids:
        return {}, set()
    try:
        with transaction.atomic():  # a savepoint: whatever failed leaves the caller's transaction usable
            return {schedule.pk: schedule for schedule in schedules_load(ids=ids, since=since)}, set()
    except UNREADABLE:
        if len(ids) == 1:
            logger.exception("Schedule %s cannot be read", ids[0])
            return {}, set(ids)
    loaded, unreadable = {}, set()
    for schedule_id in ids:  # which one it is
        try:
            with transaction.atomic():
                found = schedules_load(ids=[schedule_id], since=since)
        except UNREADABLE:
            logger.exception("Schedule %s cannot be read", schedule_id)
            unreadable.add(schedule_id)
            continue
        if found:
            loaded[schedule_id] = found[0]
    return loaded, unreadable


def _restriction(layer: Layer) -> rotation.Restriction:
    try:
        return rotation.parse_restriction(layer.restriction_kind, layer.restriction_windows)
    except ValueError:
        # Forms validate it; a row written around them must not stop an escalation. Paging someone beats nobody.
        logger.warning("Layer %s has an invalid restriction; it is ignored", layer.pk)
        return rotation.NO_RESTRICTION


def layer_data(layer: Layer) -> rotation.LayerData:
    """A layer as plain data (its members prefetched in group order by `schedules_load`)."""
    groups: dict[int, list[rotation.Member]] = {}
    for member in layer.members.all():
        # A group whose people are all deactivated keeps its turn in the rotation, with nobody in it: the others'
        # turns stay where they were and the layers below fill in.
        people = groups.setdefault(member.group, [])
        if member.person_active:
            people.append(rotation.Member(member.person_id, member.role))
    return rotation.LayerData(
        id=layer.pk,
        name=layer.name,
        position=layer.position,
        unit=layer.rotation_unit,
        count=layer.rotation_count,
        start=layer.start,
        end=layer.end,
        groups=tuple(tuple(groups[number]) for number in sorted(groups)),
        restriction=_restriction(layer),
    )


def schedule_data(schedule: Schedule) -> rotation.ScheduleData:
    """A schedule as plain data; load it with `schedules_load` so its layers and overrides are prefetched."""
    return rotation.ScheduleData(
        id=schedule.pk,
        name=schedule.name,
        time_zone=schedule.time_zone,
        layers=tuple(layer_data(layer) for layer in schedule.layers.all()),
        overrides=tuple(
            rotation.OverrideData(o.pk, o.person_id, o.start, o.end, o.role or None) for o in schedule.overrides.all()
        ),
    )


# -- escalation levels ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetOnCall:
    """What one schedule target of a level answered when the level ran."""

    target: engine.ScheduleTarget
    name: str
    people: tuple[int, ...]
    disabled: bool = False
    missing: bool = False
    broken: bool = False

    def describe(self) -> str:
        role = str(Role(self.target.role).label).lower() if self.target.role in Role.values else ""
        return f"{self.name} ({role})" if role else self.name


def schedule_targets_on_call(*, targets: Sequence[engine.ScheduleTarget], now: datetime) -> list[TargetOnCall]:
    """Who is on call at `now` for each target, in the targets' order. A disabled schedule has nobody."""
    if not targets:
        return []
    loaded, unreadable = schedules_load_readable(ids={t.schedule_id for t in targets}, since=now)
    answers = []
    for target in targets:
        schedule = loaded.get(target.schedule_id)
        if target.schedule_id in unreadable:
            answers.append(TargetOnCall(target, target.name or f"#{target.schedule_id}", (), broken=True))
        elif schedule is None:
            answers.append(TargetOnCall(target, target.name or f"#{target.schedule_id}", (), missing=True))
        elif not schedule.enabled:
            answers.append(TargetOnCall(target, schedule.name, (), disabled=True))
        else:
            try:
                people = rotation.on_call(schedule_data(schedule), now, target.role)
            except Exception:
                # A schedule broken around the admin's validation must not stop the page to the level's other
                # targets: it counts as nobody on call, and the timeline says why.
                logger.exception("Schedule %s cannot say who is on call", schedule.pk)
                answers.append(TargetOnCall(target, schedule.name, (), broken=True))
                continue
            answers.append(TargetOnCall(target, schedule.name, people))
    return answers


# -- shifts -----------------------------------------------------------------------------------------------------


def schedule_shifts(*, schedule: Schedule, start: datetime, end: datetime) -> tuple[rotation.Shift, ...]:
    """The shifts of one schedule from `start` up to `end` (none when it is disabled)."""
    if not schedule.enabled:
        return ()
    loaded = schedules_load(ids=[schedule.pk], since=start)
    return rotation.shifts(schedule_data(loaded[0]), start, end) if loaded else ()


@dataclass(frozen=True)
class ShiftRow:
    """A shift ready to show: who, in which role, of which schedule."""

    schedule: Schedule
    person: User
    role: str
    start: datetime
    end: datetime

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role in Role.values else self.role

    def local(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return self.start.astimezone(tz), self.end.astimezone(tz)


def _rows(pairs: Sequence[tuple[Schedule, rotation.Shift]]) -> list[ShiftRow]:
    people = User.objects.in_bulk({shift.person_id for _schedule, shift in pairs})
    return [
        ShiftRow(schedule, people[shift.person_id], shift.role, shift.start, shift.end)
        for schedule, shift in pairs
        if shift.person_id in people
    ]


def schedule_shift_rows(*, schedule: Schedule, start: datetime, end: datetime) -> list[ShiftRow]:
    """A schedule's shifts from `start` up to `end`, with the people loaded (the admin's table, the feed)."""
    return _rows([(schedule, shift) for shift in schedule_shifts(schedule=schedule, start=start, end=end)])


def person_shift_rows(*, person: User, start: datetime, end: datetime) -> list[ShiftRow]:
    """One person's shifts across every enabled schedule they are in (as a layer member or by an override), from
    `start` up to `end`, sorted by start."""
    ids = (
        Schedule.objects.filter(enabled=True)
        .filter(Q(layers__members__person=person) | Q(overrides__person=person, overrides__end__gt=start))
        .values_list("pk", flat=True)
        .distinct()
    )
    pairs = []
    for schedule in schedules_load(ids=set(ids), since=start, enabled_only=True):
        found = rotation.shifts(schedule_data(schedule), start, end)
        pairs.extend((schedule, shift) for shift in found if shift.person_id == person.pk)
    pairs.sort(key=lambda pair: (pair[1].start, pair[0].name, rotation.role_key(pair[1].role)))
    return _rows(pairs)


def on_call_now(*, schedule: Schedule, now: datetime) -> dict[str, list[User]]:
    """Who is on call in `schedule` at `now`, by role label (primary first)."""
    if not schedule.enabled:
        return {}
    loaded = schedules_load(ids=[schedule.pk], since=now)
    slots = rotation.on_call_by_role(schedule_data(loaded[0]), now) if loaded else {}
    people = User.objects.in_bulk({pk for ids in slots.values() for pk in ids})
    return {
        str(Role(role).label) if role in Role.values else role: [people[pk] for pk in ids if pk in people]
        for role, ids in slots.items()
    }


TABLE_DAYS = 28
LOOK_BACK = timedelta(days=7)  # so a shift running now shows when it really began (unless longer than this)


def schedule_table(*, schedule: Schedule, now: datetime, days: int = TABLE_DAYS) -> list[dict]:
    """The shifts of a schedule running now or starting in the next `days` days, as rows for a table, with times
    in the schedule's time zone."""
    tz = ZoneInfo(schedule.time_zone)
    rows = []
    for row in schedule_shift_rows(schedule=schedule, start=now - LOOK_BACK, end=now + timedelta(days=days)):
        if row.end <= now:
            continue
        start, end = row.local(tz)
        rows.append(
            {
                "person": row.person.display_name,
                "role": row.role_label,
                "start": start,
                "end": end,
                "now": row.start <= now,
            }
        )
    return rows
