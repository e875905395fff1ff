"""The admin of bots and mapping tables: only the chosen kind's fields, secrets never shown back, the test
message with the provider's answer, CSV import and export, and levels that post to bots."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from channels_app.models import Bot, MappingEntry
from escalation.models import EscalationRule
from tests.factories import make_bot, make_channel, make_mapping_table, make_user
from tests.integration.admin_forms import one_level_rule_form

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def rows(page: str) -> set[str]:
    """The form rows a change page renders (Django's admin marks each `form-row field-<name>`)."""
    return set(re.findall(r'class="form-row[^"]*\bfield-([a-z_]+)', page))


def bot_form(**fields) -> dict:
    data = {
        "name": "Ops",
        "kind": "dingtalk",
        "enabled": "on",
        "url": "",
        "secret": "",
        "message_format": "markdown",
        "mentions": "on",
        "fallback": "none",
        "event_types": ["triggered", "acknowledged"],
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


# -- the form -----------------------------------------------------------------------------------------------------


def test_the_form_shows_only_the_fields_of_the_chosen_kind(staff_client):
    add = reverse("admin:channels_app_bot_add")
    telegram = staff_client.get(add + "?kind=telegram").content.decode()
    assert {"url", "secret", "chat_ids_text", "mapping_table"} <= rows(telegram)
    assert not {"at_all", "message_format"} & rows(telegram)
    assert "Bot token" in telegram and "@mentions need a Telegram mapping table" in telegram

    slack = staff_client.get(add + "?kind=slack").content.decode()
    assert "secret" not in rows(slack) and "chat_ids_text" not in rows(slack)

    ding = make_bot("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456", secret="SECabcdefgh")
    page = staff_client.get(reverse("admin:channels_app_bot_change", args=[ding.pk])).content.decode()
    assert {"url", "secret", "clear_secret", "message_format", "at_all"} <= rows(page)
    assert "chat_ids_text" not in rows(page) and "mapping_table" not in rows(page)
    assert "By the people's verified mobile numbers" in page

    everything = staff_client.get(add).content.decode()  # no kind yet: the script shows the chosen kind's fields
    assert {"url", "secret", "chat_ids_text", "message_format", "at_all"} <= rows(everything)
    assert 'id="bot-kind-hints"' in everything and "channels_app/bot_form.js" in everything
    assert "Feishu/Lark mapping table (email → open_id)" in everything.replace("\\u2192", "→")


def test_secrets_and_url_tokens_are_never_shown_back_and_empty_fields_keep_them(staff_client):
    url = "https://oapi.dingtalk.com/robot/send?access_token=tok-0123456789abcdef"
    response = staff_client.post(reverse("admin:channels_app_bot_add"), bot_form(url=url, secret="SEC0123456789xyz"))
    assert response.status_code == 302, response.content.decode()[:3000]
    bot = Bot.objects.get()
    assert (bot.url, bot.secret, bot.event_types) == (url, "SEC0123456789xyz", ["triggered", "acknowledged"])

    change = reverse("admin:channels_app_bot_change", args=[bot.pk])
    page = staff_client.get(change).content.decode()
    assert "tok-0123456789abcdef" not in page and "SEC0123456789xyz" not in page
    assert "https://oapi.dingtalk.com/…cdef" in page and "••••••••9xyz" in page
    listing = staff_client.get(reverse("admin:channels_app_bot_changelist")).content.decode()
    assert "tok-0123456789abcdef" not in listing and "https://oapi.dingtalk.com/…cdef" in listing

    response = staff_client.post(change, bot_form(name="Ops room", at_all="on"))
    assert response.status_code == 302, response.content.decode()[:3000]
    bot.refresh_from_db()
    assert (bot.name, bot.url, bot.secret, bot.at_all) == ("Ops room", url, "SEC0123456789xyz", True)

    staff_client.post(change, bot_form(name="Ops room", clear_secret="on"))
    bot.refresh_from_db()
    assert (bot.url, bot.secret) == (url, "")


def test_each_kind_asks_for_what_it_needs(staff_client):
    add = reverse("admin:channels_app_bot_add")
    page = staff_client.post(
        add, bot_form(kind="telegram", name="TG", chat_ids_text="-100123, not a chat")
    ).content.decode()
    assert "Bot token is required." in page and "Not chat ids: not" in page
    page = staff_client.post(
        add, bot_form(kind="zoom", name="Z", url="https://integrations.zoom.us/x")
    ).content.decode()
    assert "Verification token is required." in page
    page = staff_client.post(add, bot_form(kind="slack", name="S")).content.decode()
    assert "The webhook URL is required." in page
    feishu_table = make_mapping_table("feishu", {})
    page = staff_client.post(
        add,
        bot_form(kind="slack", name="S", url="https://hooks.slack.com/services/T/B/X", mapping_table=feishu_table.pk),
    ).content.decode()
    assert "mapping_table" in page and "Select a valid choice" in page
    assert not Bot.objects.exists()

    response = staff_client.post(
        add, bot_form(kind="telegram", name="TG", secret="123:ABC", chat_ids_text="-100123\n@ops_room", at_all="on")
    )
    assert response.status_code == 302
    bot = Bot.objects.get()
    assert (bot.url, bot.chat_ids, bot.at_all) == ("", ["-100123", "@ops_room"], False)  # at_all is DingTalk's


@pytest.mark.parametrize("port", ["99999", "0"])
def test_a_webhook_url_whose_port_cannot_exist_is_refused(staff_client, port):
    add = reverse("admin:channels_app_bot_add")
    url = f"https://hooks.slack.com:{port}/services/T000/B000/XXXX"
    response = staff_client.post(add, bot_form(kind="slack", name="S", url=url))
    assert response.status_code == 200
    assert "The port must be a number from 1 to 65535." in response.content.decode()
    assert not Bot.objects.exists()
    # A bot saved with such a URL before: its test message says why nothing was sent, and its next save is
    # refused until the URL is fixed.
    bot = make_bot("slack", url, name="S")
    page = staff_client.post(reverse("admin:channels_app_bot_test", args=[bot.pk])).content.decode()
    assert "Not sent" in page and "its port is not a number from 1 to 65535" in page
    change = reverse("admin:channels_app_bot_change", args=[bot.pk])
    page = staff_client.post(change, bot_form(kind="slack", name="S")).content.decode()
    assert "The port must be a number from 1 to 65535." in page
    fixed = "https://hooks.slack.com:443/services/T000/B000/XXXX"
    assert staff_client.post(change, bot_form(kind="slack", name="S", url=fixed)).status_code == 302
    bot.refresh_from_db()
    assert bot.url == fixed


# -- the test message -----------------------------------------------------------------------------------------------


def test_the_test_message_shows_the_providers_answer(staff_client, fakes):
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    ok = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), secret="SECsecret", name="Good")
    page = staff_client.post(reverse("admin:channels_app_bot_test", args=[ok.pk])).content.decode()
    assert "Sent" in page and "200" in page and "&quot;errcode&quot;: 0" in page
    (request,) = fakes.received("/dingtalk")
    assert "Test message from the on-call platform" in request.json["markdown"]["text"]
    ok.refresh_from_db()
    assert ok.last_success_at is not None

    change = staff_client.get(reverse("admin:channels_app_bot_change", args=[ok.pk])).content.decode()
    assert "Send test message" in change and reverse("admin:channels_app_bot_test", args=[ok.pk]) in change


