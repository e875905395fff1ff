"""PagerDuty-compatible ingest: /event/push/alert/pagerduty and /v2/enqueue answer exactly as PagerDuty would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import TestCase

from oncall.models import Alert, EventBatch, Incident, IncidentEvent, TimelineEntry
from tests.factories import make_channel, make_integration

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pagerduty"
INVALID = {"status": "invalid event", "message": "Event object is invalid"}


def load(name: str, **overrides) -> dict:
    return {**json.loads((FIXTURES / name).read_text(encoding="utf-8")), **overrides}


@pytest.fixture
def key():
    _, integration_key = make_integration(channel=make_channel("Databases"))
    return integration_key


def send(client, key: str | None, body, *, content_type: str = "application/json"):
    """POST to Flashduty's PagerDuty path, the key in the query as its push URL has it."""
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    url = "/event/push/alert/pagerduty" + (f"?integration_key={key}" if key else "")
    with TestCase.captureOnCommitCallbacks(execute=True):  # the worker (inline in tests) processes the push
        return client.post(url, data=data, content_type=content_type)


def enqueue(client, body):
    """POST to PagerDuty's own path, the key in the body, as a monitor set up for PagerDuty does."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/v2/enqueue", data=json.dumps(body), content_type="application/json")


def nothing_written() -> bool:
    return not (
        Alert.objects.exists()
        or Incident.objects.exists()
        or TimelineEntry.objects.exists()
        or IncidentEvent.objects.exists()
    )


def assert_invalid(response, *errors_containing: str) -> list[str]:
    assert response.status_code == 400
    body = response.json()
    assert {k: body[k] for k in ("status", "message")} == INVALID
    assert isinstance(body["errors"], list) and body["errors"]
    for expected in errors_containing:
        assert any(expected in error for error in body["errors"]), (expected, body["errors"])
    return body["errors"]


def test_v2_trigger_is_accepted_with_202_and_the_dedup_key(client, key):
    response = send(client, key, load("v2_docs_trigger.json"))
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"}
    alert = Alert.objects.get()
    assert (alert.alert_key, alert.title, alert.severity) == (
        "srv01/mysql",
        "DISK at 99% on machine prod-datapipe03.example.com",
        "Critical",
    )
    assert alert.labels["component"] == "mysql"
    assert alert.labels["free_space"] == "1%"
    assert alert.images[0]["alt"] == "An example link with an image"
    assert Incident.objects.get().progress == "Triggered"


def test_repeated_trigger_with_the_same_dedup_key_merges_into_one_alert(client, key):
    send(client, key, load("v2_docs_trigger.json"))
    again = load("v2_docs_trigger.json")
    again["payload"] = {**again["payload"], "severity": "warning", "summary": "DISK at 100% on prod-datapipe03"}
    assert send(client, key, again).status_code == 202
    alert = Alert.objects.get()
    assert (alert.event_count, alert.title, alert.status) == (2, "DISK at 100% on prod-datapipe03", "Warning")
    assert Incident.objects.count() == 1


def test_acknowledge_moves_the_incident_to_processing_with_an_acknowledged_entry(client, key):
    send(client, key, load("v2_docs_trigger.json"))
    response = send(client, key, load("v2_acknowledge.json"))
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "srv01/mysql"
    incident = Incident.objects.get()
    assert incident.progress == "Processing"
    assert incident.ack_time is not None
    entry = incident.timeline.get(kind="acknowledged")
    assert entry.message == "Acknowledged by the monitor."
    assert Alert.objects.get().progress == "Triggered", "an acknowledged alert is still open"


def test_resolve_recovers_the_alert_and_closes_the_incident(client, key):
    send(client, key, load("v2_docs_trigger.json"))
    send(client, key, load("v2_acknowledge.json"))
    response = send(client, key, load("v2_resolve.json"))
    assert response.status_code == 202
    assert Alert.objects.get().progress == "Closed"
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Closed", "Ok")


def test_a_trigger_after_resolve_opens_a_new_alert(client, key):
    send(client, key, load("v2_docs_trigger.json"))
    send(client, key, load("v2_resolve.json"))
    send(client, key, load("v2_docs_trigger.json"))
    assert Alert.objects.count() == 2
    assert Alert.objects.filter(progress="Triggered").count() == 1


@pytest.mark.parametrize("name", ["v2_acknowledge.json", "v2_resolve.json"])
def test_acknowledge_or_resolve_of_an_unknown_dedup_key_is_accepted_and_writes_nothing(client, key, name):
    response = send(client, key, load(name, dedup_key="never-triggered"))
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "never-triggered"}
    assert nothing_written()


def test_trigger_without_dedup_key_returns_the_generated_one_which_resolves_it(client, key):
    response = send(client, key, load("v2_trigger_without_dedup_key.json"))
    assert response.status_code == 202
    dedup_key = response.json()["dedup_key"]
    assert len(dedup_key) == 32
    assert Alert.objects.get().alert_key == dedup_key
    send(client, key, {"event_action": "resolve", "dedup_key": dedup_key})
    assert Incident.objects.get().progress == "Closed"


def test_v2_enqueue_takes_the_routing_key_from_the_body(client, key):
    response = enqueue(client, load("v2_docs_trigger.json", routing_key=key))
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "srv01/mysql"
    assert enqueue(client, load("v2_resolve.json", routing_key=key)).status_code == 202
    assert Incident.objects.get().progress == "Closed"


def test_flashduty_path_also_takes_the_routing_key_from_the_body(client, key):
    response = send(client, None, load("v2_docs_trigger.json", routing_key=key))
    assert response.status_code == 202
    assert Alert.objects.count() == 1


def test_the_query_key_wins_over_the_body_routing_key(client, key):
    _, other_key = make_integration(channel=make_channel("Other"))
    response = send(client, key, load("v2_docs_trigger.json", routing_key=other_key))
    assert response.status_code == 202
    assert Alert.objects.get().channel.name == "Databases"


def test_v2_enqueue_ignores_a_query_key_as_pagerduty_does(client, key):
    body = load("v2_docs_trigger.json", routing_key="0" * 32)
    response = client.post(f"/v2/enqueue?integration_key={key}", data=json.dumps(body), content_type="application/json")
    assert_invalid(response, "'routing_key' is invalid")
    assert nothing_written()


def test_alertmanager_v2_trigger_and_resolve_round_trip(client, key):
    trigger = enqueue(client, load("v2_alertmanager_trigger.json", routing_key=key))
    assert trigger.status_code == 202
    assert Alert.objects.get().severity == "Critical", "Alertmanager's default severity 'error'"
    assert enqueue(client, load("v2_alertmanager_resolve.json", routing_key=key)).status_code == 202
    assert Incident.objects.get().progress == "Closed"


def test_non_ascii_event_is_stored_intact(client, key):
    response = send(client, key, load("v2_trigger_nested_details_chinese.json"))
    assert response.json()["dedup_key"] == "订单服务/延迟"
    alert = Alert.objects.get()
    assert alert.title == "订单服务 P99 延迟超过 800ms"
    assert alert.labels["metrics.p99_ms"] == "1210"


def test_v1_trigger_is_answered_with_200_and_the_incident_key(client, key):
    response = send(client, key, load("v1_docs_trigger.json"))
    assert response.status_code == 200
    assert response.json() == {"status": "success", "message": "Event processed", "incident_key": "srv01/HTTP"}
    alert = Alert.objects.get()
    assert (alert.title, alert.severity) == ("FAILURE for production/HTTP on machine srv01.acme.com", "Critical")


def test_v1_acknowledge_and_resolve_act_on_the_incident_key(client, key):
    send(client, key, load("v1_docs_trigger.json"))
    ack = send(client, key, load("v1_acknowledge.json"))
    assert (ack.status_code, ack.json()["incident_key"]) == (200, "srv01/HTTP")
    assert Incident.objects.get().progress == "Processing"
    assert send(client, key, load("v1_resolve.json")).status_code == 200
    assert Incident.objects.get().progress == "Closed"


def test_v1_service_key_in_the_body_authenticates(client, key):
    response = send(client, None, load("v1_alertmanager_trigger.json", service_key=key))
    assert response.status_code == 200
    assert Alert.objects.get().title == "[FIRING:1] InstanceDown (web-4:9100 node)"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"routing_key": "x", "dedup_key": "a"}, ["'event_action' is missing or blank"]),
        ({"event_action": "trigger"}, ["'payload' is required to trigger"]),
        (
            {"event_action": "trigger", "payload": {"severity": "high"}},
            ["'payload.summary' is missing or blank", "'payload.source' is missing or blank", "'payload.severity'"],
        ),
        (
            {"event_action": "trigger", "payload": {"summary": "s" * 1025, "source": "h", "severity": "info"}},
            ["'payload.summary' is longer than 1024 characters"],
        ),
        ({"event_action": "resolve"}, ["'dedup_key' is required to resolve"]),
        ({"event_action": "acknowledge", "dedup_key": "d" * 256}, ["'dedup_key' is longer than 255 characters"]),
        ({"event_type": "trigger", "incident_key": "x"}, ["'description' is missing or blank"]),
        ([{"event_action": "trigger"}], ["'body' must be a JSON object"]),
    ],
)
def test_invalid_events_get_pagerdutys_400_body_naming_each_field_and_write_nothing(client, key, body, errors):
    response = send(client, key, body)
    assert len(assert_invalid(response, *errors)) == len(errors), "every problem is reported at once"
    assert nothing_written()


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("{not json", "application/json", "The body is not valid JSON"),
        ("  ", "application/json", "The body is empty"),
        ('{"event_action": "trigger"}', "text/plain", "Content-Type must be application/json"),
        ("event_action=trigger", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
    ],
)
def test_unreadable_bodies_get_pagerdutys_400_body(client, key, body, content_type, error):
    assert_invalid(send(client, key, body, content_type=content_type), error)
    assert nothing_written()


def test_body_over_512_kb_gets_400_as_at_pagerduty(client, key):
    body = load("v2_docs_trigger.json")
    body["payload"]["custom_details"] = {"dump": "x" * (600 * 1024)}
    assert_invalid(send(client, key, body), "exceeds")
    assert nothing_written()


def test_missing_unknown_and_disabled_keys_get_400_naming_the_key_field(client, key):
    trigger = load("v2_docs_trigger.json")
    del trigger["routing_key"]
    assert assert_invalid(send(client, None, trigger)) == ["'routing_key' is missing or blank"]
    assert assert_invalid(enqueue(client, trigger)) == ["'routing_key' is missing or blank"]
    unknown = assert_invalid(enqueue(client, {**trigger, "routing_key": "0" * 32}))
    assert unknown == ["'routing_key' is invalid: no integration has this key"]
    assert assert_invalid(send(client, "0" * 32, trigger)) == [
        "'integration_key' is invalid: no integration has this key"
    ]
    v1_unknown = assert_invalid(send(client, None, load("v1_docs_trigger.json", service_key="0" * 32)))
    assert v1_unknown == ["'service_key' is invalid: no integration has this key"]
    _, disabled = make_integration(channel=make_channel(), enabled=False)
    assert assert_invalid(enqueue(client, {**trigger, "routing_key": disabled})) == [
        "'routing_key' names a disabled integration"
    ]
    assert assert_invalid(enqueue(client, {**trigger, "routing_key": 42})) == [
        "'routing_key' must be a string, not int"
    ]
    assert nothing_written()


def test_integration_without_a_channel_refuses_with_400_and_writes_nothing(client):
    _, key = make_integration(channel=None)
    errors = assert_invalid(send(client, key, load("v2_docs_trigger.json")))
    assert "matches no routing rule" in errors[0] and "no default route" in errors[0]
    assert nothing_written()


def test_v2_pushes_over_the_rate_limit_get_429_with_the_throttle_body(client, clock):
    _, key = make_integration(channel=make_channel(), name="Edge monitor", rate_limit_per_second=2)
    statuses = [
        enqueue(client, load("v2_docs_trigger.json", routing_key=key, dedup_key=f"k{n}")).status_code for n in range(3)
    ]
    assert statuses == [202, 202, 429]
    refused = enqueue(client, load("v2_docs_trigger.json", routing_key=key, dedup_key="k99"))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    body = refused.json()
    assert body["status"] == "throttle exceeded"
    assert body["message"] == "Requests for this service are arriving too quickly. Please retry later."
    assert "2 requests per second" in body["errors"][0]
    assert not Alert.objects.filter(alert_key="k99").exists()
    clock.advance(seconds=1)
    assert enqueue(client, load("v2_docs_trigger.json", routing_key=key, dedup_key="k99")).status_code == 202


def test_v1_pushes_over_the_rate_limit_get_403_which_v1_clients_retry(client, clock):
    _, key = make_integration(channel=make_channel(), rate_limit_per_second=2)
    statuses = [send(client, key, load("v1_docs_trigger.json", incident_key=f"k{n}")).status_code for n in range(3)]
    assert statuses == [200, 200, 403]
    assert Alert.objects.count() == 2


@pytest.mark.parametrize("path", ["/event/push/alert/pagerduty", "/v2/enqueue"])
def test_a_database_outage_is_pagerdutys_retryable_503_with_nothing_stored(client, key, monkeypatch, path):
    def unavailable(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(EventBatch.objects, "bulk_create", unavailable)
    body = {**load("v2_docs_trigger.json"), "routing_key": key}
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["status"] == "unavailable"
    assert "Connection refused" not in response.content.decode(), "no internals in the answer"
    assert not EventBatch.objects.exists() and not Alert.objects.exists()
