"""App push to every linked device: FCM (Android) and Web Push (the web app) against the fake provider server,
APNs (iOS) against the fake APNs (HTTP/2 over TLS, tests/fakes/apns.py). Success, each class of error, gone tokens
unlinking the device (the app on it staying signed in), retry then success, exhaustion."""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from channels_app.models import Delivery, TemplateSet
from channels_app.providers import apns, app, fcm
from channels_app.providers.webpush import vapid_public_key
from oncall.lib import http
from oncall.lib.http import http2_transport as real_http2_transport
from oncall.models import ApiToken, Device, Incident
from oncall.services.devices import device_link, device_link_token_create
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.fakes.apns import FakeApns
from tests.integration.paging import later

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_EMAIL = "oncall-push@demo-project.iam.gserviceaccount.com"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fcm_on(settings, fake_providers, rsa_key):
    fcm._tokens.clear()
    settings.FCM_API_URL = fake_providers.url("/fcm")
    settings.FCM_SERVICE_ACCOUNT = json.dumps(
        {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "key-1",
            "private_key": pem(rsa_key),
            "client_email": CLIENT_EMAIL,
            "token_uri": fake_providers.url("/fcm/token"),
        }
    )
    fake_providers.fcm_service_accounts[CLIENT_EMAIL] = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    yield fake_providers
    fcm._tokens.clear()


@pytest.fixture
def webpush_on(settings, fake_providers):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.WEBPUSH_VAPID_PRIVATE_KEY = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:ops@example.com"
    fake_providers.webpush_vapid_key = vapid_public_key()
    return fake_providers


@pytest.fixture(scope="module")
def _apns_server():
    key = ec.generate_private_key(ec.SECP256R1())
    server = FakeApns(team_id="TEAM123456", keys={"KEY1234567": key.public_key()}, topic="com.example.oncall")
    server.private_key, server.public_key = key, key.public_key()
    yield server
    server.close()


@pytest.fixture
def apns_on(settings, monkeypatch, _apns_server, clock):
    """APNs: the fake HTTP/2 server on 127.0.0.1 (TLS, ALPN h2), trusted by the platform's HTTP/2 transport."""
    settings.APNS_API_URL = _apns_server.url
    settings.APNS_TEAM_ID = "TEAM123456"
    settings.APNS_KEY_ID = "KEY1234567"
    settings.APNS_PRIVATE_KEY = pem(_apns_server.private_key)
    settings.APNS_TOPIC = "com.example.oncall"
    _apns_server.requests.clear()
    _apns_server.answers.clear()
    _apns_server.apns_ids.clear()
    _apns_server.other_environment.clear()
    _apns_server.on_request = None
    _apns_server.now = lambda: clock.current.timestamp()
    monkeypatch.setattr(http, "http2_transport", lambda: real_http2_transport(_apns_server.client_ssl_context()))
    http.http2_reset()
    apns.forget_provider_token()
    yield _apns_server
    http.http2_reset()
    apns.forget_provider_token()


@pytest.fixture
def ada(clock):
    return make_user("ada")


def link(person, platform: str, token: str, **fields) -> Device:
    return device_link(person=person, platform=platform, token=token, now=person.date_joined, **fields)


def browser_subscription(fake, name: str) -> dict:
    receiver = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = receiver.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": fake.url(f"/webpush/{name}"), "keys": {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}}


@pytest.fixture
def key_for(ada):
    def make(severity_methods=("app",)):
        channel = make_channel("Core")
        make_rule(channel, [{"people": [ada], "methods": list(severity_methods)}])
        return make_integration(channel=channel)[1]

    return make


def event(severity: str = "Critical", key: str = "api") -> dict:
    return {"title_rule": f"{key} is down", "event_status": severity, "alert_key": key}


# -- FCM ---------------------------------------------------------------------------------------------------------


