"""JSON boxes in the admin left empty: their help texts say empty means "always", "all" or "none", and an empty box
is saved as such ([]) rather than a server error (IntegrityError NOT NULL: Django's JSON form field reads an empty
box as None). Every admin form of the project is checked, so a new JSON box cannot bring the error back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django import forms
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.test import RequestFactory
from django.urls import reverse

from escalation.models import EscalationLevel, EscalationRule
from oncall.models import Channel, RoutingRule
from tests.factories import make_channel, make_schedule, make_team, make_user
from tests.integration.admin_forms import one_level_rule_form

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root():
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, root):
    client.force_login(root)
    return client


@pytest.mark.parametrize("box", ["filters", "time_windows"])
def test_an_escalation_rule_saved_with_an_empty_condition_box_applies_always(staff_client, box):
    data = one_level_rule_form(make_channel("Prod"), "Catch-all", emails='["oncall@example.com"]')
    data[box] = ""  # cleared: "empty: always" / "empty: all"
    response = staff_client.post(reverse("admin:escalation_escalationrule_add"), data)
    assert response.status_code == 302
    rule = EscalationRule.objects.get()
    assert getattr(rule, box) == []
    listing = staff_client.get(reverse("admin:escalation_escalationrule_changelist")).content.decode()
    assert "always" in listing


def test_a_level_saved_with_an_empty_email_box_notifies_its_people(staff_client):
    ann = make_user("ann")
    data = one_level_rule_form(make_channel("Prod"), "Default", people=[ann.pk], emails="")
    response = staff_client.post(reverse("admin:escalation_escalationrule_add"), data)
    assert response.status_code == 302
    level = EscalationLevel.objects.get()
    assert (level.emails, list(level.people.all())) == ([], [ann])


def test_a_level_with_only_an_empty_email_box_is_still_refused_for_reaching_nobody(staff_client):
    data = one_level_rule_form(make_channel("Prod"), "Default", emails="")
    page = staff_client.post(reverse("admin:escalation_escalationrule_add"), data).content.decode()
    assert "This level reaches nobody" in page
    assert not EscalationRule.objects.exists()


def test_a_channel_saved_with_an_empty_grouping_box_groups_nothing(staff_client):
    data = {
        "name": "Payments",
        "description": "",
        "team": make_team("Payments team").pk,
        "time_zone": "UTC",
        "group_keys": "",
        "group_window_minutes": 60,
        "close_with_alerts": "on",
        "auto_resolve_minutes": 0,
    }
    response = staff_client.post(reverse("admin:oncall_channel_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Channel.objects.get(name="Payments").group_keys == []


def test_a_routing_rule_saved_with_an_empty_filter_box_takes_every_event(staff_client):
    channel = make_channel("Prod")
    data = {
        "name": "Prometheus prod",
        "kind": "standard",
        "channel": channel.pk,
        "enabled": "on",
        "routing_rules-TOTAL_FORMS": 1,
        "routing_rules-INITIAL_FORMS": 0,
        "routing_rules-0-position": 0,
        "routing_rules-0-name": "Everything",
        "routing_rules-0-enabled": "on",
        "routing_rules-0-filters": "",
        "routing_rules-0-mode": "channels",
        "routing_rules-0-channels": [channel.pk],
        "routing_rules-0-name_mapping_label": "",
        "routing_rules-0-fallthrough": "on",
    }
    assert staff_client.post(reverse("admin:oncall_integration_add"), data).status_code == 200  # shows the key
    assert RoutingRule.objects.get().filters == []


def test_a_layer_saved_with_an_empty_restriction_box_is_unrestricted(staff_client):
    ann = make_user("ann")
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    schedule = make_schedule("Checkout", layers=[{"start": start, "groups": [[ann]], "unit": "day"}])
    layer = schedule.layers.get()
    data = {
        "schedule": schedule.pk,
        "position": layer.position,
        "name": layer.name or "Layer",
        "rotation_unit": layer.rotation_unit,
        "rotation_count": layer.rotation_count,
        "start_0": "2026-03-02",
        "start_1": "09:00:00",
        "restriction_kind": "none",
        "restriction_windows": "",
        "members-TOTAL_FORMS": 0,
        "members-INITIAL_FORMS": 0,
    }
    response = staff_client.post(reverse("admin:escalation_layer_change", args=[layer.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    layer.refresh_from_db()
    assert layer.restriction_windows == []


PROJECT_APPS = ("oncall", "escalation", "channels_app")


def _admin_forms(request):
    """(label, form class, model) of every admin page's form of the project's apps, and of its inlines' forms."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        if model_admin.has_add_permission(request) or model_admin.has_change_permission(request):
            yield model._meta.label, model_admin.get_form(request), model
        for inline in model_admin.get_inline_instances(request):
            yield f"{model._meta.label} / {inline.model._meta.label}", inline.get_formset(request).form, inline.model


def test_no_admin_form_saves_an_empty_json_box_as_null(root):
    request = RequestFactory().get("/admin/")
    request.user = root
    checked, null_saved = [], []
    for label, form, model in _admin_forms(request):
        for name, field in form.base_fields.items():
            try:
                model_field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue  # a form's own field (a secret, a list as text), not a column
            if not isinstance(model_field, models.JSONField) or model_field.null:
                continue
            checked.append(f"{label}.{name}")
            try:
                value = field.clean("")
            except forms.ValidationError:
                continue  # refused with a message: fine
            if value is None:
                null_saved.append(f"{label}.{name}")
    assert "escalation.EscalationRule.time_windows" in checked, "the check found the admin's JSON boxes"
    assert null_saved == []
