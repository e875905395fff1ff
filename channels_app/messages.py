"""The plain data a message is rendered from, loaded from an incident. Templates never see ORM objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.urls import reverse

from channels_app.acklinks import ack_url
from channels_app.models import Delivery, MappingEntry
from channels_app.templating.context import ALERTS_IN_CONTEXT, build_context
from oncall.models import AlertProgress, Incident, IncidentEvent, Responder, User


def incident_detail_url(incident_id: int) -> str:
    """The incident's page for engineers (staff can also open it in the admin)."""
    return settings.PUBLIC_URL + reverse("web:incident-detail", args=[incident_id])


def responder_im_ids(people: Sequence[User]) -> dict[int, dict[str, str]]:
    """Each person's user id on each IM platform ({"feishu": "ou_…", "slack": "U…"}), from the user mapping
    tables (matched by email, case-insensitively). With several tables for one platform, the oldest table wins.

    `people` are loaded already (the message's responders and the people it is about): their emails are taken
    from them rather than read again."""
    emails = {person.pk: person.email.lower() for person in people if person.email}
    if not emails:
        return {}
    by_email: dict[str, dict[str, str]] = {}
    entries = (
        MappingEntry.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=set(emails.values()))
        .order_by("table_id")
        .values_list("email", "table__platform", "im_id")
    )
    for email, platform, im_id in entries:
        by_email.setdefault(email.lower(), {}).setdefault(platform, im_id)
    return {pk: by_email[email] for pk, email in emails.items() if email in by_email}


def person_card(user: User, im_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a message may say about a person: name, email, verified phone, IM ids."""
    return {
        "person_id": user.pk,
        "name": user.display_name,
        "email": user.email,
        "phone": user.phone if user.phone and user.phone_verified_at else "",
        "im_ids": dict(im_ids or {}),
    }


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name, "email": user.email}


def message_context(
    *,
    incident: Incident,
    event: str,
    now: datetime,
    level: int = 0,
    round: int = 0,
    recipient: User | None = None,
    recipient_address: str = "",
    actor: User | None = None,
    event_id: str = "",
    event_time: datetime | None = None,
    people: Sequence[User] = (),
    fallback: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context of a message about `incident` announcing `event` (see templating.context).

    `level` counts from 0 here, as escalation does, and from 1 in templates. Times are shown in the recipient's
    time zone, or the channel's for a message to no one in particular.
    """
    alerts = list(
        incident.alerts.order_by("start_time", "id").values(
            "title", "description", "severity", "status", "progress", "start_time", "last_time", "end_time", "labels"
        )[:ALERTS_IN_CONTEXT]
    )
    if len(alerts) < ALERTS_IN_CONTEXT:
        # Every alert is in the list (the usual case): count them here rather than ask again.
        active = sum(1 for alert in alerts if alert["progress"] == AlertProgress.TRIGGERED)
        counts = {"total": len(alerts), "active": active}
    else:
        counts = incident.alerts.aggregate(
            total=Count("id"), active=Count("id", filter=Q(progress=AlertProgress.TRIGGERED))
        )
    responder_rows = list(
        Responder.objects.filter(incident=incident).select_related("person").order_by("assigned_at", "id")
    )
    im_ids = responder_im_ids([row.person for row in responder_rows] + list(people))
    responders = [
        {
            **person_card(row.person, im_ids.get(row.person_id)),
            "assigned_at": row.assigned_at,
            "acknowledged_at": row.acknowledged_at,
        }
        for row in responder_rows
    ]
    fields = {
        "id": incident.pk,
        "number": incident.number,
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "progress": incident.progress,
        "start_time": incident.start_time,
        "last_time": incident.last_time,
        "ack_time": incident.ack_time,
        "close_time": incident.close_time,
        "end_time": incident.end_time,
        "snoozed_until": incident.snoozed_until,
        "channel": incident.channel.name,
        "channel_id": incident.channel_id,
        "labels": incident.labels,
    }
    recipient_data = _person(recipient)
    if recipient_data is None and recipient_address:
        recipient_data = {"name": recipient_address, "email": recipient_address}
    return build_context(
        incident=fields,
        alerts=alerts,
        alert_count=counts["total"],
        active_alert_count=counts["active"],
        responders=responders,
        event=event,
        now=now,
        detail_url=incident_detail_url(incident.pk),
        ack_url=ack_url(incident.pk),
        time_zone=recipient.time_zone if recipient else incident.channel.time_zone,
        actor=_person(actor),
        recipient=recipient_data,
        level=level + 1,
        round=round,
        event_id=event_id,
        event_time=event_time,
        people=[person_card(person, im_ids.get(person.pk)) for person in people],
        fallback=fallback,
    )


def delivery_actor(delivery: Delivery) -> User | None:
    """Who caused the incident event a delivery announces (a reassignment, for example), if anyone."""
    if delivery.incident_event_id is None:
        return None
    event = IncidentEvent.objects.select_related("actor").filter(pk=delivery.incident_event_id).first()
    return event.actor if event else None
