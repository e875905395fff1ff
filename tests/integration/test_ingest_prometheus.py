"""POST /event/push/alert/prometheus: what Alertmanager's webhook receiver gets back and what it leaves behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oncall.models import Alert, Incident, IncidentEvent, TimelineEntry
from tests.factories import make_channel, make_integration, push

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "prometheus"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def key():
    _, integration_key = make_integration(channel=make_channel("Kubernetes"))
    return integration_key


def nothing_written() -> bool:
    return not (
        Alert.objects.exists()
        or Incident.objects.exists()
        or TimelineEntry.objects.exists()
        or IncidentEvent.objects.exists()
    )


def test_firing_alert_opens_an_incident_and_answers_with_its_key(client, key):
    response = push(client, key, load("crashloop_firing.json"), source="prometheus")
    assert response.status_code == 200
    assert response.json()["data"] == {"alert_keys": ["5a2c6f7e3b1d9a04"]}
    alert = Alert.objects.get()
    assert (alert.alert_key, alert.title, alert.severity, alert.progress) == (
        "5a2c6f7e3b1d9a04",
        "Pod is crash looping.",
        "Critical",
        "Triggered",
    )
    assert alert.labels["namespace"] == "shop"
    incident = alert.incident
    assert (incident.title, incident.severity, incident.progress) == ("Pod is crash looping.", "Critical", "Triggered")


def test_repeated_notifications_of_the_same_alert_merge_by_fingerprint(client, key):
    for _ in range(3):
        assert push(client, key, load("crashloop_firing.json"), source="prometheus").status_code == 200
    alert = Alert.objects.get()
    assert alert.event_count == 3
    assert Incident.objects.count() == 1


def test_resolved_notification_recovers_the_alert_and_closes_the_incident(client, key):
    push(client, key, load("crashloop_firing.json"), source="prometheus")
    response = push(client, key, load("crashloop_resolved.json"), source="prometheus")
    assert response.status_code == 200
    alert = Alert.objects.get()
    assert (alert.status, alert.progress) == ("Ok", "Closed")
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Closed", "Ok")
    kinds = [kind for kind in incident.timeline.values_list("kind", flat=True) if kind != "unassigned"]
    assert kinds == ["opened", "alert_recovered", "closed"]


def test_grouped_batch_of_three_alerts_becomes_three_alerts(client, key):
    response = push(client, key, load("node_cpu_group_of_three.json"), source="prometheus")
    assert response.status_code == 200
    assert response.json()["data"]["alert_keys"] == ["0f2c1a9bd6e35a71", "8e4b77c0a3d21f96", "c51d0e8f7a6b2394"]
    assert sorted(Alert.objects.values_list("labels__instance", flat=True)) == [
        "db-1.internal:9100",
        "db-2.internal:9100",
        "db-3.internal:9100",
    ]
    assert sorted(Alert.objects.values_list("severity", flat=True)) == ["Critical", "Warning", "Warning"]


def test_one_resolved_alert_of_a_group_recovers_only_that_alert(client, key):
    push(client, key, load("node_cpu_group_of_three.json"), source="prometheus")
    push(client, key, load("node_cpu_group_one_resolved.json"), source="prometheus")
    progress = dict(Alert.objects.values_list("alert_key", "progress"))
    assert progress == {
        "0f2c1a9bd6e35a71": "Closed",
        "8e4b77c0a3d21f96": "Triggered",
        "c51d0e8f7a6b2394": "Triggered",
    }
    assert Alert.objects.get(alert_key="8e4b77c0a3d21f96").event_count == 2


def test_alert_without_fingerprint_merges_by_its_labels(client, key):
    first = push(client, key, load("old_alertmanager_without_fingerprint.json"), source="prometheus")
    second = push(client, key, load("old_alertmanager_without_fingerprint.json"), source="prometheus")
    assert first.json()["data"] == second.json()["data"]
    assert Alert.objects.get().event_count == 2


def test_non_ascii_alert_is_stored_intact(client, key):
    push(client, key, load("chinese_labels_and_timestamp.json"), source="prometheus")
    alert = Alert.objects.get()
    assert alert.title == "订单服务 P99 延迟超过 800ms"
    assert alert.labels["region"] == "上海"
    assert alert.severity == "Info"


def test_empty_group_is_accepted_and_writes_nothing(client, key):
    response = push(client, key, load("empty_group.json"), source="prometheus")
    assert response.status_code == 200
    assert response.json()["data"] == {"alert_keys": []}
    assert nothing_written()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "4", "status": "firing"}, "alerts"),
        ({"version": "4", "alerts": {"fingerprint": "x"}}, "alerts"),
        ([{"labels": {}}], "body"),
    ],
)
def test_body_that_is_not_alertmanager_shaped_is_refused_with_400_and_nothing_written(client, key, body, field):
    response = push(client, key, body, source="prometheus")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("InvalidParameter", field)
    assert nothing_written()


def test_one_malformed_alert_refuses_the_whole_batch_and_writes_nothing(client, key):
    body = load("node_cpu_group_of_three.json")
    body["alerts"][2]["labels"] = "instance=db-3"
    response = push(client, key, body, source="prometheus")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "alerts[2].labels"
    assert nothing_written()


def test_the_alert_starts_and_ends_when_alertmanager_says_it_did(client, clock):
    """startsAt of a firing alert and endsAt of a resolved one, not the time the push arrived (never later)."""
    _, key = make_integration(channel=make_channel("Kubernetes"))
    firing = {
        "status": "firing",
        "labels": {"alertname": "DiskFull", "severity": "critical"},
        "annotations": {"summary": "disk full"},
        "startsAt": "2026-03-02T08:45:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "f00d",
    }
    push(client, key, {"version": "4", "alerts": [firing]}, source="prometheus")  # received at 09:00
    alert = Alert.objects.get()
    assert alert.start_time.isoformat() == "2026-03-02T08:45:00+00:00"
    clock.advance(minutes=30)
    resolved = {**firing, "status": "resolved", "endsAt": "2026-03-02T09:10:00Z"}
    push(client, key, {"version": "4", "alerts": [resolved]}, source="prometheus")
    alert.refresh_from_db()
    assert alert.end_time.isoformat() == "2026-03-02T09:10:00+00:00"
    assert alert.last_time == clock.current, "the last event's arrival"


def notification(status: str, starts: str, ends: str = "0001-01-01T00:00:00Z", fingerprint: str = "f00d") -> dict:
    """An Alertmanager webhook body of one DiskFull alert."""
    alert = {
        "status": status,
        "labels": {"alertname": "DiskFull", "severity": "critical"},
        "annotations": {"summary": "disk full"},
        "startsAt": starts,
        "endsAt": ends,
        "fingerprint": fingerprint,
    }
    return {"version": "4", "alerts": [alert]}


def test_a_late_resolution_of_an_earlier_firing_does_not_close_the_alert_that_fired_again(client, clock, caplog):
    """Fired at 08:00, resolved at 08:20, fired again at 08:30; the 08:20 resolution arrives after the 08:30 firing
    (an HA peer, a retry). It ends the earlier firing, not the one paging now; the one for 08:30 does close it."""
    _, key = make_integration(channel=make_channel("Kubernetes"))
    push(client, key, notification("firing", "2026-03-02T08:00:00Z"), source="prometheus")
    clock.advance(minutes=30)
    push(client, key, notification("firing", "2026-03-02T08:30:00Z"), source="prometheus")
    clock.advance(seconds=20)
    late = notification("resolved", "2026-03-02T08:00:00Z", "2026-03-02T08:20:00Z")
    push(client, key, late, source="prometheus")
    alert, incident = Alert.objects.get(), Incident.objects.get()
    assert (alert.progress, incident.progress) == ("Triggered", "Triggered")
    assert alert.event_count == 2, "the ignored resolution is not counted as an event of the alert"
    assert not incident.timeline.filter(kind="alert_recovered").exists()
    assert "ignored a recovery of alert 'f00d'" in caplog.text

    clock.advance(minutes=15)
    push(client, key, notification("resolved", "2026-03-02T08:30:00Z", "2026-03-02T08:40:00Z"), source="prometheus")
    alert.refresh_from_db()
    incident.refresh_from_db()
    assert (alert.progress, alert.end_time.isoformat()) == ("Closed", "2026-03-02T08:40:00+00:00")
    assert incident.progress == "Closed"


def test_a_firing_repeated_late_with_an_older_start_keeps_the_latest_one(client, clock):
    """A retry of the 08:00 firing that arrives after the 08:30 one must not let the 08:20 resolution through."""
    _, key = make_integration(channel=make_channel("Kubernetes"))
    push(client, key, notification("firing", "2026-03-02T08:30:00Z"), source="prometheus")
    push(client, key, notification("firing", "2026-03-02T08:00:00Z"), source="prometheus")
    push(client, key, notification("resolved", "2026-03-02T08:00:00Z", "2026-03-02T08:20:00Z"), source="prometheus")
    assert Alert.objects.get().progress == "Triggered"


def test_a_firing_sent_again_with_its_old_start_after_alertmanager_resolved_it_pages_again(client, clock):
    """Prometheus out of touch for a few minutes: Alertmanager resolves the alert itself (resolve_timeout); when
    Prometheus is back, the alert still firing comes again with its first startsAt, older than that resolution.
    It is firing now, so it opens a new incident: ignoring it would page nobody until Alertmanager's repeat
    interval (4 hours by default). A monitor's retry of the old firing pages twice instead, the lesser harm."""
    _, key = make_integration(channel=make_channel("Kubernetes"))
    push(client, key, notification("firing", "2026-03-02T08:50:00Z"), source="prometheus")
    clock.advance(minutes=14)
    push(client, key, notification("resolved", "2026-03-02T08:50:00Z", "2026-03-02T09:04:00Z"), source="prometheus")
    assert Incident.objects.get().progress == "Closed"
    clock.advance(seconds=30)
    push(client, key, notification("firing", "2026-03-02T08:50:00Z"), source="prometheus")
    assert list(Incident.objects.order_by("id").values_list("progress", flat=True)) == ["Closed", "Triggered"]
