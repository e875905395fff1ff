"""The Flashduty standard event adapter, against real-shaped payload samples and every field rule."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncall.sources import standard
from oncall.sources.base import Image, IntegrationInfo, SourceError, generated_alert_key, render_title

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "standard"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse_one(payload):
    events = standard.parse(payload, now=NOW)
    assert len(events) == 1
    return events[0]


def valid(**overrides) -> dict:
    return {"title_rule": "Disk full", "event_status": "Critical", "alert_key": "disk-1", **overrides}


def test_flashduty_docs_sample_becomes_one_warning_event():
    event = parse_one(load("flashduty_docs_warning.json"))
    assert event.status == "Warning"
    assert event.title == "cpu idle low than 20%"
    assert event.alert_key == "e4d6c2a1b7f94d3e"
    assert not event.alert_key_generated
    assert event.labels["check"] == "cpu.idle<20%"
    assert event.description == "description of this event"
    assert not event.is_recovery


def test_recovery_sample_is_a_recovery_of_the_same_key():
    event = parse_one(load("flashduty_docs_recovery.json"))
    assert event.is_recovery
    assert event.alert_key == "e4d6c2a1b7f94d3e"


def test_uptime_kuma_sends_title_instead_of_title_rule():
    event = parse_one(load("uptime_kuma_down.json"))
    assert event.title == "[Uptime Kuma] checkout-api is down"
    assert event.status == "Critical"


def test_template_title_is_filled_from_labels_and_images_deduplicated_by_alt():
    event = parse_one(load("template_title_with_images.json"))
    assert event.title == "billing: disk /var/lib/postgresql on db-2 is 97% full"
    assert event.title_rule.startswith("[TPL]")
    assert event.images == (
        Image("https://grafana.example.com/render/d-solo/disk.png", "disk usage", "https://grafana.example.com/d/disk"),
        Image("img_5f2c0a9d", "uploaded snapshot", ""),
    )
    assert event.alert_key_generated


def test_non_ascii_text_is_kept_intact():
    event = parse_one(load("chinese_text.json"))
    assert event.title == "订单服务 上海 延迟升高"
    assert event.labels == {"region": "上海", "team": "交易"}


@pytest.mark.parametrize(
    ("rule", "labels", "expected"),
    [
        ("[TPL]${host} down", {"host": "a"}, "a down"),
        ("[TPL]${host} down", {}, "<no value> down"),
        ("$resource::$check", {"resource": "db", "check": "ping"}, "db::ping"),
        ("Cost over $5 on $host", {"host": "x"}, "Cost over $5 on x"),
        ("Plain $missing stays", {}, "Plain $missing stays"),
        ("[TPL]{{.Labels.host}} down", {"host": "a"}, "a down"),
        ("[TPL]{{ .Labels.host }} down{{.Labels.missing}}", {"host": "a"}, "a down"),
        (
            '[TPL]{{index .Labels "app.kubernetes.io/name"}} on {{.Labels.host}}',
            {"app.kubernetes.io/name": "pg", "host": "a"},
            "pg on a",
        ),
        ('[TPL]{{index .Labels `a.b`}}|{{index .Labels "gone"}}|', {"a.b": "x"}, "x||"),
        (
            "[TPL]${host}: {{.Labels.host}}",
            {"host": "$x {{.Labels.y}}", "x": "no", "y": "no"},
            "$x {{.Labels.y}}: $x {{.Labels.y}}",
        ),
        ("[TPL]up  {{- .Labels.host -}}  now", {"host": "a"}, "upanow"),
        ("[TPL]{{.Labels.host | upper}}", {"host": "a"}, "{{.Labels.host | upper}}"),
        ("{{.Labels.host}} is not a template", {"host": "a"}, "{{.Labels.host}} is not a template"),
    ],
)
def test_title_rule_references(rule, labels, expected):
    assert render_title(rule, labels) == expected


def test_a_template_title_rule_with_a_long_run_of_spaces_is_rendered_at_once():
    # Title rules come from any pusher and may be half a megabyte; the reading must stay linear.
    rule = "[TPL]{{.Labels.host}}" + " " * 200_000 + "{{- .Labels.host -}}" + " " * 200_000 + "x"
    started = time.perf_counter()
    assert render_title(rule, {"host": "a"}) == "aax"
    assert time.perf_counter() - started < 1


def test_template_title_reads_the_events_fields_by_flashduty_names_and_missing_ones_as_empty():
    rule = "[TPL]{{.EventSeverity}}/{{.EventStatus}} {{.AlertKey}}: {{.Description}}{{.IntegrationName}}{{.Nope}}"
    event = parse_one(valid(title_rule=rule, event_status="Warning", description="disk at 91%"))
    assert event.title == "Warning/Warning disk-1: disk at 91%"
    assert event.title_rule == rule

    generated = parse_one(valid(title_rule="[TPL]key {{.AlertKey}}", alert_key=None))
    assert generated.title == f"key {generated.alert_key}"
    recovery = parse_one(valid(title_rule="[TPL]{{.EventStatus}}:{{.EventSeverity}}", event_status="Ok"))
    assert recovery.title == "Ok:"  # a recovery has no severity of its own


def test_template_title_reads_the_name_and_kind_of_the_integration_pushed_to():
    rule = "[TPL]{{.IntegrationName}} ({{.IntegrationType}}): {{.Labels.host}} down"
    zabbix = IntegrationInfo(name="Zabbix prod", kind="standard")
    [event] = standard.parse(valid(title_rule=rule, labels={"host": "db-1"}), now=NOW, integration=zabbix)
    assert event.title == "Zabbix prod (standard): db-1 down"


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ("[TPL]{{.Title}}", "Critical"),
        ("[TPL]{{.Labels.host}}", "Critical"),
        ("[TPL] {{.Labels.host}} ", "Critical"),
        ("[TPL]{{.EventSeverity}}", "Ok"),
        ("[TPL]", "Warning"),
    ],
)
def test_a_template_title_that_reads_nothing_is_named_after_the_integration_not_left_blank(rule, status):
    zabbix = IntegrationInfo(name="Zabbix prod", kind="standard")
    [event] = standard.parse(valid(title_rule=rule, event_status=status), now=NOW, integration=zabbix)
    assert event.title == "Alert from Zabbix prod"
    assert event.title_rule == rule, "the rule stays as sent, for whoever wrote it"
    assert parse_one(valid(title_rule=rule, event_status=status)).title == "Alert"


def test_missing_alert_key_is_generated_stably_from_title_rule_and_labels():
    first = parse_one(valid(alert_key=None, labels={"b": "2", "a": "1"}))
    second = parse_one(valid(alert_key=None, labels={"a": "1", "b": "2"}))
    other = parse_one(valid(alert_key=None, labels={"a": "1", "b": "3"}))
    assert first.alert_key == second.alert_key == generated_alert_key("Disk full", {"a": "1", "b": "2"})
    assert first.alert_key != other.alert_key
    assert first.alert_key_generated


def test_long_title_and_description_are_cut_with_a_marker():
    event = parse_one(valid(title_rule="t" * 600, description="d" * 3000))
    assert len(event.title) == 512 and event.title.endswith("…")
    assert len(event.description) == 2048 and event.description.endswith("…")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("text", "body"),
        ({"event_status": "Critical"}, "title_rule"),
        (valid(title_rule="   "), "title_rule"),
        (valid(title_rule=5), "title_rule"),
        ({"title_rule": "x"}, "event_status"),
        (valid(event_status="critical"), "event_status"),
        (valid(event_status="Error"), "event_status"),
        (valid(event_status=None), "event_status"),
        (valid(event_status="Ok", alert_key=None), "alert_key"),
        (valid(alert_key=""), "alert_key"),
        (valid(alert_key="k" * 256), "alert_key"),
        (valid(alert_key=17), "alert_key"),
        (valid(description=["x"]), "description"),
        (valid(labels=["a"]), "labels"),
        (valid(labels={f"k{i}": "v" for i in range(51)}), "labels"),
        (valid(labels={"1bad": "v"}), "labels.1bad"),
        (valid(labels={"has space": "v"}), "labels.has space"),
        (valid(labels={"k": 5}), "labels.k"),
        (valid(labels={"k": None}), "labels.k"),
        (valid(labels={"k": "v" * 2049}), "labels.k"),
        (valid(images={"src": "x"}), "images"),
        (valid(images=[{"alt": "no src"}]), "images[0].src"),
        (valid(images=[{"src": "ftp://x/y.png"}]), "images[0].src"),
        (valid(images=[{"src": "https://x/" + "a" * 300}]), "images[0].src"),
        (valid(images=[{"src": "https://x/a.png", "alt": "a" * 129}]), "images[0].alt"),
        (valid(images=[{"src": "https://x/a.png", "href": "javascript:alert(1)"}]), "images[0].href"),
        (valid(images=[{"src": "https://x/a.png"}] * 21), "images"),
    ],
)
def test_each_field_rule_names_the_bad_field(payload, field):
    with pytest.raises(SourceError) as caught:
        standard.parse(payload, now=NOW)
    assert caught.value.field.startswith(field)


def test_fifty_labels_and_long_keys_within_limits_are_accepted():
    labels = {f"k{i:02d}": "v" * 2048 for i in range(50)}
    labels["k00"] = "x"
    event = parse_one(valid(labels=labels))
    assert len(event.labels) == 50


def test_label_key_over_128_characters_is_refused():
    with pytest.raises(SourceError, match="longer than 128"):
        standard.parse(valid(labels={"k" * 129: "v"}), now=NOW)


def test_a_standard_event_carries_no_time_of_its_own():
    """The format has no time field: ingest dates the event by its arrival and orders it by nothing else."""
    assert parse_one(valid()).event_time is None
    assert parse_one(valid(event_status="Ok")).event_time is None
