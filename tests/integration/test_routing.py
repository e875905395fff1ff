"""Routing rules through the real endpoints and the admin: which channels an event's alerts and incidents land in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oncall.lib import queue
from oncall.models import Alert, EventBatch, Incident, IncidentEvent, RoutingRule, TimelineEntry
from oncall.selectors import route_cache_clear
from oncall.services import ingest
from tests.factories import make_channel, make_integration, make_user, push

pytestmark = pytest.mark.django_db

PAGERDUTY = Path(__file__).resolve().parent.parent / "fixtures" / "pagerduty"


def make_rule(integration, *channels, position: int = 0, **fields) -> RoutingRule:
    rule = RoutingRule.objects.create(integration=integration, position=position, **fields)
    rule.channels.set(channels)
    return rule


def when(key: str, *values: str) -> list:
    return [[{"key": key, "op": "IN", "values": list(values)}]]


def event(key: str = "disk-db-1", status: str = "Critical", **fields) -> dict:
    return {"title_rule": f"{key} firing", "event_status": status, "alert_key": key, **fields}


def pagerduty(client, key: str, name: str, **overrides):
    body = {**json.loads((PAGERDUTY / name).read_text(encoding="utf-8")), **overrides}
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/event/push/alert/pagerduty?integration_key={key}", json.dumps(body), "application/json")


def landed() -> dict[str, list[str]]:
    """alert_key -> the names of the channels it has an alert in, each with its own incident."""
    result: dict[str, list[str]] = {}
    for alert in Alert.objects.select_related("channel", "incident").order_by("channel__name"):
        assert alert.incident.channel_id == alert.channel_id
        result.setdefault(alert.alert_key, []).append(alert.channel.name)
    return result


def nothing_written() -> bool:
    return not (
        Alert.objects.exists()
        or Incident.objects.exists()
        or TimelineEntry.objects.exists()
        or IncidentEvent.objects.exists()
        or EventBatch.objects.exists()
    )


@pytest.fixture
def channels():
    return {name: make_channel(name) for name in ("Databases", "Web", "Ops", "Fallback")}


def test_a_matching_rule_sends_the_event_to_its_channel_not_to_the_default_route(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"], filters=when("labels.service", "db"))
    assert push(client, key, event(labels={"service": "db"})).status_code == 200
    assert landed() == {"disk-db-1": ["Databases"]}


def test_the_default_route_takes_what_no_rule_matched(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"], filters=when("labels.service", "db"))
    push(client, key, event("slow-page", labels={"service": "web"}))
    assert landed() == {"slow-page": ["Fallback"]}


def test_fallthrough_sends_the_event_to_every_matching_rule_with_one_incident_per_channel(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"], channels["Web"], position=0, filters=when("labels.service", "db"))
    make_rule(integration, channels["Ops"], position=1, filters=when("severity", "Critical"))
    push(client, key, event(labels={"service": "db"}))
    assert landed() == {"disk-db-1": ["Databases", "Ops", "Web"]}
    assert Incident.objects.count() == 3
    assert set(Incident.objects.values_list("channel__name", flat=True)) == {"Databases", "Ops", "Web"}

    # Dedup is per channel: the next event of the same alert merges into each channel's open alert.
    push(client, key, event(labels={"service": "db"}))
    assert list(Alert.objects.values_list("event_count", flat=True)) == [2, 2, 2]
    assert Incident.objects.count() == 3


def test_a_rule_that_does_not_continue_stops_the_evaluation(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"], position=0, filters=when("labels.service", "db"), fallthrough=False)
    make_rule(integration, channels["Ops"], position=1, filters=when("severity", "Critical"))
    push(client, key, event(labels={"service": "db"}))
    push(client, key, event("web-down", labels={"service": "web"}))
    assert landed() == {"disk-db-1": ["Databases"], "web-down": ["Ops"]}


def test_rules_run_by_position_not_by_creation(client, channels):
    integration, key = make_integration()
    make_rule(integration, channels["Ops"], position=2, fallthrough=False)
    make_rule(integration, channels["Web"], position=1, fallthrough=False)
    push(client, key, event())
    assert landed() == {"disk-db-1": ["Web"]}


def test_name_mapping_sends_to_the_channel_named_by_the_label_and_a_miss_falls_to_the_default(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, mode=RoutingRule.Mode.NAME_MAPPING, name_mapping_label="team")
    push(client, key, event("a", labels={"team": "Databases"}))
    push(client, key, event("b", labels={"team": "Nobody"}))
    push(client, key, event("c"))
    assert landed() == {"a": ["Databases"], "b": ["Fallback"], "c": ["Fallback"]}


def test_a_channel_created_after_a_name_mapping_miss_is_found_once_made_in_the_admin(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, mode=RoutingRule.Mode.NAME_MAPPING, name_mapping_label="team")
    push(client, key, event("a", labels={"team": "Payments"}))
    staff = client_logged_in_as_staff()
    team = channels["Web"].team
    response = staff.post(
        reverse("admin:oncall_channel_add"),
        {
            "name": "Payments",
            "team": team.pk,
            "time_zone": "UTC",
            "group_keys": "[]",
            "group_window_minutes": 60,
            "auto_resolve_minutes": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    push(client, key, event("b", labels={"team": "Payments"}))
    assert landed() == {"a": ["Fallback"], "b": ["Payments"]}


def test_no_route_refuses_the_push_with_400_naming_the_event_and_writes_nothing(client, channels):
    integration, key = make_integration(channel=None, name="Edge monitor")
    make_rule(integration, channels["Databases"], filters=when("labels.service", "db"))
    response = push(client, key, event(labels={"service": "web"}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "NoRoute"
    assert error["message"] == (
        'The event "disk-db-1 firing" (alert_key disk-db-1) matches no routing rule of integration Edge monitor, '
        "which has no default route; nothing was stored."
    )
    assert nothing_written()


def test_an_alert_without_a_route_is_left_out_and_named_while_the_rest_of_the_push_is_stored(client, channels):
    """Alertmanager groups many alerts in one push and does not retry a 4xx: one alert with nowhere to go must not
    cost the others their page."""
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], filters=when("labels.team", "storage"))
    alerts = {
        "alerts": [
            {"status": "firing", "labels": {"alertname": "CpuHigh", "team": "storage"}, "fingerprint": "a1"},
            {"status": "firing", "labels": {"alertname": "PageSlow", "team": "web"}, "fingerprint": "b2"},
        ]
    }
    response = push(client, key, alerts, source="prometheus")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["alert_keys"] == ["a1", "b2"]
    [left_out] = data["not_routed"]
    assert left_out["alert_key"] == "b2"
    assert left_out["message"].startswith('Event 2 of 2, "PageSlow" (alert_key b2), matches no routing rule')
    assert left_out["message"].endswith("it was left out and the rest of the push stored.")
    assert landed() == {"a1": ["Databases"]}


def test_a_recovery_is_applied_even_when_an_alert_beside_it_in_the_push_has_no_route(client, channels):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], filters=when("labels.team", "db"))
    firing = {"status": "firing", "labels": {"alertname": "CpuHigh", "team": "db"}, "fingerprint": "aaa1"}
    assert push(client, key, {"alerts": [firing]}, source="prometheus").status_code == 200
    web = {"status": "firing", "labels": {"alertname": "CpuHigh", "team": "web"}, "fingerprint": "bbb2"}
    response = push(client, key, {"alerts": [{**firing, "status": "resolved"}, web]}, source="prometheus")
    assert response.status_code == 200
    assert Alert.objects.get(alert_key="aaa1").progress == "Closed"


def test_a_push_in_which_no_alert_has_a_route_is_refused_and_names_the_first(client, channels):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], filters=when("labels.team", "storage"))
    alerts = {
        "alerts": [
            {"status": "firing", "labels": {"alertname": "PageSlow", "team": "web"}, "fingerprint": "b2"},
            {"status": "firing", "labels": {"alertname": "Latency", "team": "web"}, "fingerprint": "c3"},
        ]
    }
    response = push(client, key, alerts, source="prometheus")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "NoRoute"
    assert error["message"].startswith('Event 1 of 2, "PageSlow" (alert_key b2), matches no routing rule')
    assert error["message"].endswith("nothing was stored.")
    assert nothing_written()


def test_pagerduty_trigger_without_a_route_is_an_invalid_event_and_writes_nothing(client, channels):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], filters=when("labels.component", "postgres"))
    response = pagerduty(client, key, "v2_docs_trigger.json")
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert "matches no routing rule" in body["errors"][0] and "srv01/mysql" in body["errors"][0]
    assert nothing_written()


def test_a_recovery_closes_the_alert_in_every_channel_it_went_to_even_when_it_no_longer_matches(client, channels):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], position=0, filters=when("labels.service", "db"))
    make_rule(integration, channels["Ops"], position=1, filters=when("severity", "Critical"))
    push(client, key, event(labels={"service": "db"}))
    assert Incident.objects.filter(progress="Triggered").count() == 2

    # Ok matches neither rule (not Critical, the label changed) and there is no default route: still accepted.
    response = push(client, key, event(status="Ok", labels={"service": "gone"}))
    assert response.status_code == 200
    assert set(Alert.objects.values_list("progress", flat=True)) == {"Closed"}
    assert set(Incident.objects.values_list("progress", "status")) == {("Closed", "Ok")}


def test_a_recovery_of_an_alert_open_nowhere_is_accepted_and_changes_nothing(client, channels):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], filters=when("labels.service", "db"))
    response = push(client, key, event(status="Ok"))
    assert response.status_code == 200
    assert not (Alert.objects.exists() or Incident.objects.exists())


def test_pagerduty_acknowledge_and_resolve_reach_every_channel_of_the_alert(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"], channels["Ops"], filters=when("labels.component", "mysql"))
    assert pagerduty(client, key, "v2_docs_trigger.json").status_code == 202
    assert landed() == {"srv01/mysql": ["Databases", "Ops"]}

    assert pagerduty(client, key, "v2_acknowledge.json").status_code == 202
    assert set(Incident.objects.values_list("progress", flat=True)) == {"Processing"}
    assert pagerduty(client, key, "v2_resolve.json").status_code == 202
    assert set(Incident.objects.values_list("progress", flat=True)) == {"Closed"}


def test_a_push_reads_its_routing_from_the_cache_not_the_database(client, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"], filters=when("labels.service", "db"))
    make_rule(integration, position=1, mode=RoutingRule.Mode.NAME_MAPPING, name_mapping_label="team")
    body = event(labels={"service": "db", "team": "Ops"})
    push(client, key, body)  # fills the caches
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/event/push/alert/standard?integration_key={key}", json.dumps(body), content_type="application/json"
        )
    assert response.status_code == 200
    tables = " ".join(query["sql"] for query in queries.captured_queries)
    assert "oncall_routingrule" not in tables and "oncall_channel" not in tables and "oncall_integration" not in tables
    assert EventBatch.objects.get().events[0]["channel_ids"] == [channels["Databases"].pk, channels["Ops"].pk]


def test_the_worker_sends_an_event_where_it_was_routed_when_accepted_not_where_rules_say_later(
    client, channels, clock, monkeypatch
):
    integration, key = make_integration(channel=channels["Fallback"])
    rule = make_rule(integration, channels["Databases"])
    monkeypatch.setattr(queue, "async_task", lambda *args, **kwargs: None)  # the worker is late
    push(client, key, event())
    rule.channels.set([channels["Web"]])
    route_cache_clear(integration.pk)
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert landed() == {"disk-db-1": ["Databases"]}


def test_a_batch_stored_before_routing_existed_goes_to_the_integration_channel(clock, channels):
    integration, _key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"])
    legacy = {"status": "Critical", "alert_key": "old", "title": "accepted before routing", "labels": {}}
    EventBatch.objects.create(integration=integration, events=[legacy], received_at=clock.current)
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert landed() == {"old": ["Fallback"]}


def test_a_channel_deleted_between_routing_and_processing_is_skipped_and_the_others_get_the_alert(
    client, channels, clock, monkeypatch
):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"], channels["Web"])
    monkeypatch.setattr(queue, "async_task", lambda *args, **kwargs: None)
    push(client, key, event())
    channels["Web"].delete()
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert landed() == {"disk-db-1": ["Databases"]}
    assert not EventBatch.objects.exists()


def test_an_event_whose_every_channel_was_deleted_before_processing_goes_where_the_rules_send_it_now(
    client, channels, clock, monkeypatch, caplog
):
    """The monitor was told the event was stored: it pages where the rules as saved now send it, not nowhere."""
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Web"], filters=when("labels.team", "web"), fallthrough=False)
    make_rule(integration, channels["Databases"], position=1)
    monkeypatch.setattr(queue, "async_task", lambda *args, **kwargs: None)
    push(client, key, event(labels={"team": "db"}))  # cached: the rules as they were, which route it to Databases
    make_rule(integration, channels["Ops"], position=2)
    channels["Databases"].delete()
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert landed() == {"disk-db-1": ["Ops"]}, "the rules as saved now, not those cached when it was accepted"
    assert not EventBatch.objects.exists()
    assert "was routed again" in caplog.text


def test_an_event_whose_channels_were_deleted_and_no_rule_matches_now_goes_to_the_default_route(
    client, channels, clock, monkeypatch
):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"])
    monkeypatch.setattr(queue, "async_task", lambda *args, **kwargs: None)
    push(client, key, event())
    channels["Databases"].delete()
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert landed() == {"disk-db-1": ["Fallback"]}


def test_an_event_whose_channels_were_deleted_with_no_route_left_is_left_out_and_logged(
    client, channels, clock, monkeypatch, caplog
):
    integration, key = make_integration(channel=None)
    make_rule(integration, channels["Databases"])
    monkeypatch.setattr(queue, "async_task", lambda *args, **kwargs: None)
    push(client, key, event())
    channels["Databases"].delete()
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert not Alert.objects.exists() and not EventBatch.objects.exists()
    assert "matches no routing rule of integration" in caplog.text and "was left out" in caplog.text


# --- the admin ---------------------------------------------------------------------------------------------------


def client_logged_in_as_staff() -> Client:
    staff = Client()
    staff.force_login(make_user("root", is_staff=True, is_superuser=True))
    return staff


def integration_form(integration, rules: list[dict]) -> dict:
    """The integration's change form as the admin posts it, with its routing rules inline."""
    existing = list(integration.routing_rules.order_by("position", "id"))
    data = {
        "name": integration.name,
        "kind": integration.kind,
        "channel": integration.channel_id or "",
        "enabled": "on",
        "rate_limit_per_second": "",
        "rate_limit_per_minute": "",
        "routing_rules-TOTAL_FORMS": len(rules),
        "routing_rules-INITIAL_FORMS": len(existing),
        "routing_rules-MIN_NUM_FORMS": 0,
        "routing_rules-MAX_NUM_FORMS": 1000,
    }
    for index, rule in enumerate(rules):
        prefix = f"routing_rules-{index}-"
        fields = {
            "id": existing[index].pk if index < len(existing) else "",
            "integration": integration.pk,
            "position": index,
            "name": "",
            "enabled": "on",
            "filters": "[]",
            "mode": "channels",
            "channels": [],
            "name_mapping_label": "",
            "fallthrough": "on",
            **rule,
        }
        for name, value in fields.items():
            if value is not None:
                data[prefix + name] = value
    return data


