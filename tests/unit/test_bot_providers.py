"""Every bot kind's request, as plain data (no database, no network): the exact payload against golden files,
signing against the reference's vectors, mentions, size limits, and the classification of every answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from channels_app.base import BotMessage, BotTarget, Mention, Outcome
from channels_app.providers import chatbot, dingtalk, feishu, slack, teams, telegram, webhook, wecom, zoom
from channels_app.templating import Unit, render_slot, sample_context
from oncall.lib.http import HttpResponse
from tests.fakes.provider_rules import dingtalk_sign, feishu_sign

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "bots"
NOW = datetime(2026, 3, 2, 9, 12, 0, tzinfo=UTC)

ALICE = Mention(7, "Alice Chen", "alice@example.com", "+8613800000000", "")
BOB = Mention(8, "Bob Martin", "bob@example.com", "+14155550100", "")
IM_IDS = {
    "feishu": ("ou_7d8a6e6df7621556ce0d21922b676706", "ou_0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
    "wecom": ("alice.chen", ""),
    "slack": ("U012AB3CD", "W0456EF7G"),
    "zoom": ("kdykjnimt4kpd8kku0ysw@xmpp.zoom.us", ""),
    "telegram": ("123456789", "987654321"),
    "teams": ("8:orgid:2f0b8b1c-1d2e-4f5a-9b8c-7d6e5f4a3b2c", ""),
}


def mentions(platform: str | None = None) -> tuple[Mention, ...]:
    ids = IM_IDS.get(platform, ("", ""))
    return (
        Mention(ALICE.person_id, ALICE.name, ALICE.email, ALICE.phone, ids[0]),
        Mention(BOB.person_id, BOB.name, BOB.email, BOB.phone, ids[1]),
    )


def message(slot: str, event: str = "triggered", people=(), progress=None) -> BotMessage:
    context = sample_context(event)
    return BotMessage(render_slot(slot, bodies=None, context=context).text, context, people, progress or {})


def volatile(data):
    """Replace what changes from run to run (timestamps, signatures, the acknowledge link's token)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = re.sub(r"timestamp=\d+", "timestamp=<timestamp>", text)
    text = re.sub(r"sign=[^&\"]+", "sign=<sign>", text)
    text = re.sub(r'"timestamp": "\d+"', '"timestamp": "<timestamp>"', text)
    text = re.sub(r'"sign": "[^"]+"', '"sign": "<sign>"', text)
    text = re.sub(r'"(X-Oncall-Signature)": "sha256=[0-9a-f]+"', r'"\1": "sha256=<signature>"', text)
    text = re.sub(r"/ack/[^/\"\\]+/", "/ack/<token>/", text)
    return json.loads(text)


def assert_golden(name: str, request: chatbot.Request) -> None:
    """Compare the request with tests/golden/bots/<name>.json (write it with UPDATE_GOLDEN=1)."""
    actual = volatile({"url": request.url, "headers": dict(request.headers), "body": request.payload()})
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to write it"
    assert actual == json.loads(path.read_text(encoding="utf-8"))


def response(status: int, body=None, headers=None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    return HttpResponse(status=status, headers=headers or {}, body=raw)


# -- DingTalk ---------------------------------------------------------------------------------------------------


def test_dingtalk_signs_with_the_reference_vector():
    assert dingtalk.sign("SECexample", "1700000000000") == "uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0="
    moment = datetime.fromtimestamp(1700000000, UTC)
    url = dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SECexample", moment)
    assert url == (
        "https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=1700000000000"
        "&sign=uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0%3D"
    )
    assert dingtalk.signed_url("https://gw.example.com/hook", "", moment) == "https://gw.example.com/hook"


def test_dingtalk_markdown_mentions_by_mobile_in_the_text_and_at_mobiles():
    bot = BotTarget(1, "Ops", "https://oapi.dingtalk.com/robot/send?access_token=T", secret="SECexample")
    request = dingtalk.build(bot, message("dingtalk", people=mentions()), NOW)
    body = request.json
    assert body["at"] == {"atMobiles": ["13800000000", "+1-4155550100"], "isAtAll": False}
    assert body["markdown"]["text"].endswith("\n\n@13800000000 @+1-4155550100")
    assert body["markdown"]["title"] == "[Critical] #42 Disk usage above 90% on db-1"
    query = parse_qs(urlsplit(request.url).query)
    assert query["sign"] == [dingtalk_sign(query["timestamp"][0], "SECexample")]
    assert_golden("dingtalk_markdown", request)


def test_dingtalk_at_all_and_action_card():
    bot = BotTarget(1, "Ops", "https://gw.example.com/dingtalk", message_format="action_card", at_all=True)
    request = dingtalk.build(bot, message("dingtalk", people=mentions()), NOW)
    card = request.json["actionCard"]
    assert [b["title"] for b in card["btns"]] == ["Details", "Acknowledge"]
    assert "at" not in request.json  # DingTalk ignores mentions in an actionCard
    assert_golden("dingtalk_action_card", request)
    acknowledged = dingtalk.build(bot, message("dingtalk", "acknowledged"), NOW).json["actionCard"]
    assert [b["title"] for b in acknowledged["btns"]] == ["Details"]
    plain = BotTarget(1, "Ops", "https://gw.example.com/dingtalk", at_all=True)
    assert dingtalk.build(plain, message("dingtalk"), NOW).json["at"] == {"atMobiles": [], "isAtAll": True}


@pytest.mark.parametrize(
    ("body", "outcome", "rate_limited"),
    [
        ({"errcode": 0, "errmsg": "ok"}, Outcome.SENT, False),
        ({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, Outcome.RETRYABLE, True),
        ({"errcode": 410100, "errmsg": "发送速度太快而限流"}, Outcome.RETRYABLE, True),
        ({"errcode": -1, "errmsg": "系统繁忙"}, Outcome.RETRYABLE, False),
        ({"errcode": 310000, "errmsg": "sign not match"}, Outcome.PERMANENT, False),
        ({"errcode": 310000, "errmsg": "keywords not in content"}, Outcome.PERMANENT, False),
        ({"errcode": 300001, "errmsg": "token is not exist"}, Outcome.PERMANENT, False),
        ({"errcode": 400102, "errmsg": "robot stopped"}, Outcome.PERMANENT, False),
        ({"errcode": 400013, "errmsg": "group dissolved"}, Outcome.PERMANENT, False),
        ({"errcode": 430104, "errmsg": "inappropriate content"}, Outcome.PERMANENT, False),
    ],
)
def test_dingtalk_answers_are_judged_by_errcode(body, outcome, rate_limited):
    result = dingtalk.classify(response(200, body))
    assert (result.outcome, result.rate_limited) == (outcome, rate_limited)
    if rate_limited:
        assert result.retry_after == 60
    assert result.detail["http_status"] == 200


def test_dingtalk_without_a_json_answer():
    assert dingtalk.classify(response(502, b"<html>bad gateway</html>")).outcome == Outcome.RETRYABLE
    assert dingtalk.classify(response(404, b"not found")).outcome == Outcome.PERMANENT


# -- Feishu / Lark ----------------------------------------------------------------------------------------------


def test_feishu_signs_in_the_body_with_the_reference_vector():
    assert feishu.sign("feishu-secret", "1700000000") == "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="
    bot = BotTarget(1, "SRE", "https://open.larksuite.com/open-apis/bot/v2/hook/abc", secret="feishu-secret")
    body = feishu.build(bot, message("feishu"), datetime.fromtimestamp(1700000000, UTC)).json
    assert (body["timestamp"], body["sign"]) == ("1700000000", "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU=")
    assert body["sign"] == feishu_sign("1700000000", "feishu-secret")


def test_feishu_card_mentions_by_open_id():
    bot = BotTarget(1, "SRE", "https://open.feishu.cn/open-apis/bot/v2/hook/abc", secret="s")
    request = feishu.build(bot, message("feishu", people=mentions("feishu")), NOW)
    content = request.json["card"]["elements"][0]["text"]["content"]
    assert content.endswith(
        "<at id=ou_7d8a6e6df7621556ce0d21922b676706></at> <at id=ou_0a1b2c3d4e5f60718293a4b5c6d7e8f9></at>"
    )
    assert request.json["card"]["header"]["template"] == "red"
    assert_golden("feishu_card", request)
    no_table = feishu.build(bot, message("feishu", people=mentions()), NOW).json
    assert "<at" not in no_table["card"]["elements"][0]["text"]["content"]


@pytest.mark.parametrize(
    ("body", "outcome", "rate_limited"),
    [
        ({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}, Outcome.SENT, False),
        ({"code": 11232, "msg": "frequency limited"}, Outcome.RETRYABLE, True),
        ({"code": 19021, "msg": "sign match fail"}, Outcome.PERMANENT, False),
        ({"code": 19022, "msg": "Ip Not Allowed"}, Outcome.PERMANENT, False),
        ({"code": 19024, "msg": "Key Words Not Found"}, Outcome.PERMANENT, False),
        ({"code": 9499, "msg": "Bad Request", "data": {}}, Outcome.PERMANENT, False),
    ],
)
def test_feishu_answers_are_judged_by_code(body, outcome, rate_limited):
    result = feishu.classify(response(200, body))
    assert (result.outcome, result.rate_limited) == (outcome, rate_limited)


# -- WeCom ------------------------------------------------------------------------------------------------------


def test_wecom_mentions_by_userid_in_markdown_and_by_mobile_in_a_text_after_it():
    bot = BotTarget(1, "Ops", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K")
    parts = wecom.build(bot, message("wecom", people=mentions("wecom")))
    assert list(parts) == ["markdown", "mentions"]
    assert parts["markdown"].json["markdown"]["content"].endswith("\n<@alice.chen>")
    text = parts["mentions"].json["text"]
    assert text["mentioned_mobile_list"] == ["+14155550100"]
    assert text["content"] == "[Critical] #42 Disk usage above 90% on db-1"
    assert_golden("wecom_markdown", parts["markdown"])
    assert_golden("wecom_mentions_text", parts["mentions"])
    only_table = wecom.build(bot, message("wecom", people=mentions("wecom")[:1]))
    assert list(only_table) == ["markdown"]
    by_phone = wecom.build(bot, message("wecom", people=mentions()))
    assert by_phone["mentions"].json["text"]["mentioned_mobile_list"] == ["13800000000", "+14155550100"]


def test_wecom_markdown_stays_within_4096_bytes_with_the_mentions():
    bot = BotTarget(1, "Ops", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K")
    long = BotMessage("长" * 1400, sample_context(), mentions("wecom"))
    content = wecom.build(bot, long)["markdown"].json["markdown"]["content"]
    assert len(content.encode()) <= 4096 and content.endswith("<@alice.chen>")


@pytest.mark.parametrize(
    ("errcode", "outcome", "rate_limited"),
    [(0, Outcome.SENT, False), (45009, Outcome.RETRYABLE, True), (-1, Outcome.RETRYABLE, False)]
    + [(code, Outcome.PERMANENT, False) for code in (93000, 40008, 44004, 45002, 40003, 46004)],
)
def test_wecom_answers_are_judged_by_errcode(errcode, outcome, rate_limited):
    result = wecom.classify(response(200, {"errcode": errcode, "errmsg": "x, from ip: 1.2.3.4"}))
    assert (result.outcome, result.rate_limited) == (outcome, rate_limited)
    assert "1.2.3.4" not in result.error


# -- Slack ------------------------------------------------------------------------------------------------------


def test_slack_blocks_fallback_text_and_member_mentions():
    bot = BotTarget(1, "Ops", "https://hooks.slack.com/services/T0/B0/XXXX")
    request = slack.build(bot, message("slack", people=mentions("slack")))
    assert request.json["text"] == "[Critical] #42 Disk usage above 90% on db-1 <@U012AB3CD> <@W0456EF7G>"
    assert request.json["blocks"][-1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "<@U012AB3CD> <@W0456EF7G>"},
    }
    assert_golden("slack_blocks", request)


def test_slack_splits_a_long_text_into_section_blocks():
    bot = BotTarget(1, "Ops", "https://hooks.slack.com/services/T0/B0/XXXX")
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(120))
    blocks = slack.build(bot, BotMessage(text, sample_context())).json["blocks"]
    assert len(blocks) == 4 and all(len(block["text"]["text"]) <= 3000 for block in blocks)
    assert "\n".join(block["text"]["text"] for block in blocks) == text


@pytest.mark.parametrize(
    ("status", "text", "outcome", "rate_limited"),
    [
        (200, "ok", Outcome.SENT, False),
        (400, "invalid_payload", Outcome.PERMANENT, False),
        (403, "action_prohibited", Outcome.PERMANENT, False),
        (404, "no_service", Outcome.PERMANENT, False),
        (404, "channel_not_found", Outcome.PERMANENT, False),
        (410, "channel_is_archived", Outcome.PERMANENT, False),
        (429, "rate_limited", Outcome.RETRYABLE, True),
        (500, "rollup_error", Outcome.RETRYABLE, False),
    ],
)
def test_slack_answers_are_judged_by_status(status, text, outcome, rate_limited):
    result = chatbot.classify_status(response(status, text.encode(), {"Retry-After": "7"}), "Slack")
    assert (result.outcome, result.rate_limited) == (outcome, rate_limited)
    if status != 200:
        assert text in result.error
    if rate_limited:
        assert result.retry_after == 7


# -- Zoom -------------------------------------------------------------------------------------------------------


def test_zoom_full_format_with_the_verification_token_and_jid_mentions():
    bot = BotTarget(1, "Ops", "https://integrations.zoom.us/chat/webhooks/incomingwebhook/abc", secret="verif")
    request = zoom.build(bot, message("zoom", people=mentions("zoom")))
    assert request.url.endswith("/incomingwebhook/abc?format=full")
    assert request.headers == {"Authorization": "verif"}
    assert request.json["content"]["body"][1]["text"] == "<!kdykjnimt4kpd8kku0ysw@xmpp.zoom.us|Alice Chen>"
    assert request.json["content"]["settings"]["default_sidebar_color"] == "#C80000"
    assert_golden("zoom_full", request)
    assert zoom.endpoint("https://x.example/hook?format=message") == "https://x.example/hook?format=message"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SENT),
        (204, Outcome.SENT),
        (401, Outcome.PERMANENT),
        (404, Outcome.PERMANENT),
        (429, Outcome.RETRYABLE),
        (503, Outcome.RETRYABLE),
    ],
)
def test_zoom_answers_are_judged_by_status(status, outcome):
    assert chatbot.classify_status(response(status), "Zoom").outcome == outcome


