"""Bots in escalation, through the real ticker and worker code (tasks inline) with a controlled clock: levels post
to their bots by the bots' filters, lifecycle events reach the bots already in the conversation, a burst of
incidents is paced to each bot's rate limit, and a bot that cannot deliver falls back to SMS and email."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from channels_app import registry
from channels_app.bots import pacing
from channels_app.bots.fallback import bot_fallback_send
from channels_app.bots.pacing import bot_slot_reserve
from channels_app.models import BotSend, Delivery
from escalation.models import EscalationLevel, EscalationRule, EscalationState, LevelSchedule
from oncall.models import Incident, Source, TimelineEntry
from oncall.services import lifecycle
from tests.factories import (
    make_bot,
    make_channel,
    make_integration,
    make_mapping_table,
    make_rule,
    make_schedule,
    make_team,
    make_user,
    push,
)
from tests.integration.botkit import alert, bot_deliveries, fire, later, paging_setup
from tests.integration.paging import configure_twilio

pytestmark = pytest.mark.django_db(transaction=True)
WEB = Source.WEB


@pytest.fixture
def ann():
    return make_user("ann", phone="+8613800000001", first_name="Ann", last_name="Lee")


@pytest.fixture
def ben():
    return make_user("ben", phone="+8613800000002", first_name="Ben", last_name="Ray")


@pytest.fixture
def dingtalk(fakes):
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    return make_bot(
        "dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops DingTalk", secret="SECsecret"
    )


def timeline(kind=None) -> list[str]:
    entries = Incident.objects.get().timeline.order_by("id")
    return [entry.message for entry in (entries.filter(kind=kind) if kind else entries)]


def events_posted(fakes, prefix: str) -> list[str]:
    """The event each message to a fake bot announced, read from its title."""
    titles = []
    for request in fakes.received(prefix):
        body = request.json
        if "markdown" in body:
            titles.append(body["markdown"]["title"])
        elif "card" in body:
            titles.append(body["card"]["header"]["title"]["content"])
    return titles


def test_an_alert_fans_out_to_dingtalk_and_feishu_and_the_ack_reaches_only_the_bots_subscribed(
    client, clock, fakes, ann, ben, dingtalk, mailoutbox
):
    """The end-to-end path: push → worker → level → bots with mentions from mapping tables → acknowledge."""
    fakes.feishu_tokens["H1"] = "fsecret"
    table = make_mapping_table(
        "feishu",
        {
            "ann@example.com": "ou_annannannannannannannannannann0",
            "ben@example.com": "ou_benbenbenbenbenbenbenbenbenben0",
        },
    )
    feishu = make_bot(
        "feishu",
        fakes.url("/feishu/open-apis/bot/v2/hook/H1"),
        name="SRE Feishu",
        secret="fsecret",
        mapping_table=table,
        event_types=["triggered", "escalated", "closed"],
    )
    key = paging_setup(people=[ann, ben], bots=[dingtalk, feishu])
    fire(client, key, title="checkout latency")

    (ding,) = fakes.received("/dingtalk")
    assert ding.json["at"]["atMobiles"] == ["13800000001", "13800000002"]
    assert ding.json["markdown"]["text"].endswith("@13800000001 @13800000002")
    (card,) = fakes.received("/feishu")
    content = card.json["card"]["elements"][0]["text"]["content"]
    assert content.endswith(
        "<at id=ou_annannannannannannannannannann0></at> <at id=ou_benbenbenbenbenbenbenbenbenben0></at>"
    )
    assert sorted(mail.to[0] for mail in mailoutbox) == ["ann@example.com", "ben@example.com"]
    assert "Posted to DingTalk bot Ops DingTalk, Feishu / Lark bot SRE Feishu." in timeline()

    clock.advance(minutes=2)
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=1)

    assert events_posted(fakes, "/dingtalk") == [
        f"[Critical] #{incident.number} checkout latency",
        f"[Acknowledged] [Critical] #{incident.number} checkout latency",
    ]
    assert "Ann Lee acknowledged this incident." in fakes.received("/dingtalk")[1].json["markdown"]["text"]
    assert len(fakes.received("/feishu")) == 1  # not subscribed to acknowledged
    ack_post = bot_deliveries(dingtalk)[1]
    assert (ack_post.event, ack_post.status) == ("acknowledged", Delivery.Status.SENT)
    assert ack_post.incident_event_id is not None
    assert "Posted to DingTalk bot Ops DingTalk." in timeline()
    assert "Not posted to Feishu / Lark bot SRE Feishu: it is not subscribed to acknowledged." in timeline()

    lifecycle.incident_resolve(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=2)
    assert len(fakes.received("/dingtalk")) == 3 and len(fakes.received("/feishu")) == 2
    assert events_posted(fakes, "/feishu")[1].startswith("[Closed]")


def test_a_bot_that_cannot_mention_a_whole_team_mentions_whoever_is_on_call(client, clock, fakes, dingtalk):
    """A level names a big team and a schedule: the message has room for some of the team's @mentions only, and
    the person on call is among those it keeps (named people, then on call, then the team)."""
    team = make_team("Everyone", members=[make_user(f"e{n:03d}", phone=f"+86139{n:08d}") for n in range(250)])
    on_call = make_user("oncall", phone="+8613700000001")
    schedule = make_schedule(layers=[{"start": clock.current - timedelta(days=1), "groups": [[on_call]]}])
    channel = make_channel()
    rule = make_rule(channel, [{"methods": [], "bots": [dingtalk]}])
    level = rule.levels.get()
    level.teams.set([team])
    LevelSchedule.objects.create(level=level, schedule=schedule)
    fire(client, make_integration(channel=channel)[1], title="everything is down")
    (post,) = fakes.received("/dingtalk")
    text = post.json["markdown"]["text"]
    assert "@13700000001" in text and "more" in text.rsplit("\n", 1)[-1]


def test_unselected_severities_are_not_pushed_and_the_timeline_says_why(client, clock, fakes, ann, dingtalk):
    dingtalk.severities = ["Critical"]
    dingtalk.save()
    key = paging_setup(people=[ann], bots=[dingtalk])
    fire(client, key, severity="Warning")
    assert fakes.received("/dingtalk") == [] and bot_deliveries() == []
    assert "Not posted to DingTalk bot Ops DingTalk: severity Warning is not selected." in timeline()
    # It never posted about this incident, so it hears nothing of what happens to it either.
    lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)
    assert fakes.received("/dingtalk") == []


def test_a_disabled_bot_does_not_post(client, clock, fakes, ann, dingtalk):
    dingtalk.enabled = False
    dingtalk.save()
    fire(client, paging_setup(people=[ann], bots=[dingtalk]))
    assert fakes.received("/dingtalk") == []
    assert "Not posted to DingTalk bot Ops DingTalk: the bot is disabled." in timeline()


def test_a_bot_disabled_while_its_messages_wait_for_their_time_posts_nothing_more(
    client, clock, fakes, ann, dingtalk, mailoutbox
):
    """25 incidents: 20 messages go now, 5 wait 61 s for the rate limit. The admin disables the bot (the wrong
    group): the 5 are cancelled, the timeline says why, and nobody is reminded by email for a deliberate switch-off."""
    dingtalk.fallback = "email"
    dingtalk.save()
    key = paging_setup(people=[ann], bots=[dingtalk], methods=[])
    for n in range(25):
        fire(client, key, key=f"host-{n}")
    assert len(fakes.received("/dingtalk")) == 20
    dingtalk.enabled = False
    dingtalk.save()
    later(clock, seconds=61)
    assert len(fakes.received("/dingtalk")) == 20, "the disabled bot posted the messages that were waiting"
    statuses = [d.status for d in bot_deliveries()]
    assert statuses.count(Delivery.Status.SENT) == 20 and statuses.count(Delivery.Status.CANCELLED) == 5
    cancelled = TimelineEntry.objects.filter(message="Not posted to DingTalk bot Ops DingTalk: the bot was disabled.")
    assert cancelled.count() == 5
    assert [m.subject for m in mailoutbox if m.subject.startswith("[Bot failed]")] == []


def test_a_level_with_nobody_to_page_still_posts_to_its_bots(client, clock, fakes, dingtalk):
    key = paging_setup(people=[], bots=[dingtalk])
    fire(client, key)
    (request,) = fakes.received("/dingtalk")
    assert request.json["at"]["atMobiles"] == []
    assert "Posted to DingTalk bot Ops DingTalk." in timeline()
    # The level names nobody to page: its bot's line says what it did, without a "notified nobody" beside it.
    assert not [message for message in timeline() if "notified nobody" in message]


def test_escalation_posts_to_the_next_levels_bots_and_tells_the_first_levels_bots_once(
    client, clock, fakes, ann, ben, dingtalk
):
    fakes.wecom_keys.add("K2")
    wecom = make_bot("wecom", fakes.url("/wecom/cgi-bin/webhook/send?key=K2"), name="Managers")
    key = paging_setup(
        levels=[
            {"people": [ann], "bots": [dingtalk], "after": 5},
            {"people": [ben], "bots": [wecom], "after": 5},
        ]
    )
    fire(client, key)
    later(clock, minutes=5)
    escalated = [d for d in bot_deliveries() if d.event == "escalated"]
    assert sorted((d.bot.name, d.level) for d in escalated) == [("Managers", 1), ("Ops DingTalk", 1)]
    assert len(fakes.received("/dingtalk")) == 2
    wecom_text = fakes.received("/wecom")[0].json["markdown"]["content"]
    assert "escalated to you (level 2)" in wecom_text
    later(clock, minutes=1)
    assert len(fakes.received("/dingtalk")) == 2 and len(bot_deliveries(wecom)) == 1


def test_repeats_post_again_to_bots_subscribed_to_reminders(client, clock, fakes, ann, dingtalk):
    fakes.slack_hooks.add("/services/T/B/quiet")
    quiet = make_bot("slack", fakes.url("/slack/services/T/B/quiet"), event_types=["triggered"])
    channel = make_channel()
    rule = make_rule(channel, [{"people": [ann], "bots": [dingtalk, quiet], "after": 30}])
    EscalationLevel.objects.filter(rule=rule).update(repeat_times=1, repeat_every_minutes=10)
    push(client, make_integration(channel=channel)[1], alert())
    later(clock, minutes=10)
    assert [d.event for d in bot_deliveries(dingtalk)] == ["triggered", "refired"]
    assert [d.event for d in bot_deliveries(quiet)] == ["triggered"]
    assert events_posted(fakes, "/dingtalk")[1].startswith("[Reminder]")


def test_an_escalation_frozen_before_bots_existed_still_runs(client, clock, fakes, ann, mailoutbox):
    key = paging_setup(levels=[{"people": [ann], "after": 5}, {"people": [ann], "after": 5}])
    fire(client, key)
    state = EscalationState.objects.get()
    for level in state.snapshot["levels"]:
        level.pop("bots")
    state.save()
    later(clock, minutes=5)
    assert len(mailoutbox) == 2 and bot_deliveries() == []


# -- pacing -------------------------------------------------------------------------------------------------------


def test_a_burst_of_incidents_to_one_dingtalk_bot_is_paced_not_lost(client, clock, fakes, ann, dingtalk):
    """25 incidents at once, 20 messages a minute: the fake DingTalk would answer 130101 past 20 in any minute of
    the test's clock; nothing is refused, nothing is lost, and the 21st message waits a full window."""
    fakes.rate_limits["/dingtalk"] = (20, 60)
    key = paging_setup(people=[ann], bots=[dingtalk])
    start = clock.current
    for n in range(25):
        fire(client, key, key=f"host-{n}")
    assert len(fakes.received("/dingtalk")) == 20
    waiting = [d for d in bot_deliveries() if d.status == Delivery.Status.PENDING]
    assert len(waiting) == 5 and all(d.attempts == 0 for d in waiting)
    assert {d.next_attempt_at for d in waiting} == {start + timedelta(seconds=61)}
    later(clock, seconds=60)
    assert len(fakes.received("/dingtalk")) == 20
    later(clock, seconds=1)
    deliveries = bot_deliveries()
    assert len(fakes.received("/dingtalk")) == 25
    assert all(d.status == Delivery.Status.SENT and d.attempts == 1 for d in deliveries)
    sent = sorted(d.sent_at for d in deliveries)
    assert sent[:20] == [start] * 20 and sent[20:] == [start + timedelta(seconds=61)] * 5
    assert all(request.json.get("msgtype") == "markdown" for request in fakes.received("/dingtalk"))
    assert len({d.incident_id for d in deliveries}) == 25


