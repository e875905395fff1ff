"""Bodies that once made the ingest endpoints answer 500, which monitors retry for ever: each is a clear 400, or is
accepted with the part that cannot be used left out."""

from __future__ import annotations

import json

import pytest

from oncall.models import Alert
from tests.factories import make_channel, make_integration, push

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 100_000 + "]" * 100_000  # 200 KB: well under the 512 KB body limit, too deep for Python's JSON reader


@pytest.mark.parametrize("source", ["standard", "prometheus", "grafana", "pagerduty"])
def test_a_body_nested_too_deeply_is_a_400(client, clock, source):
    _, key = make_integration(channel=make_channel())
    response = push(client, key, DEEP, source=source)
    assert response.status_code == 400, (response.status_code, response.content[:200])
    assert "nested too deeply" in response.content.decode()


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize("depth", [500, 900])
def test_a_standard_event_with_a_nul_and_a_deeply_nested_field_is_stored_without_the_nul(client, clock, depth):
    """The NUL is cleaned out of the whole body, which once recursed and overflowed at half the depth the JSON
    reader takes."""
    _, key = make_integration(channel=make_channel())
    body = (
        '{"title_rule": "disk full\\u0000", "event_status": "Warning", "alert_key": "k1", '
        f'"extra": {{"trace": {_nested(depth)}}}}}'
    )
    response = push(client, key, body)
    assert response.status_code == 200, (response.status_code, response.content[:200])
    assert Alert.objects.get().title == "disk full"


@pytest.mark.parametrize("depth", [500, 900])
def test_a_pagerduty_event_with_a_nul_and_deeply_nested_custom_details_is_stored_without_the_nul(client, clock, depth):
    _, key = make_integration(channel=make_channel())
    body = (
        f'{{"routing_key": "{key}", "event_action": "trigger", "dedup_key": "k1", "payload": {{"summary": '
        '"disk full\\u0000", "source": "db1", "severity": "critical", '
        f'"custom_details": {{"trace": {_nested(depth)}}}}}}}'
    )
    response = push(client, key, body, source="pagerduty")
    assert response.status_code == 202, (response.status_code, response.content[:200])
    assert Alert.objects.get().title == "disk full"


@pytest.mark.parametrize("source", ["standard", "pagerduty"])
def test_a_body_with_a_nul_nested_too_deeply_is_a_400_in_the_endpoints_own_shape(client, clock, source):
    _, key = make_integration(channel=make_channel())
    response = push(client, key, '{"title_rule": "x\\u0000", "extra": ' + _nested(100_000) + "}", source=source)
    assert response.status_code == 400, (response.status_code, response.content[:200])
    body = response.json()
    message = body["errors"][0] if source == "pagerduty" else body["error"]["message"]
    assert "nested too deeply" in message


def test_a_prometheus_timestamp_too_large_for_a_date_is_left_out(client, clock):
    _, key = make_integration(channel=make_channel())
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "x"},
                "annotations": {"timestamp": 10**400},
                "fingerprint": "fp1",
            }
        ],
    }
    assert push(client, key, json.dumps(body), source="prometheus").status_code == 200
    assert Alert.objects.get().start_time == clock.current, "the time of receipt stands in"


def test_a_pagerduty_timestamp_too_large_for_a_date_is_left_out(client, clock):
    _, key = make_integration(channel=make_channel())
    body = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "k1",
        "payload": {"summary": "disk full", "source": "db1", "severity": "critical", "timestamp": 10**400},
    }
    response = push(client, key, json.dumps(body), source="pagerduty")
    assert response.status_code == 202, (response.status_code, response.content)
    assert Alert.objects.get().title == "disk full"
