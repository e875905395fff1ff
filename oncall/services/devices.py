"""Devices a person links for app push: the iOS and Android apps and the installable web app."""

from __future__ import annotations

import hashlib
import re
import secrets as pysecrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from oncall.errors import ApplicationError, SignedOut
from oncall.lib import http, secrets
from oncall.models import ApiToken, Device, DeviceLinkToken, User
from oncall.services.tokens import NAME_MAX, api_token_create, api_tokens_of_devices_revoke

MAX_PER_PERSON = 20
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
_B64URL = re.compile(r"^[A-Za-z0-9_\-=]+$")


def _token_hash(platform: str, token: str) -> str:
    return hashlib.sha256(f"{platform}:{token}".encode()).hexdigest()


def _url_parts(url: str) -> SplitResult | None:
    """`url` split, or None when no request could be made to it (oncall.lib.http.url_problem): it cannot be
    parsed, has no http(s) scheme or host, or its port is not a number from 1 to 65535."""
    return None if http.url_problem(url) else urlsplit(url)


def _web_subscription(subscription: object) -> dict:
    """The browser's PushSubscription JSON, checked: an http(s) endpoint and base64url p256dh and auth keys."""
    if not isinstance(subscription, Mapping):
        raise ApplicationError(
            _('A web device needs the browser\'s push subscription: {"endpoint", "keys": {"p256dh", "auth"}}.'),
            field="subscription",
        )
    endpoint = subscription.get("endpoint")
    keys = subscription.get("keys") if isinstance(subscription.get("keys"), Mapping) else {}
    parts = _url_parts(endpoint) if isinstance(endpoint, str) else None
    # Push services are public https endpoints; plain http only where private addresses are allowed (tests, demo).
    schemes = ("https", "http") if settings.OUTBOUND_ALLOW_PRIVATE else ("https",)
    if parts is None or parts.scheme not in schemes or not parts.hostname or len(endpoint) > 2000:
        raise ApplicationError(_("The subscription's endpoint must be an https URL."), field="subscription")
    clean_keys = {}
    for name in ("p256dh", "auth"):
        value = keys.get(name)
        if not isinstance(value, str) or not value or len(value) > 200 or not _B64URL.match(value):
            raise ApplicationError(
                _("The subscription's keys.%(name)s is missing or not base64url.") % {"name": name},
                field="subscription",
            )
        clean_keys[name] = value
    return {"endpoint": endpoint, "keys": clean_keys}


@transaction.atomic
def device_link(
    *,
    person: User,
    platform: str,
    now: datetime,
    token: str = "",
    subscription: object = None,
    name: str = "",
    app_version: str = "",
    api_token: ApiToken | None = None,
) -> Device:
    """Link a device to `person` for push notifications (or refresh it, when it is linked already).

    A token is a device, not a person: linking a token another person had moves it to `person` (the app was
    signed in to another account), and the app tokens it was given for that person are revoked. At most
    MAX_PER_PERSON devices per person.

    `api_token`: the token the request came with. When it is the phone app's (`for_app`: issued by a QR code), the
    app is reporting its new push token (push services renew them): its API token now belongs to the device linked
    here, and its previous device, the old push token of the same app, is unlinked if it is still there (its push
    service may have reported it gone already). A script's token links a device and changes no token.
    """
    if platform not in Device.Platform.values:
        raise ApplicationError(
            _("platform must be one of %(values)s.") % {"values": ", ".join(Device.Platform.values)}, field="platform"
        )
    web = {}
    if platform == Device.Platform.WEB:
        web = _web_subscription(subscription)
        token = web["endpoint"]
    else:
        token = (token or "").strip()
        if not token or len(token) > 4096:
            raise ApplicationError(_("token is required (at most 4096 characters)."), field="token")
        if platform == Device.Platform.IOS:
            if not _APNS_TOKEN.match(token):
                raise ApplicationError(_("An iOS device token is a hexadecimal string."), field="token")
            # Hex in either case is the same phone: one spelling, so it stays one device that moves between people.
            token = token.lower()
    token_hash = _token_hash(platform, token)
    User.objects.select_for_update().filter(pk=person.pk).first()
    existing = Device.objects.select_for_update().filter(token_hash=token_hash).first()
    linked = Device.objects.filter(person=person)
    if api_token is not None and api_token.for_app and api_token.device_id is not None:
        # The app reports its renewed push token: its old device gives way to the new one, it adds none.
        linked = linked.exclude(pk=api_token.device_id)
    if existing is None and linked.count() >= MAX_PER_PERSON:
        raise ApplicationError(
            _("You have %(n)d devices linked already; unlink one first.") % {"n": MAX_PER_PERSON}, field="token"
        )
    fields = {
        "person": person,
        "platform": platform,
        "token": token,
        "subscription": web,
        "name": (name or "").strip()[:100],
        "app_version": (app_version or "").strip()[:50],
    }
    if existing is None:
        device = Device.objects.create(token_hash=token_hash, created_at=now, **fields)
    else:
        if existing.person_id != person.pk:
            # The phone is another account's now: the app tokens the previous person's app held stop working.
            api_tokens_of_devices_revoke(device_ids=[existing.pk], now=now)
        for key, value in fields.items():
            setattr(existing, key, value)
        existing.save()
        device = existing
    if api_token is not None and api_token.for_app and api_token.device_id != device.pk:
        _app_token_move(api_token=api_token, device=device)
    return device


