"""What an admin does in a browser: configure a whole channel (channel, integration, DingTalk bot, a rule with two
levels), send the bot a test message and read the provider's answer, then watch a pushed alert reach the bot."""

from __future__ import annotations

import re

import pytest

from channels_app.models import Bot
from escalation.models import EscalationRule
from oncall.models import Channel, Incident
from tests.e2e.conftest import screenshot
from tests.e2e.test_engineer_pages import push
from tests.factories import make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def choose(page, select_id: str, text: str) -> None:
    """Pick `text` in the admin's autocomplete (select2) widget that replaces <select id=select_id>."""
    page.locator(f"#{select_id} + .select2").click()
    page.keyboard.type(text)
    page.locator(".select2-results__option", has_text=text).first.click()


def test_an_admin_configures_a_channel_with_a_dingtalk_bot_and_sees_the_test_message_answer(
    page, live_server, fake_providers
):
    make_user("root", is_staff=True, is_superuser=True)
    alice, bob = make_user("alice", first_name="Alice"), make_user("bob", first_name="Bob")
    make_team("Shop team", members=[alice, bob])
    fake_providers.dingtalk_tokens["ops-room"] = "SECops-room-secret"

    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Open incidents by channel and severity").wait_for()

    # The channel.
    page.goto("/admin/oncall/channel/add/")
    page.locator("#id_name").fill("Checkout")
    choose(page, "id_team", "Shop team")
    page.locator("input[name=_save]").click()
    page.get_by_text("was added successfully").wait_for()
    channel = Channel.objects.get(name="Checkout")

    # The integration a monitor pushes to; its key is shown once.
    page.goto("/admin/oncall/integration/add/")
    page.locator("#id_name").fill("Checkout monitors")
    page.locator("#id_kind").select_option("standard")
    choose(page, "id_channel", "Checkout")
    page.locator("input[name=_save]").click()
    key = page.locator("code.integration-key").inner_text()
    assert re.fullmatch(r"[0-9a-f]{32}", key)

    # The DingTalk bot, pointing at the fake DingTalk; only DingTalk's fields show.
    page.goto("/admin/channels_app/bot/add/")
    page.locator("#id_name").fill("Checkout room")
    page.locator("#id_kind").select_option("dingtalk")
    assert page.locator(".form-row.field-at_all").is_visible()
    assert not page.locator(".form-row.field-chat_ids_text").is_visible()
    page.locator("#id_url").fill(fake_providers.url("/dingtalk/robot/send?access_token=ops-room"))
    page.locator("#id_secret").fill("SECops-room-secret")
    page.locator("input[name=_continue]").click()
    page.get_by_text("was added successfully").wait_for()
    bot = Bot.objects.get(name="Checkout room")
    assert "ops-room-secret" not in page.content()

    # The test message, and what DingTalk answered.
    page.get_by_role("button", name="Send test message").click()
    answer = page.locator("table.bot-test-answers tbody tr")
    answer.wait_for()
    assert "Sent" in answer.inner_text() and "200" in answer.inner_text()
    assert '"errcode": 0' in answer.locator("pre").inner_text()
    screenshot(page, "desktop-admin-bot-test")
    (request,) = fake_providers.received("/dingtalk")
    assert "Test message from the on-call platform" in request.json["markdown"]["text"]

    # The escalation rule: the room and Alice first, Bob ten minutes later.
    page.goto("/admin/escalation/escalationrule/add/")
    choose(page, "id_channel", "Checkout")
    page.locator("#id_name").fill("Around the clock")
    choose(page, "id_levels-0-people", "alice")
    choose(page, "id_levels-0-bots", "Checkout room")
    page.locator("#id_levels-0-critical_methods input[value=email]").check()
    page.locator("#id_levels-0-escalate_after_minutes").fill("10")
    page.locator("#levels-group .add-row a").click()
    page.locator("#id_levels-1-position").fill("1")
    choose(page, "id_levels-1-people", "bob")
    page.locator("#id_levels-1-critical_methods input[value=email]").check()
    screenshot(page, "desktop-admin-rule")
    page.locator("input[name=_save]").click()
    page.get_by_text("was added successfully").wait_for()
    rule = EscalationRule.objects.get(name="Around the clock", channel=channel)
    levels = list(rule.levels.order_by("position"))
    assert [[person.username for person in level.people.all()] for level in levels] == [["alice"], ["bob"]]
    assert list(levels[0].bots.all()) == [bot]

    # A monitor pushes; the incident lands in the channel and the room hears about it.
    push(live_server, key, {"title_rule": "Checkout is slow", "event_status": "Critical", "alert_key": "slow"})
    incident = Incident.objects.get(channel=channel)
    assert incident.title == "Checkout is slow"
    posted = fake_providers.received("/dingtalk")
    assert len(posted) == 2 and "Checkout is slow" in posted[1].json["markdown"]["text"]

    page.goto("/admin/")
    assert page.locator("#dashboard").get_by_role("link", name="Checkout").is_visible()
    screenshot(page, "desktop-admin-dashboard")