def test_android_push_mints_an_access_token_and_sends_a_high_priority_message(client, clock, fcm_on, ada, key_for):
    device = link(ada, "android", "fcm-token-ada")
    key = key_for()
    push(client, key, event())
    [token_request] = fcm_on.received("/fcm/token")
    assert token_request.field("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assertion = jwt.get_unverified_header(token_request.field("assertion"))
    assert assertion == {"alg": "RS256", "kid": "key-1", "typ": "JWT"}
    [send] = fcm_on.received("/fcm/v1/")
    assert send.path == "/fcm/v1/projects/demo-project/messages:send"
    assert send.headers["authorization"] in {f"Bearer {t}" for t in fcm_on.fcm_access_tokens}
    message = send.json["message"]
    number = Incident.objects.get().number
    assert message["token"] == "fcm-token-ada"
    assert message["notification"]["title"] == f"[Critical] #{number} api is down"
    assert message["android"]["priority"] == "HIGH"
    assert message["android"]["notification"]["channel_id"] == "oncall_critical"
    assert message["data"]["incident_id"] == str(Incident.objects.get().pk)
    assert message["data"]["url"].endswith(f"/incidents/{Incident.objects.get().pk}/")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.address) == ("sent", "1 device(s)")
    assert delivery.provider_id.startswith("projects/demo-project/messages/")
    device.refresh_from_db()
    assert device.last_pushed_at == clock.current
    # The token is kept: the next push does not mint another.
    push(client, key, event(key="db"))
    assert len(fcm_on.received("/fcm/token")) == 1
    assert len(fcm_on.received("/fcm/v1/")) == 2


def test_a_warning_uses_the_regular_channel(client, clock, fcm_on, ada, key_for):
    link(ada, "android", "fcm-token-ada")
    push(client, key_for(), event("Warning"))
    message = fcm_on.received("/fcm/v1/")[0].json["message"]
    assert message["android"]["notification"]["channel_id"] == "oncall_incidents"


def test_an_unregistered_token_unlinks_the_device_and_fails_the_push(client, clock, fcm_on, ada, key_for):
    link(ada, "android", "stale-token")
    fcm_on.fcm_unregistered.add("stale-token")
    push(client, key_for(), event())
    assert Device.objects.count() == 0
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "UNREGISTERED" in delivery.error
    assert delivery.attempt_log[0]["devices"][0]["outcome"] == "permanent"
    later(clock, minutes=10)
    assert len(fcm_on.received("/fcm/v1/")) == 1


def test_a_phone_whose_push_token_is_gone_stays_signed_in_and_is_pushed_on_its_new_one(
    client, clock, fcm_on, ada, key_for
):
    # FCM renewed the push token while the phone was offline: a page to the old one finds it gone. The app, back
    # online, must still be able to report its new push token with its own API token, and be paged on it.
    _row, link_token = device_link_token_create(person=ada, now=clock.current)
    body = {"link_token": link_token, "platform": "android", "token": "fcm-before-renewal", "name": "Pixel"}
    app_token = client.post("/api/v1/devices/link/", body, content_type="application/json").json()["data"]["api_token"]
    as_app = {"HTTP_AUTHORIZATION": f"Bearer {app_token}"}
    fcm_on.fcm_unregistered.add("fcm-before-renewal")
    key = key_for()
    push(client, key, event(key="db"))
    assert Device.objects.count() == 0
    assert ApiToken.objects.get(name="App on Pixel").revoked_at is None
    assert client.get("/api/v1/me/", **as_app).status_code == 200
    renewed = {"platform": "android", "token": "fcm-after-renewal", "name": "Pixel"}
    answer = client.post("/api/v1/me/devices/", renewed, content_type="application/json", **as_app)
    assert answer.status_code == 201, answer.json()
    [device] = Device.objects.all()
    assert ApiToken.objects.get(name="App on Pixel").device == device
    push(client, key, event(key="api"))
    assert [r.json["message"]["token"] for r in fcm_on.received("/fcm/v1/")] == [
        "fcm-before-renewal",
        "fcm-after-renewal",
    ]
    assert Delivery.objects.filter(status="sent").count() == 1
    # The token belongs to the new device: unlinking that one signs the app out.
    assert client.delete(f"/api/v1/me/devices/{device.pk}/", **as_app).status_code == 200
    assert client.get("/api/v1/me/", **as_app).status_code == 401