@pytest.fixture
def staff():
    return client_logged_in_as_staff()


def test_rules_edited_in_the_admin_take_effect_at_once_despite_the_cache(client, staff, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    make_rule(integration, channels["Databases"])
    push(client, key, event("before"))
    url = reverse("admin:oncall_integration_change", args=[integration.pk])

    response = staff.post(url, integration_form(integration, [{"channels": [channels["Web"].pk]}]))
    assert response.status_code == 302, response.content.decode()[:3000]
    push(client, key, event("after-edit"))

    response = staff.post(url, integration_form(integration, [{"DELETE": "on", "channels": [channels["Web"].pk]}]))
    assert response.status_code == 302, response.content.decode()[:3000]
    push(client, key, event("after-delete"))

    assert landed() == {"before": ["Databases"], "after-edit": ["Web"], "after-delete": ["Fallback"]}


def test_changing_the_default_route_in_the_admin_takes_effect_at_once(client, staff, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    push(client, key, event("before"))
    integration.channel = channels["Ops"]
    response = staff.post(
        reverse("admin:oncall_integration_change", args=[integration.pk]), integration_form(integration, [])
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    push(client, key, event("after"))
    assert landed() == {"before": ["Fallback"], "after": ["Ops"]}


def test_the_admin_adds_rules_in_order_with_their_channels(staff, channels):
    integration, _key = make_integration(channel=None)
    rules = [
        {
            "name": "Databases",
            "filters": json.dumps(when("labels.service", "db")),
            "channels": [channels["Databases"].pk],
        },
        {"name": "By team", "mode": "name_mapping", "name_mapping_label": "labels.team", "fallthrough": None},
    ]
    response = staff.post(
        reverse("admin:oncall_integration_change", args=[integration.pk]), integration_form(integration, rules)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = list(integration.routing_rules.order_by("position"))
    assert [(rule.name, rule.mode, rule.fallthrough) for rule in saved] == [
        ("Databases", "channels", True),
        ("By team", "name_mapping", False),
    ]
    assert list(saved[0].channels.all()) == [channels["Databases"]]
    assert saved[0].filters == when("labels.service", "db")
    assert saved[1].name_mapping_label == "team", "labels.team names the label team"
    assert saved[1].filters == []


def test_the_admin_refuses_an_invalid_filter_with_where_and_why(staff, channels):
    integration, _key = make_integration(channel=channels["Fallback"])
    bad = [
        [{"key": "severity", "op": "IN", "values": ["Critical"]}, {"key": "labels.x", "op": "LIKE", "values": ["a"]}]
    ]
    response = staff.post(
        reverse("admin:oncall_integration_change", args=[integration.pk]),
        integration_form(integration, [{"filters": json.dumps(bad), "channels": [channels["Ops"].pk]}]),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "[0][1].op: &#x27;LIKE&#x27; is not IN or NOTIN" in page
    assert not RoutingRule.objects.exists()


def test_the_admin_requires_a_channel_or_a_label_as_the_mode_needs(staff, channels):
    integration, _key = make_integration(channel=channels["Fallback"])
    response = staff.post(
        reverse("admin:oncall_integration_change", args=[integration.pk]),
        integration_form(
            integration, [{"name": "Nowhere", "channels": []}, {"mode": "name_mapping", "name_mapping_label": ""}]
        ),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Choose at least one channel to send matching events to." in page
    assert "Name the label whose value is the channel&#x27;s name." in page
    assert not RoutingRule.objects.exists()


def test_the_change_page_links_to_the_routing_preview(staff, channels):
    integration, _key = make_integration(channel=channels["Fallback"])
    page = staff.get(reverse("admin:oncall_integration_change", args=[integration.pk])).content.decode()
    preview_url = reverse("admin:oncall_integration_routing_preview", args=[integration.pk])
    assert f'href="{preview_url}"' in page and "Preview routing" in page


def test_the_routing_preview_shows_where_each_recent_alert_would_go_now(client, staff, channels):
    integration, key = make_integration(channel=channels["Fallback"])
    push(client, key, event("db-disk", labels={"service": "db"}))
    push(client, key, event("web-slow", "Warning", labels={"service": "web"}))
    push(client, key, event("ops-page", labels={"team": "Ops"}))
    # Rules written after the alerts arrived: the preview says where they would go now.
    make_rule(integration, channels["Databases"], name="Databases", filters=when("labels.service", "db"))
    make_rule(integration, position=1, name="By team", mode=RoutingRule.Mode.NAME_MAPPING, name_mapping_label="team")

    page = staff.get(reverse("admin:oncall_integration_routing_preview", args=[integration.pk])).content.decode()
    rows = {
        key: re.search(rf"{key} firing.*?</tr>", page, re.S).group(0) for key in ("db-disk", "web-slow", "ops-page")
    }
    assert '<td class="route-outcome">Databases</td>' in rows["db-disk"]
    assert '<td class="route-outcome">default route (Fallback)</td>' in rows["web-slow"]
    assert '<td class="route-outcome">Ops</td>' in rows["ops-page"] and "By team" in rows["ops-page"]
    assert "<td>Fallback</td>" in rows["db-disk"], "where it actually went"

    integration.channel = None
    integration.save()
    page = staff.get(reverse("admin:oncall_integration_routing_preview", args=[integration.pk])).content.decode()
    assert "refused: no route" in re.search(r"web-slow firing.*?</tr>", page, re.S).group(0)


def test_the_routing_preview_shows_the_last_twenty_alerts_newest_first(client, staff, channels, clock):
    integration, key = make_integration(channel=channels["Fallback"])
    for number in range(22):
        clock.advance(seconds=1)
        push(client, key, event(f"alert-{number:02d}"))
    page = staff.get(reverse("admin:oncall_integration_routing_preview", args=[integration.pk])).content.decode()
    shown = re.findall(r"(alert-\d\d) firing", page)
    assert shown == [f"alert-{number:02d}" for number in range(21, 1, -1)]


def test_the_routing_preview_is_for_staff_only(client, channels):
    integration, _key = make_integration(channel=channels["Fallback"])
    url = reverse("admin:oncall_integration_routing_preview", args=[integration.pk])
    assert client.get(url).status_code == 302
    client.force_login(make_user("engineer"))
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]
