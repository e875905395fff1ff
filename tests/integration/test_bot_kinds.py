"""Each bot kind through the real path (escalation level → delivery → provider) against the fake providers: the
message arrives signed and formatted, mentions resolve, and each class of error does what it should."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from channels_app.models import Bot, Delivery, TemplateSet
from escalation.models import EscalationRule
from oncall.models import Incident, TimelineEntry
from tests.factories import (
    make_bot,
    make_channel,
    make_integration,
    make_mapping_table,
    make_rule,
    make_team,
    make_user,
)
from tests.integration.botkit import bot_deliveries, fire, later, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ann():
    return make_user("ann", phone="+8613800000001", first_name="Ann", last_name="Lee")


@pytest.fixture
def ben():
    return make_user("ben", phone="+14155550102", first_name="Ben", last_name="Ray")


def only(bot: Bot) -> Delivery:
    deliveries = bot_deliveries(bot)
    assert len(deliveries) == 1, deliveries
    return deliveries[0]


# -- DingTalk ---------------------------------------------------------------------------------------------------


def test_dingtalk_gets_a_signed_markdown_that_mentions_the_levels_people_by_phone(client, clock, fakes, ann, ben):
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    bot = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), secret="SECsecret")
    fire(client, paging_setup(people=[ann, ben], bots=[bot]), title="db-1 disk full")

    (request,) = fakes.received("/dingtalk")
    assert request.json["at"] == {"atMobiles": ["13800000001", "+1-4155550102"], "isAtAll": False}
    text = request.json["markdown"]["text"]
    assert text.endswith("@13800000001 @+1-4155550102")
    assert "db-1 disk full" in text and "/ack/" in text and "/incidents/" in text
    assert "Ann Lee (ann@example.com, +8613800000001)" in text
    assert only(bot).status == Delivery.Status.SENT
    bot.refresh_from_db()
    assert bot.last_success_at == clock.current and bot.last_error == ""


def test_a_wrong_dingtalk_secret_is_permanent_and_shows_on_the_bot(client, clock, fakes, ann):
    fakes.dingtalk_tokens["T1"] = "SECright"
    bot = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), secret="SECwrong")
    fire(client, paging_setup(people=[ann], bots=[bot]))
    delivery = only(bot)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    bot.refresh_from_db()
    assert "310000" in bot.last_error and "sign not match" in bot.last_error
    later(clock, minutes=10)
    assert len(fakes.received("/dingtalk")) == 1  # never retried
    failure = Incident.objects.get().timeline.filter(kind=TimelineEntry.Kind.NOTIFY_FAILED).last()
    assert "could not post after 1 attempt(s)" in failure.message and bot.name in failure.message


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda fakes: fakes.dingtalk_keywords.__setitem__("T1", ["告警"]), 310000),  # keyword missing
        (lambda fakes: fakes.dingtalk_stopped.add("T1"), 400102),  # robot stopped
        (lambda fakes: fakes.dingtalk_tokens.clear(), 300001),  # robot removed
    ],
)
def test_dingtalk_configuration_errors_are_permanent(client, clock, fakes, ann, setup, code):
    fakes.dingtalk_tokens["T1"] = None
    setup(fakes)
    bot = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    assert only(bot).status == Delivery.Status.FAILED
    bot.refresh_from_db()
    assert f"DingTalk error {code}" in bot.last_error


def test_dingtalk_action_card_and_at_all(client, clock, fakes, ann):
    fakes.dingtalk_tokens["T1"] = None
    card = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), message_format="action_card")
    everyone = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), at_all=True)
    fire(client, paging_setup(people=[ann], bots=[card, everyone]))
    by_type = {request.json["msgtype"]: request.json for request in fakes.received("/dingtalk")}
    assert [button["title"] for button in by_type["actionCard"]["actionCard"]["btns"]] == ["Details", "Acknowledge"]
    assert by_type["markdown"]["at"]["isAtAll"] is True


def test_a_dingtalk_message_that_mentions_a_big_team_is_accepted_and_lists_only_the_mentioned_phones(
    client, clock, fakes
):
    """A level pages a team of 1200: the text has room for some of their @mobiles only, and `at.atMobiles` lists
    exactly those (DingTalk notifies no one else). Listing every phone would take the message past DingTalk's
    20000 bytes, and the robot would refuse it: nobody paged through the group."""
    fakes.dingtalk_tokens["T1"] = None
    bot = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"))
    team = make_team("Everyone", members=[make_user(f"e{n:04d}", phone=f"+86139{n:08d}") for n in range(1200)])
    channel = make_channel(team=team)
    level = make_rule(channel, [{"methods": [], "bots": [bot]}]).levels.get()
    level.teams.set([team])
    fire(client, make_integration(channel=channel)[1], title="db-1 disk full")
    (request,) = fakes.received("/dingtalk")
    text = request.json["markdown"]["text"]
    mentioned = [word[1:] for word in text.rsplit("\n\n", 1)[-1].split() if word.startswith("@")]
    assert "db-1 disk full" in text and 0 < len(mentioned) < 1200
    assert request.json["at"]["atMobiles"] == mentioned
    assert only(bot).status == Delivery.Status.SENT


# -- Feishu / Lark ----------------------------------------------------------------------------------------------


def test_feishu_gets_a_signed_card_mentioning_open_ids_from_the_mapping_table(client, clock, fakes, ann, ben):
    fakes.feishu_tokens["H1"] = "fsecret"
    table = make_mapping_table("feishu", {"ANN@example.com": "ou_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
    bot = make_bot("feishu", fakes.url("/feishu/open-apis/bot/v2/hook/H1"), secret="fsecret", mapping_table=table)
    fire(client, paging_setup(people=[ann, ben], bots=[bot]))
    (request,) = fakes.received("/feishu")
    content = request.json["card"]["elements"][0]["text"]["content"]
    assert content.endswith("<at id=ou_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa></at>")  # Ben is not in the table
    assert only(bot).status == Delivery.Status.SENT


def test_a_bad_feishu_signature_is_permanent(client, clock, fakes, ann):
    fakes.feishu_tokens["L1"] = "right"
    bot = make_bot("feishu", fakes.url("/feishu/open-apis/bot/v2/hook/L1"), secret="wrong")
    fire(client, paging_setup(people=[ann], bots=[bot]))
    assert only(bot).status == Delivery.Status.FAILED
    bot.refresh_from_db()
    assert "19021" in bot.last_error and "signing secret" in bot.last_error


def test_a_missing_feishu_keyword_is_permanent(client, clock, fakes, ann):
    fakes.feishu_tokens["H1"] = None
    fakes.feishu_keywords["H1"] = ["ALERT"]
    bot = make_bot("feishu", fakes.url("/feishu/open-apis/bot/v2/hook/H1"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    bot.refresh_from_db()
    assert only(bot).status == Delivery.Status.FAILED and "19024" in bot.last_error


# -- WeCom ------------------------------------------------------------------------------------------------------


def test_wecom_mentions_by_userid_in_markdown_and_by_mobile_in_a_second_text(client, clock, fakes, ann, ben):
    fakes.wecom_keys.add("K1")
    table = make_mapping_table("wecom", {"ann@example.com": "ann.lee"})
    bot = make_bot("wecom", fakes.url("/wecom/cgi-bin/webhook/send?key=K1"), mapping_table=table)
    fire(client, paging_setup(people=[ann, ben], bots=[bot]))
    markdown, text = fakes.received("/wecom")
    assert markdown.json["msgtype"] == "markdown" and markdown.json["markdown"]["content"].endswith("<@ann.lee>")
    assert text.json["text"]["mentioned_mobile_list"] == ["+14155550102"]
    delivery = only(bot)
    assert delivery.status == Delivery.Status.SENT and delivery.state["progress"] == {"done": ["markdown", "mentions"]}


def test_a_wecom_retry_sends_only_the_part_that_did_not_go_out(client, clock, fakes, ann):
    fakes.wecom_keys.add("K1")
    bot = make_bot("wecom", fakes.url("/wecom/cgi-bin/webhook/send?key=K1"))
    fakes.fail_next("/wecom", status=200, json={"errcode": 0, "errmsg": "ok"})  # the markdown goes out
    fakes.fail_next("/wecom", status=200, json={"errcode": -1, "errmsg": "system busy"})
    fakes.fail_next("/wecom", status=200, json={"errcode": 0, "errmsg": "ok"})
    # fail_next answers in order of scripting per prefix: first ok, then busy for the mention text.
    fire(client, paging_setup(people=[ann], bots=[bot]))
    delivery = only(bot)
    assert delivery.status == Delivery.Status.PENDING and delivery.state["progress"] == {"done": ["markdown"]}
    later(clock, seconds=31)
    kinds = [request.json["msgtype"] for request in fakes.received("/wecom")]
    assert kinds == ["markdown", "text", "text"]
    assert only(bot).status == Delivery.Status.SENT


def test_a_revoked_wecom_key_is_permanent(client, clock, fakes, ann):
    bot = make_bot("wecom", fakes.url("/wecom/cgi-bin/webhook/send?key=gone"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    bot.refresh_from_db()
    assert only(bot).status == Delivery.Status.FAILED and "93000" in bot.last_error
    assert "127.0.0.1" not in bot.last_error  # WeCom's errmsg echoes the caller's IP: only the code is kept


# -- Slack ------------------------------------------------------------------------------------------------------


def test_slack_gets_blocks_with_member_mentions(client, clock, fakes, ann, ben):
    fakes.slack_hooks.add("/services/T1/B1/abcdef")
    table = make_mapping_table("slack", {"ann@example.com": "U0ANN0001", "ben@example.com": "U0BEN0002"})
    bot = make_bot("slack", fakes.url("/slack/services/T1/B1/abcdef"), mapping_table=table)
    fire(client, paging_setup(people=[ann, ben], bots=[bot]))
    (request,) = fakes.received("/slack")
    assert request.json["text"].endswith("<@U0ANN0001> <@U0BEN0002>")
    assert request.json["blocks"][-1]["text"]["text"] == "<@U0ANN0001> <@U0BEN0002>"
    assert only(bot).status == Delivery.Status.SENT


def big_team(platform: str, count: int, im_id) -> tuple[list, object]:
    """`count` people and a `platform` mapping table that knows every one of them."""
    people = [make_user(f"eng{n:03d}", first_name="Engineer", last_name=f"Number {n}") for n in range(count)]
    return people, make_mapping_table(platform, {person.email: im_id(n) for n, person in enumerate(people)})


def test_a_slack_message_that_mentions_a_big_team_is_accepted_and_names_the_incident(client, clock, fakes):
    fakes.slack_hooks.add("/services/T1/B1/abcdef")
    people, table = big_team("slack", 220, lambda n: f"U{n:010d}")
    bot = make_bot("slack", fakes.url("/slack/services/T1/B1/abcdef"), mapping_table=table)
    # Nobody has a phone: only the bot posts.
    fire(client, paging_setup(people=people, bots=[bot], methods=("sms",)), title="db-1 disk full")
    (request,) = fakes.received("/slack")
    assert "db-1 disk full" in request.json["blocks"][0]["text"]["text"]
    assert sum(block["text"]["text"].count("<@U") for block in request.json["blocks"]) == 220
    assert only(bot).status == Delivery.Status.SENT


def test_a_slack_server_error_is_retried_and_then_succeeds(client, clock, fakes, ann):
    fakes.slack_hooks.add("/services/T1/B1/abcdef")
    fakes.fail_next("/slack", status=500, text="rollup_error")
    bot = make_bot("slack", fakes.url("/slack/services/T1/B1/abcdef"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    delivery = only(bot)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)
    bot.refresh_from_db()
    assert "rollup_error" in bot.last_error
    later(clock, seconds=30)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)


def test_an_archived_slack_channel_is_permanent(client, clock, fakes, ann):
    fakes.slack_hooks.add("/services/T1/B1/abcdef")
    fakes.slack_archived.add("/services/T1/B1/abcdef")
    bot = make_bot("slack", fakes.url("/slack/services/T1/B1/abcdef"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    bot.refresh_from_db()
    assert only(bot).status == Delivery.Status.FAILED and "410" in bot.last_error


def test_slacks_retry_after_holds_the_bot_without_counting_an_attempt(client, clock, fakes, ann):
    fakes.slack_hooks.add("/services/T1/B1/abcdef")
    fakes.fail_next("/slack", status=429, text="rate_limited", headers={"Retry-After": "20"})
    bot = make_bot("slack", fakes.url("/slack/services/T1/B1/abcdef"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    delivery = only(bot)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 0)
    assert delivery.next_attempt_at == clock.current.replace(second=20)
    bot.refresh_from_db()
    assert bot.paused_until == delivery.next_attempt_at
    later(clock, seconds=19)
    assert len(fakes.received("/slack")) == 1
    later(clock, seconds=1)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and len(fakes.received("/slack")) == 2


# -- Zoom -------------------------------------------------------------------------------------------------------


def test_zoom_sends_the_verification_token_and_jid_mentions(client, clock, fakes, ann):
    fakes.zoom_tokens["Z1"] = "verif-token"
    table = make_mapping_table("zoom", {"ann@example.com": "ann123@xmpp.zoom.us"})
    url = fakes.url("/zoom/chat/webhooks/incomingwebhook/Z1")
    bot = make_bot("zoom", url, secret="verif-token", mapping_table=table)
    fire(client, paging_setup(people=[ann], bots=[bot]))
    (request,) = fakes.received("/zoom")
    assert request.query["format"] == ["full"] and request.headers["authorization"] == "verif-token"
    assert request.json["content"]["body"][-1]["text"] == "<!ann123@xmpp.zoom.us|Ann Lee>"
    assert only(bot).status == Delivery.Status.SENT


def test_a_wrong_zoom_token_is_permanent(client, clock, fakes, ann):
    fakes.zoom_tokens["Z1"] = "verif-token"
    bot = make_bot("zoom", fakes.url("/zoom/chat/webhooks/incomingwebhook/Z1"), secret="stale")
    fire(client, paging_setup(people=[ann], bots=[bot]))
    bot.refresh_from_db()
    assert only(bot).status == Delivery.Status.FAILED and "HTTP 401" in bot.last_error


# -- Telegram ---------------------------------------------------------------------------------------------------


def test_telegram_follows_a_group_that_became_a_supergroup(client, clock, fakes, ann):
    fakes.telegram_bots.add("123:ABC")
    fakes.telegram_migrations["-4001"] = -1004001
    table = make_mapping_table("telegram", {"ann@example.com": "555001"})
    bot = make_bot(
        "telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-4001", "@ops_room"], mapping_table=table
    )
    fire(client, paging_setup(people=[ann], bots=[bot]))
    chats = [request.json["chat_id"] for request in fakes.received("/telegram")]
    assert chats == [-4001, -1004001, "@ops_room"]
    assert fakes.received("/telegram")[1].json["text"].endswith('<a href="tg://user?id=555001">Ann Lee</a>')
    assert only(bot).status == Delivery.Status.SENT
    bot.refresh_from_db()
    assert bot.chat_ids == ["-1004001", "@ops_room"]
    fire(client, paging_setup(people=[ann], bots=[bot]), key="api")
    later(clock, seconds=1)  # one message per second per chat
    assert [r.json["chat_id"] for r in fakes.received("/telegram")][3:] == [-1004001, "@ops_room"]


def test_a_blocked_telegram_chat_is_permanent_while_the_others_get_it(client, clock, fakes, ann):
    fakes.telegram_bots.add("123:ABC")
    fakes.telegram_gone["-2002"] = "Forbidden: bot was kicked from the group chat"
    bot = make_bot("telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-2002", "-3003"])
    fire(client, paging_setup(people=[ann], bots=[bot]))
    delivery = only(bot)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.state["progress"]["done"] == ["-3003"]
    bot.refresh_from_db()
    assert "chat -2002: Telegram 403: Forbidden: bot was kicked" in bot.last_error
    assert "123:ABC" not in bot.last_error


def test_a_telegram_message_that_mentions_a_big_team_is_accepted_and_names_the_incident(client, clock, fakes):
    fakes.telegram_bots.add("123:ABC")
    people, table = big_team("telegram", 80, lambda n: str(5_000_000_000 + n))
    bot = make_bot("telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-1"], mapping_table=table)
    # Nobody has a phone: only the bot posts.
    fire(client, paging_setup(people=people, bots=[bot], methods=("sms",)), title="db-1 disk full")
    (request,) = fakes.received("/telegram")
    text = request.json["text"]
    assert "db-1 disk full" in text and len(text) <= 4096
    shown = text.count('<a href="tg://user?id=')
    assert 0 < shown < 80 and text.endswith(f"… and {80 - shown} more")
    assert only(bot).status == Delivery.Status.SENT


def test_a_telegram_template_telegram_cannot_parse_sends_the_default_and_says_why(client, clock, fakes, ann):
    fakes.telegram_bots.add("123:ABC")
    bot = make_bot("telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-1"])
    key = paging_setup(people=[ann], bots=[bot])
    rule = EscalationRule.objects.get()
    rule.template_set = TemplateSet.objects.create(name="Terse", bodies={"telegram": "<b>{{ incident.title }}"})
    rule.save()
    fire(client, key, title="db-1 disk full")
    (request,) = fakes.received("/telegram")
    number = Incident.objects.get().number
    assert request.json["text"].startswith(f"<b>[Critical] #{number} db-1 disk full</b>")
    delivery = only(bot)
    assert delivery.status == Delivery.Status.SENT
    assert delivery.template_error.startswith("telegram: The HTML would be refused: <b> is never closed")


def test_telegrams_retry_after_is_honoured(client, clock, fakes, ann):
    fakes.telegram_bots.add("123:ABC")
    fakes.fail_next(
        "/telegram",
        status=429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )
    bot = make_bot("telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-1"])
    fire(client, paging_setup(people=[ann], bots=[bot]))
    delivery = only(bot)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 0)
    later(clock, seconds=7)
    assert only(bot).status == Delivery.Status.SENT


# -- Teams ------------------------------------------------------------------------------------------------------


def test_teams_gets_an_adaptive_card_mentioning_by_email_without_a_table(client, clock, fakes, ann):
    fakes.teams_flows.add("flow1")
    bot = make_bot("teams", fakes.url("/teams/flow1"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    (request,) = fakes.received("/teams")
    card = request.json["attachments"][0]["content"]
    assert card["msteams"]["entities"] == [
        {"type": "mention", "text": "<at>Ann Lee</at>", "mentioned": {"id": "ann@example.com", "name": "Ann Lee"}}
    ]
    assert only(bot).status == Delivery.Status.SENT


def test_a_deleted_teams_flow_is_permanent(client, clock, fakes, ann):
    fakes.teams_flows.add("flow1")
    bot = make_bot("teams", fakes.url("/teams/flow-gone"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    assert only(bot).status == Delivery.Status.FAILED


# -- custom webhook ---------------------------------------------------------------------------------------------


def test_a_custom_webhook_gets_flashdutys_body_signed_with_hmac(client, clock, fakes, ann):
    fakes.webhook_secrets["gw"] = "whsec"
    table = make_mapping_table("slack", {"ann@example.com": "U0ANN0001"})
    bot = make_bot("webhook", fakes.url("/hook/gw"), secret="whsec")
    fire(client, paging_setup(people=[ann], bots=[bot]), title="db-1 disk full")
    (request,) = fakes.received("/hook")
    expected = "sha256=" + hmac.new(b"whsec", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-oncall-signature"] == expected
    body = request.json
    incident = Incident.objects.get()
    assert body["event_type"] == "i_new" and body["event_time"] == int(clock.current.timestamp() * 1000)
    assert len(body["event_id"]) == 24 and body["person"] is None
    assert body["incident"]["incident_id"] == str(incident.pk) and body["incident"]["title"] == "db-1 disk full"
    assert body["incident"]["responders"] == [
        {
            "person_id": ann.pk,
            "person_name": "Ann Lee",
            "email": "ann@example.com",
            "phone": "+8613800000001",
            "im_ids": {"slack": "U0ANN0001"},
            "assigned_at": int(clock.current.timestamp()),
            "acknowledged_at": None,
        }
    ]
    assert body["incident"]["assigned_to"]["person_ids"] == [ann.pk]
    assert only(bot).status == Delivery.Status.SENT
    assert table.entries.count() == 1


def test_a_webhook_retry_carries_the_same_event_id(client, clock, fakes, ann):
    fakes.fail_next("/hook", status=503, text="down")
    bot = make_bot("webhook", fakes.url("/hook/plain"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    later(clock, seconds=30)
    first, second = fakes.received("/hook")
    assert first.json["event_id"] == second.json["event_id"]
    assert "x-oncall-signature" not in first.headers
    assert only(bot).status == Delivery.Status.SENT


def test_a_webhook_that_refuses_the_signature_is_permanent(client, clock, fakes, ann):
    fakes.webhook_secrets["gw"] = "whsec"
    bot = make_bot("webhook", fakes.url("/hook/gw"), secret="other")
    fire(client, paging_setup(people=[ann], bots=[bot]))
    bot.refresh_from_db()
    assert only(bot).status == Delivery.Status.FAILED and "HTTP 401" in bot.last_error


# -- across kinds -----------------------------------------------------------------------------------------------


def test_timeouts_are_retried_and_attempts_run_out(client, clock, fakes, ann, settings):
    settings.HTTP_TOTAL_TIMEOUT = 0.3
    settings.DELIVERY_MAX_ATTEMPTS = 2
    fakes.slack_hooks.add("/services/T1/B1/abcdef")
    fakes.delay("/slack", 1.0)
    bot = make_bot("slack", fakes.url("/slack/services/T1/B1/abcdef"))
    fire(client, paging_setup(people=[ann], bots=[bot]))
    assert only(bot).status == Delivery.Status.PENDING
    later(clock, seconds=30)
    delivery = only(bot)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 2)
    bot.refresh_from_db()
    assert "did not answer" in bot.last_error


def test_no_secret_or_url_token_reaches_the_log(client, clock, fakes, ann, caplog):
    fakes.dingtalk_tokens["TOKEN-SHOULD-NOT-LEAK"] = "SECshouldnotleak"
    fakes.telegram_bots.add("999:TELEGRAM-TOKEN-NOT-LOGGED")
    ding = make_bot(
        "dingtalk",
        fakes.url("/dingtalk/robot/send?access_token=TOKEN-SHOULD-NOT-LEAK"),
        secret="SECshouldnotleak",
    )
    tg = make_bot("telegram", fakes.url("/telegram"), secret="999:TELEGRAM-TOKEN-NOT-LOGGED", chat_ids=["-5"])
    with caplog.at_level(logging.DEBUG):
        fire(client, paging_setup(people=[ann], bots=[ding, tg]))
    assert {only(ding).status, only(tg).status} == {Delivery.Status.SENT}
    logged = caplog.text + "".join(str(d.attempt_log) + d.error for d in bot_deliveries())
    for secret in ("TOKEN-SHOULD-NOT-LEAK", "SECshouldnotleak", "TELEGRAM-TOKEN-NOT-LOGGED"):
        assert secret not in logged


@pytest.mark.parametrize("port", ["99999", "0"])
def test_a_bot_url_with_a_port_no_request_can_use_fails_for_good_at_once_and_says_why(client, clock, fakes, ann, port):
    """Saved before the form refused such ports: the delivery used to stay "sending" (99999: a ValueError out of
    the worker) or be retried to no end (0)."""
    bot = make_bot("slack", f"https://hooks.slack.com:{port}/services/T000/B000/XXXX")
    fire(client, paging_setup(people=[ann], bots=[bot]))
    later(clock, minutes=10)
    delivery = only(bot)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    bot.refresh_from_db()
    assert bot.last_error == "https://hooks.slack.com was not called: its port is not a number from 1 to 65535"
    failed = Incident.objects.get().timeline.get(kind=TimelineEntry.Kind.NOTIFY_FAILED)
    assert "could not post after 1 attempt(s)" in failed.message and "port" in failed.message