def test_fcm_unavailable_is_retried_then_succeeds(client, clock, fcm_on, ada, key_for):
    link(ada, "android", "fcm-token-ada")
    fcm_on.fail_next(
        "/fcm/v1", status=503, json={"error": {"code": 503, "status": "UNAVAILABLE", "message": "try later"}}
    )
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.next_attempt_at) == ("pending", clock.current + timedelta(seconds=30))
    later(clock, seconds=30)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_fcm_retries_stop_after_the_last_attempt(client, clock, fcm_on, ada, key_for):
    link(ada, "android", "fcm-token-ada")
    fcm_on.fail_next("/fcm/v1", status=500, json={"error": {"code": 500, "status": "INTERNAL"}}, times=10)
    push(client, key_for(), event())
    for wait in (30, 120, 300):
        later(clock, seconds=wait)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert Device.objects.count() == 1  # a server error says nothing against the device


def test_an_fcm_url_whose_port_cannot_exist_fails_the_push_at_once(client, clock, fcm_on, ada, key_for, settings):
    link(ada, "android", "fcm-token-ada")
    settings.FCM_API_URL = "https://fcm.googleapis.com:0"
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "its port is not a number from 1 to 65535" in delivery.error
    assert Device.objects.count() == 1


def test_a_rejected_access_token_is_minted_again(client, clock, fcm_on, ada, key_for):
    link(ada, "android", "fcm-token-ada")
    fcm_on.fail_next(
        "/fcm/v1", status=401, json={"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "expired"}}
    )
    push(client, key_for(), event())
    later(clock, seconds=30)
    assert len(fcm_on.received("/fcm/token")) == 2
    assert Delivery.objects.get().status == "sent"


def test_a_service_account_google_refuses_fails_the_push(client, clock, fcm_on, ada, key_for):
    link(ada, "android", "fcm-token-ada")
    fcm_on.fcm_service_accounts.clear()
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "invalid_grant" in delivery.error


def test_a_service_account_of_another_firebase_project_fails_the_push_and_keeps_the_phone(
    client, clock, fcm_on, ada, key_for
):
    """SENDER_ID_MISMATCH is what every token answers when FCM_SERVICE_ACCOUNT is a key of another Firebase project:
    our mistake, not the phone's. The push fails at once saying what to check, and Ada's phone stays linked, so it
    is paged again once the setting is fixed."""
    link(ada, "android", "fcm-token-ada")
    mismatch = {
        "code": 403,
        "status": "PERMISSION_DENIED",
        "message": "SenderId mismatch",
        "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "SENDER_ID_MISMATCH"}
        ],
    }
    fcm_on.fail_next("/fcm/v1", status=403, json={"error": mismatch})
    key = key_for()
    push(client, key, event())
    assert Device.objects.count() == 1, "the phone was unlinked for our configuration mistake"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "FCM 403 SENDER_ID_MISMATCH" in delivery.error and "FCM_SERVICE_ACCOUNT" in delivery.error
    push(client, key, event(key="db"))  # the next incident, once FCM_SERVICE_ACCOUNT is fixed
    assert len(fcm_on.received("/fcm/v1/")) == 2
    assert Delivery.objects.filter(status="sent").count() == 1


def _key_newlines_escaped_twice(settings, rsa_key) -> None:
    """The classic environment-variable mistake: the JSON key's newlines escaped once more, so its private_key is
    valid JSON but no PEM."""
    account = json.loads(settings.FCM_SERVICE_ACCOUNT)
    account["private_key"] = pem(rsa_key).replace("\n", "\\n")
    settings.FCM_SERVICE_ACCOUNT = json.dumps(account)


def test_a_service_account_key_that_cannot_sign_fails_the_push_at_once_and_keeps_the_device(
    client, clock, settings, fcm_on, rsa_key, ada, key_for
):
    link(ada, "android", "fcm-token-ada")
    _key_newlines_escaped_twice(settings, rsa_key)
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "FCM_SERVICE_ACCOUNT private_key is not usable" in delivery.error
    assert fcm_on.received("/fcm/") == []
    assert Device.objects.count() == 1


# -- Web Push ----------------------------------------------------------------------------------------------------


def test_web_push_is_encrypted_and_signed_with_vapid(client, clock, webpush_on, ada, key_for):
    device_link(person=ada, platform="web", subscription=browser_subscription(webpush_on, "sub-1"), now=clock.current)
    push(client, key_for(), event())
    [request] = webpush_on.received("/webpush/")
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "3600"
    assert request.headers["urgency"] == "high"
    assert request.headers["authorization"].startswith("vapid t=")
    assert b"api is down" not in request.body  # the payload is encrypted for the browser's keys
    claims = jwt.decode(
        request.headers["authorization"].split("t=")[1].split(",")[0], options={"verify_signature": False}
    )
    assert (claims["aud"], claims["sub"]) == (webpush_on.url(), "mailto:ops@example.com")
    assert Delivery.objects.get().status == "sent"


