"""A push title and body within their slots' limits (push_title 200 bytes, push_body 1800 bytes: together they
share APNs' and FCM's 4096-byte payload, docs/templates.md) fit APNs' payload and Web Push's ~4 KB record in
non-Latin text too: the JSON is UTF-8, not \\uXXXX escapes (6 bytes for a 3-byte Chinese character). APNs answers
413 PayloadTooLarge to a larger one, which is permanent: the iOS page would be lost."""

from __future__ import annotations

import base64
import os
from types import SimpleNamespace

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from channels_app.base import Outcome
from channels_app.providers import apns, webpush
from channels_app.providers.push import PushMessage
from channels_app.templating import limits
from channels_app.templating.slots import slot
from oncall.lib import http

APNS_MAX = 4096  # protocols.md §10 APNs: "Payload (≤ 4096 bytes; 5 KB for VoIP)"
WEBPUSH_MAX = 4096  # protocols.md §10 Web Push: "413 too large (~4 KB)"


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def in_limits_message() -> PushMessage:
    # What the renderer would hand over for a Chinese incident title and a custom body quoting its description:
    # each text cut to its slot's limit by the platform's own truncate().
    title, _ = limits.truncate("数据库主库不可用 " * 100, slot("push_title"), max_segments=3)
    body, _ = limits.truncate("订单服务连接数据库超时请立即处理。" * 200, slot("push_body"), max_segments=3)
    assert len(title.encode()) <= 200 and len(body.encode()) <= 1800
    return PushMessage(
        title=title,
        body=body,
        incident_id=42,
        severity="Critical",
        event="triggered",
        url="https://oncall.example.test/incidents/42/",
        ttl=3600,
    )


@pytest.fixture
def apns_on(settings, monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.APNS_API_URL = "https://api.sandbox.push.apple.com"
    settings.APNS_TEAM_ID = "TEAM123456"
    settings.APNS_KEY_ID = "KEY1234567"
    settings.APNS_PRIVATE_KEY = pem(key)
    settings.APNS_TOPIC = "com.example.oncall"
    sizes: list[int] = []

    def apns_server(request: httpx.Request) -> httpx.Response:
        sizes.append(len(request.content))
        if len(request.content) > APNS_MAX:
            return httpx.Response(413, json={"reason": "PayloadTooLarge"})
        return httpx.Response(200, headers={"apns-id": "x"})

    monkeypatch.setattr(http, "http2_transport", lambda: httpx.MockTransport(apns_server))
    http.http2_reset()
    apns.forget_provider_token()
    yield sizes
    http.http2_reset()
    apns.forget_provider_token()


def test_an_in_limits_cjk_push_fits_apns_payload(apns_on):
    result = apns.push(SimpleNamespace(pk=1, token="ab" * 32), in_limits_message())
    assert apns_on[0] <= APNS_MAX
    assert result.outcome == Outcome.SENT


def test_an_in_limits_cjk_push_fits_web_push(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.WEBPUSH_VAPID_PRIVATE_KEY = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:ops@example.com"
    receiver = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = receiver.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    subscription = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
        "keys": {"p256dh": b64url(point), "auth": b64url(os.urandom(16))},
    }
    _, _, body = webpush.webpush_request(subscription, in_limits_message(), now=1_700_000_000)
    assert len(body) <= WEBPUSH_MAX
