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
