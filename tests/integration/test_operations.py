"""Liveness, readiness and metrics."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


def test_liveness_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "cache": "ok"}


def test_readiness_fails_when_the_database_does_not_answer(client, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("oncall.api.health.connection.cursor", broken)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "error: OperationalError"


def test_metrics_count_incidents_events_deliveries_and_queues(client, clock, mailoutbox):
    channel = make_channel()
    make_rule(channel, [{"people": [make_user("ann")]}])
    _, key = make_integration(channel=channel)
    push(client, key, {"title_rule": "disk", "event_status": "Critical", "alert_key": "d"})
    push(client, key, {"title_rule": "disk", "event_status": "Critical", "alert_key": "d"})
    text = client.get("/metrics").content.decode()
    assert 'oncall_incidents{progress="Triggered",severity="Critical"} 1.0' in text
    assert 'oncall_alert_events{kind="standard"} 2.0' in text
    assert 'oncall_deliveries{method="email",status="sent"} 1.0' in text
    assert 'oncall_queue_depth{queue="event_batches"} 0.0' in text
    assert "oncall_timer_lateness_seconds 0.0" in text


def test_metrics_can_require_a_token(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_connections_to_postgresql_give_up_after_a_connect_timeout():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("connect_timeout is a PostgreSQL connection option; CI runs this module on PostgreSQL as well")
    assert connection.get_connection_params()["connect_timeout"] == 10
