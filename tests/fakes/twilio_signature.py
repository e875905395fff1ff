"""How Twilio signs the callbacks it posts to us, for the fake provider server and the tests that play Twilio.

By default X-Twilio-Signature is HMAC-SHA1 with the account's auth token. When a Webhook Rule applies to the URL,
Twilio signs with the rule's SharedKey secret and the Setting's algorithm instead, and names both in
X-Twilio-Webhooks-Signature-Settings (twilio.com/docs/usage/webhooks/webhook-shared-keys).
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.request_validator import HMAC_SHA256, RequestValidator


@dataclass(frozen=True)
class SharedKey:
    """A Webhook Rule's signing key: its id (KS…), secret and algorithm."""

    secret: str
    key_id: str = "KS" + "0123456789abcdef" * 2
    algorithm: str = HMAC_SHA256


def twilio_signature_headers(url: str, params: dict, *, token: str, shared_key: SharedKey | None = None) -> dict:
    """The headers Twilio sends with a callback of `params` to `url`: signed with `shared_key` when a Webhook Rule
    gives one, else with the auth token `token`."""
    if shared_key is None:
        return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}
    signature = RequestValidator(shared_key.secret).compute_signature(url, params, shared_key.algorithm)
    return {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": f"key={shared_key.key_id},algorithm={shared_key.algorithm}",
    }