def test_a_failing_test_message_shows_the_error_with_secrets_removed(staff_client, fakes):
    fakes.fail_next("/hook", status=403, text="denied for /hook/gw?token=leaky-token-123456")
    bot = make_bot("webhook", fakes.url("/hook/gw?token=leaky-token-123456"), name="Gateway", secret="whsec-abcdef")
    page = staff_client.post(reverse("admin:channels_app_bot_test", args=[bot.pk])).content.decode()
    assert "Not sent" in page and "403" in page and "denied for /hook/gw?token=••••" in page
    assert "leaky-token-123456" not in page
    bot.refresh_from_db()
    assert "HTTP 403" in bot.last_error and "leaky-token-123456" not in bot.last_error
    listing = staff_client.get(reverse("admin:channels_app_bot_changelist")).content.decode()
    assert "Webhook answered HTTP 403" in listing


def test_a_test_message_waits_its_turn_behind_the_bots_rate_limit(staff_client, fakes, clock):
    fakes.slack_hooks.add("/services/T/B/ok")
    bot = make_bot("slack", fakes.url("/slack/services/T/B/ok"), name="Good Slack")
    test = reverse("admin:channels_app_bot_test", args=[bot.pk])
    assert "bot-test-ok" in staff_client.post(test).content.decode()
    page = staff_client.post(test).content.decode()
    assert "The bot is at its rate limit; try again in 1 second." in page
    clock.advance(seconds=1)
    assert "bot-test-ok" in staff_client.post(test).content.decode()
    assert len(fakes.received("/slack")) == 2