# -- Telegram ---------------------------------------------------------------------------------------------------


def test_telegram_html_message_with_user_links():
    bot = BotTarget(1, "Ops", "", secret="123:ABC", chat_ids=("-1001234567890", "@ops_channel"))
    request = telegram.build(bot, message("telegram", people=mentions("telegram")), "-1001234567890")
    assert request.url == "https://api.telegram.org/bot123:ABC/sendMessage"
    assert request.json["chat_id"] == -1001234567890 and request.json["parse_mode"] == "HTML"
    assert request.json["text"].endswith(
        '<a href="tg://user?id=123456789">Alice Chen</a> <a href="tg://user?id=987654321">Bob Martin</a>'
    )
    assert_golden("telegram_message", request)
    assert telegram.build(bot, message("telegram"), "@ops_channel").json["chat_id"] == "@ops_channel"


def test_telegram_text_never_exceeds_4096_characters():
    bot = BotTarget(1, "Ops", "https://tg.example", secret="1:A", chat_ids=("1",))
    long = BotMessage("<b>x</b> " * 800, sample_context(), mentions("telegram"))
    assert len(telegram.build(bot, long, "1").json["text"]) <= 4096


@pytest.mark.parametrize(
    ("status", "body", "outcome", "retry_after"),
    [
        (200, {"ok": True, "result": {"message_id": 5}}, Outcome.SENT, None),
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 15",
                "parameters": {"retry_after": 15},
            },
            Outcome.RETRYABLE,
            15,
        ),
        (
            403,
            {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
            Outcome.PERMANENT,
            None,
        ),
        (
            403,
            {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked from the group chat"},
            Outcome.PERMANENT,
            None,
        ),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, Outcome.PERMANENT, None),
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, Outcome.PERMANENT, None),
        (502, b"Bad Gateway", Outcome.RETRYABLE, None),
    ],
)
def test_telegram_answers(status, body, outcome, retry_after):
    result = telegram.classify(response(status, body))
    assert result.outcome == outcome
    assert result.retry_after == retry_after


