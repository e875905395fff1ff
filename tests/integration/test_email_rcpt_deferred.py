"""A temporary SMTP refusal of the recipient (4xx on RCPT: greylisting, a busy mailbox, a rate limit) is tried
again later and leaves the address alone; only a 5xx on the recipient fails the email and flags it
(docs/people.md)."""

from __future__ import annotations

import pytest

from channels_app.models import Delivery
from oncall.models import User
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.fakes.smtp import FakeSmtpServer, free_port

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {"title_rule": "Queue backlog > 10k", "event_status": "Warning", "alert_key": "q"}


@pytest.fixture
def smtp(settings):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = 2
    settings.DEFAULT_FROM_EMAIL = "pager@oncall.example.test"
    server = FakeSmtpServer(port)

    async def greylist(srv, session, envelope, address, rcpt_options):
        return "450 4.2.0 Greylisted, please try again later"

    server.handler.handle_RCPT = greylist
    server.start()
    yield server
    server.stop()


def test_a_greylisted_recipient_is_retried_not_failed_and_flagged(client, clock, smtp):
    channel = make_channel("Jobs")
    make_rule(channel, [{"people": [make_user("dana")], "methods": ["email"]}])
    key = make_integration(channel=channel)[1]
    push(client, key, EVENT)
    delivery = Delivery.objects.get()
    dana = User.objects.get(username="dana")
    assert dana.email_flagged == "", "a 4xx (temporary) refusal flagged the address"
    assert delivery.status == "pending", "a 4xx (temporary) refusal was not retried"
