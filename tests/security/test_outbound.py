"""Outbound requests of bots and webhooks cannot be turned against the platform's own network (SSRF).

Already proved elsewhere, not repeated here: which addresses count as private, loopback, link-local or otherwise
non-public, a name that resolves to loopback refused like the address, and redirects never followed
(tests/unit/test_http.py); the same for the HTTP/2 path (tests/unit/test_http2_path.py). This module proves it
end to end, through escalation and a bot delivery, and at the admin where an operator enters a bot's URL.
"""

from __future__ import annotations

import pytest
from django.test import Client

from channels_app.models import Bot, Delivery
from tests.factories import make_bot, make_channel, make_integration, make_rule, make_user, push
from tests.security.conftest import signed_in

pytestmark = pytest.mark.django_db

EVENT = {"title_rule": "Disk full", "event_status": "Critical", "alert_key": "disk"}


def page_bot(url: str) -> Delivery:
    """An alert on a channel whose rule posts to a Slack-style bot at `url`: the bot's delivery."""
    person = make_user("oscar")
    bot = make_bot("slack", url)
    channel = make_channel("Ops")
    make_rule(channel, [{"people": [person], "methods": ["email"], "bots": [bot]}])
    assert push(Client(), make_integration(channel=channel)[1], EVENT).status_code == 200
    return Delivery.objects.get(bot=bot)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_bot_at_a_loopback_address_is_not_called_when_private_addresses_are_off(fakes, settings, mailoutbox, host):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    fakes.slack_hooks.add("/services/T/B/internal")
    delivery = page_bot(fakes.url("/slack/services/T/B/internal").replace("127.0.0.1", host))
    assert fakes.received("/slack/") == []
    assert delivery.status != Delivery.Status.SENT
    assert "private or local address" in delivery.error
    bot = Bot.objects.get(pk=delivery.bot_id)
    assert bot.last_error_at is not None and bot.last_success_at is None


def test_the_same_bot_is_called_when_private_addresses_are_on(fakes, settings, mailoutbox):
    """The control: the setting, not something else, kept the bot above from being called."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    fakes.slack_hooks.add("/services/T/B/internal")
    delivery = page_bot(fakes.url("/slack/services/T/B/internal"))
    assert len(fakes.received("/slack/")) == 1
    assert delivery.status == Delivery.Status.SENT, delivery.error


def test_a_bot_that_redirects_is_not_followed(fakes, settings, mailoutbox):
    """A webhook that answers with a redirect to an internal address: the platform does not go there. (The target
    here is the fake server itself, reachable, so a followed redirect would show in what it received.)"""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    fakes.slack_hooks.add("/services/T/B/redirecting")
    fakes.fail_next("/slack/", status=302, headers={"Location": fakes.url("/metadata/latest/iam/credentials")})
    delivery = page_bot(fakes.url("/slack/services/T/B/redirecting"))
    assert len(fakes.received("/slack/")) == 1
    assert fakes.received("/metadata/") == []
    assert delivery.status != Delivery.Status.SENT


def add_bot(url: str):
    admin = signed_in(make_user("root", is_staff=True, is_superuser=True))
    form = {"name": "Internal", "kind": "slack", "url": url, "enabled": "on", "fallback": "none"}
    form |= {"message_format": "markdown", "event_types": ["triggered"], "mentions": ""}
    return admin.post("/admin/channels_app/bot/add/?kind=slack", data=form)


def test_the_admin_saves_a_bot_at_a_public_url(settings):
    """The control of the refusal below: the same form with a public URL is saved."""
    settings.OUTBOUND_ALLOW_PRIVATE = False
    response = add_bot("https://hooks.slack.com/services/T0/B0/secret")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Bot.objects.get().url == "https://hooks.slack.com/services/T0/B0/secret"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://localhost/hook",
    ],
)
def test_the_admin_refuses_a_bot_url_at_a_private_address(settings, url):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    response = add_bot(url)
    assert not Bot.objects.exists()
    assert response.status_code == 200
    assert b"private" in response.content or b"local" in response.content
