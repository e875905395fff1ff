"""A passing database error while reading a level's schedules is not taken for a schedule nobody is on call for:
it goes up, so the level's step rolls back and runs again (late, not lost)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import OperationalError

from escalation import engine, schedules
from tests.factories import make_schedule, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_transient_database_error_is_not_taken_for_a_schedule_nobody_is_on_call_for():
    ann = make_user("ann")
    rotation = make_schedule("Payments", layers=[{"start": NOW - timedelta(days=1), "unit": "day", "groups": [[ann]]}])
    target = engine.ScheduleTarget(schedule_id=rotation.pk, role=None, name="Payments")
    assert next(a.people for a in schedules.schedule_targets_on_call(targets=[target], now=NOW))  # ann is on call
    real = schedules.schedules_load
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:  # e.g. "canceling statement due to lock timeout", "database is locked"
            raise OperationalError("canceling statement due to statement timeout")
        return real(**kwargs)

    # Taken for an unreadable row, ann's schedule would count as "nobody on call" and the level would move on
    # without her: her page lost.
    with mock.patch.object(schedules, "schedules_load", flaky), pytest.raises(OperationalError):
        schedules.schedule_targets_on_call(targets=[target], now=NOW)