def test_telegram_reads_migrate_to_chat_id():
    answer = response(
        400,
        {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1009876},
        },
    )
    assert telegram.migrated_to(answer) == "-1009876"


# -- Teams ------------------------------------------------------------------------------------------------------


def test_teams_adaptive_card_with_mention_entities():
    bot = BotTarget(
        1, "Ops", "https://prod-1.westeurope.logic.azure.com/workflows/w/triggers/manual/paths/invoke?sig=S"
    )
    request = teams.build(bot, message("teams", people=mentions("teams")))
    card = request.json["attachments"][0]["content"]
    assert card["body"][-1]["text"] == "<at>Alice Chen</at> <at>Bob Martin</at>"
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>Alice Chen</at>",
            "mentioned": {"id": "8:orgid:2f0b8b1c-1d2e-4f5a-9b8c-7d6e5f4a3b2c", "name": "Alice Chen"},
        },
        {
            "type": "mention",
            "text": "<at>Bob Martin</at>",
            "mentioned": {"id": "bob@example.com", "name": "Bob Martin"},
        },
    ]
    assert [action["title"] for action in card["actions"]] == ["Open incident", "Acknowledge"]
    assert_golden("teams_card", request)


@pytest.mark.parametrize("character", ["x", "数"])
def test_a_teams_card_with_the_longest_text_and_many_mentions_stays_within_28_kb(character):
    """The slot lets the text have 24,000 bytes; 40 people's mentions and entities come on top of it."""
    text = character * (24_000 // len(character.encode()))
    context = {
        "incident": {"severity": "Critical", "number": 42, "title": "DB down", "progress": "Triggered"},
        "event": "triggered",
        "detail_url": "https://oncall.example/incidents/42/",
        "ack_url": "https://oncall.example/incidents/42/ack/1vXyZ:abcdefghijklmnopqrstuvwxyz0/",
    }
    people = tuple(Mention(n, f"Engineer {n:02d}", email=f"engineer.number{n:02d}@contoso.com") for n in range(40))
    bot = BotTarget(1, "Ops", "https://prod.logic.azure.com/workflows/x")
    request = teams.build(bot, BotMessage(text, context, people))
    assert len(json.dumps(request.json, ensure_ascii=False).encode("utf-8")) <= teams.CARD_LIMIT
    card = request.json["attachments"][0]["content"]
    assert card["body"][1]["text"].endswith("(truncated)"), "the text gave way, with the marker"
    assert len(card["msteams"]["entities"]) == 40, "every mention kept"


def test_teams_any_2xx_is_sent():
    assert chatbot.classify_status(response(202), "Teams").outcome == Outcome.SENT
    assert chatbot.classify_status(response(404), "Teams").outcome == Outcome.PERMANENT


# -- custom webhook ---------------------------------------------------------------------------------------------


def test_webhook_posts_flashdutys_incident_body_signed_with_hmac():
    bot = BotTarget(1, "Gateway", "https://gw.example.com/oncall", secret="whsec")
    request = webhook.build(bot, message("webhook", "acknowledged"))
    body = request.payload()
    assert set(body) == {"event_id", "event_time", "event_type", "person", "incident", "oncall"}
    assert (body["event_type"], body["event_time"]) == ("i_ack", 1772442720000)
    assert body["person"] == {"person_id": 8, "person_name": "Bob Martin", "email": "bob@example.com"}
    responder = body["incident"]["responders"][0]
    assert responder["person_id"] == 7 and responder["email"] == "alice@example.com"
    assert responder["phone"] == "+8613800000000" and responder["im_ids"]["slack"] == "U012AB3CD"
    assert request.headers["X-Oncall-Signature"] == webhook.signature("whsec", request.body)
    assert_golden("webhook_incident", request)
    unsigned = webhook.build(BotTarget(1, "G", "https://gw.example.com"), message("webhook"))
    # No secret, no signature; the Idempotency-Key is the message's event id, the same on every attempt.
    assert unsigned.headers == {"Idempotency-Key": unsigned.payload()["event_id"]}


def test_webhook_signature_is_hmac_sha256_of_the_raw_body():
    assert webhook.signature("s", b'{"a":1}') == "sha256=" + hmac.new(b"s", b'{"a":1}', hashlib.sha256).hexdigest()


def test_a_request_url_keeps_an_encoded_sign_as_it_is():
    assert unquote(chatbot.with_query("https://h/x?a=1", "sign=a%2Bb%3D")) == "https://h/x?a=1&sign=a+b="


# -- a big team's @mentions -------------------------------------------------------------------------------------

TITLE = "Disk usage above 90% on db-1"


def team(slot: str, count: int, im_id=lambda n: "") -> BotMessage:
    """The default message of `slot` about a level that pages `count` people, every one of them mentioned."""
    people = tuple(
        Mention(n, f"Engineer Number {n}", f"e{n}@example.com", f"+86138{n:08d}", im_id(n)) for n in range(count)
    )
    return message(slot, people=people)


def left_out(text: str) -> int:
    found = re.search(r"… and (\d+) more$", text)
    assert found, text[-200:]
    return int(found.group(1))


def test_mentions_that_do_not_fit_are_counted_and_the_list_stays_within_its_room():
    tags = [f"<@{n:02d}>" for n in range(10)]
    assert chatbot.mention_list(tags[:3], room=20, unit=Unit.CHARS) == "<@00> <@01> <@02>"
    assert chatbot.mention_list(tags, room=30, unit=Unit.CHARS) == "<@00> <@01> <@02> … and 7 more"  # 30 exactly
    assert chatbot.mention_list(tags, room=29, unit=Unit.CHARS) == "<@00> <@01> … and 8 more"
    assert chatbot.mention_list(tags, room=10, unit=Unit.CHARS) == ""
    assert chatbot.mention_suffix(tags, slot="slack", limit=50, lead="\n") == "\n<@00> … and 9 more"  # 40% of 50
    assert chatbot.mention_suffix([], slot="slack") == ""


def test_a_suffix_too_big_for_the_limit_no_longer_replaces_the_text():
    # DingTalk's @mobiles arrive as one suffix: it is cut between mentions, and the text keeps most of the room.
    suffix = "\n\n" + " ".join(f"@1380000{n:04d}" for n in range(100))
    fitted = chatbot.fit("Disk full on db-1 " * 10, suffix, slot="dingtalk", limit=400)
    assert len(fitted.encode()) <= 400
    assert fitted.startswith("Disk full on db-1 " * 5) and "\n\n@13800000000 @13800000001 " in fitted
    assert left_out(fitted) > 80


def test_dingtalk_markdown_with_600_mentions_keeps_the_incident_within_its_limit():
    bot = BotTarget(1, "Ops", "https://oapi.dingtalk.com/robot/send?access_token=T")
    text = dingtalk.build(bot, team("dingtalk", 600), NOW).json["markdown"]["text"]
    assert len(text.encode()) <= dingtalk.TEXT_LIMIT and TITLE in text
    assert left_out(text) + text.count(" @138") + 1 == 600


@pytest.mark.parametrize("count", [600, 1500])
def test_dingtalk_at_mobiles_are_exactly_the_mobiles_mentioned_in_the_text(count):
    """DingTalk notifies only the atMobiles whose @mobile is in the text: the list follows the capped mentions, in
    their order, and a big team's phones do not take the message past DingTalk's 20000 bytes."""
    bot = BotTarget(1, "Ops", "https://oapi.dingtalk.com/robot/send?access_token=T")
    body = dingtalk.build(bot, team("dingtalk", count), NOW).json
    mentioned = [word[1:] for word in body["markdown"]["text"].split("\n\n")[-1].split() if word.startswith("@")]
    assert 0 < len(mentioned) < count
    assert body["at"]["atMobiles"] == mentioned
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= 20000  # as chatbot.send encodes it


def test_telegram_with_80_mentions_stays_within_4096_characters_and_keeps_the_incident():
    bot = BotTarget(1, "Ops", "https://tg.example", secret="1:A", chat_ids=("-100",))
    text = telegram.build(bot, team("telegram", 80, lambda n: str(5_000_000_000 + n)), "-100").json["text"]
    assert len(text) <= telegram.TEXT_LIMIT and TITLE in text
    assert left_out(text) + text.count('<a href="tg://user') == 80
    assert len(text.split("\n\n")[-1]) <= telegram.TEXT_LIMIT * chatbot.MENTIONS_SHARE


def test_wecom_markdown_with_300_mentions_stays_within_4096_bytes_and_keeps_the_incident():
    bot = BotTarget(1, "Ops", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K")
    request = wecom.build(bot, team("wecom", 300, lambda n: f"engineer.{n:04d}"))["markdown"]
    content = request.json["markdown"]["content"]
    assert len(content.encode()) <= wecom.MARKDOWN_LIMIT and TITLE in content
    assert left_out(content) + content.count("<@engineer.") == 300


def test_feishu_card_with_300_mentions_keeps_the_incident_within_its_limit():
    bot = BotTarget(1, "Ops", "https://open.feishu.cn/open-apis/bot/v2/hook/H")
    request = feishu.build(bot, team("feishu", 300, lambda n: f"ou_{n:032x}"), NOW)
    content = request.json["card"]["elements"][0]["text"]["content"]
    assert len(content.encode()) <= feishu.TEXT_LIMIT and TITLE in content
    assert left_out(content) + content.count("<at id=ou_") == 300


def test_zoom_mentions_of_a_big_team_are_capped_and_counted():
    bot = BotTarget(1, "Ops", "https://integrations.zoom.us/chat/webhooks/incomingwebhook/X", secret="tok")
    body = zoom.build(bot, team("zoom", 300, lambda n: f"u{n:020d}@xmpp.zoom.us")).json["content"]["body"]
    text, mentions = (element["text"] for element in body)
    assert TITLE in text and len(mentions) <= 4000 * chatbot.MENTIONS_SHARE
    assert left_out(mentions) + mentions.count("<!u") == 300


@pytest.mark.parametrize("count", [250, 900])
def test_slack_mentions_of_a_big_team_are_split_into_sections_of_3000_characters(count):
    bot = BotTarget(1, "Ops", "https://hooks.slack.com/services/T0/B0/XXXX")
    blocks = slack.build(bot, team("slack", count, lambda n: f"U{n:010d}")).json["blocks"]
    texts = [block["text"]["text"] for block in blocks]
    assert len(blocks) <= 50 and max(map(len, texts)) <= 3000
    assert TITLE in texts[0]
    mentions = " ".join(text for text in texts if text.startswith("<@U"))
    if count == 250:
        assert mentions.count("<@U") == 250 and "more" not in mentions
    else:
        assert left_out(mentions) + mentions.count("<@U") == count
        assert len(mentions) <= 15_000 * chatbot.MENTIONS_SHARE


def test_a_teams_card_with_600_mentions_stays_within_28_kb_and_keeps_the_incident():
    bot = BotTarget(1, "Ops", "https://prod.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=s")
    request = teams.build(bot, team("teams", 600, lambda n: f"8:orgid:{n:036d}"))
    assert len(json.dumps(request.json, ensure_ascii=False).encode()) <= teams.CARD_LIMIT
    card = request.json["attachments"][0]["content"]
    _title, text, mentions = (block["text"] for block in card["body"])
    assert TITLE in text and not text.endswith("(truncated)")
    assert len(card["msteams"]["entities"]) == mentions.count("<at>")
    assert left_out(mentions) + mentions.count("<at>") == 600