def test_dingtalks_too_fast_answer_holds_the_bot_for_a_minute_without_counting(client, clock, fakes, ann, dingtalk):
    fakes.fail_next(
        "/dingtalk", status=200, json={"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
    )
    key = paging_setup(people=[ann], bots=[dingtalk])
    fire(client, key, key="a")
    fire(client, key, key="b")  # another incident meanwhile: held behind the pause too
    first, second = bot_deliveries()
    assert (first.status, first.attempts, first.next_attempt_at) == (
        Delivery.Status.PENDING,
        0,
        clock.current + timedelta(seconds=60),
    )
    assert second.status == Delivery.Status.PENDING and second.next_attempt_at >= clock.current + timedelta(seconds=60)
    assert len(fakes.received("/dingtalk")) == 1
    dingtalk.refresh_from_db()
    assert "130101" in dingtalk.last_error and dingtalk.paused_until == clock.current + timedelta(seconds=60)
    later(clock, seconds=60)
    assert {d.status for d in bot_deliveries()} == {Delivery.Status.SENT}
    assert len(fakes.received("/dingtalk")) == 3


# -- IM fallback --------------------------------------------------------------------------------------------------


@pytest.fixture
def twilio(fakes, settings):
    configure_twilio(settings, fakes)
    return fakes


def test_a_revoked_slack_webhook_falls_back_to_sms_and_email_for_the_mentioned_people_once(
    client, clock, twilio, ann, ben, mailoutbox
):
    table = make_mapping_table("slack", {"ann@example.com": "U0ANN0001"})
    bot = make_bot(
        "slack", twilio.url("/slack/services/T/B/revoked"), name="Ops Slack", mapping_table=table, fallback="both"
    )
    key = paging_setup(people=[ann, ben], bots=[bot], methods=[])
    fire(client, key, title="payments down")

    (post,) = bot_deliveries(bot)
    assert post.status == Delivery.Status.FAILED
    bot.refresh_from_db()
    assert "no_service" in bot.last_error
    sms = twilio.received("/twilio")
    assert sorted(request.field("To") for request in sms) == ["+8613800000001", "+8613800000002"]
    assert all(request.field("Body").startswith("[Slack bot failed] Triggered:") for request in sms)
    assert sorted(mail.to[0] for mail in mailoutbox) == ["ann@example.com", "ben@example.com"]
    assert mailoutbox[0].subject.startswith("[Bot failed] [Critical]")
    assert "could not be delivered" in mailoutbox[0].body and "Ops Slack" in mailoutbox[0].body
    reminders = Delivery.objects.exclude(method="bot")
    assert sorted((d.recipient.username, d.method) for d in reminders) == [
        ("ann", "email"),
        ("ann", "sms"),
        ("ben", "email"),
        ("ben", "sms"),
    ]
    assert any("could not deliver the message; reminding Ann Lee (SMS), Ann Lee (Email)" in m for m in timeline())

    # Whatever calls it again (a worker that raced), the reminders are never sent twice.
    bot_fallback_send(delivery=post, bot=bot, kind_label="Slack", now=clock.current)
    later(clock, minutes=10)
    assert Delivery.objects.exclude(method="bot").count() == 4
    assert len(twilio.received("/twilio")) == 2 and len(mailoutbox) == 2


def test_fallback_by_sms_only_skips_people_without_a_verified_phone(client, clock, twilio, ann, mailoutbox):
    nophone = make_user("cy", first_name="Cy", last_name="Fox")
    bot = make_bot("slack", twilio.url("/slack/services/T/B/revoked"), name="Ops Slack", fallback="sms")
    fire(client, paging_setup(people=[ann, nophone], bots=[bot], methods=[]))
    assert [request.field("To") for request in twilio.received("/twilio")] == ["+8613800000001"]
    assert mailoutbox == []
    assert any("Not reachable: Cy Fox (sms: no verified sms contact)" in m for m in timeline())


def test_retries_running_out_also_fall_back(client, clock, twilio, ann, settings, mailoutbox):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    twilio.slack_hooks.add("/services/T/B/flaky")
    twilio.fail_next("/slack", status=503, text="", times=5)
    bot = make_bot("slack", twilio.url("/slack/services/T/B/flaky"), fallback="email")
    fire(client, paging_setup(people=[ann], bots=[bot], methods=[]))
    assert mailoutbox == []
    later(clock, seconds=30)
    assert bot_deliveries(bot)[0].status == Delivery.Status.FAILED
    assert [mail.to[0] for mail in mailoutbox] == ["ann@example.com"]


def test_no_fallback_for_lifecycle_notices_or_once_someone_acknowledged(client, clock, twilio, ann, mailoutbox):
    twilio.slack_hooks.add("/services/T/B/ok")
    bot = make_bot("slack", twilio.url("/slack/services/T/B/ok"), fallback="email")
    fire(client, paging_setup(people=[ann], bots=[bot], methods=[]))
    twilio.slack_hooks.clear()  # revoked after the first post
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=2)
    posts = bot_deliveries(bot)
    assert [(d.event, d.status) for d in posts] == [
        ("triggered", Delivery.Status.SENT),
        ("acknowledged", Delivery.Status.FAILED),
    ]
    assert mailoutbox == []
    assert not any("reminding" in message for message in timeline(TimelineEntry.Kind.NOTIFIED))


