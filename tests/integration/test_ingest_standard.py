"""POST /event/push/alert/standard: the envelope, every refusal (with nothing written), merge and recovery."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError

from oncall.models import Alert, EventBatch, Incident, IncidentEvent, Integration, TimelineEntry
from tests.factories import make_channel, make_integration, push

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration():
    return make_integration(channel=make_channel("Production"))


def nothing_written() -> bool:
    return not (
        Alert.objects.exists()
        or Incident.objects.exists()
        or TimelineEntry.objects.exists()
        or IncidentEvent.objects.exists()
    )


def event(**overrides) -> dict:
    return {"title_rule": "CPU above 90% on db-1", "event_status": "Critical", "alert_key": "cpu-db-1", **overrides}


def test_a_trigger_opens_an_incident_and_answers_with_the_alert_key(client, integration):
    _, key = integration
    response = push(client, key, event(labels={"host": "db-1"}, description="load 12"))
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"alert_key": "cpu-db-1"}
    assert len(body["request_id"]) == 32 and response["X-Request-Id"] == body["request_id"]
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.progress, incident.status) == (
        "CPU above 90% on db-1",
        "Critical",
        "Triggered",
        "Critical",
    )
    assert incident.channel.name == "Production"
    assert incident.labels == {"host": "db-1"}
    alert = Alert.objects.get()
    assert (alert.alert_key, alert.event_count, alert.description, alert.incident_id) == (
        "cpu-db-1",
        1,
        "load 12",
        incident.pk,
    )
    assert list(incident.timeline.values_list("kind", flat=True)) == ["opened", "unassigned"]
    assert list(incident.events.values_list("kind", flat=True)) == ["opened"]


def test_same_alert_key_merges_into_the_open_alert(client, integration):
    _, key = integration
    push(client, key, event(event_status="Warning", labels={"host": "db-1", "v": "1"}))
    push(client, key, event(event_status="Critical", labels={"host": "db-1", "v": "2"}, title_rule="CPU 99%"))
    response = push(client, key, event(event_status="Warning", labels={"host": "db-1", "v": "3"}))
    assert response.status_code == 200
    alert = Alert.objects.get()
    assert alert.event_count == 3
    assert alert.labels == {"host": "db-1", "v": "3"}, "labels follow the latest event"
    assert alert.severity == "Critical", "severity rose and does not fall silently"
    assert alert.status == "Warning"
    incident = Incident.objects.get()
    assert incident.severity == "Critical"
    assert incident.timeline.filter(kind="severity_changed").count() == 1


def test_recovery_closes_the_alert_and_its_incident(client, integration):
    _, key = integration
    push(client, key, event(labels={"host": "db-1"}))
    response = push(client, key, event(event_status="Ok", labels={"host": "changed", "recovered_by": "auto"}))
    assert response.status_code == 200
    alert = Alert.objects.get()
    assert (alert.status, alert.progress) == ("Ok", "Closed")
    assert alert.end_time is not None
    assert alert.labels == {"host": "db-1", "recovered_by": "auto"}, "a recovery only adds missing labels"
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Closed", "Ok")
    assert incident.close_time is not None and incident.end_time is not None
    assert list(incident.timeline.values_list("kind", flat=True)) == [
        "opened",
        "unassigned",
        "alert_recovered",
        "closed",
    ]
    assert list(incident.events.values_list("kind", flat=True)) == ["opened", "closed"]


def test_a_trigger_after_recovery_opens_a_new_alert_and_incident(client, integration):
    _, key = integration
    push(client, key, event())
    push(client, key, event(event_status="Ok"))
    push(client, key, event())
    assert Alert.objects.count() == 2
    assert Incident.objects.filter(progress="Triggered").count() == 1


def test_recovery_of_an_unknown_alert_is_accepted_and_changes_nothing(client, integration):
    _, key = integration
    response = push(client, key, event(event_status="Ok", alert_key="never-seen"))
    assert response.status_code == 200
    assert response.json()["data"] == {"alert_key": "never-seen"}
    assert nothing_written()


def test_generated_alert_key_is_returned_and_merges_repeats(client, integration):
    _, key = integration
    first = push(client, key, event(alert_key=None, labels={"host": "a"})).json()["data"]["alert_key"]
    second = push(client, key, event(alert_key=None, labels={"host": "a"})).json()["data"]["alert_key"]
    assert first == second and len(first) == 32
    assert Alert.objects.get().event_count == 2
    push(client, key, event(event_status="Ok", alert_key=first))
    assert Incident.objects.get().progress == "Closed"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "field"),
    [
        ("{not json", "application/json", 400, "InvalidParameter", "body"),
        ("  ", "application/json", 400, "InvalidParameter", "body"),
        (json.dumps(event()), "text/plain", 400, "InvalidContentType", None),
        ("title_rule=x", "application/x-www-form-urlencoded", 400, "InvalidContentType", None),
        (json.dumps([event()]), "application/json", 400, "InvalidParameter", "body"),
        (json.dumps(event(event_status="critical")), "application/json", 400, "InvalidParameter", "event_status"),
        (json.dumps(event(title_rule=None)), "application/json", 400, "InvalidParameter", "title_rule"),
        (
            json.dumps(event(event_status="Ok", alert_key=None)),
            "application/json",
            400,
            "InvalidParameter",
            "alert_key",
        ),
        (json.dumps(event(labels={"k": 1})), "application/json", 400, "InvalidParameter", "labels.k"),
        (
            json.dumps(event(labels={f"k{i}": "v" for i in range(51)})),
            "application/json",
            400,
            "InvalidParameter",
            "labels",
        ),
    ],
)
def test_bad_requests_get_a_clear_envelope_and_write_nothing(
    client, integration, body, content_type, status, code, field
):
    _, key = integration
    response = push(client, key, body, content_type=content_type)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error.get("field") == field
    if field:
        assert field in error["message"]
    assert nothing_written()


def test_body_over_512_kb_is_refused_with_413(client, integration):
    _, key = integration
    body = json.dumps(event(description="x" * (600 * 1024)))
    response = push(client, key, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "RequestTooLarge"
    assert nothing_written()


def test_missing_unknown_and_disabled_keys_are_refused(client, integration):
    payload = json.dumps(event())
    missing = client.post("/event/push/alert/standard", data=payload, content_type="application/json")
    assert missing.status_code == 401
    assert missing.json()["error"] == {
        "code": "Unauthorized",
        "message": "integration_key is required.",
        "field": "integration_key",
    }
    unknown = push(client, "0" * 32, payload)
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == "integration_key is not a valid one."
    _, disabled_key = make_integration(channel=make_channel(), enabled=False)
    refused = push(client, disabled_key, payload)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "AccessDenied"
    assert nothing_written()


def test_integration_without_a_channel_refuses_events(client):
    _, key = make_integration(channel=None)
    response = push(client, key, event())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "NoRoute"
    assert nothing_written()


def test_unknown_format_and_wrong_method_get_envelopes(client, integration):
    _, key = integration
    unknown = client.post(f"/event/push/alert/nagios?integration_key={key}", data="{}", content_type="application/json")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "RouteNotFound"
    get = client.get(f"/event/push/alert/standard?integration_key={key}")
    assert get.status_code == 405
    assert get.json()["error"]["code"] == "MethodNotAllowed"


def test_wrong_keys_are_answered_from_cache_without_database_work(client, integration, django_assert_num_queries):
    payload = json.dumps(event())
    push(client, "f" * 32, payload)
    with django_assert_num_queries(0):
        assert push(client, "f" * 32, payload).status_code == 401


def test_images_are_stored_on_the_alert(client, integration):
    _, key = integration
    images = [{"src": "https://grafana.example.com/a.png", "alt": "cpu", "href": "https://grafana.example.com/d/1"}]
    push(client, key, event(images=images))
    assert Alert.objects.get().images == images


def test_a_go_template_title_rule_pages_with_the_filled_in_title(client, integration):
    _, key = integration
    rule = "[TPL]{{.Labels.host}} is down ({{.EventSeverity}}){{.Labels.missing}}"
    push(client, key, event(title_rule=rule, labels={"host": "db-1"}))
    assert Alert.objects.get().title == "db-1 is down (Critical)"
    assert Incident.objects.get().title == "db-1 is down (Critical)"


def test_a_template_title_reads_the_name_of_the_integration_pushed_to(client):
    _, key = make_integration(channel=make_channel(), name="Zabbix prod")
    push(client, key, event(title_rule="[TPL]{{.IntegrationName}}: {{.Labels.host}} down", labels={"host": "db-1"}))
    assert Alert.objects.get().title == "Zabbix prod: db-1 down"


@pytest.mark.parametrize(
    "title_rule", ["[TPL]{{.Title}}", "[TPL]{{.Description}}", "[TPL]{{.Labels.host}}", "[TPL] {{.Labels.host}} "]
)
def test_a_template_title_that_reads_nothing_pages_with_the_integrations_name_not_a_blank(client, title_rule):
    _, key = make_integration(channel=make_channel(), name="Zabbix prod")
    response = push(client, key, event(title_rule=title_rule))
    assert response.status_code == 200, response.content
    assert Alert.objects.get().title == "Alert from Zabbix prod"
    assert Alert.objects.get().title_rule == title_rule
    assert Incident.objects.get().title == "Alert from Zabbix prod"


def test_a_database_outage_is_a_retryable_503_not_a_refusal(client, integration, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(EventBatch.objects, "bulk_create", unavailable)
    _, key = integration
    response = push(client, key, event())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "ServiceUnavailable"
    assert "Connection refused" not in response.content.decode(), "no internals in the answer"


@pytest.mark.django_db(transaction=True)  # the batch's reference to it is checked when its transaction commits
def test_a_push_for_an_integration_deleted_in_another_process_is_refused_as_an_unknown_key(client):
    """Each process caches key lookups for a few seconds; the admin that deletes an integration clears only its
    own. A push that still finds the deleted integration in its cache is answered 401, like an unknown key."""
    integration, key = make_integration(channel=make_channel())
    assert push(client, key, {"event_status": "Critical"}).status_code == 400  # looked up, and cached
    Integration.objects.filter(pk=integration.pk).delete()  # as another process does, keeping this one's cache
    response = push(client, key, {"title_rule": "b", "event_status": "Critical", "alert_key": "b"})
    assert response.status_code == 401, response.content
    assert response.json()["error"]["field"] == "integration_key"
    assert not EventBatch.objects.exists()
    assert push(client, key, {"title_rule": "b", "event_status": "Critical", "alert_key": "b"}).status_code == 401
