"""The email method against a real SMTP server on loopback: what is sent, and how each failure is handled."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest

from channels_app.models import Delivery
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Incident, User
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.fakes.smtp import FakeSmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {"title_rule": "Queue backlog > 10k", "event_status": "Warning", "alert_key": "q", "labels": {"q": "jobs"}}


@pytest.fixture
def smtp(smtp_port):
    server = FakeSmtpServer(smtp_port).start()
    yield server
    server.stop()


@pytest.fixture
def key():
    channel = make_channel("Jobs")
    make_rule(channel, [{"people": [make_user("dana", first_name="Dana")]}])
    return make_integration(channel=channel)[1]


def run_ticker():
    return tick(now=clock_module.now())


def test_the_mail_has_subject_text_html_and_the_configured_sender(client, clock, key, smtp):
    push(client, key, EVENT)
    [mail] = smtp.received
    incident = Incident.objects.get()
    assert mail.recipients == ["dana@example.com"]
    assert mail.mail_from == "pager@oncall.example.test"
    assert mail.subject == f"[Warning] #{incident.number} Queue backlog > 10k"
    assert "Hello Dana," in mail.part("text/plain")
    assert "Queue backlog &gt; 10k" in mail.part("text/html")
    assert Delivery.objects.get().provider_id == mail.message["Message-ID"]


def test_a_refused_recipient_fails_permanently_without_retries(client, clock, key, smtp):
    smtp.refuse("dana@example.com")
    push(client, key, EVENT)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "recipient refused" in delivery.error
    failure = Incident.objects.get().timeline.get(kind="notify_failed")
    assert "dana@example.com" in failure.message
    clock.advance(minutes=10)
    run_ticker()
    assert Delivery.objects.get().attempts == 1
    assert smtp.received == []


def test_an_unreachable_mail_server_is_retried_with_backoff_then_succeeds(client, clock, key, smtp_port):
    push(client, key, EVENT)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at == clock.current + timedelta(seconds=30)
    assert "mail server error" in delivery.error

    server = FakeSmtpServer(smtp_port).start()
    try:
        clock.advance(seconds=29)
        run_ticker()
        assert server.received == []
        clock.advance(seconds=1)
        run_ticker()
        assert len(server.received) == 1
    finally:
        server.stop()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 2, "")


def test_retries_stop_after_the_last_attempt_and_the_timeline_says_so(client, clock, key, smtp_port):
    push(client, key, EVENT)
    for wait in (30, 120, 300):
        clock.advance(seconds=wait)
        run_ticker()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert "failed after 4 attempt(s)" in Incident.objects.get().timeline.get(kind="notify_failed").message
    clock.advance(hours=1)
    run_ticker()
    assert Delivery.objects.get().attempts == 4


def test_a_recipient_the_mail_server_defers_is_tried_again_and_keeps_the_address(client, clock, key, smtp_port):
    """A 4xx on RCPT (greylisting, a busy mailbox, a rate limit) is temporary; only a 5xx fails the email and flags
    the address (docs/people.md)."""
    server = FakeSmtpServer(smtp_port)

    async def greylist(srv, session, envelope, address, rcpt_options):
        return "450 4.2.0 Greylisted, please try again later"

    server.handler.handle_RCPT = greylist
    server.start()
    try:
        push(client, key, EVENT)
    finally:
        server.stop()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and "deferred" in delivery.error
    assert User.objects.get(username="dana").email_flagged == ""


def test_a_mail_server_that_never_answers_is_given_up_on_within_the_attempts_time(
    client, clock, key, smtp_port, settings
):
    """A mail server that takes the connection and never says a word. Waiting EMAIL_TIMEOUT for it would outlast
    the attempt's lease, and the ticker would send the email again alongside; the wait is cut to what is left of
    the attempt (80% of the lease, here 1.6 s), so the attempt is recorded and retried."""
    settings.EMAIL_TIMEOUT = 15
    settings.DELIVERY_SEND_LEASE_SECONDS = 2
    silent = socket.create_server(("127.0.0.1", smtp_port))  # the connection is queued, never greeted
    try:
        started = time.monotonic()
        push(client, key, EVENT)
        waited = time.monotonic() - started
    finally:
        silent.close()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "mail server error" in delivery.error and "timed out" in delivery.error
    assert waited < 10
