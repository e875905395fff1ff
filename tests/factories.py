"""Small builders for test data: explicit values, no randomness in anything a test asserts on."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import TestCase

from channels_app.models import Bot, MappingEntry, MappingTable
from escalation.models import EscalationLevel, EscalationRule, Layer, LayerMember, Override, Schedule
from oncall.models import Channel, Integration, Team, User

_seq = itertools.count(1)


def make_user(
    username: str | None = None,
    *,
    email: str | None = None,
    email_verified: bool = True,
    phone: str = "",
    phone_verified: bool = True,
    **fields,
) -> User:
    """A person whose email (and phone, when given) is verified unless told otherwise."""
    username = username or f"person{next(_seq)}"
    email = f"{username}@example.com" if email is None else email
    verified_at = datetime(2026, 1, 1, tzinfo=UTC)
    if email and email_verified:
        fields.setdefault("email_verified_at", verified_at)
    if phone:
        fields["phone"] = phone
        if phone_verified:
            fields.setdefault("phone_verified_at", verified_at)
    return User.objects.create_user(username=username, email=email, password="pw", **fields)


def make_team(name: str | None = None, members: Sequence[User] = ()) -> Team:
    team = Team.objects.create(name=name or f"Team {next(_seq)}")
    team.members.set(members)
    return team


def make_channel(name: str | None = None, *, team: Team | None = None, **fields) -> Channel:
    return Channel.objects.create(name=name or f"Channel {next(_seq)}", team=team or make_team(), **fields)


def make_integration(
    *, channel: Channel | None = None, key: str | None = None, name: str | None = None, **fields
) -> tuple[Integration, str]:
    integration = Integration(name=name or f"Monitor {next(_seq)}", channel=channel, **fields)
    key = integration.set_new_key(key)
    integration.save()
    return integration, key


def make_rule(
    channel: Channel,
    levels: Sequence[dict],
    *,
    name: str | None = None,
    priority: int = 100,
    enabled: bool = True,
) -> EscalationRule:
    """levels: [{"people": [user, ...], "methods": ["email"], "after": 30, "bots": [bot, ...]}, ...]"""
    rule = EscalationRule.objects.create(
        channel=channel, name=name or f"Rule {next(_seq)}", priority=priority, enabled=enabled
    )
    for position, spec in enumerate(levels):
        methods = list(spec.get("methods", ["email"]))
        level = EscalationLevel.objects.create(
            rule=rule,
            position=position,
            critical_methods=methods,
            warning_methods=methods,
            info_methods=methods,
            escalate_after_minutes=spec.get("after", 30),
        )
        level.people.set(spec.get("people", []))
        level.bots.set(spec.get("bots", []))
    return rule


def make_bot(kind: str, url: str, *, name: str | None = None, **fields) -> Bot:
    """A bot of `kind` posting to `url` (a fake provider's), every event type and severity unless told."""
    return Bot.objects.create(name=name or f"{kind} bot {next(_seq)}", kind=kind, url=url, **fields)


def make_mapping_table(platform: str, entries: dict[str, str], *, name: str | None = None) -> MappingTable:
    """A user mapping table of `platform` with `entries` (email -> IM user id)."""
    table = MappingTable.objects.create(name=name or f"{platform} table {next(_seq)}", platform=platform)
    MappingEntry.objects.bulk_create([MappingEntry(table=table, email=e, im_id=i) for e, i in entries.items()])
    return table


# make_unreadable_schedule's row can be stored on PostgreSQL only: SQLite refuses a time past year 9999 in UTC.
needs_postgresql_past_9999 = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL stores a time past year 9999 in UTC (SQLite cannot)"
)


def make_unreadable_schedule(name: str, *, person: User, **fields) -> Schedule:
    """A New York schedule with an override until 9999-12-31 23:00 there, past year 9999 in UTC: PostgreSQL stores
    it (written before the schedule page refused it), no process can read the row back."""
    schedule = make_schedule(name, time_zone="America/New_York", **fields)
    new_york = ZoneInfo("America/New_York")
    Override.objects.create(
        schedule=schedule,
        person=person,
        start=datetime(2026, 3, 1, tzinfo=new_york),
        end=datetime(9999, 12, 31, 23, 0, tzinfo=new_york),
    )
    return schedule


def make_schedule(
    name: str | None = None, *, team: Team | None = None, time_zone: str = "UTC", layers: Sequence[dict] = (), **fields
) -> Schedule:
    """layers: [{"start": datetime, "groups": [[user, (user, "backup")], [user]], "unit": "day", "count": 1}, ...];
    a plain user in a group is primary. Layers get positions 1, 2, ... in the order given (later ones win)."""
    schedule = Schedule.objects.create(
        name=name or f"Schedule {next(_seq)}", team=team or make_team(), time_zone=time_zone, **fields
    )
    for position, spec in enumerate(layers, start=1):
        spec = dict(spec)
        groups = spec.pop("groups", [])
        layer = Layer.objects.create(
            schedule=schedule,
            position=position,
            name=spec.pop("name", f"Layer {position}"),
            rotation_unit=spec.pop("unit", "week"),
            rotation_count=spec.pop("count", 1),
            **spec,
        )
        for number, members in enumerate(groups, start=1):
            for member in members:
                person, role = member if isinstance(member, tuple) else (member, "primary")
                LayerMember.objects.create(layer=layer, group=number, person=person, role=role)
    return schedule


def make_follow_the_sun_schedule(*, europe: User, america: User, **fields) -> Schedule:
    """Follow the sun in Berlin time from 1 October 2026: America on call 14:30-02:30, Europe 02:30-14:30 (daily
    restriction windows); the clocks go back on 25 October, so 02:00-03:00 happens twice that night."""
    begin = datetime(2026, 10, 1, 0, 30, tzinfo=UTC)  # 02:30 in Berlin
    return make_schedule(
        "Follow the sun",
        time_zone="Europe/Berlin",
        layers=[
            {
                "start": begin,
                "groups": [[america]],
                "restriction_kind": "daily",
                "restriction_windows": [{"start": "14:30", "end": "02:30"}],
            },
            {
                "start": begin,
                "groups": [[europe]],
                "restriction_kind": "daily",
                "restriction_windows": [{"start": "02:30", "end": "14:30"}],
            },
        ],
        **fields,
    )


def push(client, key: str, body, *, source: str = "standard", content_type: str = "application/json"):
    """POST an event the way a monitor does, and let the worker (inline in tests) process what was accepted.

    Work handed over on commit also runs in tests that wrap each test in a transaction.
    """
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/event/push/alert/{source}?integration_key={key}", data=data, content_type=content_type)
