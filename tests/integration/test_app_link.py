"""The phone app linked by its QR code (/api/v1/devices/link/): the API token it gets is the app's and belongs to the
device. Linking the phone again replaces that token, unlinking the phone signs its app out, a new push token (or
the push service forgetting the old one) keeps the app signed in, and tokens for scripts keep their own limit."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from oncall.errors import SignedOut
from oncall.models import ApiToken, Device
from oncall.services.devices import device_link, device_link_token_create, device_unlink, devices_remove
from oncall.services.tokens import api_token_create
from tests.factories import make_user

pytestmark = pytest.mark.django_db

REDEEM = "/api/v1/devices/link/"
DEVICES = "/api/v1/me/devices/"
TOKENS = "/api/v1/me/tokens/"


@pytest.fixture
def alice(clock):
    return make_user("alice", first_name="Alice")


@pytest.fixture
def bob(clock):
    return make_user("bob")


def redeem(person, clock, *, push_token: str = "fcm-token-of-alices-pixel", name: str = "Pixel") -> dict:
    """What the app does with a QR code the person just showed: the answer's status and body."""
    _row, link_token = device_link_token_create(person=person, now=clock.current)
    body = {"link_token": link_token, "platform": "android", "token": push_token, "name": name}
    response = APIClient().post(REDEEM, body, format="json")
    return {"status": response.status_code, "body": response.json()}


