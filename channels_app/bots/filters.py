"""Which bots post a message, as a pure decision over plain data: enabled, severity selected, event subscribed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

SEVERITIES = ("Critical", "Warning", "Info")

# What a bot can be told about: the escalation's own messages (triggered, escalated, refired) and the lifecycle
# events people cause (or the system, for woken and closed).
BOT_EVENTS = (
    "triggered",
    "escalated",
    "refired",
    "acknowledged",
    "unacknowledged",
    "snoozed",
    "woken",
    "closed",
    "reopened",
    "reassigned",
)
BOT_EVENT_LABELS = {
    "triggered": gettext_lazy("Triggered"),
    "escalated": gettext_lazy("Escalated"),
    "refired": gettext_lazy("Repeated (reminder)"),
    "acknowledged": gettext_lazy("Acknowledged"),
    "unacknowledged": gettext_lazy("Unacknowledged"),
    "snoozed": gettext_lazy("Snoozed"),
    "woken": gettext_lazy("Woken"),
    "closed": gettext_lazy("Closed"),
    "reopened": gettext_lazy("Reopened"),
    "reassigned": gettext_lazy("Reassigned"),
}
# Messages that ask someone to act; only these fall back to SMS/email when the bot cannot deliver them.
ACTION_EVENTS = frozenset({"triggered", "escalated", "refired"})


@dataclass(frozen=True)
class BotFilter:
    """A bot's advanced options that decide whether it posts. Empty severities or events: all."""

    enabled: bool = True
    severities: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, enabled: bool, severities: Collection[str], events: Collection[str]) -> BotFilter:
        return cls(enabled, frozenset(severities), frozenset(events))


def bot_skip_reason(bot: BotFilter, *, severity: str, event: str) -> str:
    """Why the bot does not post about an incident of `severity` announcing `event` ("" when it posts)."""
    if not bot.enabled:
        return _("the bot is disabled")
    if bot.severities and severity not in bot.severities:
        return _("severity %(severity)s is not selected") % {"severity": severity}
    if bot.events and event not in bot.events:
        return _("it is not subscribed to %(event)s") % {"event": event}
    return ""
