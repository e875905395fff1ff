"""IM fallback: when a bot cannot deliver a message that asks for action, the people it was about are reminded
by SMS and/or email, as the bot is configured, once."""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from channels_app import registry
from channels_app.bots.filters import ACTION_EVENTS
from channels_app.deliveries import PlannedDelivery, deliveries_create
from channels_app.models import Bot, Delivery
from channels_app.outcomes import no_longer_needed
from oncall.models import TimelineEntry, User
from oncall.services.incidents import timeline_add

FALLBACK_METHODS = {
    Bot.Fallback.SMS: ("sms",),
    Bot.Fallback.EMAIL: ("email",),
    Bot.Fallback.BOTH: ("sms", "email"),
}


def bot_fallback_send(*, delivery: Delivery, bot: Bot, kind_label: str, now: datetime) -> list[int]:
    """Remind the people of a failed bot delivery by the bot's fallback methods, through ordinary deliveries keyed
    by the bot delivery (so never twice); the timeline says who and how, and who could not be reminded.

    Nothing is sent for lifecycle notices (acknowledged, closed…), nor once the incident was acknowledged or
    closed after the message was written.
    """
    methods = FALLBACK_METHODS.get(bot.fallback, ())
    if not methods or delivery.event not in ACTION_EVENTS:
        return []
    what = _("%(kind)s bot %(bot)s") % {"kind": kind_label, "bot": bot.name}
    needless = no_longer_needed(delivery)
    if needless:
        timeline_add(
            incident=delivery.incident,
            kind=TimelineEntry.Kind.NOTIFIED,
            message=_("No reminder for the failed message to %(what)s: %(why)s") % {"what": what, "why": needless},
            now=now,
            detail={"delivery_id": delivery.pk, "bot_id": bot.pk, "fallback": []},
        )
        return []
    people = User.objects.filter(pk__in=delivery.state.get("people", []), is_active=True)
    people = sorted(people, key=lambda person: delivery.state["people"].index(person.pk))
    fallback_for = {"bot": bot.name, "kind": kind_label, "error": delivery.error[:200], "delivery_id": delivery.pk}
    planned, reminded, skipped = [], [], []
    for person in people:
        for method in methods:
            notification_method = registry.method(method)
            address = notification_method.address_for(person)
            if not address:
                skipped.append(f"{person.display_name} ({method}: {notification_method.unreachable_reason(person)})")
                continue
            reminded.append(f"{person.display_name} ({notification_method.label})")
            planned.append(
                PlannedDelivery(
                    recipient_key=f"person:{person.pk}",
                    address=address,
                    method=method,
                    recipient_id=person.pk,
                    state={"fallback_for": fallback_for},
                )
            )
    ids = deliveries_create(
        incident=delivery.incident,
        run=delivery.escalation_run,
        level=delivery.level,
        round=delivery.round,
        event=delivery.event,
        planned=planned,
        now=now,
        template_set_id=delivery.template_set_id,
        scope=f"fallback/{delivery.pk}",
    )
    message = _("%(what)s could not deliver the message; reminding %(who)s instead.") % {
        "what": what,
        "who": ", ".join(reminded) or _("nobody"),
    }
    if skipped:
        message += " " + _("Not reachable: %(who)s.") % {"who": "; ".join(skipped)}
    timeline_add(
        incident=delivery.incident,
        kind=TimelineEntry.Kind.NOTIFIED,
        message=message,
        now=now,
        detail={
            "delivery_id": delivery.pk,
            "bot_id": bot.pk,
            "fallback": [{"person_id": p.recipient_id, "method": p.method} for p in planned],
            "skipped": skipped,
        },
    )
    return ids