def test_a_gone_subscription_unlinks_the_browser(client, clock, webpush_on, ada, key_for):
    device_link(person=ada, platform="web", subscription=browser_subscription(webpush_on, "old"), now=clock.current)
    webpush_on.webpush_gone.add("old")
    push(client, key_for(), event())
    assert Device.objects.count() == 0
    assert Delivery.objects.get().status == "failed"


def test_web_push_rate_limited_is_retried(client, clock, webpush_on, ada, key_for):
    device_link(person=ada, platform="web", subscription=browser_subscription(webpush_on, "s"), now=clock.current)
    webpush_on.fail_next("/webpush", status=429, headers={"Retry-After": "60"})
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.next_attempt_at) == ("pending", clock.current + timedelta(seconds=60))
    later(clock, seconds=60)
    assert Delivery.objects.get().status == "sent"


def test_a_wrong_vapid_key_fails_without_unlinking(client, clock, webpush_on, ada, key_for):
    device_link(person=ada, platform="web", subscription=browser_subscription(webpush_on, "s"), now=clock.current)
    webpush_on.webpush_vapid_key = "B" + "A" * 86  # the push service expects another key
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == ("failed", f"web device {Device.objects.get().pk}: Web Push 401")


def test_a_browser_endpoint_whose_port_cannot_exist_fails_the_push_at_once(client, clock, webpush_on, ada, key_for):
    device = device_link(
        person=ada, platform="web", subscription=browser_subscription(webpush_on, "s"), now=clock.current
    )
    endpoint = "https://push.example.test:0/send/s"  # linked before such ports were refused
    Device.objects.filter(pk=device.pk).update(
        token=endpoint, subscription={**device.subscription, "endpoint": endpoint}
    )
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "its port is not a number from 1 to 65535" in delivery.error


# -- APNs --------------------------------------------------------------------------------------------------------


def test_a_critical_incident_is_a_critical_alert_on_ios(client, clock, apns_on, ada, key_for):
    link(ada, "ios", "ab" * 32)
    push(client, key_for(), event("Critical"))
    [request] = apns_on.requests
    assert str(request.url) == f"{apns_on.url}/3/device/{'ab' * 32}"
    assert request.headers["apns-topic"] == "com.example.oncall"
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    token = request.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEY1234567", "typ": "JWT"}
    assert jwt.decode(token, apns_on.public_key, algorithms=["ES256"])["iss"] == "TEAM123456"
    aps = json.loads(request.content)["aps"]
    assert aps["interruption-level"] == "critical"
    assert aps["sound"] == {"critical": 1, "name": "default", "volume": 1.0}
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.provider_id) == ("sent", apns_on.apns_ids[0])


def test_other_severities_are_time_sensitive_on_ios(client, clock, apns_on, ada, key_for):
    link(ada, "ios", "ab" * 32)
    push(client, key_for(), event("Warning"))
    aps = json.loads(apns_on.requests[0].content)["aps"]
    assert (aps["interruption-level"], aps["sound"]) == ("time-sensitive", "default")


def test_an_unregistered_ios_token_unlinks_the_device(client, clock, apns_on, ada, key_for):
    link(ada, "ios", "ab" * 32)
    apns_on.answers.append(httpx.Response(410, json={"reason": "Unregistered", "timestamp": 1700000000000}))
    push(client, key_for(), event())
    assert Device.objects.count() == 0
    assert "APNs 410 Unregistered" in Delivery.objects.get().error


def test_an_apns_topic_that_is_not_the_apps_fails_the_push_and_keeps_the_iphone(client, clock, apns_on, ada, key_for):
    """DeviceTokenNotForTopic says APNS_TOPIC is not the bundle id the token was issued for: our mistake, not the
    iPhone's. The push fails at once naming the setting, and the iPhone stays linked."""
    link(ada, "ios", "ab" * 32)
    apns_on.answers.append(httpx.Response(400, json={"reason": "DeviceTokenNotForTopic"}))
    push(client, key_for(), event())
    assert Device.objects.count() == 1, "the iPhone was unlinked for our configuration mistake"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "APNs 400 DeviceTokenNotForTopic" in delivery.error and "APNS_TOPIC" in delivery.error