def app_client(api_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    return client


def owner_client(person) -> APIClient:
    client = APIClient()
    client.force_authenticate(person)
    return client


def signs_in(api_token: str) -> bool:
    answer = app_client(api_token).get("/api/v1/me/").status_code
    assert answer in (200, 401)
    return answer == 200


def test_linking_the_same_phone_again_by_qr_code_replaces_its_token(alice, clock):
    # The app signed out and in again, its data cleared, set up once more: the same phone shows each new QR code.
    answers = []
    for _n in range(6):
        answers.append(redeem(alice, clock))
        clock.advance(minutes=1)
    assert [a["status"] for a in answers] == [201] * 6, answers[-1]["body"]
    tokens = [a["body"]["data"]["api_token"] for a in answers]
    assert [signs_in(token) for token in tokens] == [False] * 5 + [True]
    [device] = Device.objects.filter(person=alice)
    assert list(ApiToken.objects.active().values_list("device", flat=True)) == [device.pk]


def test_a_phone_set_up_again_with_a_new_push_token_links_every_time(alice, clock):
    # A reinstalled app gets a new push token: each setup is a new device, and the sixth must be linked too, or no
    # push reaches the phone.
    answers = []
    for n in range(6):
        answers.append(redeem(alice, clock, push_token=f"fcm-token-after-install-{n}"))
        clock.advance(minutes=1)
    assert [a["status"] for a in answers] == [201] * 6, answers[-1]["body"]
    assert Device.objects.filter(person=alice, token="fcm-token-after-install-5").exists()
    assert signs_in(answers[-1]["body"]["data"]["api_token"])


def test_tokens_for_scripts_stay_limited_to_five_and_phones_do_not_count(alice, clock):
    assert redeem(alice, clock, push_token="fcm-pixel")["status"] == 201
    owner = owner_client(alice)
    created = [owner.post(TOKENS, {"name": f"script {n}"}, format="json").status_code for n in range(6)]
    assert created == [201] * 5 + [400]
    refused = owner.post(TOKENS, {"name": "one more"}, format="json").json()["error"]
    assert refused["field"] == "name" and "5 active tokens" in refused["message"]
    assert redeem(alice, clock, push_token="fcm-tablet", name="Tablet")["status"] == 201
    listed = {item["name"]: (item["for_app"], item["device_id"]) for item in owner.get(TOKENS).json()["data"]["items"]}
    assert listed["App on Tablet"] == (True, Device.objects.get(name="Tablet").pk)
    assert listed["script 0"] == (False, None)


def test_an_app_whose_push_token_is_gone_is_still_not_counted_among_the_tokens_for_scripts(alice, clock):
    linked = redeem(alice, clock, push_token="fcm-pixel")["body"]["data"]
    devices_remove(device_ids=[linked["device"]["id"]])
    owner = owner_client(alice)
    created = [owner.post(TOKENS, {"name": f"script {n}"}, format="json").status_code for n in range(6)]
    assert created == [201] * 5 + [400]
    listed = {item["name"]: (item["for_app"], item["device_id"]) for item in owner.get(TOKENS).json()["data"]["items"]}
    assert listed["App on Pixel"] == (True, None)
    assert signs_in(linked["api_token"])


def test_unlinking_the_phone_through_the_api_signs_its_app_out(alice, clock):
    # A lost phone: its pushes stop, and its token must not go on acknowledging, closing or reassigning as Alice.
    linked = redeem(alice, clock)
    assert linked["status"] == 201
    device_id, app_token = linked["body"]["data"]["device"]["id"], linked["body"]["data"]["api_token"]
    assert owner_client(alice).delete(f"{DEVICES}{device_id}/").status_code == 200
    assert not Device.objects.filter(pk=device_id).exists()
    assert not signs_in(app_token)
    assert ApiToken.objects.get(name="App on Pixel").revoked_at == clock.current


def test_unlinking_the_phone_in_the_personal_center_says_and_does_sign_its_app_out(alice, clock):
    app_token = redeem(alice, clock)["body"]["data"]["api_token"]
    browser = {"endpoint": "https://push.example.test/send/firefox", "keys": {"p256dh": "BNcR", "auth": "tBHI"}}
    web = owner_client(alice).post(DEVICES, {"platform": "web", "subscription": browser}, format="json")
    assert web.status_code == 201, web.json()
    page = Client()
    page.force_login(alice)
    devices = page.get("/me/").content.decode().split('<section id="devices">')[1].split("</section>")[0]
    assert devices.count("Unlink and sign out its app") == 1  # the phone; the browser has no app to sign out
    assert devices.count(">Unlink</button>") == 1
    phone = Device.objects.get(platform="android")
    answer = page.post(f"/me/devices/{phone.pk}/unlink/", follow=True).content.decode()
    assert "Device unlinked: no more push notifications to it, and its app is signed out." in answer
    assert not signs_in(app_token)


def test_a_phone_linked_to_another_account_signs_the_first_one_out(alice, bob, clock):
    alices = redeem(alice, clock, push_token="fcm-shared-pixel")["body"]["data"]["api_token"]
    bobs = redeem(bob, clock, push_token="fcm-shared-pixel")
    assert bobs["status"] == 201
    assert Device.objects.get(token="fcm-shared-pixel").person == bob
    assert not signs_in(alices)
    assert app_client(bobs["body"]["data"]["api_token"]).get("/api/v1/me/").json()["data"]["username"] == "bob"


def test_the_app_reporting_a_new_push_token_stays_signed_in_and_its_old_one_is_unlinked(alice, clock):
    # Push services renew a phone's push token now and then; the app then links the new one with its own token.
    linked = redeem(alice, clock, push_token="fcm-before-renewal")["body"]["data"]
    app = app_client(linked["api_token"])
    renewed = app.post(DEVICES, {"platform": "android", "token": "fcm-after-renewal", "name": "Pixel"}, format="json")
    assert renewed.status_code == 201, renewed.json()
    assert list(Device.objects.values_list("token", flat=True)) == ["fcm-after-renewal"]
    assert signs_in(linked["api_token"])
    # The token follows the phone: unlinking it now still signs the app out.
    assert owner_client(alice).delete(f"{DEVICES}{renewed.json()['data']['id']}/").status_code == 200
    assert not signs_in(linked["api_token"])


def test_a_script_linking_a_device_keeps_the_other_devices_and_its_token(alice, clock):
    linked = redeem(alice, clock, push_token="fcm-pixel")
    _token, value = api_token_create(user=alice, name="provisioning", now=clock.current)
    answer = app_client(value).post(DEVICES, {"platform": "android", "token": "fcm-tablet"}, format="json")
    assert answer.status_code == 201, answer.json()
    assert sorted(Device.objects.values_list("token", flat=True)) == ["fcm-pixel", "fcm-tablet"]
    assert ApiToken.objects.get(name="provisioning").device is None
    assert signs_in(value) and signs_in(linked["body"]["data"]["api_token"])


def test_an_app_whose_push_token_is_gone_stays_signed_in_and_links_its_new_one(alice, clock):
    # FCM renewed the push token while the phone was offline, and said the old one was gone when a page went to it.
    linked = redeem(alice, clock, push_token="fcm-before-renewal")["body"]["data"]
    assert devices_remove(device_ids=[linked["device"]["id"]]) == 1
    assert not Device.objects.exists()
    assert signs_in(linked["api_token"])
    token = ApiToken.objects.get(name="App on Pixel")
    assert (token.for_app, token.device, token.revoked_at) == (True, None, None)
    page = Client()
    page.force_login(alice)
    assert "phone app, no device linked" in page.get("/me/").content.decode()
    app = app_client(linked["api_token"])
    renewed = app.post(DEVICES, {"platform": "android", "token": "fcm-after-renewal", "name": "Pixel"}, format="json")
    assert renewed.status_code == 201, renewed.json()
    [device] = Device.objects.all()
    assert (device.token, device.person) == ("fcm-after-renewal", alice)
    assert ApiToken.objects.get(name="App on Pixel").device == device
    # It belongs to the new device: unlinking that one in the personal center signs the app out.
    answer = page.post(f"/me/devices/{device.pk}/unlink/", follow=True).content.decode()
    assert "its app is signed out" in answer
    assert not signs_in(linked["api_token"])


def test_an_app_signed_out_while_linking_its_new_push_token_links_nothing(alice, clock):
    # Alice unlinks her lost phone at the moment its app reports a new push token: the request authenticated just
    # before the unlink, but the lost phone must not be linked again and go on receiving pages.
    linked = redeem(alice, clock, push_token="fcm-lost-phone")["body"]["data"]
    stale = ApiToken.objects.get(name="App on Pixel")
    device_unlink(device=Device.objects.get(), now=clock.current)
    with pytest.raises(SignedOut):
        device_link(person=alice, platform="android", token="fcm-renewed", now=clock.current, api_token=stale)
    assert not Device.objects.exists()
    assert not signs_in(linked["api_token"])