def test_a_bot_deleted_after_the_rule_was_frozen_is_skipped(client, clock, fakes, ann, dingtalk):
    key = paging_setup(levels=[{"people": [ann], "after": 5}, {"people": [ann], "bots": [dingtalk], "after": 5}])
    fire(client, key)
    bot_id = dingtalk.pk
    dingtalk.delete()
    later(clock, minutes=5)
    assert bot_deliveries() == []
    assert f"Not posted to bot #{bot_id}: the bot was deleted." in timeline()
    assert EscalationRule.objects.count() == 1


def test_workers_reserving_at_once_agree_on_the_bots_schedule(dingtalk, clock):
    """Eight workers reserving 5 messages each for one DingTalk bot at the same moment: 20 now, 20 a window later,
    whatever the interleaving (the bot's row is locked while a worker picks its time)."""
    provider = registry.bot_kind("dingtalk")
    slots, barrier = [], threading.Barrier(8)

    def reserve() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                slots.append(
                    bot_slot_reserve(bot_id=dingtalk.pk, limits=provider.rate_limits, weight=1, now=clock.current)
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(slots) == [clock.current] * 20 + [clock.current + timedelta(seconds=61)] * 20
    assert BotSend.objects.filter(bot=dingtalk).count() == 40


def test_old_reservations_are_pruned_without_changing_the_schedule(dingtalk, clock):
    """A bot posting every 5 seconds for an hour: its reservations older than the longest window are deleted in
    batches, so the table stays small, and they never count against a new message's window."""
    provider = registry.bot_kind("dingtalk")  # 20 in any 61 s: one message every 5 s is always within it
    start = clock.current
    for n in range(720):
        now = start + timedelta(seconds=5 * n)
        assert bot_slot_reserve(bot_id=dingtalk.pk, limits=provider.rate_limits, weight=1, now=now) == now
        assert BotSend.objects.filter(bot=dingtalk).count() <= 13 + pacing.STALE_KEPT
    kept = BotSend.objects.filter(bot=dingtalk)
    assert kept.filter(at__gt=now - timedelta(seconds=61)).count() == 13, "the window's reservations are all kept"