def test_the_test_message_action_tries_every_selected_bot(staff_client, fakes):
    fakes.slack_hooks.add("/services/T/B/ok")
    good = make_bot("slack", fakes.url("/slack/services/T/B/ok"), name="Good Slack")
    gone = make_bot("slack", fakes.url("/slack/services/T/B/gone"), name="Gone Slack")
    page = staff_client.post(
        reverse("admin:channels_app_bot_changelist"),
        {"action": "send_test_message", "_selected_action": [good.pk, gone.pk]},
    ).content.decode()
    assert page.count("bot-test-ok") == 1 and page.count("bot-test-failed") == 1
    assert "no_service" in page


# -- mapping tables -------------------------------------------------------------------------------------------------


def test_csv_export_and_import_round_trip(staff_client):
    table = make_mapping_table("slack", {"ann@example.com": "U0ANN0001", "ben@example.com": "U0BEN0002"})
    exported = staff_client.get(reverse("admin:channels_app_mappingtable_export", args=[table.pk]))
    assert exported["Content-Type"].startswith("text/csv")
    text = exported.content.decode()
    assert text == "email,im_id\nann@example.com,U0ANN0001\nben@example.com,U0BEN0002\n"

    other = make_mapping_table("slack", {"old@example.com": "U0OLD0003"}, name="Copy")
    upload = SimpleUploadedFile("map.csv", text.encode(), content_type="text/csv")
    response = staff_client.post(
        reverse("admin:channels_app_mappingtable_import", args=[other.pk]), {"file": upload, "replace": "on"}
    )
    assert response.status_code == 302
    assert sorted(other.entries.values_list("email", "im_id")) == [
        ("ann@example.com", "U0ANN0001"),
        ("ben@example.com", "U0BEN0002"),
    ]
    again = staff_client.get(reverse("admin:channels_app_mappingtable_export", args=[other.pk])).content.decode()
    assert again == text


def test_an_import_merges_by_email_unless_told_to_replace(staff_client):
    table = make_mapping_table("telegram", {"Ann@Example.com": "111", "keep@example.com": "222"})
    upload = SimpleUploadedFile("m.csv", b"ann@example.com,333\nnew@example.com,444\n")
    staff_client.post(reverse("admin:channels_app_mappingtable_import", args=[table.pk]), {"file": upload})
    assert sorted(table.entries.values_list("email", "im_id")) == [
        ("ann@example.com", "333"),
        ("keep@example.com", "222"),
        ("new@example.com", "444"),
    ]


