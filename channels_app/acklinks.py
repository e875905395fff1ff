"""Signed, expiring acknowledge links for messages: whoever holds one may acknowledge after signing in.

The token signs the incident id with a timestamp (Django's TimestampSigner, keyed by SECRET_KEY), so a link
cannot be forged or moved to another incident, and it expires after ACK_LINK_MAX_AGE seconds.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "channels_app.incident-ack-link"


class AckLinkInvalid(Exception):
    """The token was not made by this platform for this incident."""


class AckLinkExpired(AckLinkInvalid):
    """The token is genuine but older than ACK_LINK_MAX_AGE."""


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def ack_token(incident_id: int) -> str:
    """The token for incident `incident_id`: the timestamp and signature (the id is in the URL already)."""
    return _signer().sign(str(incident_id)).split(":", 1)[1]


def ack_url(incident_id: int) -> str:
    return settings.PUBLIC_URL + reverse("incident-ack-link", args=[incident_id, ack_token(incident_id)])


def ack_token_check(incident_id: int, token: str) -> None:
    """Raise AckLinkExpired or AckLinkInvalid unless `token` is a live link for `incident_id`."""
    try:
        _signer().unsign(f"{incident_id}:{token}", max_age=settings.ACK_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise AckLinkExpired(str(exc)) from exc
    except signing.BadSignature as exc:
        raise AckLinkInvalid(str(exc)) from exc
