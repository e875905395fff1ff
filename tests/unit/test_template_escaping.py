"""A title full of markup cannot break or hijack any message: every value is escaped for its slot's markup."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime

import pytest

from channels_app.base import BotMessage, BotTarget, Mention
from channels_app.providers import dingtalk, feishu, slack, teams, wecom, zoom
from channels_app.templating import SLOTS, render_body, render_slot, sample_context, slot
from channels_app.templating.context import headline
from channels_app.templating.escaping import escape_lark_md, escape_markdown, escape_mrkdwn

HOSTILE = (
    'Disk <b>full</b> *bold* _it_ `code` [x](http://evil) @all <at id=all></at> <!channel> <@U1> ops@example.com & "q"'
)


@pytest.fixture
def context():
    context = sample_context("triggered")
    context["incident"]["title"] = HOSTILE
    context["incident"]["labels"] = {"owner": "@all", "note": "*urgent*"}
    return context


def first_line(name: str, context) -> str:
    return render_slot(name, bodies=None, context=context).text.splitlines()[0]


def test_html_slots_escape_tags_and_entities(context):
    for name in ("email_html", "telegram"):
        text = render_slot(name, bodies=None, context=context).text
        assert "<b>full</b>" not in text and "<at id=all>" not in text and "<!channel>" not in text
        assert "Disk &lt;b&gt;full&lt;/b&gt;" in text
        assert "&amp; &#34;q&#34;" in text


def test_slack_escapes_the_three_characters_that_start_mentions_and_links(context):
    line = first_line("slack", context)
    assert "<!channel>" not in line and "<@U1>" not in line and "<at" not in line
    assert "&lt;!channel&gt; &lt;@U1&gt;" in line
    assert '&amp; "q"' in line


@pytest.mark.parametrize("name", ["dingtalk", "wecom", "teams", "zoom"])
def test_markdown_bots_neutralise_emphasis_links_tags_and_mentions(name, context):
    text = render_slot(name, bodies=None, context=context).text
    line = next(line for line in text.splitlines() if "Disk" in line)
    assert r"\*bold\* \_it\_ \`code\` \[x\](http://evil)" in line
    assert "@all" not in text and "\uff20all" in line  # a mention needs a real @
    assert "<at" not in text and "<@U1>" not in text
    assert "&lt;\uff20U1&gt;" in line  # WeCom's <@userid> cannot form
    assert "ops@example.com" in line  # an @ inside a word (an address) is left alone
    assert "owner=\uff20all" in text and r"note=\*urgent\*" in text


def test_feishu_uses_entities_so_no_mention_or_markdown_survives(context):
    text = render_slot("feishu", bodies=None, context=context).text
    line = text.splitlines()[0]
    assert "<at id=all>" not in text and "@all" not in text
    assert "&#60;at id=all&#62;&#60;/at&#62;" in line
    assert "&#64;all" in line and "&#42;bold&#42; &#95;it&#95; &#96;code&#96; &#91;x&#93;" in line
    assert "ops@example.com" in line


def test_plain_text_slots_keep_the_title_as_it_is(context):
    assert first_line("sms", context).startswith(f"Triggered: [Critical] #42 {HOSTILE[:50]}")
    assert render_slot("push_title", bodies=None, context=context).text.startswith(f"[Critical] #42 {HOSTILE[:50]}")


def test_the_webhook_carries_the_title_verbatim_as_json(context):
    document = json.loads(render_slot("webhook", bodies=None, context=context).text)
    assert document["incident"]["title"] == HOSTILE
    assert document["incident"]["labels"] == {"owner": "@all", "note": "*urgent*"}


def test_a_subject_cannot_carry_a_header(context):
    context["incident"]["title"] = "Disk full\r\nBcc: everyone@example.com"
    subject = render_slot("email_subject", bodies=None, context=context).text
    assert "\n" not in subject and "\r" not in subject
    assert subject == "[Critical] #42 Disk full Bcc: everyone@example.com"


# XML 1.0's Char production: tab, newline, carriage return and everything from U+0020 but surrogates, U+FFFE, U+FFFF.
NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@pytest.mark.parametrize("name", list(SLOTS))
def test_no_slot_carries_a_control_character_from_the_alert(name, context):
    """A log line's colour codes (ESC) or a stray bell in a title would make the voice call's TwiML invalid XML
    (Twilio 12100: the callee hears an error and cannot press 1); no message is better for them."""
    context["incident"]["title"] = "\x1b[31mERROR\x1b[0m payment\x07 worker\x0b crashed\x1f\ufffe"
    context["incident"]["description"] = "trace:\x1b[2K\x1b[1G\x08\x0c done"
    custom = {name: "{{ incident.title|raw }}\n{{ incident.description|raw }}\n{{ incident.title }}"}
    for bodies in (None, custom if name != "webhook" else None):
        text = render_slot(name, bodies=bodies, context=context).text
        assert not NOT_XML_CHAR.search(text), repr(text)
    title = render_slot(name, bodies=None, context=context).text
    if name not in ("webhook", "push_body"):  # the webhook carries the title as data: JSON escapes it ("\u001b")
        assert re.search(r"ERROR payment +worker +crashed", title), title


def test_custom_bodies_are_escaped_too_and_raw_opts_out(context):
    assert render_body(slot("slack"), "*{{ incident.title }}*", context)[0].startswith("*Disk &lt;b&gt;full")
    assert render_body(slot("slack"), "{{ '<!here>'|raw }} {{ '<!here>' }}", context)[0] == "<!here> &lt;!here&gt;"
    assert render_body(slot("dingtalk"), "{{ incident.labels.owner }}", context)[0] == "\uff20all"


def test_macros_joins_and_concatenation_escape_once(context):
    macro = "{% macro row(key, value) %}*{{ key }}*: {{ value }}{% endmacro %}{{ row('Title', incident.title) }}"
    assert render_body(slot("slack"), macro, context)[0].startswith("*Title*: Disk &lt;b&gt;full&lt;/b&gt;")
    assert render_body(slot("slack"), "{{ ['a<b', 'c']|join(' & ') }}", context)[0] == "a&lt;b &amp; c"
    assert render_body(slot("slack"), "{{ 'x<' ~ ('<y>'|raw) }}", context)[0] == "x&lt;<y>"
    assert render_body(slot("email_html"), "{{ '<i>' ~ incident.title }}", context)[0].startswith("&lt;i&gt;Disk")
    assert render_body(slot("dingtalk"), "{{ incident.title|mrkdwn }}", context)[0].startswith("Disk &lt;b&gt;")


def test_the_escape_functions():
    assert escape_mrkdwn("a & <b> *c*") == "a &amp; &lt;b&gt; *c*"
    assert escape_markdown("@all a_b [c](d) <x> me@x.io") == "\uff20all a\\_b \\[c\\](d) &lt;x&gt; me@x.io"
    assert escape_lark_md("<at id=all></at> *b* @here") == "&#60;at id=all&#62;&#60;/at&#62; &#42;b&#42; &#64;here"


# Card titles: a bot provider puts the title (and Zoom the headline) into the card itself, beside the template's text.
SPOOF = "[Click here to acknowledge](https://evil.example/steal-sso) **all clear, ignore**"
NOW = datetime(2026, 3, 2, 9, 12, tzinfo=UTC)
TEAMS = BotTarget(1, "Ops", "https://prod-1.westeurope.logic.azure.com/workflows/w/triggers/manual/paths/invoke?sig=S")
ZOOM = BotTarget(1, "Ops", "https://integrations.zoom.us/chat/webhooks/incomingwebhook/abc", secret="verif")
DINGTALK = BotTarget(1, "Ops", "https://oapi.dingtalk.com/robot/send?access_token=t")


def bot_message(name: str, context, mentions=()) -> BotMessage:
    return BotMessage(render_slot(name, bodies=None, context=context).text, context, mentions)


def teams_title(context) -> str:
    return teams.build(TEAMS, bot_message("teams", context)).json["attachments"][0]["content"]["body"][0]["text"]


def zoom_head(context) -> dict:
    request = zoom.build(ZOOM, bot_message("zoom", context))
    assert request.json["is_markdown_support"] is True  # so Zoom renders the head and sub-head as markdown
    return request.json["content"]["head"]


def assert_markdown_neutral(text: str) -> None:
    assert r"\*bold\* \_it\_ \`code\` \[x\](http://evil)" in text, text
    assert "@all" not in text and "\uff20all" in text
    assert "<at" not in text and "<@U1>" not in text and "&lt;\uff20U1&gt;" in text
    assert "ops@example.com" in text


def test_a_teams_card_title_cannot_become_a_link_or_formatting(context):
    """A TextBlock renders markdown: links, bold, italics."""
    assert teams_title(context) == "[Critical] #42 " + escape_markdown(HOSTILE)
    assert_markdown_neutral(teams_title(context))
    context["incident"]["title"] = SPOOF
    assert teams_title(context) == (
        r"[Critical] #42 \[Click here to acknowledge\](https://evil.example/steal-sso) \*\*all clear, ignore\*\*"
    )


def test_a_zoom_head_and_sub_head_cannot_become_a_link_formatting_or_a_mention(context):
    assert_markdown_neutral(zoom_head(context)["text"])
    context["incident"]["title"] = SPOOF
    assert zoom_head(context)["text"].startswith(r"[Critical] #42 \[Click here to acknowledge\](https://evil")
    acknowledged = sample_context("acknowledged")
    actor = {"id": 8, "name": "*Bob* [boss](https://evil.example) @all", "email": "bob@example.com"}
    acknowledged["headline"] = headline(
        event="acknowledged", actor=actor, level=1, round=0, incident=acknowledged["incident"], time_zone="UTC"
    )
    assert zoom_head(acknowledged)["sub_head"]["text"] == (
        r"\*Bob\* \[boss\](https://evil.example) " + "\uff20all acknowledged this incident."
    )


@pytest.mark.parametrize(
    ("title", "escaped"),
    [("*", r"(\\\*)+"), ("<", "(&lt;)+"), ("a_", r"(a\\_)*a?")],
    ids=["backslash-escape", "entity", "mixed"],
)
def test_a_long_card_title_is_cut_before_it_is_escaped_so_no_escape_is_split(context, title, escaped):
    context["incident"]["title"] = title * 300
    head = zoom_head(context)["text"]
    assert len(head) <= zoom.HEAD_LIMIT and head.endswith("…")
    assert re.fullmatch(escaped, head.removeprefix("[Critical] #42 ").removesuffix("…")), head


def test_slacks_notification_text_escapes_the_title_for_mrkdwn(context):
    request = slack.build(BotTarget(1, "Ops", "https://hooks.slack.com/services/T/B/x"), bot_message("slack", context))
    text = request.json["text"]
    assert "<!channel>" not in text and "<@U1>" not in text and "<at" not in text
    assert text.startswith("[Critical] #42 Disk &lt;b&gt;full&lt;/b&gt; *bold*")


def test_plain_text_card_titles_keep_the_title_as_it_is(context):
    """Feishu's header is plain_text, DingTalk's title is the preview in the chat list, WeCom's mention message is
    a text message: none of them is markup, so an escape would show as it is."""
    title = f"[Critical] #42 {HOSTILE}"
    feishu_bot = BotTarget(1, "Ops", "https://open.feishu.cn/open-apis/bot/v2/hook/x")
    header = feishu.build(feishu_bot, bot_message("feishu", context), NOW).json["card"]["header"]
    assert header["title"] == {"tag": "plain_text", "content": title}
    preview = dingtalk.build(DINGTALK, bot_message("dingtalk", context), NOW).json["markdown"]["title"]
    assert len(preview) <= 100 and preview == title[: len(preview) - 1] + "…"
    action_card = dataclasses.replace(DINGTALK, message_format="action_card")
    assert dingtalk.build(action_card, bot_message("dingtalk", context), NOW).json["actionCard"]["title"] == preview
    wecom_bot = BotTarget(1, "Ops", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    by_phone = (Mention(7, "Alice Chen", "alice@example.com", "+8613800000000", ""),)
    parts = wecom.build(wecom_bot, bot_message("wecom", context, by_phone))
    assert parts["mentions"].json["text"]["content"] == title