def test_an_import_with_invalid_ids_is_refused_with_the_line_numbers(staff_client):
    table = make_mapping_table("feishu", {"ann@example.com": "ou_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
    csv = (
        "email,im_id\n"
        "ben@example.com,ou_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
        "cy@example.com,cy\n"
        "not-an-email,ou_cccccccccccccccccccccccccccccccc\n"
    )
    upload = SimpleUploadedFile("m.csv", csv.encode())
    response = staff_client.post(reverse("admin:channels_app_mappingtable_import", args=[table.pk]), {"file": upload})
    page = response.content.decode()
    assert response.status_code == 400
    assert "line 3: &#x27;cy&#x27; is not a Feishu/Lark open_id" in page
    assert "line 4: &#x27;not-an-email&#x27; is not an email address" in page
    assert list(table.entries.values_list("email", flat=True)) == ["ann@example.com"]  # nothing imported


def test_entries_typed_in_the_admin_are_checked_for_the_platform(staff_client):
    table = make_mapping_table("slack", {})
    change = reverse("admin:channels_app_mappingtable_change", args=[table.pk])
    data = {
        "name": table.name,
        "description": "",
        "entries-TOTAL_FORMS": 1,
        "entries-INITIAL_FORMS": 0,
        "entries-MIN_NUM_FORMS": 0,
        "entries-MAX_NUM_FORMS": 1000,
        "entries-0-email": "ann@example.com",
        "entries-0-im_id": "ann",
    }
    page = staff_client.post(change, data).content.decode()
    assert "is not a Slack member id" in page and not MappingEntry.objects.exists()
    assert staff_client.post(change, {**data, "entries-0-im_id": "U0ANN0001"}).status_code == 302
    assert MappingEntry.objects.get().im_id == "U0ANN0001"


def entry_rows(*rows: tuple[str, str]) -> dict:
    data = {
        "entries-TOTAL_FORMS": len(rows),
        "entries-INITIAL_FORMS": 0,
        "entries-MIN_NUM_FORMS": 0,
        "entries-MAX_NUM_FORMS": 1000,
    }
    for n, (email, im_id) in enumerate(rows):
        data[f"entries-{n}-email"] = email
        data[f"entries-{n}-im_id"] = im_id
    return data


def test_entries_typed_with_a_new_table_are_checked_for_its_platform(staff_client):
    add = reverse("admin:channels_app_mappingtable_add")
    table = {"name": "Slack people", "platform": "slack", "description": ""}
    response = staff_client.post(add, {**table, **entry_rows(("ann@example.com", "ann"))})
    assert response.status_code == 200
    assert "is not a Slack member id" in response.content.decode()
    assert not MappingEntry.objects.exists()

    assert staff_client.post(add, {**table, **entry_rows(("ann@example.com", "U0ANN0001"))}).status_code == 302
    assert MappingEntry.objects.get().im_id == "U0ANN0001"


def test_one_address_typed_twice_in_different_case_is_refused_on_its_row(staff_client):
    table = make_mapping_table("slack", {})
    change = reverse("admin:channels_app_mappingtable_change", args=[table.pk])
    twice = entry_rows(("Ann@example.com", "U0ANN0001"), ("ann@example.com", "U0ANN0002"))
    response = staff_client.post(change, {"name": table.name, "description": "", **twice})
    assert response.status_code == 200
    assert "ann@example.com is already listed as Ann@example.com" in response.content.decode()
    assert not MappingEntry.objects.exists()

    once = entry_rows(("Ann@example.com", "U0ANN0001"), ("ben@example.com", "U0BEN0002"))
    assert staff_client.post(change, {"name": table.name, "description": "", **once}).status_code == 302
    assert sorted(table.entries.values_list("email", flat=True)) == ["Ann@example.com", "ben@example.com"]


# -- levels -----------------------------------------------------------------------------------------------------


def test_a_level_posts_to_bots_chosen_in_the_rule_admin(staff_client):
    ops = make_bot("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=x", name="Ops")
    data = one_level_rule_form(make_channel("Production"), "Default", bots=[ops.pk])
    response = staff_client.post(reverse("admin:escalation_escalationrule_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(EscalationRule.objects.get().levels.get().bots.all()) == [ops]
    autocomplete = staff_client.get(
        reverse("admin:autocomplete"),
        {"term": "Op", "app_label": "escalation", "model_name": "escalationlevel", "field_name": "bots"},
    )
    assert autocomplete.json()["results"] == [{"id": str(ops.pk), "text": "Ops"}]
