"""The plain data a message is rendered from, loaded from an incident. Templates never see ORM objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse

from channels_app.acklinks import ack_url
from channels_app.templating.context import ALERTS_IN_CONTEXT, build_context
from oncall.models import AlertProgress, Incident, Responder, User


def incident_detail_url(incident_id: int) -> str:
    """The incident's page for engineers (staff can also open it in the admin)."""
    return settings.PUBLIC_URL + reverse("web:incident-detail", args=[incident_id])


def responder_im_ids(person_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Each person's user id on each IM platform ({"feishu": "ou_…", "dingtalk": "…"}), for @mentions.

    Empty until the mapping tables (email → IM user id, per platform) exist; they will be read here.
    """
    return {}


def _person(user: User | None) -> dict[str, str] | None:
    if user is None:
        return None
    return {"name": user.display_name, "email": user.email}


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
    counts = incident.alerts.aggregate(
        total=Count("id"), active=Count("id", filter=Q(progress=AlertProgress.TRIGGERED))
    )
    responder_rows = list(
        Responder.objects.filter(incident=incident).select_related("person").order_by("assigned_at", "id")
    )
    im_ids = responder_im_ids([row.person_id for row in responder_rows])
    responders = [
        {
            "name": row.person.display_name,
            "email": row.person.email,
            "im_ids": im_ids.get(row.person_id, {}),
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
    )
