"""The PagerDuty Events API adapter (v2 and v1): version detection, mapping and PagerDuty's validation rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncall.sources import pagerduty
from oncall.sources.base import Image, SourceError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pagerduty"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse_one(payload: dict):
    events = pagerduty.parse(payload, now=NOW)
    assert len(events) == 1
    return events[0]


def v2(**overrides) -> dict:
    event = {
        "routing_key": "k" * 32,
        "event_action": "trigger",
        "dedup_key": "db-1/disk",
        "payload": {"summary": "Disk full on db-1", "source": "db-1", "severity": "critical"},
    }
    for key, value in overrides.items():
        if key.startswith("payload__"):
            event["payload"][key.removeprefix("payload__")] = value
        else:
            event[key] = value
    return event


def v1(**overrides) -> dict:
    return {
        "service_key": "k" * 32,
        "event_type": "trigger",
        "incident_key": "srv01/HTTP",
        "description": "HTTP down on srv01",
        **overrides,
    }


def invalid(payload) -> pagerduty.InvalidEvent:
    with pytest.raises(pagerduty.InvalidEvent) as caught:
        pagerduty.parse(payload, now=NOW)
    return caught.value


def test_v2_docs_trigger_maps_summary_severity_context_details_links_and_images():
    event = parse_one(load("v2_docs_trigger.json"))
    assert event.status == "Critical"
    assert (event.alert_key, event.alert_key_generated, event.acknowledge) == ("srv01/mysql", False, False)
    assert event.title == event.title_rule == "DISK at 99% on machine prod-datapipe03.example.com"
    assert event.description == "An example link.: http://pagerduty.example.com"
    assert event.labels == {
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.service.com",
        "free_space": "1%",
        "ping_time": "1500ms",
        "load_avg": "0.75",
    }
    assert event.images == (
        Image(
            src="https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,8,2,1&cht=lc&chds=a&chxt=y&chm=D,0033FF,0,0,5,1",
            alt="An example link with an image",
            href="https://google.com",
        ),
    )
    assert event.event_time == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert pagerduty.version(load("v2_docs_trigger.json")) == 2
    assert pagerduty.routing_key(load("v2_docs_trigger.json")) == "e93facc04764012d7bfb002500d5d1a6"


def test_v2_acknowledge_is_an_acknowledgement_of_the_dedup_key():
    event = parse_one(load("v2_acknowledge.json"))
    assert event.acknowledge
    assert event.action == "acknowledge"
    assert event.alert_key == "srv01/mysql"
    assert not event.is_recovery


def test_v2_resolve_is_a_recovery_of_the_dedup_key():
    event = parse_one(load("v2_resolve.json"))
    assert event.is_recovery and event.status == "Ok"
    assert event.alert_key == "srv01/mysql"
    assert not event.acknowledge


def test_alertmanager_v2_trigger_with_default_error_severity_is_critical_and_resolve_recovers_it():
    trigger = parse_one(load("v2_alertmanager_trigger.json"))
    resolve = parse_one(load("v2_alertmanager_resolve.json"))
    assert trigger.status == "Critical"
    assert trigger.labels["num_firing"] == "2"
    assert trigger.labels["client"] == "Alertmanager"
    assert trigger.images == () and trigger.description == "", "empty links and images lists"
    assert resolve.is_recovery
    assert resolve.alert_key == trigger.alert_key


def test_v2_trigger_without_dedup_key_gets_a_generated_uuid_hex():
    first = parse_one(load("v2_trigger_without_dedup_key.json"))
    second = parse_one(load("v2_trigger_without_dedup_key.json"))
    assert first.alert_key_generated
    assert len(first.alert_key) == 32 and int(first.alert_key, 16) >= 0
    assert first.alert_key != second.alert_key, "PagerDuty makes every key-less trigger a new alert"
    assert first.status == "Warning"
    assert first.labels == {"source": "synthetics.example.com"}


def test_v2_nested_custom_details_are_flattened_and_non_ascii_is_kept():
    event = parse_one(load("v2_trigger_nested_details_chinese.json"))
    assert event.status == "Info"
    assert event.alert_key == "订单服务/延迟"
    assert event.title == "订单服务 P99 延迟超过 800ms"
    assert event.labels["component"] == "订单服务"
    assert event.labels["client"] == "夜莺监控"
    assert event.labels["metrics.p99_ms"] == "1210"
    assert event.labels["metrics.p50_ms"] == "85.5"
    assert event.labels["metrics.regions"] == '["上海", "北京"]'
    assert event.labels["deploy.canary"] == "true"
    assert "deploy.rollback" not in event.labels, "null details make no label"
    assert "张伟" in event.labels.values()
    assert event.description == "处理手册: https://wiki.example.cn/runbooks/order-latency", "javascript: link dropped"
    assert event.images == (
        Image(
            src="https://grafana.example.cn/render/d-solo/order?panelId=2",
            alt="延迟图",
            href="https://grafana.example.cn/d/order",
        ),
    ), "ftp src, missing src and non-object images are skipped"
    assert event.event_time == datetime(2026, 3, 2, 8, 59, tzinfo=UTC)


def test_v1_docs_trigger_is_critical_with_details_contexts_and_incident_key():
    payload = load("v1_docs_trigger.json")
    assert pagerduty.version(payload) == 1
    assert pagerduty.key_field(payload) == "service_key"
    assert pagerduty.routing_key(payload) == "e93facc04764012d7bfb002500d5d1a6"
    event = parse_one(payload)
    assert event.status == "Critical"
    assert event.alert_key == "srv01/HTTP"
    assert event.title == "FAILURE for production/HTTP on machine srv01.acme.com"
    assert event.labels == {
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.service.com",
        "ping_time": "1500ms",
        "load_avg": "0.75",
    }
    assert event.description == "http://acme.pagerduty.com\nView the incident on PagerDuty: http://acme.pagerduty.com"
    assert [image.src for image in event.images] == [payload["contexts"][2]["src"]]


def test_v1_acknowledge_and_resolve_follow_the_incident_key():
    ack = parse_one(load("v1_acknowledge.json"))
    resolve = parse_one(load("v1_resolve.json"))
    assert (ack.alert_key, ack.acknowledge) == ("srv01/HTTP", True)
    assert (resolve.alert_key, resolve.is_recovery) == ("srv01/HTTP", True)


def test_alertmanager_v1_message_with_empty_event_action_is_read_as_v1():
    payload = load("v1_alertmanager_trigger.json")
    assert payload["event_action"] == "" and payload["payload"] is None
    assert pagerduty.version(payload) == 1
    event = parse_one(payload)
    assert event.status == "Critical"
    assert event.title == "[FIRING:1] InstanceDown (web-4:9100 node)"
    assert event.labels["num_firing"] == "1"


@pytest.mark.parametrize(
    ("severity", "status"), [("critical", "Critical"), ("error", "Critical"), ("warning", "Warning"), ("info", "Info")]
)
def test_v2_severity_mapping(severity, status):
    assert parse_one(v2(payload__severity=severity)).status == status


def test_summary_up_to_1024_is_accepted_and_cut_to_512_for_the_title_with_the_whole_in_the_description():
    summary = "s" * 1024
    event = parse_one(v2(payload__summary=summary))
    assert len(event.title) == 512 and event.title.endswith("…")
    assert event.description == summary


def test_custom_details_that_are_not_an_object_become_one_label():
    assert parse_one(v2(payload__custom_details="free text")).labels["custom_details"] == "free text"
    assert parse_one(v1(details="free text")).labels["details"] == "free text"


def test_deeply_nested_details_are_encoded_below_eight_levels():
    nested: dict = {"leaf": "x"}
    for level in range(12):
        nested = {f"n{level}": nested}
    labels = parse_one(v2(payload__custom_details=nested)).labels
    (key,) = (name for name in labels if name.startswith("n11"))
    assert key == "n11.n10.n9.n8.n7.n6.n5.n4"
    assert key.count(".") == 7
    assert json.loads(labels[key]) == {"n3": {"n2": {"n1": {"n0": {"leaf": "x"}}}}}


def test_images_are_capped_at_twenty_and_deduplicated_by_alt():
    images = [{"src": f"https://g.example.com/{i}.png", "alt": "same" if i < 2 else f"img {i}"} for i in range(30)]
    event = parse_one(v2(images=images))
    assert len(event.images) == 20
    assert [image.alt for image in event.images[:2]] == ["same", "img 2"]


def test_image_with_bad_href_or_long_alt_is_kept_without_href_and_with_alt_cut():
    event = parse_one(v2(images=[{"src": "https://g.example.com/a.png", "href": "ftp://x", "alt": "a" * 200}]))
    (image,) = event.images
    assert image.href == ""
    assert len(image.alt) == 128


def test_context_of_acknowledge_and_resolve_is_ignored_as_pagerduty_does():
    event = parse_one(v2(event_action="resolve", images=[{"src": "https://g.example.com/a.png"}], payload="anything"))
    assert event.is_recovery
    assert event.images == () and dict(event.labels) == {}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([], ["'body' must be a JSON object"]),
        ({}, ["'event_action' is missing or blank"]),
        (v2(event_action="TRIGGER"), None),
        (v2(event_action="escalate"), None),
        (v2(payload=None), ["'payload' is required to trigger"]),
        (v2(payload="summary"), None),
        (v2(payload__summary=None), ["'payload.summary' is missing or blank"]),
        (v2(payload__summary="   "), ["'payload.summary' is missing or blank"]),
        (v2(payload__summary="s" * 1025), ["'payload.summary' is longer than 1024 characters"]),
        (v2(payload__source=None), ["'payload.source' is missing or blank"]),
        (v2(payload__severity=None), ["'payload.severity' is missing or blank"]),
        (v2(payload__severity="Critical"), None),
        (v2(payload__severity="high"), None),
        (v2(payload__component=5), ["'payload.component' must be a string, not int"]),
        (v2(payload__group=["a"]), ["'payload.group' must be a string, not list"]),
        (v2(payload__class={"a": 1}), ["'payload.class' must be a string, not dict"]),
        (v2(dedup_key="d" * 256), ["'dedup_key' is longer than 255 characters"]),
        (v2(dedup_key=7), ["'dedup_key' must be a string, not int"]),
        (v2(event_action="acknowledge", dedup_key=None), ["'dedup_key' is required to acknowledge"]),
        (v2(event_action="resolve", dedup_key=""), ["'dedup_key' is required to resolve"]),
        (v2(event_action="acknowledge", dedup_key="d" * 256), ["'dedup_key' is longer than 255 characters"]),
        (v2(routing_key=12345), ["'routing_key' must be a string, not int"]),
        (
            v2(payload={"severity": "urgent"}),
            [
                "'payload.summary' is missing or blank",
                "'payload.source' is missing or blank",
                "'payload.severity' is invalid (must be one of critical, error, warning, info), not 'urgent'",
            ],
        ),
        (v1(event_type="escalate"), None),
        (v1(description=None), ["'description' is missing or blank"]),
        (v1(description="d" * 1025), ["'description' is longer than 1024 characters"]),
        (v1(event_type="resolve", incident_key=None), ["'incident_key' is required to resolve"]),
        (v1(event_type="acknowledge", incident_key=" "), ["'incident_key' is required to acknowledge"]),
        (v1(incident_key="i" * 256), ["'incident_key' is longer than 255 characters"]),
        (v1(service_key=["k"]), ["'service_key' must be a string, not list"]),
    ],
)
def test_invalid_events_are_refused_with_every_problem_naming_its_field(payload, expected):
    error = invalid(payload)
    assert isinstance(error, SourceError)
    assert error.field == error.problems[0][0]
    if expected is not None:
        assert error.errors == expected
    else:
        assert len(error.errors) == 1 and error.errors[0].startswith("'")


@pytest.mark.parametrize(
    ("payload", "version", "field"),
    [
        ({"event_action": "trigger", "routing_key": "k"}, 2, "routing_key"),
        ({"event_type": "trigger", "service_key": "k"}, 1, "service_key"),
        ({"service_key": "k"}, 1, "service_key"),
        ({"event_action": "trigger", "service_key": "k"}, 2, "routing_key"),
        ({"event_action": "", "event_type": "resolve"}, 1, "service_key"),
        ({}, 2, "routing_key"),
        ([], 2, "routing_key"),
    ],
)
def test_version_detection_and_the_field_the_key_comes_from(payload, version, field):
    assert pagerduty.version(payload) == version
    assert pagerduty.key_field(payload) == field


@pytest.mark.parametrize(
    ("payload", "key"), [({"event_action": "trigger"}, ""), ([], ""), (v2(routing_key=" k "), "k")]
)
def test_routing_key_is_empty_when_the_body_carries_none(payload, key):
    assert pagerduty.routing_key(payload) == key


@pytest.mark.parametrize("name", ["v1_docs_trigger.json", "v1_resolve.json", "v2_resolve.json", "v2_acknowledge.json"])
def test_events_without_a_payload_timestamp_carry_no_time_of_their_own(name):
    assert parse_one(load(name)).event_time is None
