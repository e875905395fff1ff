"""Every default body, for every event, against sample incidents of every shape: it renders, fits, and reads well."""

from __future__ import annotations

import json

import pytest

from channels_app.acklinks import ack_url
from channels_app.templating import EVENTS, SLOTS, MarkupKind, Unit, render, render_slot, sample_context
from channels_app.templating.limits import sms_segments
from channels_app.templating.sample import VARIANTS


def size(text: str, unit: Unit) -> int:
    return len(text.encode("utf-8")) if unit == Unit.BYTES else len(text)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("name", list(SLOTS))
def test_every_default_renders_within_its_limit_for_every_event_and_sample(name, event, variant, settings):
    slot = SLOTS[name]
    context = sample_context(event, variant)
    rendered = render_slot(name, bodies=None, context=context)

    assert (rendered.origin, rendered.error) == ("default", "")
    assert rendered.text.strip()
    if slot.unit == Unit.SMS:
        assert sms_segments(rendered.text).segments <= settings.SMS_MAX_SEGMENTS
    else:
        assert size(rendered.text, slot.unit) <= slot.limit
    if slot.single_line:
        assert "\n" not in rendered.text
    if slot.markup == MarkupKind.JSON:
        document = json.loads(rendered.text)  # Flashduty's incident webhook body
        assert document["oncall"]["event"] == event
        assert document["event_type"].startswith("i_")
        assert document["incident"]["title"] == context["incident"]["title"]
    if name not in ("voice", "push_body", "webhook"):  # the push body goes under its title, which has the number
        assert f"#{context['incident']['number']}" in rendered.text


@pytest.mark.parametrize("event", EVENTS)
def test_the_voice_text_is_speakable_without_markup_or_links(event):
    text = render_slot("voice", bodies=None, context=sample_context(event)).text
    assert text.startswith(("Critical incident 42 in Production", "Reminder.", "Escalated to you."))
    for unspeakable in ("http", "<", "*", "#", "[", "{{"):
        assert unspeakable not in text


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        ("triggered", "[Critical] #42 Disk usage above 90% on db-1"),
        ("refired", "[Reminder] [Critical] #42 Disk usage above 90% on db-1"),
        ("escalated", "[Escalated] [Critical] #42 Disk usage above 90% on db-1"),
        ("assigned", "[Assigned] [Critical] #42 Disk usage above 90% on db-1"),
        ("acknowledged", "[Acknowledged] [Critical] #42 Disk usage above 90% on db-1"),
        ("closed", "[Closed] [Critical] #42 Disk usage above 90% on db-1"),
    ],
)
def test_the_email_subject_names_the_event(event, subject):
    assert render_slot("email_subject", bodies=None, context=sample_context(event)).text == subject


@pytest.mark.parametrize(
    ("event", "sentence"),
    [
        ("triggered", "A new incident needs your attention."),
        ("refired", "still waiting for someone to acknowledge it (reminder 1)"),
        ("escalated", "it has been escalated to you (level 2)"),
        ("assigned", "Bob Martin assigned this incident to you."),
        ("acknowledged", "Bob Martin acknowledged this incident."),
        ("snoozed", "Bob Martin snoozed this incident until 11:12 CET."),
        ("woken", "The snooze has ended"),
        ("closed", "Bob Martin closed this incident."),
        ("reopened", "Bob Martin reopened this incident."),
    ],
)
def test_each_event_is_worded_in_the_email_and_the_bots(event, sentence):
    context = sample_context(event)
    for name in ("email_text", "email_html", "dingtalk", "slack", "telegram", "push_body"):
        assert sentence in render_slot(name, bodies=None, context=context).text, name


def test_the_acknowledge_link_is_offered_only_while_nobody_has_acknowledged():
    triggered = render_slot("email_text", bodies=None, context=sample_context("triggered")).text
    acknowledged = render_slot("email_text", bodies=None, context=sample_context("acknowledged")).text
    assert "Acknowledge: https://oncall.example.com/incidents/42/ack/" in triggered
    assert "/ack/" not in acknowledged
    assert "Open the incident: https://oncall.example.com/incidents/42/" in acknowledged


def test_an_incident_with_many_alerts_lists_some_and_counts_all():
    context = sample_context("triggered", "many")
    assert len(context["incident"]["alerts"]) == 50
    assert (context["incident"]["alert_count"], context["incident"]["alerts_omitted"]) == (120, 70)
    text = render_slot("email_text", bodies=None, context=context).text
    assert "Alerts: 120 open of 120" in text
    assert "... and 110 more" in text
    assert "(Production, 120 alerts)." in render_slot("sms", bodies=None, context=context).text


def test_a_long_title_is_cut_where_the_slot_needs_it():
    context = sample_context("triggered", "long")
    subject = render_slot("email_subject", bodies=None, context=context)
    assert len(subject.text) == 200 and subject.text.endswith("…") and subject.truncated
    sms = render_slot("sms", bodies=None, context=context).text
    assert "Very long title Very long title" in sms and "..." in sms
    assert sms_segments(sms).segments <= 3


