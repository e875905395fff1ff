"""Android push through FCM HTTP v1 (shared/reference/protocols.md §10).

The OAuth2 access token is minted from the Google service account of FCM_SERVICE_ACCOUNT: a JWT signed with the
account's RSA key (PyJWT) is exchanged at the account's token URI, through oncall.lib.http, and the token is kept
until shortly before it expires (per process).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings

from channels_app.providers.push import DeviceResult, PushMessage, retry_after_header, shortened
from oncall.lib import http

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_LIFETIME = 3600
TOKEN_MARGIN = 300  # renew this many seconds before the token expires
PLATFORM = "android"

_tokens: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


class FcmConfigError(Exception):
    pass


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: str
    private_key_id: str
    token_uri: str


@lru_cache(maxsize=4)
def _parse(raw: str) -> ServiceAccount:
    try:
        data = json.loads(raw)
        return ServiceAccount(
            project_id=data["project_id"],
            client_email=data["client_email"],
            private_key=data["private_key"],
            private_key_id=data.get("private_key_id", ""),
            token_uri=data.get("token_uri") or "https://oauth2.googleapis.com/token",
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise FcmConfigError(
            f"FCM_SERVICE_ACCOUNT is not a Google service-account JSON key: {type(exc).__name__}"
        ) from None


def service_account() -> ServiceAccount:
    if not settings.FCM_SERVICE_ACCOUNT:
        raise FcmConfigError("FCM is not configured: set FCM_SERVICE_ACCOUNT (or FCM_SERVICE_ACCOUNT_FILE)")
    return _parse(settings.FCM_SERVICE_ACCOUNT)


def token_assertion(account: ServiceAccount, now: float) -> str:
    """The signed JWT exchanged for an access token (RFC 7523, as Google's libraries do)."""
    claims = {"iss": account.client_email, "scope": SCOPE, "aud": account.token_uri, "iat": int(now)}
    claims["exp"] = claims["iat"] + TOKEN_LIFETIME
    headers = {"kid": account.private_key_id} if account.private_key_id else None
    return jwt.encode(claims, account.private_key, algorithm="RS256", headers=headers)


class TokenError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def access_token(account: ServiceAccount, *, now: float | None = None) -> str:
    """A valid OAuth2 access token for FCM, minted when there is none or it is about to expire. Raises
    FcmConfigError when the account's private key cannot sign, TokenError when Google gives no token."""
    now = time.time() if now is None else now
    with _lock:
        cached = _tokens.get(account.client_email)
    if cached and cached[1] - TOKEN_MARGIN > now:
        return cached[0]
    try:
        assertion = token_assertion(account, now)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # A key that cannot sign (newlines escaped twice in an environment variable, a truncated paste) stays
        # unusable until the setting is fixed: retrying cannot help.
        raise FcmConfigError(f"FCM_SERVICE_ACCOUNT private_key is not usable: {type(exc).__name__}: {exc}") from None
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    try:
        response = http.request("POST", account.token_uri, data=form, headers={"Accept": "application/json"})
    except http.HttpError as exc:
        raise TokenError(f"FCM access token: {exc}", retryable=not exc.permanent) from exc
    data = response.json() if isinstance(response.json(), dict) else {}
    if response.status != 200 or not data.get("access_token"):
        error = (
            f"FCM access token refused ({response.status}): {data.get('error', '')} {data.get('error_description', '')}"
        )
        raise TokenError(error.strip(), retryable=response.status >= 500 or response.status == 429)
    token = str(data["access_token"])
    with _lock:
        _tokens[account.client_email] = (token, now + float(data.get("expires_in", TOKEN_LIFETIME)))
    return token


def forget_access_token(account: ServiceAccount) -> None:
    with _lock:
        _tokens.pop(account.client_email, None)


# FCM refuses a message whose notification and data pass 4096 bytes (INVALID_ARGUMENT, for good).
PAYLOAD_LIMIT = 4096


def _payload_size(message: PushMessage) -> int:
    """The bytes of the notification and data as sent (the body is JSON with non-ASCII escaped, as requests
    writes it: a CJK character takes 6), the part FCM's limit counts."""
    return len(json.dumps({"notification": {"title": message.title, "body": message.body}, "data": message.data()}))


def fcm_message(token: str, message: PushMessage) -> dict[str, Any]:
    """The messages:send body for one Android device: a high-priority notification on the app's channel for the
    severity (the channel's sound and importance are set by the app), plus the incident's data; the body (or
    title) shortened so the payload stays within PAYLOAD_LIMIT once encoded."""
    message = shortened(message, size=_payload_size, limit=PAYLOAD_LIMIT)
    return {
        "message": {
            "token": token,
            "notification": {"title": message.title, "body": message.body},
            "data": message.data(),
            "android": {
                "priority": "HIGH",
                "ttl": f"{message.ttl}s",
                "collapse_key": message.collapse_key,
                "notification": {
                    "channel_id": "oncall_critical" if message.critical else "oncall_incidents",
                    "notification_priority": "PRIORITY_MAX" if message.critical else "PRIORITY_HIGH",
                    "visibility": "PUBLIC",
                    "tag": message.collapse_key,
                },
            },
        }
    }


def _error_code(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    codes = [d.get("errorCode", "") for d in error.get("details") or [] if isinstance(d, dict)]
    return next((c for c in codes if c), str(error.get("status", ""))), str(error.get("message", ""))[:300]


# Answers that may as well mean our configuration is wrong as the token: the device stays linked and the error
# names the setting. SENDER_ID_MISMATCH says the token and FCM_SERVICE_ACCOUNT are of different Firebase projects;
# protocols.md §10 reads it as a foreign token to drop, but it is also what every token answers when the setting
# holds another project's key, and unlinking then would unlink every Android phone on the first page. A foreign
# token kept costs a failed push to that device, with this error, on each page.
CONFIG_ERRORS = {
    "SENDER_ID_MISMATCH": "the token belongs to another Firebase project than FCM_SERVICE_ACCOUNT's project_id; "
    "check that FCM_SERVICE_ACCOUNT is a key of the app's Firebase project",
}


def classify(device_id: int, status: int, body: Any, headers) -> DeviceResult:
    """FCM's answer for one device (its `details[].errorCode` decides): gone tokens are permanent and unlink the
    device; configuration errors are permanent and keep it; quota and server errors are retryable."""
    if status == 200:
        name = body.get("name", "") if isinstance(body, dict) else ""
        return DeviceResult.sent(device_id, PLATFORM, str(name))
    code, message = _error_code(body)
    error = f"FCM {status} {code}: {message}".strip()
    if code == "UNREGISTERED" or (code == "INVALID_ARGUMENT" and "registration token" in message.lower()):
        return DeviceResult.permanent(device_id, PLATFORM, error, gone=True)
    if code in CONFIG_ERRORS:
        return DeviceResult.permanent(device_id, PLATFORM, f"{error.rstrip(':')} ({CONFIG_ERRORS[code]})")
    if status == 429 or code == "QUOTA_EXCEEDED" or status >= 500 or code in ("UNAVAILABLE", "INTERNAL"):
        return DeviceResult.retryable(device_id, PLATFORM, error, retry_after_header(headers))
    if status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
        return DeviceResult.retryable(device_id, PLATFORM, error)  # the access token went stale: a new one is minted
    return DeviceResult.permanent(device_id, PLATFORM, error)


def push(device, message: PushMessage) -> DeviceResult:
    """Send `message` to one Android device."""
    try:
        account = service_account()
        token = access_token(account)
    except FcmConfigError as exc:
        return DeviceResult.permanent(device.pk, PLATFORM, str(exc))
    except TokenError as exc:
        if exc.retryable:
            return DeviceResult.retryable(device.pk, PLATFORM, str(exc))
        return DeviceResult.permanent(device.pk, PLATFORM, str(exc))
    url = f"{settings.FCM_API_URL}/v1/projects/{account.project_id}/messages:send"
    try:
        response = http.request(
            "POST", url, json=fcm_message(device.token, message), headers={"Authorization": f"Bearer {token}"}
        )
    except http.HttpError as exc:
        if exc.permanent:  # FCM_API_URL is not a URL a request can be made to
            return DeviceResult.permanent(device.pk, PLATFORM, f"FCM: {exc}")
        return DeviceResult.retryable(device.pk, PLATFORM, f"FCM: {exc}")
    if response.status == 401:
        forget_access_token(account)
    return classify(device.pk, response.status, response.json(), response.headers)
