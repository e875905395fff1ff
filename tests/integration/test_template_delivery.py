"""Deliveries render through the rule's template set; a failing body falls back to the default, and the delivery
and the timeline say which set and slot failed and why."""

from __future__ import annotations

import re

import pytest
from django.test import TestCase

from channels_app.models import Delivery, TemplateSet
from escalation.models import EscalationRule
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Incident, Source
from oncall.services.lifecycle import incident_reassign
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.fakes.smtp import FakeSmtpServer, free_port
from tests.integration.paging import configure_twilio

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {
    "title_rule": "Queue <jobs> backlog > 10k",
    "event_status": "Warning",
    "alert_key": "q",
    "labels": {"queue": "jobs", "team": "billing"},
}
CUSTOM = {
    "email_subject": "{{ incident.severity|upper }} {{ incident.title }} ({{ incident.channel }})",
    "email_text": "Hi {{ recipient.name }}: {{ headline }}\n{{ incident|join_labels('queue') }}\n{{ ack_url }}",
    "email_html": "<h1>{{ incident.title }}</h1><p>{{ incident.labels.team }}</p>",
}


@pytest.fixture
def dana():
    return make_user("dana", first_name="Dana")


def channel_with_rule(person, template_set: TemplateSet | None = None) -> str:
    channel = make_channel("Jobs")
    rule = make_rule(channel, [{"people": [person]}])
    rule.template_set = template_set
    rule.save()
    return make_integration(channel=channel)[1]


def test_the_email_uses_the_template_set_chosen_on_the_rule(client, clock, dana, mailoutbox):
    custom = TemplateSet.objects.create(name="Jobs team", bodies=CUSTOM)
    push(client, channel_with_rule(dana, custom), EVENT)

    [mail] = mailoutbox
    assert mail.subject == "WARNING Queue <jobs> backlog > 10k (Jobs)"
    assert mail.body.startswith("Hi Dana: A new incident needs your attention.\njobs\nhttps://oncall.example.test/")
    assert mail.alternatives[0][0] == "<h1>Queue &lt;jobs&gt; backlog &gt; 10k</h1><p>billing</p>"
    delivery = Delivery.objects.get()
    assert (delivery.template_set, delivery.template_error, delivery.status) == (custom, "", "sent")
    assert not Incident.objects.get().timeline.filter(detail__fallback=True).exists()


def test_a_failing_custom_body_sends_the_default_and_records_why(client, clock, dana, mailoutbox):
    broken = TemplateSet.objects.create(
        name="Broken",
        bodies={
            "email_subject": "{{ incident.title }",  # syntax error
            "email_text": "ok\n{{ incident.title.__class__ }}",  # sandbox violation on line 2
            "email_html": "<p>{{ incident.title }}</p>",  # fine: still used
        },
    )
    push(client, channel_with_rule(dana, broken), EVENT)

    [mail] = mailoutbox
    incident = Incident.objects.get()
    assert mail.subject == f"[Warning] #{incident.number} Queue <jobs> backlog > 10k"
    assert "Hello Dana," in mail.body and "A new incident needs your attention." in mail.body
    assert mail.alternatives[0][0] == "<p>Queue &lt;jobs&gt; backlog &gt; 10k</p>"

    delivery = Delivery.objects.get()
    assert delivery.status == "sent"
    assert delivery.template_error.startswith("email_subject: line 1: unexpected '}'")
    assert "email_text: line 2: SecurityError" in delivery.template_error
    entry = incident.timeline.get(detail__fallback=True)
    assert entry.kind == "notify_failed"
    assert entry.message.startswith("Template set Broken failed for email_subject, email_text, so the default was sent")
    assert entry.detail["template_set_id"] == broken.pk
    assert set(entry.detail["slots"]) == {"email_subject", "email_text"}


def test_a_runaway_custom_body_is_stopped_and_the_default_sent(client, clock, dana, mailoutbox):
    bomb = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    slow = TemplateSet.objects.create(name="Slow", bodies={"email_subject": bomb})
    push(client, channel_with_rule(dana, slow), EVENT)
    assert mailoutbox[0].subject.startswith("[Warning] #")
    assert "ran longer than" in Delivery.objects.get().template_error