def test_iphones_of_the_other_apns_environment_fail_the_push_and_stay_linked_until_the_setting_is_fixed(
    client, clock, apns_on, ada, key_for, caplog
):
    """Apple answers BadDeviceToken for a token of the other environment (APNS_API_URL set to production for an
    app built for the sandbox, or the reverse): the push fails at once naming the setting, the email to the same
    person goes out, the error is logged with the device's id but not its token, and the iPhone stays linked,
    so the next page reaches it once the setting is fixed."""
    token = "ab" * 32
    iphone = link(ada, "ios", token)
    apns_on.other_environment.add(token)
    key = key_for(("app", "email"))
    with caplog.at_level(logging.ERROR, logger="channels_app.providers.apns"):
        push(client, key, event())
        later(clock, minutes=5)
    assert len(apns_on.requests) == 1, "the refused push was sent again"
    assert Device.objects.filter(pk=iphone.pk).exists(), "the iPhone was unlinked for a wrong APNS_API_URL"
    pushed = Delivery.objects.get(method="app")
    assert (pushed.status, pushed.attempts) == ("failed", 1)
    assert "APNs 400 BadDeviceToken" in pushed.error and "APNS_API_URL" in pushed.error
    assert pushed.incident.timeline.filter(kind="notify_failed", message__contains="APNS_API_URL").exists()
    assert Delivery.objects.get(method="email").status == "sent"
    [logged] = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert f"device {iphone.pk} " in logged and "APNS_API_URL" in logged and token not in logged

    apns_on.other_environment.clear()  # APNS_API_URL now names the environment the app was built for
    push(client, key, event(key="db"))
    assert Incident.objects.count() == 2
    assert Delivery.objects.filter(method="app").latest("pk").status == "sent"
    assert apns_on.requests[-1].url.path == f"/3/device/{token}"


def test_an_ios_token_linked_in_both_cases_is_pushed_once(client, clock, apns_on, ada, key_for):
    link(ada, "ios", "AB" * 32)
    link(ada, "ios", "ab" * 32)
    push(client, key_for(), event())
    assert [request.url.path for request in apns_on.requests] == ["/3/device/" + "ab" * 32]


def test_apns_server_errors_are_retried_then_succeed(client, clock, apns_on, ada, key_for):
    link(ada, "ios", "ab" * 32)
    apns_on.answers.append(httpx.Response(503, json={"reason": "ServiceUnavailable"}))
    push(client, key_for(), event())
    assert Delivery.objects.get().status == "pending"
    later(clock, seconds=30)
    assert Delivery.objects.get().status == "sent"
    assert len(apns_on.requests) == 2


def test_a_bad_provider_key_fails_at_once(client, clock, apns_on, ada, key_for):
    link(ada, "ios", "ab" * 32)
    apns_on.answers.append(httpx.Response(403, json={"reason": "InvalidProviderToken"}))
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert Device.objects.count() == 1


def test_an_apns_url_whose_port_cannot_exist_fails_the_push_at_once(client, clock, apns_on, ada, key_for, settings):
    link(ada, "ios", "ab" * 32)
    settings.APNS_API_URL = "https://api.push.apple.com:99999"
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "its port is not a number from 1 to 65535" in delivery.error
    assert apns_on.requests == []


# -- several devices ---------------------------------------------------------------------------------------------


def test_the_push_succeeds_if_any_device_takes_it_and_gone_ones_are_unlinked(
    client, clock, fcm_on, apns_on, ada, key_for
):
    link(ada, "android", "stale-token")
    link(ada, "ios", "cd" * 32)
    fcm_on.fcm_unregistered.add("stale-token")
    push(client, key_for(), event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.address) == ("sent", "2 device(s)")
    assert list(Device.objects.values_list("platform", flat=True)) == ["ios"]
    assert sorted(d["outcome"] for d in delivery.attempt_log[0]["devices"]) == ["permanent", "sent"]


