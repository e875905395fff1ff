"""iOS push through APNs' HTTP/2 provider API with a token-based (.p8) key (shared/reference/protocols.md §10).

Critical incidents go out as critical alerts (they sound through silent mode and Focus; the app needs Apple's
critical-alerts entitlement, and APNS_CRITICAL_ALERTS=false turns them off); everything else is time-sensitive.
The ES256 provider token is reused for 40 minutes (Apple refuses one older than an hour and throttles renewals).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import jwt
from django.conf import settings

from channels_app.providers.push import DeviceResult, PushMessage, retry_after_header, shortened
from oncall.lib import http

logger = logging.getLogger(__name__)

PLATFORM = "ios"
TOKEN_REUSE_SECONDS = 40 * 60
GONE_REASONS = {"Unregistered", "ExpiredToken"}
BAD_DEVICE_REASON = "BadDeviceToken"
# Answers that say our configuration is wrong, not the token (protocols.md §10): the device stays linked, and the
# error names the setting to fix. Unlinking on these would unlink every iPhone on the first page after a mistake.
# BadDeviceToken is among them: Apple gives it for a malformed token and for a token of the other environment (a
# development build's token sent to production, or the reverse), so a wrong APNS_API_URL answers it for every
# iPhone, and unlinking them would leave nobody paged by push even after the setting is fixed.
CONFIG_REASONS = {
    BAD_DEVICE_REASON: "the token is not of APNS_API_URL's environment (a development build's token needs "
    "api.sandbox.push.apple.com, an App Store or TestFlight build's api.push.apple.com), or it is malformed; "
    "check APNS_API_URL",
    "DeviceTokenNotForTopic": "the device's app is not APNS_TOPIC; check that APNS_TOPIC is the app's bundle id",
    "TopicDisallowed": "this key may not push to APNS_TOPIC; check APNS_TOPIC and the key's team (APNS_TEAM_ID)",
}
PAYLOAD_LIMIT = 4096  # bytes of JSON payload APNs takes; over it, 413 PayloadTooLarge

_token: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


def missing_settings() -> list[str]:
    return [
        name
        for name in ("APNS_TEAM_ID", "APNS_KEY_ID", "APNS_PRIVATE_KEY", "APNS_TOPIC")
        if not getattr(settings, name)
    ]


def provider_token(*, now: float | None = None) -> str:
    """The signed provider token (JWT: ES256, kid = key id, iss = team id, iat)."""
    now = time.time() if now is None else now
    key = f"{settings.APNS_TEAM_ID}/{settings.APNS_KEY_ID}"
    with _lock:
        cached = _token.get(key)
        if cached and now - cached[1] < TOKEN_REUSE_SECONDS:
            return cached[0]
        token = jwt.encode(
            {"iss": settings.APNS_TEAM_ID, "iat": int(now)},
            settings.APNS_PRIVATE_KEY,
            algorithm="ES256",
            headers={"kid": settings.APNS_KEY_ID},
        )
        _token[key] = (token, now)
        return token


def forget_provider_token() -> None:
    with _lock:
        _token.clear()


def apns_payload(message: PushMessage, *, critical_alerts: bool) -> dict[str, Any]:
    """The notification payload: a critical alert for a Critical incident (when allowed), time-sensitive otherwise;
    its body (or title) shortened so that, encoded as push() sends it, it stays within PAYLOAD_LIMIT."""

    def size(candidate: PushMessage) -> int:
        payload = _payload(candidate, critical_alerts=critical_alerts)
        return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    return _payload(shortened(message, size=size, limit=PAYLOAD_LIMIT), critical_alerts=critical_alerts)


def _payload(message: PushMessage, *, critical_alerts: bool) -> dict[str, Any]:
    aps: dict[str, Any] = {
        "alert": {"title": message.title, "body": message.body},
        "thread-id": message.collapse_key,
        "category": "INCIDENT",
    }
    if message.critical and critical_alerts:
        aps["sound"] = {"critical": 1, "name": "default", "volume": 1.0}
        aps["interruption-level"] = "critical"
    else:
        aps["sound"] = "default"
        aps["interruption-level"] = "time-sensitive"
    return {"aps": aps, **message.data()}


def apns_headers(message: PushMessage, *, token: str, now: float) -> dict[str, str]:
    return {
        "authorization": f"bearer {token}",
        "apns-topic": settings.APNS_TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        # An absolute time, not a duration: after it APNs stops trying an offline device.
        "apns-expiration": str(int(now) + message.ttl),
        "apns-collapse-id": message.collapse_key,
    }


def classify(device_id: int, status: int, body: Any, headers) -> DeviceResult:
    """APNs' answer for one device: 200 sent; 410 (Unregistered, ExpiredToken) gone; 429, 5xx and an expired
    provider token retryable; anything else (configuration, a token for another topic or environment included)
    permanent, the device kept."""
    if status == 200:
        lower = {key.lower(): value for key, value in headers.items()}
        return DeviceResult.sent(device_id, PLATFORM, lower.get("apns-id", ""))
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    error = f"APNs {status} {reason}".strip()
    if status == 410 or reason in GONE_REASONS:
        return DeviceResult.permanent(device_id, PLATFORM, error, gone=True)
    if reason in CONFIG_REASONS:
        return DeviceResult.permanent(device_id, PLATFORM, f"{error}: {CONFIG_REASONS[reason]}")
    if status == 429 or status >= 500:
        return DeviceResult.retryable(device_id, PLATFORM, error, retry_after_header(headers))
    if reason == "ExpiredProviderToken":
        return DeviceResult.retryable(device_id, PLATFORM, error)
    return DeviceResult.permanent(device_id, PLATFORM, error)


def push(device, message: PushMessage) -> DeviceResult:
    """Send `message` to one iOS device."""
    missing = missing_settings()
    if missing:
        return DeviceResult.permanent(device.pk, PLATFORM, f"APNs is not configured: set {', '.join(missing)}")
    now = time.time()
    try:
        token = provider_token(now=now)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        return DeviceResult.permanent(device.pk, PLATFORM, f"APNS_PRIVATE_KEY is not a usable .p8 key: {exc}")
    # As UTF-8, compact: escaped (\\uXXXX) a Chinese character takes 6 bytes instead of 3, and a title and body cut to
    # their slots' limits would go over APNs' 4096 bytes.
    payload = json.dumps(
        apns_payload(message, critical_alerts=settings.APNS_CRITICAL_ALERTS), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    try:
        response = http.request_http2(
            "POST",
            f"{settings.APNS_API_URL}/3/device/{device.token}",
            headers={**apns_headers(message, token=token, now=now), "content-type": "application/json"},
            content=payload,
        )
    except http.HttpError as exc:
        if exc.permanent:  # APNS_API_URL is not a URL a request can be made to
            return DeviceResult.permanent(device.pk, PLATFORM, f"APNs: {exc}")
        return DeviceResult.retryable(device.pk, PLATFORM, f"APNs: {exc}")
    body = response.json()
    result = classify(device.pk, response.status, body, response.headers)
    if isinstance(body, dict) and body.get("reason") == BAD_DEVICE_REASON and not result.gone:
        # Each time, so that a wrong APNS_API_URL shows in the log at every page it costs; the token is a credential
        # to push to the phone: only its hint.
        logger.error(
            "APNs refused iOS device %s (token …%s) as BadDeviceToken: its token is not of APNS_API_URL's "
            "environment (%s) or is malformed; the device stays linked",
            device.pk,
            device.token_hint,
            settings.APNS_API_URL,
        )
    if response.status == 403:
        forget_provider_token()
    return result
