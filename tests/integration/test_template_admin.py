"""The template set admin: a broken body is refused with its slot and line, the preview renders every slot, reset
and copy work, and the platform's default set cannot be edited or deleted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_app.models import TemplateSet
from channels_app.templating import SLOTS
from oncall.services.incidents import incident_open
from tests.factories import make_channel, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def default_set():
    return TemplateSet.objects.filter(is_default=True).first() or TemplateSet.objects.create(
        name="Default", is_default=True
    )


def form_data(name: str = "Night shift", **bodies: str) -> dict[str, str]:
    data = {"name": name, "description": "", "team": ""}
    for slot in SLOTS:
        data[f"body_{slot}"] = bodies.get(slot, "")
    return data


ADD = reverse("admin:channels_app_templateset_add")


def test_a_valid_set_is_saved_with_only_its_non_empty_bodies(staff_client):
    response = staff_client.post(ADD, form_data(email_subject="{{ incident.title }}", sms="SMS {{ incident.number }}"))
    assert response.status_code == 302
    saved = TemplateSet.objects.get(name="Night shift")
    assert saved.bodies == {"email_subject": "{{ incident.title }}", "sms": "SMS {{ incident.number }}"}
    assert not saved.is_default


def test_a_broken_body_is_refused_with_its_slot_and_line(staff_client):
    response = staff_client.post(
        ADD,
        form_data(
            email_subject="{{ incident.title }}",
            dingtalk="### {{ incident.title }}\n\n{% for alert in incident.alerts %}\n- {{ alert.title }\n{% endfor %}",
            webhook='{"title": "{{ incident.title }}"}',
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"body_dingtalk", "body_webhook"}
    assert errors["body_dingtalk"][0].startswith("line 4: unexpected '}'")
    assert "not valid JSON" in errors["body_webhook"][0]
    assert not TemplateSet.objects.filter(name="Night shift").exists()


def test_a_body_that_fails_only_for_some_events_is_refused_too(staff_client):
    # The actor is empty for an escalation: this body works for an acknowledgement and fails otherwise.
    response = staff_client.post(ADD, form_data(sms="{{ actor.name.upper() }} did it"))
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["body_sms"]
    assert error.startswith("line 1:") and "announcing triggered" in error


def test_a_body_that_renders_nothing_for_a_sample_is_refused(staff_client):
    # The sample without labels has no `service`: this SMS would be empty, which Twilio refuses for good.
    sms = "{% if incident.labels.service %}{{ incident.labels.service }}: {{ incident.title }}{% endif %}"
    response = staff_client.post(ADD, form_data(sms=sms, telegram="{{ '' }}  "))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"body_sms", "body_telegram"}
    assert errors["body_sms"][0].startswith("The template rendered nothing. (announcing ")
    assert not TemplateSet.objects.filter(name="Night shift").exists()


def test_a_telegram_body_telegram_cannot_parse_is_refused(staff_client):
    telegram = '<b>{{ incident.title }}</b><br>{{ headline }}<br><a href="{{ detail_url }}">Open</a>'
    response = staff_client.post(ADD, form_data(telegram=telegram))
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["body_telegram"]
    assert error.startswith("The HTML would be refused: <br> is not a supported tag (allowed tags: a, b, blockquote")
    assert not TemplateSet.objects.filter(name="Night shift").exists()


def test_the_change_form_shows_each_slot_with_its_limit_and_default(staff_client):
    template_set = TemplateSet.objects.create(name="Ops", bodies={"sms": "custom {{ incident.number }}"})
    page = staff_client.get(reverse("admin:channels_app_templateset_change", args=[template_set.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "custom {{ incident.number }}" in content
    assert "Limit: 4000 bytes" in content and "Limit: 3 SMS segments" in content
    assert "Show the default" in content and "{{ event_label }}: [{{ incident.severity }}]" in content
    assert reverse("admin:channels_app_templateset_preview", args=[template_set.pk]) in content


def test_reset_to_default_per_slot_and_for_the_whole_set(staff_client):
    template_set = TemplateSet.objects.create(name="Ops", bodies={"sms": "a", "voice": "b", "slack": "c"})
    url = reverse("admin:channels_app_templateset_change", args=[template_set.pk])
    data = form_data("Ops", sms="a", voice="b", slack="c")
    data["reset_voice"] = "on"
    assert staff_client.post(url, data).status_code == 302
    template_set.refresh_from_db()
    assert template_set.bodies == {"sms": "a", "slack": "c"}

    changelist = reverse("admin:channels_app_templateset_changelist")
    staff_client.post(changelist, {"action": "reset_sets", "_selected_action": [template_set.pk]})
    template_set.refresh_from_db()
    assert template_set.bodies == {}


def test_copy_starts_a_new_set_from_an_existing_one(staff_client, default_set):
    source = TemplateSet.objects.create(name="Ops", description="Ours", bodies={"sms": "a"})
    changelist = reverse("admin:channels_app_templateset_changelist")
    staff_client.post(changelist, {"action": "copy_sets", "_selected_action": [source.pk, default_set.pk]})
    staff_client.post(changelist, {"action": "copy_sets", "_selected_action": [source.pk]})
    assert TemplateSet.objects.get(name="Copy of Ops").bodies == {"sms": "a"}
    assert TemplateSet.objects.get(name="Copy of Ops (2)").description == "Ours"
    copy_of_default = TemplateSet.objects.get(name=f"Copy of {default_set.name}")
    assert (copy_of_default.is_default, copy_of_default.bodies) == (False, {})


def test_the_preview_renders_every_slot_for_the_sample_and_for_a_real_incident(staff_client, clock):
    template_set = TemplateSet.objects.create(
        name="Ops", bodies={"email_subject": "Subject: {{ incident.title }}", "sms": "{{ 1/0 }}"}
    )
    url = reverse("admin:channels_app_templateset_preview", args=[template_set.pk])
    sample = staff_client.get(url, {"event": "escalated"})
    assert sample.status_code == 200
    content = sample.content.decode()
    assert "Rendered for a sample incident." in content
    assert "Subject: Disk usage above 90% on db-1" in content
    assert "The custom body failed, so the default is shown: line 1: ZeroDivisionError" in content
    assert "Escalated: [Critical] #42" in content  # the default SMS
    assert '<iframe sandbox srcdoc="' in content
    for slot in SLOTS.values():
        assert str(slot.label) in content

    incident = incident_open(
        channel=make_channel("Payments"),
        title="Card <payments> failing",
        description="",
        severity="Warning",
        labels={"svc": "cards"},
        now=clock.current,
    )
    real = staff_client.get(url, {"incident": incident.pk, "event": "triggered"})
    content = real.content.decode()
    assert f"Rendered for incident #{incident.pk} Card &lt;payments&gt; failing." in content
    assert "Subject: Card &lt;payments&gt; failing" in content
    missing = staff_client.get(url, {"incident": "999999"})
    assert "There is no incident 999999; showing the sample." in missing.content.decode()


def test_the_default_set_cannot_be_deleted_or_edited(staff_client, default_set):
    delete = reverse("admin:channels_app_templateset_delete", args=[default_set.pk])
    assert staff_client.get(delete).status_code == 403
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:channels_app_templateset_changelist")
    staff_client.post(changelist, {"action": "delete_selected", "_selected_action": [default_set.pk], "post": "yes"})
    assert TemplateSet.objects.filter(pk=default_set.pk).exists()

    url = reverse("admin:channels_app_templateset_change", args=[default_set.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert "It cannot be edited or deleted" in page.content.decode()
    staff_client.post(url, form_data(default_set.name, sms="changed"))
    default_set.refresh_from_db()
    assert default_set.bodies == {}
