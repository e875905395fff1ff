"""Per-integration push limits: a clear 429 naming the limit and the integration, and nothing written."""

from __future__ import annotations

import pytest

from oncall.models import Alert
from tests.factories import make_channel, make_integration, push

pytestmark = pytest.mark.django_db


def event(n: int) -> dict:
    return {"title_rule": "x", "event_status": "Info", "alert_key": f"k{n}"}


def test_pushes_over_the_per_second_limit_get_a_429_naming_the_limit(client, clock):
    integration, key = make_integration(channel=make_channel(), name="Edge monitor", rate_limit_per_second=3)
    assert [push(client, key, event(n)).status_code for n in range(3)] == [200, 200, 200]
    refused = push(client, key, event(99))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "RequestTooFrequently"
    assert error["limit"] == "3 requests per second"
    assert error["integration"] == {"id": integration.pk, "name": "Edge monitor"}
    assert "Edge monitor" in error["message"] and "3 requests per second" in error["message"]
    assert not Alert.objects.filter(alert_key="k99").exists()

    clock.advance(seconds=1)
    assert push(client, key, event(99)).status_code == 200, "the next second has room again"


def test_the_per_minute_limit_applies_across_seconds(client, clock):
    _, key = make_integration(channel=make_channel(), rate_limit_per_minute=5)
    statuses = []
    for n in range(6):
        statuses.append(push(client, key, event(n)).status_code)
        clock.advance(seconds=2)
    assert statuses == [200] * 5 + [429]
    refused = push(client, key, event(7))
    assert refused.json()["error"]["limit"] == "5 requests per minute"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_limits_are_per_integration(client, clock):
    _, busy = make_integration(channel=make_channel(), rate_limit_per_second=1)
    _, quiet = make_integration(channel=make_channel(), rate_limit_per_second=1)
    assert push(client, busy, event(1)).status_code == 200
    assert push(client, busy, event(2)).status_code == 429
    assert push(client, quiet, event(3)).status_code == 200


def test_default_limits_are_flashdutys(settings):
    assert (settings.INGEST_RATE_LIMIT_PER_SECOND, settings.INGEST_RATE_LIMIT_PER_MINUTE) == (100, 1000)
