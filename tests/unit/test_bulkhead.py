"""How many attempts may be in flight at once to a provider (the delivery bulkhead's decision)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels_app.base import provider_key_of
from channels_app.bulkhead import allowed_in_flight

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SLOW = timedelta(seconds=5)


@pytest.mark.parametrize(
    ("fast_streak", "oldest_in_flight_for", "max_in_flight", "allowed"),
    [
        (0, None, 0, 1),  # never seen, or slow last time: one attempt first
        (3, None, 0, 4),  # one more per quick answer since
        (3, 4.9, 0, 4),  # in flight, not slow yet
        (3, 5, 0, 1),  # an attempt in flight too long: slow now, whatever it was before
        (1000, 60, 0, 1),
        (50, None, 8, 8),  # capped
        (50, 30, 8, 1),
    ],
)
def test_a_slow_provider_gets_one_attempt_in_flight_and_a_quick_one_more(
    fast_streak, oldest_in_flight_for, max_in_flight, allowed
):
    oldest = None if oldest_in_flight_for is None else NOW - timedelta(seconds=oldest_in_flight_for)
    result = allowed_in_flight(
        fast_streak=fast_streak,
        oldest_started_at=oldest,
        now=NOW,
        slow_after=SLOW,
        slow_limit=1,
        max_in_flight=max_in_flight,
    )
    assert result == allowed


def test_a_provider_is_its_host_and_port():
    assert provider_key_of("https://API.twilio.com/2010-04-01") == "api.twilio.com"
    assert provider_key_of("http://127.0.0.1:8025/hook/a") == provider_key_of("http://127.0.0.1:8025/slack/b")
    assert provider_key_of("http://127.0.0.1:8025/hook") != provider_key_of("http://127.0.0.1:8026/hook")
