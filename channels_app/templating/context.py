"""The plain data every template renders from: dicts, lists, strings, numbers and datetimes, never ORM objects.

`build_context` is the one place that shapes it; `channels_app.messages.message_context` feeds it a real
incident, `sample.sample_context` a made-up one (the admin's syntax check and preview, the tests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

# The events a message can announce. Escalation sends the first four to people; the others are for bots.
EVENTS = (
    "triggered",
    "refired",
    "escalated",
    "assigned",
    "acknowledged",
    "unacknowledged",
    "snoozed",
    "woken",
    "closed",
    "reopened",
    "reassigned",
)
# Flashduty's incident webhook event types (`event_type` in the custom webhook's body). Flashduty has no type for
# a repeated notification: "i_notify" is the timeline's notification entry.
WEBHOOK_EVENT_TYPES = {
    "triggered": "i_new",
    "refired": "i_notify",
    "escalated": "i_assign",
    "assigned": "i_a_rspd",
    "acknowledged": "i_ack",
    "unacknowledged": "i_unack",
    "snoozed": "i_snooze",
    "woken": "i_wake",
    "closed": "i_rslv",
    "reopened": "i_reopen",
    "reassigned": "i_assign",
}
ALERTS_IN_CONTEXT = 50
DESCRIPTION_MAX = 8000
ALERT_DESCRIPTION_MAX = 2000
LABEL_VALUE_MAX = 1000

INCIDENT_FIELDS = (
    "id",
    "number",
    "title",
    "description",
    "severity",
    "status",
    "progress",
    "start_time",
    "last_time",
    "ack_time",
    "close_time",
    "end_time",
    "snoozed_until",
    "channel",
    "channel_id",
    "labels",
)
ALERT_FIELDS = (
    "title",
    "description",
    "severity",
    "status",
    "progress",
    "start_time",
    "last_time",
    "end_time",
    "labels",
)


def event_label(event: str) -> str:
    """A short tag for the event, as subjects and SMS start with it."""
    return {
        "triggered": _("Triggered"),
        "refired": _("Reminder"),
        "escalated": _("Escalated"),
        "assigned": _("Assigned"),
        "acknowledged": _("Acknowledged"),
        "unacknowledged": _("Unacknowledged"),
        "snoozed": _("Snoozed"),
        "woken": _("Woken"),
        "closed": _("Closed"),
        "reopened": _("Reopened"),
        "reassigned": _("Reassigned"),
    }.get(event, event.capitalize())


def headline(*, event: str, actor: Mapping | None, level: int, round: int, incident: Mapping, time_zone: str) -> str:
    """One sentence saying what happened, for the person or group reading it."""
    who = actor["name"] if actor else None
    if event == "refired":
        return _("This incident is still waiting for someone to acknowledge it (reminder %(n)d).") % {"n": round}
    if event == "escalated":
        return _("Nobody acknowledged this incident in time; it has been escalated to you (level %(n)d).") % {
            "n": level
        }
    if event == "assigned":
        if who:
            return _("%(who)s assigned this incident to you.") % {"who": who}
        return _("This incident has been assigned to you.")
    if event == "acknowledged":
        return _("%(who)s acknowledged this incident.") % {"who": who} if who else _("This incident was acknowledged.")
    if event == "unacknowledged":
        if who:
            return _("%(who)s withdrew their acknowledgement: this incident needs attention again.") % {"who": who}
        return _("The acknowledgement was withdrawn: this incident needs attention again.")
    if event == "reassigned":
        if who:
            return _("%(who)s reassigned this incident.") % {"who": who}
        return _("This incident was reassigned.")
    if event == "snoozed":
        until = incident.get("snoozed_until")
        if until:
            at = until.astimezone(ZoneInfo(time_zone)).strftime("%H:%M %Z")
            if who:
                return _("%(who)s snoozed this incident until %(at)s.") % {"who": who, "at": at}
            return _("This incident is snoozed until %(at)s.") % {"at": at}
        return _("This incident was snoozed.")
    if event == "woken":
        return _("The snooze has ended: this incident needs attention again.")
    if event == "closed":
        if who:
            return _("%(who)s closed this incident.") % {"who": who}
        if incident.get("status") == "Ok":
            return _("This incident was closed: all of its alerts recovered.")
        return _("This incident was closed automatically.")
    if event == "reopened":
        return _("%(who)s reopened this incident.") % {"who": who} if who else _("This incident was reopened.")
    return _("A new incident needs your attention.")


def _text(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _labels(labels: Any) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        return {}
    return {str(key): _text(value, LABEL_VALUE_MAX) for key, value in labels.items()}


def alerts_within(context: Mapping[str, Any], budget: int) -> Mapping[str, Any]:
    """`context` with only the first of its incident's alerts that take at most `budget` bytes as JSON, the others
    counted in `incident.alerts_omitted`; `context` itself when they all fit.

    Fifty alerts with fifty labels of 1000 characters each are megabytes: written out in a JSON body, they would
    pass its limit, and half a JSON document cannot be sent.
    """
    incident = context.get("incident") or {}
    alerts = incident.get("alerts") or []
    used = 0
    for index, alert in enumerate(alerts):
        used += len(json.dumps(alert, ensure_ascii=False, default=str).encode("utf-8"))
        if used > budget:
            omitted = (incident.get("alerts_omitted") or 0) + len(alerts) - index
            return {**context, "incident": {**incident, "alerts": alerts[:index], "alerts_omitted": omitted}}
    return context


def build_context(
    *,
    incident: Mapping[str, Any],
    alerts: Sequence[Mapping[str, Any]],
    alert_count: int,
    active_alert_count: int,
    responders: Sequence[Mapping[str, Any]],
    event: str,
    now: datetime,
    detail_url: str,
    ack_url: str,
    time_zone: str,
    actor: Mapping[str, Any] | None = None,
    recipient: Mapping[str, Any] | None = None,
    level: int = 1,
    round: int = 0,
    event_id: str = "",
    event_time: datetime | None = None,
    people: Sequence[Mapping[str, Any]] = (),
    fallback: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context for one message. `level` counts from 1; `round` is 0 for the first notification.

    `event_id` and `event_time` identify the message for receivers that deduplicate (the same for every attempt
    of one message); `people` are who a bot message is about (the level's people, or the responders); `fallback`
    says which bot could not deliver the message this one stands in for.

    Alerts beyond ALERTS_IN_CONTEXT are left out (`alert_count` still counts them); long descriptions and label
    values are shortened, so no incident can make a render slow.
    """
    shown = [
        {
            **{field: alert.get(field) for field in ALERT_FIELDS},
            "description": _text(alert.get("description"), ALERT_DESCRIPTION_MAX),
            "labels": _labels(alert.get("labels")),
        }
        for alert in alerts[:ALERTS_IN_CONTEXT]
    ]
    data = {field: incident.get(field) for field in INCIDENT_FIELDS}
    data.update(
        description=_text(incident.get("description"), DESCRIPTION_MAX),
        labels=_labels(incident.get("labels")),
        alerts=shown,
        alert_count=alert_count,
        active_alert_count=active_alert_count,
        alerts_omitted=max(alert_count - len(shown), 0),
        responders=[dict(responder) for responder in responders],
    )
    actor_data = dict(actor) if actor else None
    return {
        "incident": data,
        "event": event,
        "event_label": event_label(event),
        "headline": headline(
            event=event, actor=actor_data, level=level, round=round, incident=data, time_zone=time_zone
        ),
        "fire_type": "refire" if event == "refired" else "fire",
        "event_type": WEBHOOK_EVENT_TYPES.get(event, event),
        "event_id": event_id,
        "event_time": event_time or now,
        "people": [dict(person) for person in people],
        "fallback": dict(fallback) if fallback else None,
        "actor": actor_data,
        "recipient": dict(recipient) if recipient else None,
        "level": level,
        "round": round,
        "detail_url": detail_url,
        "ack_url": ack_url,
        "time_zone": time_zone,
        "now": now,
    }
