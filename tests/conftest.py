from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from oncall.lib import clock as clock_module


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


class FakeClock:
    """A controlled "now" for everything that asks oncall.lib.clock (services, tasks, the ticker)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC))
    monkeypatch.setattr(clock_module, "now", fake)
    return fake
