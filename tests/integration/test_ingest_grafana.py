"""POST /event/push/alert/grafana: Grafana Alerting (v9+) and legacy notification channels end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oncall.models import Alert, Incident, IncidentEvent, TimelineEntry
from tests.factories import make_channel, make_integration, push

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "grafana"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def key():
    _, integration_key = make_integration(channel=make_channel("Storage"))
    return integration_key


def grafana_push(client, key, name_or_body):
    body = load(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return push(client, key, body, source="grafana")


def nothing_written() -> bool:
    return not (
        Alert.objects.exists()
        or Incident.objects.exists()
        or TimelineEntry.objects.exists()
        or IncidentEvent.objects.exists()
    )


def test_unified_alert_with_screenshot_opens_an_incident_with_image_and_links(client, key):
    response = grafana_push(client, key, "v10_disk_firing_with_image.json")
    assert response.status_code == 200
    assert response.json()["data"] == {"alert_keys": ["7ba3e2f1c9d08e45"]}
    alert = Alert.objects.get()
    assert (alert.title, alert.severity) == ("Disk /var/lib/postgresql on db-1 is 97% full", "Critical")
    assert alert.labels["grafana_panel_url"].endswith("viewPanel=152")
    assert alert.images == [
        {
            "src": "https://grafana.example.com/public/img/attachments/q4nPZ7Xa2Yb0hUrsT9c1.png",
            "alt": "Disk almost full",
            "href": "https://grafana.example.com/d/rYdddlPWk?from=1772438100000&orgId=1&to=1772441760000&viewPanel=152",
        }
    ]
    assert Incident.objects.get().progress == "Triggered"


def test_repeated_unified_notifications_merge_by_fingerprint(client, key):
    grafana_push(client, key, "v10_disk_firing_with_image.json")
    grafana_push(client, key, "v10_disk_firing_with_image.json")
    assert Alert.objects.get().event_count == 2
    assert Incident.objects.count() == 1


def test_unified_resolved_notification_recovers_and_closes_the_incident(client, key):
    grafana_push(client, key, "v10_disk_firing_with_image.json")
    assert grafana_push(client, key, "v10_disk_resolved.json").status_code == 200
    alert = Alert.objects.get()
    assert (alert.status, alert.progress) == ("Ok", "Closed")
    assert alert.images, "a recovery without a screenshot keeps the one the alert had"
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Closed", "Ok")


def test_unified_group_of_three_alerts_becomes_three_alerts(client, key):
    response = grafana_push(client, key, "v11_three_pods_grouped.json")
    assert response.status_code == 200
    assert len(response.json()["data"]["alert_keys"]) == 3
    assert sorted(Alert.objects.values_list("labels__pod", flat=True)) == ["ledger-0", "ledger-1", "ledger-2"]


def test_legacy_alerting_then_ok_opens_and_closes_one_incident(client, key):
    response = grafana_push(client, key, "legacy_alerting.json")
    assert response.status_code == 200
    assert response.json()["data"] == {"alert_keys": ["grafana-legacy-1"]}
    grafana_push(client, key, "legacy_alerting.json")
    alert = Alert.objects.get()
    assert (alert.title, alert.severity, alert.event_count) == ("[Alerting] Panel Title alert", "Warning", 2)
    assert alert.labels["Count"] == "1"
    assert grafana_push(client, key, "legacy_ok.json").status_code == 200
    alert.refresh_from_db()
    assert alert.progress == "Closed"
    assert Incident.objects.get().progress == "Closed"


def test_legacy_no_data_opens_a_critical_incident(client, key):
    grafana_push(client, key, "legacy_no_data.json")
    assert Incident.objects.get().severity == "Critical"


@pytest.mark.parametrize("name", ["legacy_paused.json", "legacy_pending.json"])
def test_legacy_paused_and_pending_are_accepted_and_write_nothing(client, key, name):
    response = grafana_push(client, key, name)
    assert response.status_code == 200
    assert response.json()["data"] == {"alert_keys": []}
    assert nothing_written()


def test_non_ascii_grafana_alert_is_stored_intact(client, key):
    grafana_push(client, key, "v11_chinese.json")
    alert = Alert.objects.get()
    assert alert.title == "支付成功率低于 95%"
    assert alert.description == "华东区域过去 5 分钟支付成功率为 91.2%"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"receiver": "x", "status": "firing"}, "body"),
        ({"ruleName": "x", "state": "exploded"}, "state"),
        ({"alerts": "none"}, "alerts"),
    ],
)
def test_body_of_neither_grafana_shape_is_refused_and_nothing_written(client, key, body, field):
    response = grafana_push(client, key, body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert nothing_written()
