"""Personal API tokens: created with a CSPRNG, shown once, stored as a hash, revocable."""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils.translation import gettext as _

from oncall.errors import ApplicationError
from oncall.lib import secrets
from oncall.models import ApiToken, Device, User

LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_MAX = 100


@transaction.atomic
def api_token_create(*, user: User, name: str, now: datetime, device: Device | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and its secret value, which is not stored and not shown again.

    `device`: the linked phone whose app the token is for (the app redeemed a QR code): the token is the app's
    (`for_app`) and unlinking that device revokes it. At most ApiToken.MAX_PER_PERSON active tokens for scripts
    per person.
    """
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("Give the token a name, so you recognise it later."), field="name")
    if len(name) > NAME_MAX:
        raise ApplicationError(_("A token name is at most %(n)d characters.") % {"n": NAME_MAX}, field="name")
    # An app's token is not counted: each linked device holds at most one active token (linking it again revokes
    # the one before, unlinking it revokes it). Refusing it, or replacing the person's oldest app token, would
    # leave a phone that should get pages without them.
    if device is None:
        # Lock the person's row so two concurrent requests cannot both pass the count.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if ApiToken.objects.active().filter(user=user, for_app=False).count() >= ApiToken.MAX_PER_PERSON:
            raise ApplicationError(
                _("You already have %(n)d active tokens; revoke one first.") % {"n": ApiToken.MAX_PER_PERSON},
                field="name",
            )
    value = ApiToken.PREFIX + pysecrets.token_urlsafe(30)
    token = ApiToken.objects.create(
        user=user,
        device=device,
        for_app=device is not None,
        name=name,
        token_hash=secrets.key_hash(value),
        token_hint=value[: len(ApiToken.PREFIX) + 4],
    )
    return token, value


def api_token_revoke(*, token: ApiToken, now: datetime) -> ApiToken:
    """Revoke a token: it stops working at once. Revoking twice is harmless."""
    if token.revoked_at is None:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
    return token


def api_tokens_of_devices_revoke(*, device_ids: Iterable[int], now: datetime) -> int:
    """Revoke the app tokens of these devices (unlinked, linked again by QR code, or now another person's): the
    apps on them are signed out. Returns how many were active."""
    ids = list(device_ids)
    if not ids:
        return 0
    return ApiToken.objects.active().filter(device_id__in=ids).update(revoked_at=now)


def api_token_authenticate(value: str, *, now: datetime) -> ApiToken | None:
    """The active token with this secret value, with its active owner; None otherwise."""
    if not value or not value.startswith(ApiToken.PREFIX) or len(value) > 200:
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user")
        .filter(token_hash=secrets.key_hash(value), user__is_active=True)
        .first()
    )
    if token is not None and (token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
