"""Test notifications: a person checks that a method reaches them ("send me a test")."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.base import SendResult
from channels_app.templating.context import build_context
from channels_app.templating.render import render_slots
from oncall.lib import ratelimit
from oncall.models import User

TESTS_PER_MINUTE = 2


def test_context(*, person: User, now: datetime) -> dict:
    """A made-up incident that says it is a test, addressed to `person`."""
    incident = {
        "id": 0,
        "number": 0,
        "title": _("Test notification: no action needed"),
        "description": _("You asked for this test from your on-call settings."),
        "severity": "Info",
        "status": "Info",
        "progress": "Triggered",
        "channel": _("Test"),
        "labels": {},
        "start_time": now,
        "last_time": now,
    }
    url = f"{settings.PUBLIC_URL}/me/"
    return build_context(
        incident=incident,
        alerts=[],
        alert_count=0,
        active_alert_count=0,
        responders=[],
        event="triggered",
        now=now,
        detail_url=url,
        ack_url=url,
        time_zone=person.time_zone,
        recipient={"name": person.display_name, "email": person.email},
    )


def method_test_send(*, person: User, method: str, now: datetime) -> SendResult:
    """Send `person` a test message by `method` (to their verified contact); what the provider answered.

    At most TESTS_PER_MINUTE per person and method, so the button cannot be turned into a pager for someone.
    """
    notification_method = registry.method(method)
    address = notification_method.address_for(person)
    if not address:
        return SendResult.permanent(notification_method.unreachable_reason(person))
    limited = ratelimit.hit(
        f"method-test:{person.pk}:{method}", [ratelimit.Limit(TESTS_PER_MINUTE, 60)], now=now.timestamp()
    )
    if limited:
        return SendResult.retryable(_("Too many tests; try again in a minute."), retry_after=limited.retry_after)
    context = test_context(person=person, now=now)
    rendered = render_slots(notification_method.slots, bodies=None, context=context)
    message = {name: item.text for name, item in rendered.items()}
    return notification_method.send_test(message=message, context=context, address=address, person=person)