def test_a_broken_fcm_key_does_not_push_the_iphone_again_and_again(
    client, clock, settings, fcm_on, apns_on, rsa_key, ada, key_for
):
    """Ada has an iPhone and an Android phone, and FCM's key cannot sign: the iPhone takes the page once, the
    delivery is sent, and the Android phone's error says what to fix."""
    link(ada, "ios", "ab" * 32)
    android = link(ada, "android", "fcm-token-ada")
    _key_newlines_escaped_twice(settings, rsa_key)
    push(client, key_for(), event())
    for wait in (30, 120, 300, 300):
        later(clock, seconds=wait)
    assert len(apns_on.requests) == 1, f"the iPhone got the same page {len(apns_on.requests)} times"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    [failed] = [d for d in delivery.attempt_log[0]["devices"] if d["device_id"] == android.pk]
    assert failed["outcome"] == "permanent"
    assert failed["error"].startswith("FCM_SERVICE_ACCOUNT private_key is not usable")


def test_a_platform_that_raises_does_not_cost_the_other_devices_their_push(
    client, clock, apns_on, ada, key_for, monkeypatch
):
    """A bug in one platform's sender fails only that device (retryable): the iPhone that took the page counts, and
    it is not pushed again."""

    def broken(device, message):
        raise RuntimeError("a bug in the Android sender")

    monkeypatch.setitem(app.PLATFORMS, Device.Platform.ANDROID, broken)
    link(ada, "ios", "ab" * 32)  # pushed first
    android = link(ada, "android", "fcm-token-ada")
    push(client, key_for(), event())
    later(clock, seconds=30)
    assert len(apns_on.requests) == 1, f"the iPhone got the same page {len(apns_on.requests)} times"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    [failed] = [d for d in delivery.attempt_log[0]["devices"] if d["device_id"] == android.pk]
    assert (failed["outcome"], failed["error"]) == (
        "retryable",
        "unexpected error: RuntimeError: a bug in the Android sender",
    )


def test_a_person_without_devices_is_skipped_with_the_reason(client, clock, ada, key_for):
    push(client, key_for(), event())
    assert Delivery.objects.count() == 0
    assert (
        Incident.objects.get().timeline.get(kind="notify_failed").message == "Skipped ada (app): no app device linked."
    )


def test_an_unconfigured_platform_fails_saying_what_is_missing(client, clock, ada, key_for):
    link(ada, "android", "fcm-token")
    push(client, key_for(), event())
    assert "FCM is not configured" in Delivery.objects.get().error


def _push_in_limits_in_chinese():
    """What the renderer hands over for a Chinese title and a custom body quoting the description, each cut to its
    slot's limit (push_title 200 bytes, push_body 1800: together within APNs' and FCM's 4096-byte payload)."""
    from channels_app.providers.push import PushMessage
    from channels_app.templating import limits
    from channels_app.templating.slots import slot

    title, _ = limits.truncate("数据库主库不可用 " * 100, slot("push_title"), max_segments=3)
    body, _ = limits.truncate("订单服务连接数据库超时请立即处理。" * 200, slot("push_body"), max_segments=3)
    return PushMessage(
        title=title,
        body=body,
        incident_id=42,
        severity="Critical",
        event="triggered",
        url="https://oncall.example.test/incidents/42/",
        ttl=3600,
    )


def test_a_chinese_push_within_its_slots_fits_apns_and_web_push(apns_on, webpush_on):
    """The payloads are UTF-8 JSON: as \\uXXXX escapes (6 bytes a character instead of 3) this one was 4,285
    bytes, and APNs answers 413 PayloadTooLarge, a permanent failure: the iOS page lost."""
    from types import SimpleNamespace

    from channels_app.base import Outcome
    from channels_app.providers import webpush

    message = _push_in_limits_in_chinese()
    assert apns.push(SimpleNamespace(pk=1, token="ab" * 32), message).outcome == Outcome.SENT
    [request] = apns_on.requests
    assert len(request.content) <= 4096
    assert json.loads(request.content)["aps"]["alert"]["title"] == message.title
    subscription = browser_subscription(webpush_on, "chrome")
    _url, _headers, body = webpush.webpush_request(subscription, message, now=1_700_000_000)
    assert len(body) <= 4096