def _app_token_move(*, api_token: ApiToken, device: Device) -> None:
    """The app's token belongs to `device` from now on; the app's previous device, if any is left, is unlinked."""
    previous_id = api_token.device_id
    if previous_id is not None:
        # Locked before the token, in the order unlinking takes them (the device, then its tokens), so the two
        # cannot deadlock: an unlink of the previous device at the same moment either signs the app out first
        # (refused below) or finds the token moved away.
        Device.objects.select_for_update().filter(pk=previous_id).first()
    if not ApiToken.objects.active().filter(pk=api_token.pk).update(device=device):
        # Its owner unlinked the phone (and signed its app out) a moment ago: the new push token is not linked
        # either, or a lost phone would go on receiving pages.
        raise SignedOut(_("This app was signed out; link it again by a QR code in your settings."))
    api_token.device = device
    if previous_id is not None:
        Device.objects.filter(pk=previous_id).delete()


@transaction.atomic
def device_unlink(*, device: Device, now: datetime) -> int:
    """Stop pushing to a device and sign out the app on it: the API tokens it was given stop working at once (a
    lost phone must not go on acting as its owner). Returns how many tokens were revoked."""
    # Locked first, so an app redeeming a QR code for this phone at the same moment either has its new token
    # revoked here or links the phone anew once it is gone: it never keeps a token on a deleted device.
    Device.objects.select_for_update().filter(pk=device.pk).first()
    revoked = api_tokens_of_devices_revoke(device_ids=[device.pk], now=now)
    device.delete()
    return revoked


@transaction.atomic
def devices_remove(*, device_ids: Iterable[int]) -> int:
    """Forget devices whose push service said their push token is gone (app uninstalled, its data cleared, the
    subscription expired, or the push token renewed).

    The apps' API tokens stay valid, tied to no device until the app links its new push token with it: push
    services renew tokens of apps that stay installed, and a phone that was offline meanwhile would otherwise be
    signed out, unable to link its new push token, and get no page until its owner links it again by QR code.
    """
    ids = list(device_ids)
    if not ids:
        return 0
    # Locked in one order, and before their tokens (emptied by SET_NULL), as unlinking and _app_token_move take them.
    ids = list(Device.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    return Device.objects.filter(pk__in=ids).delete()[0]


def devices_pushed(*, device_ids: Iterable[int], now: datetime) -> None:
    Device.objects.filter(pk__in=list(device_ids)).update(last_pushed_at=now)


LINK_TOKEN_TTL = timedelta(minutes=10)


@transaction.atomic
def device_link_token_create(*, person: User, now: datetime) -> tuple[DeviceLinkToken, str]:
    """A one-time token for `person`'s phone app to link itself (shown as a QR code); the token is returned once
    and stored hashed. Earlier unused tokens of the person stop working."""
    DeviceLinkToken.objects.filter(person=person, used_at__isnull=True).update(expires_at=now)
    value = pysecrets.token_urlsafe(32)
    row = DeviceLinkToken.objects.create(
        person=person, token_hash=secrets.key_hash(value), created_at=now, expires_at=now + LINK_TOKEN_TTL
    )
    return row, value


def device_link_uri(token: str) -> str:
    """What the QR code says: the app opens it (a custom scheme, so a phone's camera hands it to the app)."""
    return "oncall://link?" + urlencode({"server": settings.PUBLIC_URL, "token": token})


def device_link_redeem(
    *,
    token: str,
    platform: str,
    now: datetime,
    push_token: str = "",
    subscription: object = None,
    name: str = "",
    app_version: str = "",
) -> tuple[Device, str]:
    """The app redeems a link token: its device is linked to the token's person and it gets a personal API token
    (returned once) to act as them, tied to the device. The link token works once and for a few minutes.

    The device keeps one app token: the tokens it was given by earlier links (the app reinstalled, signed in
    again, set up anew) are revoked, since the app that held them has just been replaced by this one."""
    with transaction.atomic():
        row = (
            DeviceLinkToken.objects.select_for_update()
            .select_related("person")
            .filter(token_hash=secrets.key_hash(token or ""))
            .first()
        )
        if row is None or row.used_at is not None or row.expires_at <= now or not row.person.is_active:
            raise ApplicationError(
                _("This link code is not valid any more; show a new QR code in your settings."), field="link_token"
            )
        row.used_at = now
        row.save(update_fields=["used_at"])
        device = device_link(
            person=row.person,
            platform=platform,
            now=now,
            token=push_token,
            subscription=subscription,
            name=name,
            app_version=app_version,
        )
        api_tokens_of_devices_revoke(device_ids=[device.pk], now=now)
        # The device's name may take all of a token name's length: the generated name is cut to fit.
        token_name = _("App on %(device)s") % {"device": device.name or device.get_platform_display()}
        _api_token, value = api_token_create(user=row.person, name=token_name[:NAME_MAX], now=now, device=device)
    return device, value
