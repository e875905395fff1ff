"""Email delivery events from the ESP's tracking webhook (django-anymail), applied to the deliveries they are about.

anymail checks the webhook's HTTP basic auth (ANYMAIL["WEBHOOK_SECRET"]) and the ESP's own signature where there
is one, normalises the ESP's events and sends them on its `tracking` signal; `hooks/anymail/` refuses every
request while no secret is configured (fail closed), which anymail alone would only warn about.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from anymail import urls as anymail_urls
from anymail.signals import tracking
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver
from django.http import HttpResponseForbidden
from django.urls import URLPattern

from channels_app.models import Delivery
from channels_app.outcomes import Report, delivery_report
from oncall.lib import clock

logger = logging.getLogger(__name__)

# anymail's reject reasons that say the address itself is bad (not a full mailbox or a spam filter).
ADDRESS_REJECTIONS = {"invalid", "bounced", "unsubscribed"}
# Those of a bounce that do (anymail reports a receiver's block, a timeout or a virus as a bounce too); a soft
# bounce among them (a full mailbox, a DNS hiccup) does not either: see _soft_bounce.
ADDRESS_BOUNCES = {None, "bounced", "invalid"}
# How ESPs mark a bounce as temporary in their own event: Postmark's Type, Brevo's event, SES's bounceType,
# SendGrid's type (a "blocked" bounce: the receiving server refused for now)...
SOFT_BOUNCE_KINDS = {"softbounce", "soft_bounce", "soft-bounce", "transient", "blocked"}
# ...and SparkPost's bounce classes: soft bounce, DNS failure, mailbox full, too large, timeout, transient failure.
SPARKPOST_SOFT_CLASSES = {"20", "21", "22", "23", "24", "70"}


def email_event_report(
    *, event_type: str, reject_reason: str | None, description: str, esp: str, soft: bool = False
) -> Report | None:
    """What an ESP event means for the email's delivery (None: nothing; opens, clicks, deferrals).

    A hard bounce fails the delivery and flags the address; a soft one (a full mailbox; some ESPs report it as a
    bounce) or one the receiver's policy caused (blocked, spam, a timeout) fails the delivery only.
    """
    detail = {"esp": esp, "event": event_type, **({"reject_reason": reject_reason} if reject_reason else {})}
    why = (description or reject_reason or event_type)[:300]
    if event_type == "delivered":
        return Report("delivered", "delivered", detail=detail)
    if event_type == "bounced":
        flag = f"bounced ({esp}): {why}" if not soft and reject_reason in ADDRESS_BOUNCES else ""
        return Report("refused", f"email bounced: {why}", flag=flag, detail=detail)
    if event_type == "rejected":
        flag = f"rejected ({esp}): {why}" if reject_reason in ADDRESS_REJECTIONS else ""
        return Report("refused", f"email rejected: {why}", flag=flag, detail=detail)
    if event_type == "failed":
        return Report("refused", f"email failed: {why}", detail=detail)
    return None


def email_tracking_apply(
    *,
    message_id: str,
    event_type: str,
    reject_reason: str | None,
    description: str,
    esp: str,
    now: datetime,
    soft: bool = False,
) -> int:
    """Apply one tracking event to the email deliveries with that provider message id; returns how many."""
    report = email_event_report(
        event_type=event_type, reject_reason=reject_reason, description=description, esp=esp, soft=soft
    )
    if not message_id or report is None:
        return 0
    ids = list(Delivery.objects.filter(method="email", provider_id=message_id).values_list("pk", flat=True))
    for delivery_id in ids:
        delivery_report(delivery_id=delivery_id, report=report, now=now)
    return len(ids)


def _soft_bounce(esp_event) -> bool:
    """Whether the ESP's own event says a bounce is temporary: anymail normalises Postmark's SoftBounce, Brevo's
    soft_bounce, SES's Transient bounces, SendGrid's blocked ones and SparkPost's soft bounce classes to a plain
    "bounced"."""
    if not isinstance(esp_event, dict):
        return False
    bounce = esp_event.get("bounce")
    kinds = (
        esp_event.get("Type"),
        esp_event.get("type"),
        esp_event.get("event"),
        bounce.get("bounceType") if isinstance(bounce, dict) else None,
    )
    if any(str(kind).lower() in SOFT_BOUNCE_KINDS for kind in kinds if kind):
        return True
    # SparkPost's event comes wrapped: {"msys": {"message_event": {..., "bounce_class": "22"}}}.
    wrapped = esp_event.get("msys")
    events = wrapped.values() if isinstance(wrapped, dict) else ()
    classes = {str(event.get("bounce_class", "")) for event in events if isinstance(event, dict)}
    return bool(classes & SPARKPOST_SOFT_CLASSES)


@receiver(tracking, dispatch_uid="channels_app.email_tracking")
def on_tracking_event(sender, event, esp_name, **kwargs) -> None:
    email_tracking_apply(
        soft=_soft_bounce(event.esp_event),
        message_id=str(event.message_id or ""),
        event_type=str(event.event_type or ""),
        reject_reason=event.reject_reason,
        description=str(event.description or event.mta_response or ""),
        esp=str(esp_name),
        now=clock.now(),
    )


def _secret_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (settings.ANYMAIL or {}).get("WEBHOOK_SECRET") and not getattr(settings, "ANYMAIL_WEBHOOK_SECRET", ""):
            return HttpResponseForbidden("tracking webhooks are off: ANYMAIL WEBHOOK_SECRET is not set")
        try:
            return view(request, *args, **kwargs)
        except ImproperlyConfigured as exc:
            # Every ESP's webhook is mounted, but only the one in use has its package and signing key: the others
            # refuse (closed, as without a secret) instead of failing with a 500 on each request.
            logger.warning("Refused a tracking webhook that is not configured: %s", exc)
            return HttpResponseForbidden("this email provider's tracking webhook is not configured")

    wrapper.csrf_exempt = True
    return wrapper


def tracking_urlpatterns() -> list[URLPattern]:
    """anymail's tracking webhook URLs (not its inbound ones), each refusing requests until a secret is set."""
    return [
        URLPattern(pattern.pattern, _secret_required(pattern.callback), pattern.default_args, pattern.name)
        for pattern in anymail_urls.urlpatterns
        if isinstance(pattern, URLPattern) and pattern.name and "tracking" in pattern.name
    ]