def test_the_fallback_is_recorded_once_though_the_send_is_retried(client, clock, dana, settings):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    broken = TemplateSet.objects.create(name="Broken", bodies={"email_subject": "{{ 1 / 0 }}"})
    push(client, channel_with_rule(dana, broken), EVENT)
    assert Delivery.objects.get().status == "pending"  # no mail server yet

    server = FakeSmtpServer(port).start()
    try:
        clock.advance(seconds=30)
        tick(now=clock_module.now())
    finally:
        server.stop()
    [mail] = server.received
    incident = Incident.objects.get()
    assert mail.subject == f"[Warning] #{incident.number} Queue <jobs> backlog > 10k"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert "ZeroDivisionError" in delivery.template_error
    assert incident.timeline.filter(detail__fallback=True).count() == 1


def test_a_custom_sms_that_renders_nothing_for_this_alert_sends_the_default_and_says_why(
    client, clock, settings, fake_providers
):
    """A body that says something only when a label is set renders nothing for an alert without it; Twilio
    refuses an empty SMS for good (21602), so the default is sent instead."""
    configure_twilio(settings, fake_providers)
    sam = make_user("sam", phone="+14155550123")
    sms = "{% if incident.labels.service %}{{ incident.labels.service }}: {{ incident.title }}{% endif %}"
    terse = TemplateSet.objects.create(name="Terse", bodies={"sms": sms})
    channel = make_channel("Ops")
    rule = make_rule(channel, [{"people": [sam], "methods": ["sms"]}])
    rule.template_set = terse
    rule.save()
    push(client, make_integration(channel=channel)[1], {"title_rule": "db-1 disk full", "event_status": "Critical"})

    [sms] = fake_providers.received("/twilio/")
    incident = Incident.objects.get()
    assert sms.field("Body").startswith(f"Triggered: [Critical] #{incident.number} db-1 disk full")
    delivery = Delivery.objects.get()
    assert delivery.status == "sent"
    assert delivery.template_error == "sms: The template rendered nothing."
    entry = incident.timeline.get(detail__fallback=True)
    assert entry.message.startswith("Template set Terse failed for sms, so the default was sent")


def test_a_reassignment_email_names_who_assigned_it(client, clock, dana, mailoutbox):
    boss = make_user("boss", first_name="Bea", last_name="Boss")
    push(client, channel_with_rule(dana), EVENT)
    incident = Incident.objects.get()
    erin = make_user("erin", first_name="Erin")
    with TestCase.captureOnCommitCallbacks(execute=True):
        incident_reassign(incident=incident, by=boss, people=[erin], source=Source.WEB, now=clock.current)
    mail = mailoutbox[-1]
    assert mail.to == ["erin@example.com"]
    assert mail.subject.startswith("[Assigned] [Warning]")
    assert "Bea Boss assigned this incident to you." in mail.body


def test_the_acknowledge_link_in_the_email_acknowledges_the_incident(client, clock, dana, mailoutbox):
    push(client, channel_with_rule(dana), EVENT)
    [url] = re.findall(r"Acknowledge: (\S+)", mailoutbox[0].body)
    path = url.removeprefix("https://oncall.example.test")
    client.force_login(dana)
    assert client.post(path).status_code == 200
    incident = Incident.objects.get()
    assert incident.progress == "Processing"
    assert incident.timeline.get(kind="acknowledged").source == "bot"


def test_the_next_level_still_pages_after_the_frozen_rules_template_set_is_deleted(client, clock, mailoutbox):
    """The incident's rule was frozen naming a custom set; the admin then switched the rule back to the default
    and deleted the set (nothing protects it any more). The next level goes out in the default wording."""
    ann, ben = make_user("ann"), make_user("ben")
    channel = make_channel()
    custom = TemplateSet.objects.create(name="Payments wording")
    rule = make_rule(channel, [{"people": [ann], "after": 5}, {"people": [ben], "after": 5}])
    EscalationRule.objects.filter(pk=rule.pk).update(template_set=custom)
    _, key = make_integration(channel=channel)
    push(client, key, {"title_rule": "db down", "event_status": "Critical", "alert_key": "db"})
    assert [mail.to[0] for mail in mailoutbox] == ["ann@example.com"]

    EscalationRule.objects.filter(pk=rule.pk).update(template_set=None)
    custom.delete()
    clock.advance(minutes=5)
    tick(now=clock_module.now())

    assert [mail.to[0] for mail in mailoutbox] == ["ann@example.com", "ben@example.com"]
    to_ben = Delivery.objects.get(recipient__username="ben")
    assert to_ben.template_set_id is None
    assert "was deleted; the default templates were used" in to_ben.template_error
