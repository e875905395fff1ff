"""Admin actions: Django runs an action for anyone who can open the list unless it names the permissions it needs,
so every action names them, and staff who may only view a model run none that change something (or show a new
secret)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client

from channels_app.models import TemplateSet
from escalation.feeds import calendar_feed_create
from escalation.models import CalendarFeed
from oncall.services.tokens import api_token_create
from tests.factories import make_channel, make_integration, make_schedule, make_user

pytestmark = pytest.mark.django_db


# django-q2's own admin (resubmitting a failed task) is not ours: our tasks are idempotent by design.
OUR_APPS = {"oncall", "escalation", "channels_app"}


def test_every_admin_action_names_the_permissions_it_needs():
    unguarded = [
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in OUR_APPS
        for func, name, _description in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    assert unguarded == []


def viewer(*codenames: str) -> Client:
    user = make_user(f"staff-{'-'.join(codenames)}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def run_action(client: Client, changelist: str, action: str, pk: int):
    return client.post(changelist, {"action": action, "_selected_action": [pk], "index": 0})


def test_view_only_staff_cannot_regenerate_an_integration_key_nor_see_one(clock):
    integration, _key = make_integration(channel=make_channel())
    client = viewer("view_integration")
    assert client.get("/admin/oncall/integration/").status_code == 200
    response = run_action(client, "/admin/oncall/integration/", "regenerate_keys", integration.pk)
    old_hash = integration.key_hash
    integration.refresh_from_db()
    assert integration.key_hash == old_hash
    assert b"integration_key=" not in response.content
    # Staff who may change integrations can.
    editor = viewer("view_integration", "change_integration")
    response = run_action(editor, "/admin/oncall/integration/", "regenerate_keys", integration.pk)
    integration.refresh_from_db()
    assert integration.key_hash != old_hash and b"integration_key=" in response.content


def test_view_only_staff_cannot_revoke_an_api_token(clock):
    token, _value = api_token_create(user=make_user("owner"), name="ci", now=clock())
    run_action(viewer("view_apitoken"), "/admin/oncall/apitoken/", "revoke", token.pk)
    token.refresh_from_db()
    assert token.revoked_at is None


def test_view_only_staff_cannot_create_a_schedule_feed_url_nor_see_one(clock):
    schedule = make_schedule()
    response = run_action(viewer("view_schedule"), "/admin/escalation/schedule/", "regenerate_feeds", schedule.pk)
    assert not CalendarFeed.objects.filter(schedule=schedule).exists()
    assert b"/calendar/schedule/" not in response.content


def test_view_only_staff_cannot_reset_a_template_set(clock):
    template_set = TemplateSet.objects.create(name="Custom", bodies={"sms": "Custom SMS {{ incident.title }}"})
    run_action(viewer("view_templateset"), "/admin/channels_app/templateset/", "reset_sets", template_set.pk)
    template_set.refresh_from_db()
    assert template_set.bodies


def test_only_staff_who_may_change_feeds_revoke_one(clock):
    feed, _token = calendar_feed_create(person=make_user("owner"), now=clock())
    run_action(viewer("view_calendarfeed"), "/admin/escalation/calendarfeed/", "revoke", feed.pk)
    feed.refresh_from_db()
    assert feed.revoked_at is None
    editor = viewer("view_calendarfeed", "change_calendarfeed")
    run_action(editor, "/admin/escalation/calendarfeed/", "revoke", feed.pk)
    feed.refresh_from_db()
    assert feed.revoked_at is not None
