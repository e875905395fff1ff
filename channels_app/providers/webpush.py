"""Web Push to the platform's own installable web app (RFC 8030, encrypted per RFC 8291, VAPID per RFC 8292).

pywebpush encrypts the payload for the browser's keys and py_vapid (which it ships with) signs the VAPID token;
the request itself goes through oncall.lib.http like every other, so the subscription's endpoint (a URL the
browser chose) gets the same timeouts and private-address refusal.
"""

from __future__ import annotations

import base64
import json
import time
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid
from pywebpush import WebPusher

from channels_app.providers.push import DeviceResult, PushMessage, retry_after_header, shortened
from oncall.lib import http

PLATFORM = "web"
VAPID_LIFETIME = 12 * 3600
# Push services take an encrypted record of about 4 KB (413 over it); aes128gcm adds 103 bytes to the payload
# (an 86-byte header, the 16-byte tag and the padding delimiter).
RECORD_LIMIT = 4096
PAYLOAD_LIMIT = RECORD_LIMIT - 103


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    return Vapid.from_string(private_key)


def vapid_public_key() -> str:
    """The VAPID public key, base64url, as a browser's `pushManager.subscribe({applicationServerKey})` takes it;
    "" when Web Push is not configured."""
    if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
        return ""
    raw = _vapid(settings.WEBPUSH_VAPID_PRIVATE_KEY).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def webpush_payload(message: PushMessage) -> bytes:
    """What the service worker shows (static/web/sw.js reads title, body, incident_id, severity and url), its body
    (or title) shortened so that the encrypted record stays within RECORD_LIMIT."""
    return _encoded(shortened(message, size=lambda candidate: len(_encoded(candidate)), limit=PAYLOAD_LIMIT))


def _encoded(message: PushMessage) -> bytes:
    # UTF-8, compact: escaped (\uXXXX) a Chinese character would take 6 bytes instead of 3.
    data = {"title": message.title, "body": message.body, **message.data()}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def webpush_request(subscription: dict, message: PushMessage, *, now: float) -> tuple[str, dict[str, str], bytes]:
    """The encrypted request for one subscription: (endpoint, headers, body)."""
    endpoint = subscription["endpoint"]
    body = WebPusher(subscription).encode(webpush_payload(message), "aes128gcm")["body"]
    parts = urlsplit(endpoint)
    claims = {
        "sub": settings.WEBPUSH_VAPID_SUBJECT,
        "aud": f"{parts.scheme}://{parts.netloc}",
        "exp": int(now) + VAPID_LIFETIME,
    }
    headers = {
        **_vapid(settings.WEBPUSH_VAPID_PRIVATE_KEY).sign(claims),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(message.ttl),
        "Urgency": "high",
        "Topic": message.collapse_key,
    }
    return endpoint, headers, body


def classify(device_id: int, status: int, headers) -> DeviceResult:
    """The push service's answer: 2xx up to 202 sent; 404 and 410 mean the subscription is gone; 429 and 5xx may
    pass; anything else (bad VAPID, payload too large) is permanent."""
    if 200 <= status <= 202:
        lower = {key.lower(): value for key, value in headers.items()}
        return DeviceResult.sent(device_id, PLATFORM, lower.get("location", "")[-100:])
    error = f"Web Push {status}"
    if status in (404, 410):
        return DeviceResult.permanent(device_id, PLATFORM, f"{error}: subscription gone", gone=True)
    if status == 429 or status >= 500:
        return DeviceResult.retryable(device_id, PLATFORM, error, retry_after_header(headers))
    return DeviceResult.permanent(device_id, PLATFORM, error)


def push(device, message: PushMessage, *, now: float | None = None) -> DeviceResult:
    """Send `message` to one browser subscription."""
    if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
        return DeviceResult.permanent(device.pk, PLATFORM, "Web Push is not configured: set WEBPUSH_VAPID_PRIVATE_KEY")
    try:
        endpoint, headers, body = webpush_request(device.subscription, message, now=now or time.time())
    except Exception as exc:  # a malformed subscription or key: nothing a retry fixes
        return DeviceResult.permanent(device.pk, PLATFORM, f"Web Push request could not be built: {exc}")
    try:
        response = http.request("POST", endpoint, headers=headers, data=body)
    except http.HttpError as exc:
        if exc.permanent:  # an endpoint no request can be made to
            return DeviceResult.permanent(device.pk, PLATFORM, f"Web Push: {exc}")
        return DeviceResult.retryable(device.pk, PLATFORM, f"Web Push: {exc}")
    return classify(device.pk, response.status, response.headers)
