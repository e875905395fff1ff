"""The Grafana webhook adapter: unified alerting (v9 to v11) and legacy notification channels, told apart by shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncall.sources import PARSERS, grafana
from oncall.sources.base import Image, SourceError, generated_alert_key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "grafana"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse_one(payload: dict):
    events = grafana.parse(payload, now=NOW)
    assert len(events) == 1
    return events[0]


def unified_alert(**overrides) -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": "High latency", "service": "api"},
        "annotations": {"summary": "p99 above 1s"},
        "startsAt": "2026-03-02T08:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "0123456789abcdef",
        "silenceURL": "",
        "dashboardURL": "",
        "panelURL": "",
        **overrides,
    }


def unified(*alerts: dict) -> dict:
    return {"receiver": "oncall", "status": "firing", "orgId": 1, "version": "1", "alerts": list(alerts)}


def legacy(**overrides) -> dict:
    return {
        "ruleId": 3,
        "ruleName": "CPU alert",
        "ruleUrl": "https://grafana.example.com/d/abc/host?tab=alert&editPanel=1&orgId=1",
        "state": "alerting",
        "title": "[Alerting] CPU alert",
        "message": "CPU is high",
        "evalMatches": [],
        "tags": {},
        **overrides,
    }


def test_registry_serves_grafana_pushes():
    assert PARSERS["grafana"] is grafana.parse


def test_v9_docs_sample_becomes_two_warning_events_keyed_by_fingerprint():
    events = grafana.parse(load("v9_docs_two_firing.json"), now=NOW)
    assert [e.alert_key for e in events] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
    assert [e.status for e in events] == ["Warning", "Warning"], "no severity label: Warning"
    first = events[0]
    assert first.title == "This alert was triggered for zone us-1"
    assert first.description == "The system has high memory usage"
    assert first.labels["zone"] == "us-1"
    assert first.labels["runbook_url"] == "https://myrunbook.com/runbook/1234"
    assert first.labels["grafana_generator_url"] == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert first.labels["grafana_silence_url"].startswith("https://play.grafana.org/alerting/silence/new?")
    assert "grafana_dashboard_url" not in first.labels, "empty URLs are left out"
    assert "grafana_panel_url" not in first.labels
    assert first.event_time == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert first.images == ()


def test_v10_firing_alert_with_screenshot_carries_image_and_grafana_links():
    event = parse_one(load("v10_disk_firing_with_image.json"))
    assert event.status == "Critical"
    assert event.alert_key == "7ba3e2f1c9d08e45"
    assert event.title == "Disk /var/lib/postgresql on db-1 is 97% full"
    assert event.labels["grafana_dashboard_url"].startswith("https://grafana.example.com/d/rYdddlPWk?")
    assert event.labels["grafana_panel_url"].endswith("&viewPanel=152")
    assert event.images == (
        Image(
            src="https://grafana.example.com/public/img/attachments/q4nPZ7Xa2Yb0hUrsT9c1.png",
            alt="Disk almost full",
            href="https://grafana.example.com/d/rYdddlPWk?from=1772438100000&orgId=1&to=1772441760000&viewPanel=152",
        ),
    )


def test_v10_resolved_alert_recovers_the_same_key():
    firing = parse_one(load("v10_disk_firing_with_image.json"))
    resolved = parse_one(load("v10_disk_resolved.json"))
    assert resolved.is_recovery
    assert resolved.alert_key == firing.alert_key
    assert resolved.event_time == datetime(2026, 3, 2, 9, 25, tzinfo=UTC)


def test_v11_group_of_three_pods_becomes_three_events_with_priority_mapped():
    events = grafana.parse(load("v11_three_pods_grouped.json"), now=NOW)
    assert [e.labels["pod"] for e in events] == ["ledger-0", "ledger-1", "ledger-2"]
    assert [e.status for e in events] == ["Warning", "Warning", "Critical"]
    assert len({e.alert_key for e in events}) == 3


def test_v11_contact_point_test_notification_is_an_ordinary_warning():
    event = parse_one(load("v11_test_notification.json"))
    assert (event.status, event.title, event.alert_key) == ("Warning", "Notification test", "57c6d9296de2ad39")
    assert "grafana_generator_url" not in event.labels


def test_non_ascii_unified_alert_keeps_its_text():
    event = parse_one(load("v11_chinese.json"))
    assert event.title == "支付成功率低于 95%"
    assert event.description == "华东区域过去 5 分钟支付成功率为 91.2%"
    assert event.labels["grafana_folder"] == "交易"
    assert "华东" in event.labels.values()
    assert event.status == "Critical"


def test_unified_alert_without_summary_or_alertname_gets_the_grafana_default_title():
    event = parse_one(unified(unified_alert(labels={"service": "api"}, annotations={})))
    assert event.title == "Grafana alert"


def test_grafana_urls_rank_after_labels_and_before_annotations_under_the_cap():
    labels = {f"l{i:02d}": "label" for i in range(47)}
    annotations = {f"a{i:02d}": "annotation" for i in range(10)}
    urls = {
        "dashboardURL": "https://g.example.com/d/1",
        "panelURL": "https://g.example.com/d/1?viewPanel=2",
        "silenceURL": "https://g.example.com/alerting/silence/new",
        "generatorURL": "https://g.example.com/alerting/grafana/x/view",
    }
    event = parse_one(unified(unified_alert(labels=labels, annotations=annotations, **urls)))
    assert len(event.labels) == 50
    assert all(key in event.labels for key in labels)
    assert {"grafana_dashboard_url", "grafana_panel_url", "grafana_silence_url"} <= set(event.labels)
    assert not any(value == "annotation" for value in event.labels.values())


@pytest.mark.parametrize(
    ("image_url", "expected_src"),
    [
        ("https://g.example.com/a.png", "https://g.example.com/a.png"),
        ("https://g.example.com/" + "a" * 300 + ".png", None),
        ("s3://bucket/a.png", None),
        ("", None),
        (5, None),
    ],
)
def test_unusable_screenshot_urls_are_left_out_not_refused(image_url, expected_src):
    event = parse_one(unified(unified_alert(imageURL=image_url)))
    assert [image.src for image in event.images] == ([expected_src] if expected_src else [])


def test_legacy_alerting_docs_sample_becomes_a_warning_with_tags_metrics_and_image():
    event = parse_one(load("legacy_alerting.json"))
    assert event.status == "Warning"
    assert (event.alert_key, event.alert_key_generated) == ("grafana-legacy-1", False)
    assert event.title == "[Alerting] Panel Title alert"
    assert event.description == "Notification Message"
    assert event.labels == {
        "tag_name": "tag value",
        "grafana_rule_url": "http://localhost:3000/d/hZ7BuVbWz/test-dashboard?fullscreen&edit&tab=alert&panelId=2&orgId=1",
        "Count": "1",
    }
    assert event.images == (
        Image(
            src="https://grafana.com/static/assets/img/blog/mixed_styles.png",
            alt="Panel Title alert",
            href="http://localhost:3000/d/hZ7BuVbWz/test-dashboard?fullscreen&edit&tab=alert&panelId=2&orgId=1",
        ),
    )
    assert event.event_time is None, "a legacy notification gives no time of its own"


def test_legacy_ok_recovers_the_same_rule():
    event = parse_one(load("legacy_ok.json"))
    assert event.is_recovery
    assert event.alert_key == "grafana-legacy-1"


def test_legacy_no_data_is_critical_and_null_values_make_no_labels():
    event = parse_one(load("legacy_no_data.json"))
    assert event.status == "Critical"
    assert event.alert_key == "grafana-legacy-42"
    assert set(event.labels) == {"grafana_rule_url"}


def test_legacy_multiple_matches_become_one_label_each_and_non_ascii_is_kept():
    event = parse_one(load("legacy_multi_match_chinese.json"))
    assert event.title == "[Alerting] 数据库磁盘告警"
    assert event.description == "数据库磁盘使用率超过 85%"
    assert event.labels["env"] == "prod"
    assert "存储" in event.labels.values()
    assert sorted(v for k, v in event.labels.items() if k.endswith(("db-1", "db-2", "db-3"))) == ["88.25", "92.5", "95"]


@pytest.mark.parametrize("name", ["legacy_paused.json", "legacy_pending.json"])
def test_legacy_paused_and_pending_produce_no_event(name):
    assert grafana.parse(load(name), now=NOW) == []


@pytest.mark.parametrize(
    ("state", "status"),
    [("alerting", "Warning"), ("no_data", "Critical"), ("ok", "Ok"), ("Alerting", "Warning"), ("OK", "Ok")],
)
def test_legacy_state_mapping(state, status):
    assert parse_one(legacy(state=state)).status == status


def test_legacy_without_rule_id_is_keyed_by_a_hash_of_rule_url_and_name():
    event = parse_one(legacy(ruleId=None))
    assert event.alert_key_generated
    identity = {"ruleUrl": legacy()["ruleUrl"], "ruleName": "CPU alert"}
    assert event.alert_key == generated_alert_key("grafana-legacy", identity)
    assert parse_one(legacy(ruleId=None, title="[OK] CPU alert", state="ok")).alert_key == event.alert_key


def test_legacy_rule_id_may_be_a_string_and_title_falls_back_to_rule_name():
    event = parse_one(legacy(ruleId="17", title=None))
    assert event.alert_key == "grafana-legacy-17"
    assert event.title == "CPU alert"


def test_legacy_tags_win_over_metrics_with_the_same_name():
    event = parse_one(legacy(tags={"host": "db-1"}, evalMatches=[{"metric": "host", "value": 3}, "junk", {}]))
    assert event.labels["host"] == "db-1"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("alerting", "body"),
        ({"receiver": "x", "status": "firing"}, "body"),
        ({"title": "[Alerting] x", "state": "alerting"}, "body"),
        ({"alerts": {"a": 1}}, "alerts"),
        (unified("x"), "alerts[0]"),
        (unified(unified_alert(labels="alertname=x")), "alerts[0].labels"),
        (legacy(state=None), "state"),
        (legacy(state=3), "state"),
        (legacy(state="firing"), "state"),
        (legacy(tags=["a"]), "tags"),
        (legacy(evalMatches={"metric": "x"}), "evalMatches"),
        (legacy(ruleId=True), "ruleId"),
        (legacy(ruleId=[1]), "ruleId"),
        (legacy(ruleId=None, ruleUrl=None, ruleName=None, evalMatches=[]), "ruleId"),
    ],
)
def test_payloads_of_neither_shape_or_with_wrong_types_are_refused_naming_the_field(payload, field):
    with pytest.raises(SourceError) as caught:
        grafana.parse(payload, now=NOW)
    assert caught.value.field == field
