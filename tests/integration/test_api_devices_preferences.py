"""/api/v1/me/devices/, /me/preferences/, /me/voice-numbers.vcf: the requester's own data only; and how
preferences decide the methods of levels that follow them and of direct notifications."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from rest_framework.test import APIClient

from channels_app.models import Delivery
from escalation.models import EscalationLevel, EscalationRule
from oncall.models import Device, Incident, NotificationPreference
from oncall.services.lifecycle import incident_reassign
from tests.factories import make_channel, make_integration, make_user, push

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/me/devices/"
PREFERENCES = "/api/v1/me/preferences/"
FORM = "application/x-www-form-urlencoded"
IOS_TOKEN = "a1" * 32
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/send/abc",
    "keys": {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg",
    },
}


@pytest.fixture
def alice(clock):
    return make_user("alice")


@pytest.fixture
def bob(clock):
    return make_user("bob")


def as_(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_linking_listing_and_unlinking_my_devices(alice):
    api = as_(alice)
    ios = api.post(
        DEVICES, {"platform": "ios", "token": IOS_TOKEN, "name": "iPhone", "app_version": "1.2"}, format="json"
    )
    assert ios.status_code == 201, ios.json()
    data = ios.json()["data"]
    assert (data["platform"], data["name"], data["app_version"], data["token_hint"]) == (
        "ios",
        "iPhone",
        "1.2",
        "a1a1a1",
    )
    assert "token" not in data  # a push token is a credential: never shown back whole
    web = api.post(DEVICES, {"platform": "web", "subscription": SUBSCRIPTION, "name": "Firefox"}, format="json")
    assert web.status_code == 201, web.json()
    assert Device.objects.get(platform="web").token == SUBSCRIPTION["endpoint"]
    items = api.get(DEVICES).json()["data"]["items"]
    assert [item["name"] for item in items] == ["Firefox", "iPhone"]
    gone = api.delete(f"{DEVICES}{data['id']}/")
    assert gone.status_code == 200 and gone.json()["data"]["name"] == "iPhone"
    assert list(Device.objects.values_list("platform", flat=True)) == ["web"]


def test_linking_the_same_token_again_updates_it_and_moves_it_to_the_new_owner(alice, bob):
    as_(bob).post(DEVICES, {"platform": "android", "token": "fcm-token-1", "name": "old"}, format="json")
    response = as_(alice).post(DEVICES, {"platform": "android", "token": "fcm-token-1", "name": "Pixel"}, format="json")
    assert response.status_code == 201
    device = Device.objects.get()
    assert (device.person, device.name) == (alice, "Pixel")


def test_an_ios_token_in_another_case_is_the_same_phone_and_moves_to_its_new_owner(alice, bob):
    """APNs tokens are hex: "AB…" and "ab…" name one phone, whatever case an app build sends it in."""
    first = as_(alice).post(DEVICES, {"platform": "ios", "token": "AB" * 32, "name": "old"}, format="json")
    again = as_(alice).post(DEVICES, {"platform": "ios", "token": "ab" * 32, "name": "iPhone"}, format="json")
    assert first.status_code == again.status_code == 201
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    as_(bob).post(DEVICES, {"platform": "ios", "token": " " + "Ab" * 32, "name": "bob's now"}, format="json")
    device = Device.objects.get()
    assert (device.person, device.name, device.token) == (bob, "bob's now", "ab" * 32)


def test_existing_ios_tokens_are_lower_cased_and_their_duplicates_merged_into_the_last_linked(alice, bob, clock):
    migration = importlib.import_module("oncall.migrations.0012_device_apns_token_lowercase")
    linked = clock.current

    def row(person, platform, token, minutes):
        created_at = linked + timedelta(minutes=minutes)
        return Device.objects.create(
            person=person,
            platform=platform,
            token=token,
            token_hash=migration._token_hash(platform, token),
            created_at=created_at,
        )

    row(alice, "ios", "ab" * 32, 0)
    row(alice, "ios", "AB" * 32, 1)
    bobs = row(bob, "ios", "aB" * 32, 2)  # the phone changed hands: bob linked it last
    alone = row(alice, "ios", "CD" * 32, 3)
    android = row(alice, "android", "Fcm-Token", 4)
    migration.lowercase_apns_tokens(django_apps, None)
    assert sorted(Device.objects.values_list("pk", "person__username", "token")) == [
        (bobs.pk, "bob", "ab" * 32),
        (alone.pk, "alice", "cd" * 32),
        (android.pk, "alice", "Fcm-Token"),
    ]
    # Linking either spelling again finds the merged row.
    again = as_(alice).post(DEVICES, {"platform": "ios", "token": "CD" * 32}, format="json")
    assert again.json()["data"]["id"] == alone.pk and Device.objects.count() == 3


def test_another_persons_device_is_404_and_untouched(alice, bob):
    device = as_(bob).post(DEVICES, {"platform": "android", "token": "bobs-token"}, format="json").json()["data"]
    response = as_(alice).delete(f"{DEVICES}{device['id']}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"
    assert Device.objects.filter(person=bob).count() == 1
    assert as_(alice).get(DEVICES).json()["data"]["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "pager", "token": "x"}, "platform"),
        ({"platform": "ios", "token": "not-hex"}, "token"),
        ({"platform": "android"}, "token"),
        ({"platform": "web", "subscription": {"endpoint": "ftp://x"}}, "subscription"),
        ({"platform": "web", "subscription": {**SUBSCRIPTION, "endpoint": "https://[::1"}}, "subscription"),
        (
            {"platform": "web", "subscription": {**SUBSCRIPTION, "endpoint": "https://push.example.test:99999/"}},
            "subscription",
        ),
        (
            {"platform": "web", "subscription": {**SUBSCRIPTION, "endpoint": "https://push.example.test:x/"}},
            "subscription",
        ),
        (
            {"platform": "web", "subscription": {**SUBSCRIPTION, "endpoint": "https://push.example.test:0/"}},
            "subscription",
        ),
        ({"platform": "web", "subscription": {**SUBSCRIPTION, "keys": {"p256dh": "x"}}}, "subscription"),
    ],
)
def test_bad_devices_are_refused_naming_the_field(alice, body, field):
    response = as_(alice).post(DEVICES, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Device.objects.count() == 0


def test_the_web_push_key_is_served_for_subscribing(alice, settings):
    assert as_(alice).get(f"{DEVICES}web-push-key/").json()["data"] == {"public_key": ""}
    settings.WEBPUSH_VAPID_PRIVATE_KEY = "3d8mNVIqJ8Gm_YQZr9qV2K9Bq9e3Z4cC8-2I6gA3pAY"
    key = as_(alice).get(f"{DEVICES}web-push-key/").json()["data"]["public_key"]
    assert len(key) == 87 and key.startswith("B")


def test_the_voice_numbers_vcard_lists_every_caller_id(alice, settings):
    settings.TWILIO_VOICE_FROM = ["+14155550100", "+442071838750"]
    response = as_(alice).get("/api/v1/me/voice-numbers.vcf", HTTP_ACCEPT="text/vcard")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    card = response.content.decode()
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:On-call alerts\r\n")
    assert "TEL;TYPE=VOICE:+14155550100\r\nTEL;TYPE=VOICE:+442071838750\r\nEND:VCARD\r\n" in card
    anonymous = APIClient().get("/api/v1/me/voice-numbers.vcf", HTTP_ACCEPT="text/vcard")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "Unauthorized"


def test_preferences_start_from_the_defaults_and_change_only_mine(alice, bob):
    assert as_(alice).get(PREFERENCES).json()["data"] == {
        "Critical": ["app", "voice", "email"],
        "Warning": ["app", "email"],
        "Info": ["email"],
    }
    response = as_(alice).put(PREFERENCES, {"Critical": ["voice", "sms"], "Info": []}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] == {"Critical": ["voice", "sms"], "Warning": ["app", "email"], "Info": []}
    assert as_(bob).get(PREFERENCES).json()["data"]["Critical"] == ["app", "voice", "email"]
    bad = as_(alice).put(PREFERENCES, {"Warning": ["pigeon"]}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("Warning")


def test_severities_spelled_as_flashduty_does_are_applied(alice):
    response = as_(alice).put(PREFERENCES, {"critical": ["sms"], "WARNING": ["voice"], "info": []}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {"Critical": ["sms"], "Warning": ["voice"], "Info": []}
    assert as_(alice).get(PREFERENCES).json()["data"] == {"Critical": ["sms"], "Warning": ["voice"], "Info": []}


def test_lowercase_severities_in_form_input_are_applied(alice):
    response = as_(alice).put(PREFERENCES, "critical=sms&critical=email&csrfmiddlewaretoken=x", content_type=FORM)
    assert response.status_code == 200, response.json()
    assert as_(alice).get(PREFERENCES).json()["data"]["Critical"] == ["sms", "email"]


@pytest.mark.parametrize(
    "body, key",
    [
        ({"Critical": ["sms"], "urgent": ["voice"]}, "urgent"),
        ({"Critical": ["sms"], "critical": ["voice"]}, "critical"),
    ],
)
def test_an_unknown_or_repeated_severity_is_refused_naming_it_and_changes_nothing(alice, body, key):
    as_(alice).put(PREFERENCES, {"Info": []}, format="json")
    before = as_(alice).get(PREFERENCES).json()["data"]
    response = as_(alice).put(PREFERENCES, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("InvalidParameter", key)
    assert error["message"].startswith(f"{key}: ")
    assert as_(alice).get(PREFERENCES).json()["data"] == before
    assert NotificationPreference.objects.filter(person=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_level_that_follows_preferences_uses_each_persons_own_methods(client, clock, mailoutbox):
    ann = make_user("ann")
    ben = make_user("ben")
    NotificationPreference.objects.create(person=ann, severity="Warning", methods=["email"])
    NotificationPreference.objects.create(person=ben, severity="Warning", methods=["sms"])
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Preferences")
    level = EscalationLevel.objects.create(rule=rule, position=0, follow_preferences=True, warning_methods=["voice"])
    level.people.set([ann, ben])
    push(client, make_integration(channel=channel)[1], {"title_rule": "disk", "event_status": "Warning"})
    assert list(Delivery.objects.values_list("recipient__username", "method")) == [("ann", "email")]
    assert "Skipped ben (sms): no verified sms contact." in Incident.objects.get().timeline.filter(
        kind="notify_failed"
    ).values_list("message", flat=True)


@pytest.mark.django_db(transaction=True)
def test_direct_notifications_use_the_new_responders_preferences(client, clock, mailoutbox):
    ann = make_user("ann")
    cy = make_user("cy", phone="+14155550177")
    NotificationPreference.objects.create(person=cy, severity="Critical", methods=["email", "sms"])
    channel = make_channel()
    push(client, make_integration(channel=channel)[1], {"title_rule": "api", "event_status": "Critical"})
    incident_reassign(incident=Incident.objects.get(), by=ann, people=[cy], source="api", now=clock.current)
    assert sorted(Delivery.objects.filter(event="assigned").values_list("method", "address")) == [
        ("email", "cy@example.com"),
        ("sms", "+14155550177"),
    ]
