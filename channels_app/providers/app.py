"""App push: the person's linked devices, each by its platform's push service (FCM for Android, APNs for iOS,
Web Push for the installable web app). One delivery covers all of a person's devices and succeeds if any took it;
devices whose token the push service reports gone are forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from channels_app.base import NotificationMethod, SendResult
from channels_app.providers import apns, fcm, webpush
from channels_app.providers.push import DeviceResult, PushMessage, combine
from oncall.lib import http
from oncall.models import Device

logger = logging.getLogger(__name__)

PLATFORMS = {
    Device.Platform.ANDROID: fcm.push,
    Device.Platform.IOS: apns.push,
    Device.Platform.WEB: webpush.push,
}


def incident_url(incident_id: int, fallback: str) -> str:
    """Where tapping the notification leads: the incident's engineer page."""
    try:
        return settings.PUBLIC_URL + reverse("web:incident-detail", args=[incident_id])
    except NoReverseMatch:
        return fallback


def _push_one(device: Device, push: PushMessage) -> DeviceResult:
    """One device's result. A platform's unexpected error is that device's (retryable, like any bug in a provider):
    the results of the person's other devices stand, so a device that took the push is not pushed again."""
    try:
        return PLATFORMS[device.platform](device, push)
    except Exception as exc:
        logger.exception("App push to %s device %s raised", device.platform, device.pk)
        return DeviceResult.retryable(device.pk, device.platform, f"unexpected error: {type(exc).__name__}: {exc}")


class AppMethod(NotificationMethod):
    key = "app"
    label = _("App push")
    slots = ("push_title", "push_body")

    def address_for(self, person: Any) -> str | None:
        count = Device.objects.filter(person=person).count()
        return f"{count} device(s)" if count else None

    def unreachable_reason(self, person: Any) -> str:
        return "no app device linked"

    def send(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, delivery: Any
    ) -> SendResult:
        """Push the rendered title and body to every device the recipient has now (but those an earlier attempt of
        this delivery reached: `progress`)."""
        devices = list(Device.objects.filter(person_id=delivery.recipient_id).order_by("pk"))
        if not devices:
            return SendResult.permanent("no app device linked any more")
        reached = set((delivery.state or {}).get("progress", {}).get("done", ()))
        devices = [device for device in devices if device.pk not in reached]
        if not devices:
            return SendResult.sent("", detail={"devices": [], "reached_before": sorted(reached)})
        incident = context.get("incident") or {}
        push = PushMessage(
            title=message["push_title"],
            body=message["push_body"],
            incident_id=delivery.incident_id,
            severity=str(incident.get("severity", "")),
            event=delivery.event,
            url=incident_url(delivery.incident_id, str(context.get("detail_url", ""))),
            ttl=settings.PUSH_TTL_SECONDS,
        )
        results, not_called = [], 0
        for device in devices:
            left = http.attempt_seconds_left()
            if left is not None and left <= 0:
                not_called += 1
                continue
            results.append(_push_one(device, push))
        result = combine(results)
        if not_called:
            # The attempt ran out of time before some devices: the retry pushes those, not the ones reached now.
            return SendResult.retryable(
                f"no time left in the attempt to push {not_called} of {len(devices)} device(s)",
                gone_devices=result.gone_devices,
                pushed_devices=result.pushed_devices,
                detail=result.detail,
                progress={"done": sorted(reached | set(result.pushed_devices))},
            )
        if reached and not result.pushed_devices:
            # An earlier attempt of this delivery reached the person on another device: the page got through,
            # whatever the rest said now (their errors stay in the detail; gone devices are still forgotten).
            return SendResult.sent(
                "",
                gone_devices=result.gone_devices,
                detail={**result.detail, "reached_before": sorted(reached), "errors": result.error[:500]},
            )
        return result