def test_non_ascii_text_renders_in_every_slot_and_an_sms_switches_to_ucs2():
    context = sample_context("triggered", "unicode")
    for name in SLOTS:
        text = render_slot(name, bodies=None, context=context).text
        assert ("生产环境" if name == "push_body" else "数据库磁盘使用率超过 90%") in text, name
    assert sms_segments(render_slot("sms", bodies=None, context=context).text).encoding == "UCS-2"
    feishu = render_slot("feishu", bodies=None, context=context).text
    assert "主机=db-1" in feishu


def test_an_incident_without_labels_or_description_leaves_no_empty_sections():
    text = render_slot("email_text", bodies=None, context=sample_context("triggered", "bare")).text
    assert "Labels:" not in text
    assert "Responders:" not in text
    assert "\n\n\n" not in text
    assert "Heartbeat missing" in text


@pytest.mark.parametrize("name", ["dingtalk", "feishu", "wecom", "slack", "telegram", "teams", "zoom"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_bot_message_cut_to_its_limit_keeps_its_details_and_acknowledge_links(name, variant):
    """Long titles, labels, descriptions and alerts give way to the limit; the links people act on do not."""
    context = sample_context("triggered", variant)
    text = render_slot(name, bodies=None, context=context).text
    assert context["detail_url"] in text and context["ack_url"] in text


CHINESE_TITLE = (
    "数据库磁盘使用率超过百分之九十 主库写入即将失败 请立即处理 "
    "影响所有账单服务和支付回调以及订单同步任务 值班人员请确认主库状态并扩容磁盘空间 否则批处理会失败"
)


@pytest.mark.parametrize(
    ("segments", "title"),
    [
        (3, CHINESE_TITLE),
        (3, "Disk usage above 95% on db-primary-eu-west-1 — writes to the billing database will fail within minutes"),
        (
            3,
            "🔥🔥 Checkout latency p99 above 4 seconds on every payment gateway in eu-west-1, us-east-1 and ap-south-1",
        ),
        (1, "Disk full on db-1"),
        (1, CHINESE_TITLE),
    ],
    ids=["chinese-80-characters", "em-dash", "emoji", "one-segment-ascii", "one-segment-chinese"],
)
def test_the_default_sms_keeps_its_acknowledge_link_whole(segments, title, settings):
    """One character outside GSM-7 makes the SMS UCS-2 (67 characters a part): the cut then reaches the link on the
    last line. It takes the title instead; the woken engineer must be able to open the link."""
    assert len(CHINESE_TITLE) == 80
    settings.SMS_MAX_SEGMENTS = segments
    context = sample_context("triggered")
    context["ack_url"] = ack_url(42)  # a real signed link, as long as the ones sent
    context["incident"]["title"] = title
    rendered = render_slot("sms", bodies=None, context=context)
    assert rendered.truncated and sms_segments(rendered.text).segments <= segments
    first, ack = rendered.text.split("\n")
    assert ack == f"Ack: {context['ack_url']}"
    assert first.startswith("Triggered: [Critical] #42") and first.endswith(("...", "…"))
    if segments == 3:
        assert title[:40] in first


def big_incident() -> dict:
    """50 alerts with 12 labels of 600 characters each (runbook texts, summaries…): 400 KB of labels."""
    context = sample_context("triggered", "full")
    labels = {f"annotation_{n:02d}": "x" * 600 for n in range(12)}
    alert = {**context["incident"]["alerts"][0], "labels": labels}
    context["incident"] = {**context["incident"], "alerts": [alert] * 50, "alert_count": 50, "alerts_omitted": 0}
    return context


def test_the_default_webhook_body_of_a_big_incident_keeps_its_shape_and_counts_every_alert():
    """Rendered whole, the body would pass 256 KB and could not be sent as JSON; the alerts that do not fit are
    left out instead, so the receiver still gets Flashduty's incident webhook body."""
    rendered = render_slot("webhook", bodies=None, context=big_incident())
    assert (rendered.origin, rendered.error) == ("default", "")
    assert len(rendered.text.encode()) <= SLOTS["webhook"].limit
    body = json.loads(rendered.text)
    assert {"event_id", "event_time", "event_type", "person", "oncall", "incident"} <= set(body)
    assert 0 < len(body["incident"]["alerts"]) < 50 and body["incident"]["alert_cnt"] == 50
    custom = render_slot("webhook", bodies={"webhook": "{{ incident.alerts_omitted }}"}, context=big_incident())
    assert (custom.origin, int(custom.text)) == ("custom", 50 - len(body["incident"]["alerts"]))


def test_the_last_resort_webhook_body_has_the_defaults_shape(monkeypatch):
    context = sample_context("acknowledged", "full")
    default = json.loads(render_slot("webhook", bodies=None, context=context).text)
    monkeypatch.setattr(render, "default_source", lambda name: "{{ 1 / 0 }}")
    rendered = render_slot("webhook", bodies=None, context=context)
    assert rendered.origin == "builtin"
    builtin = json.loads(rendered.text)
    assert set(builtin) <= set(default) and {"event_id", "event_type", "incident"} <= set(builtin)
    for key in ("event_id", "event_time", "event_type"):
        assert builtin[key] == default[key]
    assert builtin["oncall"] == default["oncall"]
    assert builtin["incident"] == {key: default["incident"][key] for key in builtin["incident"]}
