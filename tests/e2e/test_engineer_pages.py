"""What an engineer does in a browser: sign in, see an incident arrive, acknowledge it, and stay out of others'
settings. Also screenshots of the main pages at phone and desktop widths."""

from __future__ import annotations

import json
import re

import pytest
import requests

from channels_app.preferences import person_preferences
from oncall.models import Incident
from tests.e2e.conftest import DESKTOP, PHONE, screenshot, sign_in
from tests.factories import make_channel, make_integration, make_rule, make_team, make_user
from tests.integration.paging import configure_twilio

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    alice = make_user("alice", first_name="Alice", last_name="Chen")
    bob = make_user("bob", first_name="Bob")
    channel = make_channel("Payments", team=make_team("Payments team", members=[alice]))
    make_rule(channel, [{"people": [alice]}])
    _, key = make_integration(channel=channel)
    return {"alice": alice, "bob": bob, "key": key}


def push(live_server, key: str, body: dict) -> None:
    response = requests.post(
        f"{live_server.url}/event/push/alert/standard?integration_key={key}",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_an_engineer_binds_a_phone_sets_preferences_and_acknowledges_a_new_incident(
    page, live_server, world, settings, fake_providers
):
    configure_twilio(settings, fake_providers)
    sign_in(page, "alice")
    page.get_by_text("No incidents match").wait_for()

    # Bind and verify a phone number with the code the fake SMS provider received.
    page.goto("/me/")
    page.get_by_label("Phone number").fill("+1 415 555 0123")
    page.get_by_role("button", name="Send a code to this number").click()
    page.get_by_text("A code was sent to +14155550123").wait_for()
    code = re.search(r"\b(\d{6})\b", fake_providers.received("/twilio/")[-1].field("Body")).group(1)
    page.locator("#verify-phone input[name=code]").fill(code)
    page.locator("#verify-phone").get_by_role("button", name="Verify").click()
    page.get_by_text("Verified: notifications may use it now.").wait_for()
    assert page.locator("#contacts").get_by_text("+14155550123").is_visible()

    # Critical incidents by SMS and email, nothing else.
    for severity, methods in (("Critical", {"sms", "email"}), ("Warning", {"email"}), ("Info", set())):
        for method in ("app", "voice", "sms", "email"):
            box = page.locator(f"input[name={severity}][value={method}]")
            box.set_checked(method in methods)
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Notification preferences saved.").wait_for()
    assert person_preferences(person=world["alice"])["Critical"] == ["sms", "email"]

    page.goto("/incidents/")
    push(
        live_server,
        world["key"],
        {
            "title_rule": "Card payments failing",
            "event_status": "Critical",
            "alert_key": "cards",
            "labels": {"psp": "acme"},
        },
    )
    # The list refreshes by itself; no reload.
    page.get_by_text("Card payments failing").wait_for(timeout=25_000)
    page.get_by_text("Card payments failing").click()
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("Acknowledged.").wait_for()
    assert page.locator(".timeline").get_by_text("Acknowledged by Alice Chen.").is_visible()
    assert Incident.objects.get().progress == "Processing"


def test_an_engineer_cannot_open_someone_elses_settings_or_incidents(page, live_server, world):
    push(live_server, world["key"], {"title_rule": "Payments down", "event_status": "Critical", "alert_key": "p"})
    incident = Incident.objects.get()
    sign_in(page, "bob")
    response = page.goto(f"/incidents/{incident.pk}/")
    assert response.status == 404
    page.goto("/me/")
    assert "Bob" in page.locator("h1").inner_text()
    assert page.get_by_text("alice", exact=False).count() == 0


def test_screenshots_of_the_main_pages_at_phone_and_desktop_widths(browser, live_server, world):
    push(
        live_server,
        world["key"],
        {
            "title_rule": "Card payments failing for 12% of requests",
            "event_status": "Critical",
            "alert_key": "cards",
            "labels": {"psp": "acme", "region": "eu-west-1"},
            "description": "Error rate above 10% for 5 minutes.",
        },
    )
    push(live_server, world["key"], {"title_rule": "Refund queue backlog", "event_status": "Warning", "alert_key": "q"})
    incident = Incident.objects.order_by("pk").first()
    for name, viewport, mobile in (("phone", PHONE, True), ("desktop", DESKTOP, False)):
        context = browser.new_context(base_url=live_server.url, viewport=viewport, is_mobile=mobile)
        page = context.new_page()
        page.goto("/accounts/login/")
        screenshot(page, f"{name}-login")
        sign_in(page, "alice")
        screenshot(page, f"{name}-incidents")
        page.goto(f"/incidents/{incident.pk}/")
        screenshot(page, f"{name}-incident")
        page.goto("/me/")
        screenshot(page, f"{name}-me")
        if mobile:
            # Tap targets stay large on a phone.
            box = (
                page.goto(f"/incidents/{incident.pk}/")
                and page.get_by_role("button", name="Acknowledge").bounding_box()
            )
            assert box["height"] >= 44
        context.close()
