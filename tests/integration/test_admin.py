"""The admin: every registered model opens, integrations show their key once, rules are edited with levels."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from escalation.models import EscalationRule
from oncall.models import Device, Integration
from oncall.services.devices import device_link_token_create
from oncall.services.tokens import api_token_authenticate, api_token_create
from tests.factories import (
    make_bot,
    make_channel,
    make_integration,
    make_rule,
    make_schedule,
    make_team,
    make_user,
    push,
)
from tests.integration.admin_forms import one_level_rule_form

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client):
    user = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def populated(clock):
    """One of everything: people, a channel, a rule, an incident with alerts, timeline, deliveries and timers."""
    alice = make_user("alice")
    channel = make_channel("Production")
    make_rule(channel, [{"people": [alice]}, {"people": [alice]}])
    _, key = make_integration(channel=channel)
    push(Client(), key, {"title_rule": "Disk full", "event_status": "Critical", "alert_key": "d", "labels": {"a": "b"}})


def test_every_registered_model_opens_its_changelist_add_form_and_change_form(staff_client, populated):
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        changelist = staff_client.get(reverse(f"{name}_changelist"))
        assert changelist.status_code == 200, f"{name} changelist"
        add = staff_client.get(reverse(f"{name}_add"))
        expected = 200 if model_admin.has_add_permission(changelist.wsgi_request) else 403
        assert add.status_code == expected, f"{name} add form"
        obj = model._default_manager.first()
        if obj is not None:
            change = staff_client.get(reverse(f"{name}_change", args=[obj.pk]))
            assert change.status_code == 200, f"{name} change form"


def test_changelists_search_and_filter(staff_client, populated):
    url = reverse("admin:oncall_incident_changelist")
    assert "Disk full" in staff_client.get(url, {"q": "Disk"}).content.decode()
    assert "Disk full" not in staff_client.get(url, {"progress__exact": "Closed"}).content.decode()


def test_a_new_integration_shows_its_key_once_and_the_key_works(staff_client, client):
    channel = make_channel("Production")
    response = staff_client.post(
        reverse("admin:oncall_integration_add"),
        {
            "name": "Prometheus prod",
            "kind": "standard",
            "channel": channel.pk,
            "enabled": "on",
            "routing_rules-TOTAL_FORMS": 0,
            "routing_rules-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    key = re.search(r'<code class="integration-key">([0-9a-f]{32})</code>', page).group(1)
    assert f"/event/push/alert/standard?integration_key={key}" in page

    integration = Integration.objects.get(name="Prometheus prod")
    assert key not in (integration.key_hash, integration.key_hint)
    listing = staff_client.get(reverse("admin:oncall_integration_changelist")).content.decode()
    assert key not in listing and f"••••••••{key[-4:]}" in listing
    detail = staff_client.get(reverse("admin:oncall_integration_change", args=[integration.pk])).content.decode()
    assert key not in detail

    ok = push(client, key, {"title_rule": "x", "event_status": "Info", "alert_key": "k"})
    assert ok.status_code == 200


def test_regenerating_a_key_shows_the_new_one_and_the_old_one_stops_working(staff_client, client):
    integration, old_key = make_integration(channel=make_channel())
    event = {"title_rule": "x", "event_status": "Info", "alert_key": "k"}
    assert push(client, old_key, event).status_code == 200
    response = staff_client.post(
        reverse("admin:oncall_integration_changelist"),
        {"action": "regenerate_keys", "_selected_action": [integration.pk]},
    )
    new_key = re.search(r'<code class="integration-key">([0-9a-f]{32})</code>', response.content.decode()).group(1)
    assert new_key != old_key
    assert push(client, old_key, event).status_code == 401
    assert push(client, new_key, event).status_code == 200


def test_an_escalation_rule_is_edited_with_its_levels_and_methods(staff_client):
    channel = make_channel("Production")
    alice, bob = make_user("alice"), make_user("bob")
    data = {
        "channel": channel.pk,
        "name": "Business hours",
        "priority": 10,
        "enabled": "on",
        "description": "",
        "delay_seconds": 60,
        "time_windows": '[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}]',
        "filters": '[[{"key": "severity", "op": "IN", "values": ["Critical", "Warning"]}]]',
        "levels-TOTAL_FORMS": 2,
        "levels-INITIAL_FORMS": 0,
        "levels-MIN_NUM_FORMS": 1,
        "levels-MAX_NUM_FORMS": 1000,
        "levels-0-position": 0,
        "levels-0-people": [alice.pk],
        "levels-0-critical_methods": ["email"],
        "levels-0-warning_methods": ["email"],
        "levels-0-escalate_after_minutes": 15,
        "levels-0-emails": '["dba@example.com"]',
        "levels-0-repeat_times": 2,
        "levels-0-repeat_every_minutes": 5,
        "levels-1-position": 1,
        "levels-1-people": [bob.pk],
        "levels-1-critical_methods": ["email"],
        "levels-1-escalate_after_minutes": 30,
        "levels-1-emails": "[]",
        "levels-1-force_escalate": "on",
        "levels-1-repeat_times": 0,
        "levels-1-repeat_every_minutes": 10,
    }
    response = staff_client.post(reverse("admin:escalation_escalationrule_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = EscalationRule.objects.get(name="Business hours")
    levels = list(rule.levels.order_by("position"))
    assert [list(level.people.all()) for level in levels] == [[alice], [bob]]
    assert levels[0].warning_methods == ["email"] and levels[0].info_methods == []
    assert levels[0].escalate_after_minutes == 15
    assert (levels[0].emails, levels[0].repeat_times, levels[1].force_escalate) == (["dba@example.com"], 2, True)
    assert rule.delay_seconds == 60 and rule.filters[0][0]["values"] == ["Critical", "Warning"]

    bad = {**data, "name": "Broken", "filters": '[[{"key": "severity", "op": "LIKE", "values": ["x"]}]]'}
    bad["time_windows"] = '[{"days": ["someday"], "start": "09:00", "end": "18:00"}]'
    page = staff_client.post(reverse("admin:escalation_escalationrule_add"), bad).content.decode()
    assert "[0][0].op: &#x27;LIKE&#x27; is not IN or NOTIN" in page
    assert "window 1: days must be" in page
    assert not EscalationRule.objects.filter(name="Broken").exists()

    typo = {**data, "name": "Typo", "filters": '[[{"key": "severity", "op": "IN", "values": ["Critcal"]}]]'}
    page = staff_client.post(reverse("admin:escalation_escalationrule_add"), typo).content.decode()
    assert "&#x27;Critcal&#x27; is not a severity; use one of Critical, Warning, Info" in page
    assert not EscalationRule.objects.filter(name="Typo").exists()


@pytest.mark.parametrize("target", ["people", "teams", "schedule_targets", "emails", "bots"])
def test_a_level_that_reaches_nobody_is_refused_and_any_one_target_will_do(staff_client, target):
    data = one_level_rule_form(make_channel("Production"), "Night")
    url = reverse("admin:escalation_escalationrule_add")
    page = staff_client.post(url, data).content.decode()
    assert "This level reaches nobody" in page
    assert not EscalationRule.objects.exists()

    value = {
        "people": lambda: [make_user("alice").pk],
        "teams": lambda: [make_team("DBA").pk],
        "schedule_targets": lambda: [f"{make_schedule('Payments').pk}:"],
        "emails": lambda: '["dba@example.com"]',
        "bots": lambda: [make_bot("slack", "http://127.0.0.1:9/hook").pk],
    }[target]()
    response = staff_client.post(url, {**data, f"levels-0-{target}": value})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert EscalationRule.objects.get().levels.count() == 1


def test_an_unknown_notification_method_is_refused_with_the_reason(staff_client):
    channel = make_channel()
    rule = make_rule(channel, [{"people": []}])
    level = rule.levels.get()
    level.critical_methods = ["pigeon"]
    with pytest.raises(ValidationError, match="Unknown notification method"):
        level.full_clean()


def test_the_admin_lists_tokens_without_their_secret_and_can_revoke_them(staff_client, clock):
    token, value = api_token_create(user=make_user("erin"), name="laptop", now=clock.current)
    listing = staff_client.get(reverse("admin:oncall_apitoken_changelist")).content.decode()
    assert "laptop" in listing and value not in listing and f"{token.token_hint}…" in listing
    staff_client.post(reverse("admin:oncall_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_deleting_a_phone_in_the_admin_signs_its_app_out(staff_client, clock):
    erin = make_user("erin")
    _row, link_token = device_link_token_create(person=erin, now=clock.current)
    body = {"link_token": link_token, "platform": "android", "token": "fcm-lost-phone", "name": "Lost Pixel"}
    linked = Client().post("/api/v1/devices/link/", body, content_type="application/json")
    app_token = linked.json()["data"]["api_token"]
    phone = Device.objects.get(person=erin)
    assert "Lost Pixel" in staff_client.get(f"/admin/oncall/user/{erin.pk}/change/").content.decode()
    response = staff_client.post(
        f"/admin/oncall/user/{erin.pk}/change/",
        {
            "username": erin.username,
            "email": erin.email,
            "is_active": "on",
            "time_zone": "UTC",
            "devices-TOTAL_FORMS": "1",
            "devices-INITIAL_FORMS": "1",
            "devices-0-id": str(phone.pk),
            "devices-0-person": str(erin.pk),
            "devices-0-DELETE": "on",
            "notification_preferences-TOTAL_FORMS": "0",
            "notification_preferences-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert not Device.objects.filter(person=erin).exists()
    assert Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {app_token}").status_code == 401


def test_a_person_gets_an_api_token_from_the_command_line(capsys):
    person = make_user("frank")
    call_command("create_api_token", "frank", "deploy scripts")
    value = capsys.readouterr().out.strip()
    assert value.startswith("oncall_")
    token = api_token_authenticate(value, now=person.date_joined)
    assert (token.user, token.name) == (person, "deploy scripts")


def test_the_admin_front_page_shows_what_needs_attention(staff_client, populated):
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert "Open incidents by channel and severity" in page
    assert "Production" in page
    assert "Deliveries failing in the last hour" in page
    make_user("flaky", phone="+14155550199", phone_flagged="Twilio 21614: not a mobile number")
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert "Twilio 21614: not a mobile number" in page


def test_the_admin_front_page_lists_bots_whose_last_message_failed(staff_client, clock):
    earlier, later = clock(), clock() + timedelta(minutes=5)
    make_bot(
        "dingtalk",
        "https://oapi.dingtalk.com/robot/send?access_token=a",
        name="Recovered bot",
        last_error="errcode 310000",
        last_error_at=earlier,
        last_success_at=later,
    )
    make_bot(
        "feishu",
        "https://open.feishu.cn/open-apis/bot/v2/hook/b",
        name="Broken bot",
        last_error="code 19021: sign match fail",
        last_error_at=later,
        last_success_at=earlier,
    )
    make_bot(
        "slack",
        "https://hooks.slack.com/services/c",
        name="Never worked bot",
        last_error="404 no_service",
        last_error_at=later,
    )
    make_bot(
        "wecom",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=d",
        name="Switched off bot",
        last_error="errcode 93000",
        last_error_at=later,
        enabled=False,
    )
    page = staff_client.get(reverse("admin:index")).content.decode()
    section = page[page.index("Bots in error") : page.index("Contacts in error")]
    assert "Broken bot" in section and "code 19021: sign match fail" in section
    assert "Never worked bot" in section
    assert "Recovered bot" not in section
    assert "Switched off bot" not in section


def _save_person_with_preference(staff_client, person, severity, methods):
    return staff_client.post(
        f"/admin/oncall/user/{person.pk}/change/",
        {
            "username": person.username,
            "email": person.email,
            "is_active": "on",
            "time_zone": "UTC",
            "devices-TOTAL_FORMS": "0",
            "devices-INITIAL_FORMS": "0",
            "notification_preferences-TOTAL_FORMS": "1",
            "notification_preferences-INITIAL_FORMS": "0",
            "notification_preferences-0-severity": severity,
            "notification_preferences-0-methods": methods,
            "notification_preferences-0-person": str(person.pk),
            "_save": "Save",
        },
    )


def test_a_notification_preference_set_in_the_admin_takes_known_severities_and_methods(staff_client, clock):
    from channels_app.preferences import person_preferences
    from oncall.models import NotificationPreference

    carol = make_user("carol")
    response = _save_person_with_preference(staff_client, carol, "Critical", ["app", "sms"])
    assert response.status_code == 302, response.content[:2000]
    assert person_preferences(person=carol)["Critical"] == ["app", "sms"]

    dave = make_user("dave")
    for severity, methods in (("Bogus", ["email"]), ("Critical", ["fax"]), ("Critical", "5"), ("Critical", '"app"')):
        response = _save_person_with_preference(staff_client, dave, severity, methods)
        assert response.status_code == 200, "the form again, with its error"
        assert not NotificationPreference.objects.filter(person=dave).exists()
