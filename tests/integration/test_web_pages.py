"""Engineer pages: sign-in, the incident list and detail with every action, and the personal center — each person
sees and changes only what is theirs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from channels_app.preferences import person_preferences
from oncall.models import ApiToken, Incident
from oncall.services import lifecycle
from oncall.services.devices import device_link
from oncall.services.tokens import api_token_create
from tests.factories import make_channel, make_integration, make_rule, make_schedule, make_team, make_user, push
from tests.integration.paging import configure_twilio

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


def test_a_merged_incidents_page_points_at_the_target_instead_of_offering_reopen(world, client, clock):
    alice = signed_in(world["alice"])
    payments = world["payments"]
    _, key = make_integration(channel=payments.channel)
    for alert_key, title in (("refunds", "Card refunds failing"), ("old", "Old outage")):
        push(client, key, {"title_rule": title, "event_status": "Critical", "alert_key": alert_key})
    merged, closed = Incident.objects.get(title="Card refunds failing"), Incident.objects.get(title="Old outage")
    lifecycle.incident_merge(incident=merged, into=payments, by=world["alice"], source="web", now=clock.current)
    lifecycle.incident_resolve(incident=closed, by=world["alice"], source="web", now=clock.current)

    page = alice.get(f"/incidents/{merged.pk}/").content.decode()
    assert f'Merged into <a href="/incidents/{payments.pk}/">#{payments.pk}</a>' in page
    assert f"/incidents/{merged.pk}/reopen/" not in page, "no Reopen button"
    plain = alice.get(f"/incidents/{closed.pk}/").content.decode()
    assert f"/incidents/{closed.pk}/reopen/" in plain, "a closed incident that was not merged offers it"
    refused = alice.post(f"/incidents/{merged.pk}/reopen/", {"reason": "is it fixed?"}, follow=True).content.decode()
    assert f"was merged into #{payments.pk}; reopen or handle #{payments.pk} instead." in refused
    assert Incident.objects.get(pk=merged.pk).progress == "Closed"


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


def test_my_shifts_on_the_page_are_those_of_the_api_the_running_one_from_its_real_start(clock):
    """Monday 09:00: Ann has been on call since Sunday 10:00 (Ann and Ben alternate daily at 10:00 from Friday).
    "My shifts" starts with that shift as it really began, like GET /api/v1/me/shifts/, not "from" the moment the
    page was loaded; her shift that ended on Saturday is not listed."""
    ann, ben = make_user("ann"), make_user("ben")
    now = clock.current  # Monday 2026-03-02 09:00 UTC
    make_schedule(
        "Payments", layers=[{"start": now - timedelta(days=2, hours=23), "unit": "day", "groups": [[ann], [ben]]}]
    )
    page = signed_in(ann).get("/me/").content.decode()
    table = page.split('<section id="shifts">', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr><td>Payments</td><td>Primary</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table)
    assert rows[:2] == [("Sun 03-01 10:00 UTC", "Mon 03-02 10:00 UTC"), ("Tue 03-03 10:00 UTC", "Wed 03-04 10:00 UTC")]
    api = APIClient()
    api.force_authenticate(ann)
    items = api.get("/api/v1/me/shifts/", {"days": 28}).json()["data"]["items"]

    def shown(value: str) -> str:
        return datetime.fromisoformat(value).strftime("%a %m-%d %H:%M UTC")

    assert rows == [(shown(item["start"]), shown(item["end"])) for item in items]


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


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    return fake_providers


def test_an_engineer_binds_and_verifies_a_phone_number_on_the_page(world, twilio):
    alice = signed_in(world["alice"])
    page = alice.post("/me/contacts/code/", {"contact": "phone", "phone": "+1 415 555 0123"}, follow=True)
    assert "A code was sent to +14155550123" in page.content.decode()
    code = re.search(r"\b(\d{6})\b", twilio.received("/twilio/")[-1].field("Body")).group(1)
    wrong = alice.post("/me/contacts/verify/", {"contact": "phone", "code": "000000"}, follow=True).content.decode()
    assert "That code is wrong" in wrong
    done = alice.post("/me/contacts/verify/", {"contact": "phone", "code": code}, follow=True).content.decode()
    assert "Verified" in done
    world["alice"].refresh_from_db()
    assert world["alice"].phone == "+14155550123" and world["alice"].phone_verified_at is not None


def test_preferences_are_saved_per_severity_and_tests_reach_me(world, mailoutbox):
    alice = signed_in(world["alice"])
    alice.post("/me/preferences/", {"Critical": ["email", "voice"], "Warning": ["email"]})
    assert person_preferences(person=world["alice"]) == {
        "Critical": ["email", "voice"],
        "Warning": ["email"],
        "Info": [],
    }
    page = alice.post("/me/test/email/", follow=True).content.decode()
    assert "Test sent by Email" in page
    assert mailoutbox[-1].to == ["alice@example.com"] and "Test notification" in mailoutbox[-1].subject
    refused = alice.post("/me/test/sms/", follow=True).content.decode()
    assert "no verified sms contact" in refused


def test_a_phone_app_links_itself_by_the_qr_code_once(world, clock):
    alice = signed_in(world["alice"])
    page = alice.post("/me/devices/link-code/").content.decode()
    assert '<div class="qr-code" id="link-qr"><svg' in page
    token = _link_token_from(page)
    api = APIClient()
    body = {"link_token": token, "platform": "android", "token": "fcm-token-123", "name": "Pixel"}
    linked = api.post("/api/v1/devices/link/", body, format="json")
    assert linked.status_code == 201, linked.json()
    data = linked.json()["data"]
    assert data["person"]["username"] == "alice" and data["device"]["name"] == "Pixel"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['api_token']}")
    assert api.get("/api/v1/me/").json()["data"]["username"] == "alice"
    again = APIClient().post("/api/v1/devices/link/", body, format="json")
    assert again.status_code == 400 and again.json()["error"]["field"] == "link_token"
    assert "Pixel" in alice.get("/me/").content.decode()


def test_a_phone_app_with_a_name_as_long_as_allowed_links_itself(world, clock):
    token = _link_token_from(signed_in(world["alice"]).post("/me/devices/link-code/").content.decode())
    name = "Alice's Galaxy S24 Ultra (work profile) " + "x" * 60  # the 100 characters a device name may have
    body = {"link_token": token, "platform": "android", "token": "fcm-token-7", "name": name}
    linked = APIClient().post("/api/v1/devices/link/", body, format="json")
    assert linked.status_code == 201, linked.json()
    assert ApiToken.objects.get(user=world["alice"]).name == f"App on {name}"[:100]


def test_link_codes_expire(world, clock):
    token = _link_token_from(signed_in(world["alice"]).post("/me/devices/link-code/").content.decode())
    clock.advance(minutes=11)
    body = {"link_token": token, "platform": "android", "token": "fcm-token-9"}
    assert APIClient().post("/api/v1/devices/link/", body, format="json").status_code == 400


def test_nobody_can_unlink_someone_elses_device(world, clock):
    device = device_link(person=world["bob"], platform="android", token="bobs-phone", now=clock.current)
    assert signed_in(world["alice"]).post(f"/me/devices/{device.pk}/unlink/").status_code == 404
    signed_in(world["bob"]).post(f"/me/devices/{device.pk}/unlink/")
    assert not world["bob"].devices.exists()


def test_the_page_language_follows_my_setting(world):
    alice = signed_in(world["alice"])
    alice.post("/me/profile/", {"first_name": "Alice", "last_name": "", "time_zone": "UTC", "language": "zh-hans"})
    assert '<html lang="zh-hans">' in alice.get("/me/").content.decode()


def _link_token_from(page: str) -> str:
    return re.search(r'<code class="secret" id="link-code">([^<]+)</code>', page).group(1)


ODD_VALUES = ["", "abc", "-1", "0", "99999999999999999999999", "\x00", "☃" * 3000, "1.5"]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_incident_actions_and_lists_answer_odd_input_with_a_form_error_not_a_500(clock, value):
    from oncall.web.incidents import ACTIONS

    alice = make_user("alice")
    channel = make_channel("Payments", team=make_team("T", members=[alice]))
    make_rule(channel, [{"people": [alice], "after": 30}])
    _, key = make_integration(channel=channel)
    push(Client(), key, {"title_rule": "Down", "event_status": "Critical", "alert_key": "k"})
    incident = Incident.objects.get()
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    for action in [*ACTIONS, "bogus"]:
        data = {"reason": value, "minutes": value, "level": value, "people": [value], "mode": value, "text": value}
        response = client.post(f"/incidents/{incident.pk}/{action}/", data)
        assert response.status_code < 500, (action, value, response.status_code)
    for query in (f"?page={value}", f"?channel={value}", f"?scope={value}&progress={value}", f"?q={value}&fragment=1"):
        assert client.get(f"/incidents/{query}").status_code < 500, query
