"""The Alertmanager webhook adapter, against real-shaped payloads, every mapping row and every refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncall.sources import PARSERS, prometheus
from oncall.sources.base import SourceError, generated_alert_key, sanitize_labels

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "prometheus"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def body(*alerts: dict) -> dict:
    return {"version": "4", "status": "firing", "receiver": "oncall", "alerts": list(alerts)}


def alert(**overrides) -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": "DiskFull", "instance": "db-1"},
        "annotations": {},
        "startsAt": "2026-03-02T08:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "abc123",
        **overrides,
    }


def parse_one(payload: dict):
    events = prometheus.parse(payload, now=NOW)
    assert len(events) == 1
    return events[0]


def test_the_registry_serves_prometheus_and_grafana_pushes():
    assert PARSERS["prometheus"] is prometheus.parse
    assert "grafana" in PARSERS
    assert "pagerduty" not in PARSERS, "PagerDuty has its own endpoints and response shapes"


def test_firing_kube_prometheus_alert_becomes_one_critical_event_keyed_by_fingerprint():
    event = parse_one(load("crashloop_firing.json"))
    assert event.status == "Critical"
    assert not event.is_recovery
    assert (event.alert_key, event.alert_key_generated) == ("5a2c6f7e3b1d9a04", False)
    assert event.title == event.title_rule == "Pod is crash looping."
    assert event.description.startswith("Pod shop/checkout-7d9c6b5f4-x2k8q (checkout) is in waiting state")
    assert event.labels["pod"] == "checkout-7d9c6b5f4-x2k8q"
    assert event.labels["runbook_url"].startswith("https://runbooks.prometheus-operator.dev/")
    assert event.event_time == datetime(2026, 3, 2, 8, 45, 12, 345678, tzinfo=UTC), "nanoseconds are cut to micro"
    assert event.images == ()


def test_resolved_alert_is_a_recovery_of_the_same_key_timed_at_its_end():
    firing = parse_one(load("crashloop_firing.json"))
    resolved = parse_one(load("crashloop_resolved.json"))
    assert resolved.is_recovery and resolved.status == "Ok"
    assert resolved.alert_key == firing.alert_key
    assert resolved.event_time == datetime(2026, 3, 2, 9, 10, 42, tzinfo=UTC)


def test_grouped_notification_of_three_hosts_becomes_three_events_with_their_own_severity():
    events = prometheus.parse(load("node_cpu_group_of_three.json"), now=NOW)
    assert [e.alert_key for e in events] == ["0f2c1a9bd6e35a71", "8e4b77c0a3d21f96", "c51d0e8f7a6b2394"]
    assert [e.status for e in events] == ["Critical", "Warning", "Warning"], "critical, 'Warning', unknown 'P2'"
    assert [e.labels["instance"] for e in events] == ["db-1.internal:9100", "db-2.internal:9100", "db-3.internal:9100"]


def test_a_firing_group_can_carry_one_resolved_alert():
    events = prometheus.parse(load("node_cpu_group_one_resolved.json"), now=NOW)
    assert [e.is_recovery for e in events] == [True, False, False]


def test_alert_without_fingerprint_gets_a_stable_key_from_its_labels_only():
    event = parse_one(load("old_alertmanager_without_fingerprint.json"))
    labels = {"alertname": "InstanceDown", "instance": "web-4:9100", "job": "node"}
    assert event.alert_key == generated_alert_key("", labels)
    assert event.alert_key_generated
    assert event.title == "InstanceDown", "no summary: the alert name"
    assert event.description == ""
    assert event.status == "Warning", "no severity label: Warning"
    reordered = alert(fingerprint=None, labels=dict(reversed(labels.items())), annotations={"summary": "changes"})
    assert parse_one(body(reordered)).alert_key == event.alert_key, "label order and annotations do not matter"


def test_non_ascii_text_is_kept_and_timestamp_annotation_sets_the_event_time():
    event = parse_one(load("chinese_labels_and_timestamp.json"))
    assert event.title == "订单服务 P99 延迟超过 800ms"
    assert event.description == "上海机房订单服务最近 5 分钟 P99 延迟为 1.2s", "message stands in for description"
    assert event.labels["region"] == "上海"
    assert "张伟" in event.labels.values(), "a non-ASCII annotation key is renamed, its value kept"
    assert event.status == "Info", "level=INFO, compared case-insensitively"
    assert event.event_time == datetime(2026, 3, 2, 8, 50, tzinfo=UTC)


def test_watchdog_with_severity_none_is_a_warning():
    assert parse_one(load("watchdog_none_severity.json")).status == "Warning"


def test_severity_label_ok_is_a_recovery_even_while_firing():
    event = parse_one(load("severity_ok_recovery_label.json"))
    assert event.is_recovery


def test_empty_alert_list_is_a_valid_no_op():
    assert prometheus.parse(load("empty_group.json"), now=NOW) == []


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"severity": "critical"}, "Critical"),
        ({"severity": "CRITICAL"}, "Critical"),
        ({"severity": "warning"}, "Warning"),
        ({"severity": "warn"}, "Warning"),
        ({"severity": "info"}, "Info"),
        ({"severity": "acknowledged"}, "Info"),
        ({"severity": "unknown"}, "Info"),
        ({"severity": "unk"}, "Info"),
        ({"severity": "ok"}, "Ok"),
        ({"severity": "page"}, "Warning"),
        ({"severity": "error"}, "Warning"),
        ({}, "Warning"),
        ({"priority": "critical"}, "Critical"),
        ({"level": "Info"}, "Info"),
        ({"severity": "info", "priority": "critical", "level": "critical"}, "Info"),
        ({"priority": "warning", "level": "critical"}, "Warning"),
        ({"severity": "", "priority": "critical"}, "Critical"),
        ({"severity": " Critical "}, "Critical"),
    ],
)
def test_severity_mapping_takes_the_first_present_of_severity_priority_level(labels, expected):
    event = parse_one(body(alert(labels={"alertname": "X", **labels})))
    assert event.status == expected


@pytest.mark.parametrize("severity", ["critical", "info", "warning", None])
def test_resolved_status_is_a_recovery_whatever_the_severity_label(severity):
    labels = {"alertname": "X"} if severity is None else {"alertname": "X", "severity": severity}
    assert parse_one(body(alert(status="resolved", labels=labels))).status == "Ok"


@pytest.mark.parametrize(
    ("annotations", "labels", "title"),
    [
        ({"summary": "Disk full on db-1"}, {"alertname": "DiskFull"}, "Disk full on db-1"),
        ({"summary": "  "}, {"alertname": "DiskFull"}, "DiskFull"),
        ({}, {"instance": "db-1"}, "Alertmanager alert"),
    ],
)
def test_title_is_summary_then_alertname_then_a_default(annotations, labels, title):
    event = parse_one(body(alert(annotations=annotations, labels=labels)))
    assert event.title == title


def test_description_prefers_description_over_message():
    event = parse_one(body(alert(annotations={"description": "the description", "message": "the message"})))
    assert event.description == "the description"


def test_long_title_and_description_are_cut_not_refused():
    event = parse_one(body(alert(annotations={"summary": "s" * 600, "description": "d" * 3000})))
    assert len(event.title) == 512 and event.title.endswith("…")
    assert len(event.description) == 2048


def test_labels_win_over_annotations_and_bad_keys_and_values_are_repaired():
    labels = {"alertname": "X", "team": "from-label", "app.kubernetes.io/name": "api", "9lives": "cat"}
    annotations = {"team": "from-annotation", "has space": "v", "count": 3, "long": "v" * 3000}
    event = parse_one(body(alert(labels=labels, annotations=annotations)))
    assert event.labels["team"] == "from-label"
    assert event.labels["app.kubernetes.io/name"] == "api"
    assert event.labels["_9lives"] == "cat"
    assert event.labels["has_space"] == "v"
    assert event.labels["count"] == "3"
    assert len(event.labels["long"]) == 2048


def test_more_than_fifty_pairs_keep_every_label_before_any_annotation():
    labels = {f"l{i:02d}": "label" for i in range(45)}
    annotations = {f"a{i:02d}": "annotation" for i in range(20)}
    event = parse_one(body(alert(labels=labels, annotations=annotations)))
    assert len(event.labels) == 50
    assert all(event.labels[key] == "label" for key in labels)
    assert sum(value == "annotation" for value in event.labels.values()) == 5


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"annotations": {"timestamp": "1772441400"}}, datetime(2026, 3, 2, 8, 50, tzinfo=UTC)),
        ({"annotations": {"timestamp": "1772441400000"}}, datetime(2026, 3, 2, 8, 50, tzinfo=UTC)),
        ({"annotations": {"timestamp": "2026-03-02T16:50:00+08:00"}}, datetime(2026, 3, 2, 8, 50, tzinfo=UTC)),
        ({"annotations": {"timestamp": "yesterday"}}, datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ({}, datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ({"startsAt": "0001-01-01T00:00:00Z"}, None),
        ({"startsAt": None}, None),
        ({"status": "resolved", "endsAt": "2026-03-02T08:30:00Z"}, datetime(2026, 3, 2, 8, 30, tzinfo=UTC)),
        ({"status": "resolved"}, datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
    ],
)
def test_event_time_comes_from_timestamp_annotation_then_alert_times_else_there_is_none(overrides, expected):
    assert parse_one(body(alert(**overrides))).event_time == expected


def test_an_over_long_fingerprint_is_replaced_by_a_stable_hash():
    first = parse_one(body(alert(fingerprint="f" * 300)))
    second = parse_one(body(alert(fingerprint="f" * 300)))
    assert first.alert_key == second.alert_key
    assert len(first.alert_key) == 64


def test_any_version_and_missing_status_are_accepted():
    payload = {"version": "5", "alerts": [alert(status=None)]}
    assert parse_one(payload).status == "Warning"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("firing", "body"),
        ({"version": "4"}, "alerts"),
        ({"alerts": {"0": {}}}, "alerts"),
        ({"alerts": "none"}, "alerts"),
        (body("not an alert"), "alerts[0]"),
        (body(alert(), alert(labels=["alertname=X"])), "alerts[1].labels"),
        (body(alert(annotations="summary")), "alerts[0].annotations"),
        (body(alert(status=1)), "alerts[0].status"),
        (body(alert(fingerprint=12345)), "alerts[0].fingerprint"),
    ],
)
def test_payloads_that_are_not_alertmanager_shaped_are_refused_naming_the_field(payload, field):
    with pytest.raises(SourceError) as caught:
        prometheus.parse(payload, now=NOW)
    assert caught.value.field == field


def test_label_names_in_other_scripts_are_kept_not_collapsed():
    labels = sanitize_labels({}, first={"负责人": "张三", "区域": "上海", "团队": "交易", "a b": "x", "9lives": "y"})
    assert labels == {"负责人": "张三", "区域": "上海", "团队": "交易", "a_b": "x", "_9lives": "y"}
