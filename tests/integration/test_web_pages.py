"""Engineer pages: sign-in, the incident list and detail with every action, and the personal center — each person
sees and changes only what is theirs."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from oncall.models import ApiToken, Incident
from oncall.services.tokens import api_token_create
from tests.factories import make_channel, make_integration, make_rule, make_team, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(client, clock):
    alice, bob, eve = make_user("alice", first_name="Alice"), make_user("bob", first_name="Bob"), make_user("eve")
    payments = make_channel("Payments", team=make_team("Payments team", members=[alice, bob]))
    secret = make_channel("Secret", team=make_team("Secret team", members=[eve]))
    make_rule(payments, [{"people": [alice], "after": 30}, {"people": [bob]}])
    _, pay_key = make_integration(channel=payments)
    _, secret_key = make_integration(channel=secret)
    push(
        client,
        pay_key,
        {
            "title_rule": "Card payments failing",
            "event_status": "Critical",
            "alert_key": "cards",
            "labels": {"psp": "acme"},
        },
    )
    push(client, secret_key, {"title_rule": "Secret project down", "event_status": "Warning", "alert_key": "s"})
    return {
        "alice": alice,
        "bob": bob,
        "eve": eve,
        "payments": Incident.objects.get(title="Card payments failing"),
        "secret": Incident.objects.get(title="Secret project down"),
    }


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_sign_in_and_the_login_form_signs_in(world):
    anonymous = Client()
    for url in ("/incidents/", f"/incidents/{world['payments'].pk}/", "/me/"):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert anonymous.get("/").status_code == 302
    page = anonymous.post("/accounts/login/", {"username": "alice", "password": "pw", "next": "/incidents/"})
    assert page.status_code == 302 and page["Location"] == "/incidents/"
    assert "Card payments failing" in anonymous.get("/incidents/").content.decode()
    wrong = Client().post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert "did not match" in wrong.content.decode()


def test_the_list_shows_only_incidents_of_my_channels_and_filters(world):
    page = signed_in(world["alice"]).get("/incidents/").content.decode()
    assert "Card payments failing" in page and "Secret project down" not in page
    assert "Card payments failing" not in signed_in(world["alice"]).get("/incidents/?severity=Warning").content.decode()
    assert "Card payments failing" in signed_in(world["alice"]).get("/incidents/?q=payments").content.decode()
    mine = signed_in(world["bob"]).get("/incidents/?scope=mine").content.decode()
    assert "No incidents match" in mine, "bob is not a responder yet"
    fragment = signed_in(world["alice"]).get("/incidents/?fragment=1")
    assert "<html" not in fragment.content.decode() and "Card payments failing" in fragment.content.decode()


def test_someone_elses_incident_is_a_404_for_reading_and_for_every_action(world):
    eve = signed_in(world["eve"])
    pk = world["payments"].pk
    assert eve.get(f"/incidents/{pk}/").status_code == 404
    for action in (
        "acknowledge",
        "unacknowledge",
        "close",
        "reopen",
        "snooze",
        "wake",
        "escalate",
        "reassign",
        "comment",
    ):
        assert eve.post(f"/incidents/{pk}/{action}/", {"text": "x", "minutes": 30}).status_code == 404, action
    assert Incident.objects.get(pk=pk).progress == "Triggered"
    assert not world["payments"].timeline.filter(actor=world["eve"]).exists()


def test_acknowledge_snooze_wake_close_reopen_and_comment_from_the_detail_page(world, clock, mailoutbox):
    alice = signed_in(world["alice"])
    pk = world["payments"].pk
    detail = alice.get(f"/incidents/{pk}/").content.decode()
    assert "Acknowledge" in detail and "psp" in detail and "Level 1 notified Alice" in detail

    alice.post(f"/incidents/{pk}/acknowledge/")
    assert Incident.objects.get(pk=pk).progress == "Processing"
    page = alice.post(f"/incidents/{pk}/snooze/", {"minutes": 60}, follow=True).content.decode()
    assert "Snoozed." in page and Incident.objects.get(pk=pk).snoozed_until is not None
    alice.post(f"/incidents/{pk}/wake/")
    assert Incident.objects.get(pk=pk).progress == "Triggered"
    alice.post(f"/incidents/{pk}/comment/", {"text": "Acme says it is on their side"})
    alice.post(f"/incidents/{pk}/close/", {"reason": "Acme fixed it"})
    assert Incident.objects.get(pk=pk).progress == "Closed"
    refused = alice.post(f"/incidents/{pk}/reopen/", {"reason": ""}, follow=True).content.decode()
    assert "A reason is required to reopen" in refused
    alice.post(f"/incidents/{pk}/reopen/", {"reason": "failing again"})
    incident = Incident.objects.get(pk=pk)
    assert incident.progress == "Triggered"
    kinds = list(incident.timeline.filter(source="web").values_list("kind", flat=True))
    assert kinds == ["acknowledged", "snoozed", "woken", "comment", "closed", "reopened"]


def test_illegal_actions_say_why(world):
    alice = signed_in(world["alice"])
    pk = world["payments"].pk
    page = alice.post(f"/incidents/{pk}/snooze/", {"minutes": 30}, follow=True).content.decode()
    assert "must be acknowledged before it can be snoozed" in page


def test_reassign_and_escalate_from_the_page(world, mailoutbox):
    alice = signed_in(world["alice"])
    pk = world["payments"].pk
    alice.post(f"/incidents/{pk}/escalate/", {"level": 2})
    assert [m.to[0] for m in mailoutbox][-1] == "bob@example.com"
    alice.post(f"/incidents/{pk}/reassign/", {"people": [world["eve"].pk], "mode": "add"})
    assert set(Incident.objects.get(pk=pk).responders.values_list("username", flat=True)) >= {"alice", "bob", "eve"}


def test_forms_are_protected_against_cross_site_requests(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["alice"])
    assert client.post(f"/incidents/{world['payments'].pk}/acknowledge/").status_code == 403
    assert client.post("/me/tokens/", {"name": "x"}).status_code == 403
    assert Incident.objects.get(pk=world["payments"].pk).progress == "Triggered"


def test_a_token_created_on_the_page_is_shown_once_and_can_be_revoked(world):
    alice = signed_in(world["alice"])
    page = alice.post("/me/tokens/", {"name": "laptop"}).content.decode()
    value = re.search(r'<code class="secret" id="new-token">(oncall_[^<]+)</code>', page).group(1)
    again = alice.get("/me/").content.decode()
    assert value not in again and "laptop" in again
    token = ApiToken.objects.get(user=world["alice"], name="laptop")
    alice.post(f"/me/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_nobody_can_see_or_revoke_someone_elses_token(world, clock):
    token, _value = api_token_create(user=world["bob"], name="bob's script", now=clock.current)
    alice = signed_in(world["alice"])
    assert "bob&#x27;s script" not in alice.get("/me/").content.decode()
    assert alice.post(f"/me/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_profile_changes_are_checked_and_only_ever_mine(world):
    alice = signed_in(world["alice"])
    bad = alice.post("/me/profile/", {"first_name": "Alice", "last_name": "C", "time_zone": "Mars/Olympus"})
    assert bad.status_code == 400 and "not a known time zone" in bad.content.decode()
    alice.post(
        "/me/profile/", {"first_name": "Alicia", "last_name": "Chen", "time_zone": "Asia/Shanghai", "username": "bob"}
    )
    world["alice"].refresh_from_db()
    world["bob"].refresh_from_db()
    assert (world["alice"].first_name, world["alice"].time_zone, world["alice"].username) == (
        "Alicia",
        "Asia/Shanghai",
        "alice",
    )
    assert world["bob"].first_name == "Bob"


def test_times_are_shown_in_my_time_zone(world):
    world["alice"].time_zone = "Asia/Shanghai"
    world["alice"].save()
    page = signed_in(world["alice"]).get(f"/incidents/{world['payments'].pk}/").content.decode()
    assert "17:00 CST" in page  # the incident started at 09:00 UTC


def test_the_web_app_can_be_installed(world):
    client = Client()
    manifest = client.get("/manifest.webmanifest").json()
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/incidents/"
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    worker = client.get("/sw.js")
    assert worker["Service-Worker-Allowed"] == "/" and b"notificationclick" in b"".join(worker.streaming_content)


def test_password_reset_sends_a_link_by_email(world, mailoutbox):
    Client().post(reverse("password_reset"), {"email": "alice@example.com"})
    assert mailoutbox[-1].to == ["alice@example.com"] and "/accounts/reset/" in mailoutbox[-1].body