def test_a_push_body_that_json_escaping_doubles_still_reaches_ios_and_the_browser(
    client, clock, apns_on, webpush_on, ada
):
    """The push body shows the description, here only escaped quotes: within the slot's 1800 bytes, but twice that
    as JSON, and with the title over the 4096 bytes APNs and push services take (413, permanent). The body is
    shortened until the payload fits."""
    link(ada, "ios", "ab" * 32)
    device_link(person=ada, platform="web", subscription=browser_subscription(webpush_on, "sub-1"), now=clock.current)
    channel = make_channel("Backups")
    rule = make_rule(channel, [{"people": [ada], "methods": ["app"]}])
    rule.template_set = TemplateSet.objects.create(name="Details", bodies={"push_body": "{{ incident.description }}"})
    rule.save()
    title = r'"C:\\" "D:\\" ' * 20  # quoted Windows drives
    alert = {"title_rule": title, "event_status": "Critical", "description": r"\"" * 1000}
    push(client, make_integration(channel=channel)[1], alert)

    [ios] = apns_on.requests
    assert len(ios.content) <= 4096
    assert json.loads(ios.content)["aps"]["alert"]["body"].endswith("…")
    [browser] = webpush_on.received("/webpush/")
    assert len(browser.body) <= 4096
    delivery = Delivery.objects.get()
    assert [device["outcome"] for device in delivery.attempt_log[0]["devices"]] == ["sent", "sent"]


def _slow_apns(clock, apns_on) -> FakeApns:
    """APNs answering each push in 14 s: an attempt (its deadline 27 s in) has time for two devices."""
    apns_on.on_request = lambda request: clock.advance(seconds=14)
    return apns_on


def test_devices_the_attempt_had_no_time_to_call_get_the_retry(client, clock, apns_on, ada, key_for, monkeypatch):
    """Three iPhones; APNs answers each in 14 s (within HTTP_TOTAL_TIMEOUT). The attempt has time for two (its
    deadline is 27 s in: docs/people.md); the third gets the retry, and the first two are not pushed again."""
    for n in range(3):
        link(ada, "ios", f"{n}" * 64)
    fake = _slow_apns(clock, apns_on)
    push(client, key_for(), event())
    called = [request.url.path.rsplit("/", 1)[-1] for request in fake.requests]
    assert len(called) == 2, called  # the deadline stopped the third
    assert Delivery.objects.get().status == "pending"
    later(clock, minutes=1)
    later(clock, minutes=3)
    called = [request.url.path.rsplit("/", 1)[-1] for request in fake.requests]
    assert called.count("2" * 64) == 1 and called.count("0" * 64) == 1, called
    assert Delivery.objects.get().status == "sent"


def test_devices_reached_by_an_attempt_that_ran_out_of_time_record_the_push(
    client, clock, apns_on, ada, key_for, monkeypatch
):
    devices = [link(ada, "ios", f"{n}" * 64) for n in range(3)]
    _slow_apns(clock, apns_on)
    push(client, key_for(), event())
    assert Delivery.objects.get().status == "pending"
    pushed = {device.pk: device.last_pushed_at for device in Device.objects.all()}
    assert pushed[devices[0].pk] is not None and pushed[devices[1].pk] is not None
    assert pushed[devices[2].pk] is None


def test_a_retry_failing_on_the_rest_is_sent_when_an_earlier_attempt_reached_a_device(
    client, clock, apns_on, ada, key_for, monkeypatch
):
    """The first attempt reaches two iPhones and runs out of time before the third; the retry finds the third's
    token gone. The person had the page: the delivery is sent, the gone iPhone is unlinked, its error is logged."""
    for n in range(3):
        link(ada, "ios", f"{n}" * 64)
    fake = _slow_apns(clock, apns_on)
    push(client, key_for(), event())
    assert len(fake.requests) == 2 and Delivery.objects.get().status == "pending"
    fake.answers.append(httpx.Response(410, json={"reason": "Unregistered", "timestamp": 1700000000000}))
    later(clock, minutes=1)
    later(clock, minutes=3)
    assert len(fake.requests) == 3
    delivery = Delivery.objects.get()
    assert delivery.status == "sent", (delivery.status, delivery.error)
    assert not delivery.incident.timeline.filter(kind="notify_failed").exists()
    assert sorted(Device.objects.values_list("token", flat=True)) == ["0" * 64, "1" * 64]
    assert "APNs 410 Unregistered" in delivery.attempt_log[-1]["errors"]
