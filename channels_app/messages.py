"""The plain data a message is rendered from. Templates never see ORM objects."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from oncall.models import AlertProgress, Incident


def incident_detail_url(incident_id: int) -> str:
    return settings.PUBLIC_URL + reverse("admin:oncall_incident_change", args=[incident_id])


def incident_context(incident: Incident, *, event: str, level: int, round: int, recipient_name: str) -> dict[str, Any]:
    alerts = list(incident.alerts.order_by("start_time").values("title", "severity", "status", "progress", "labels"))
    return {
        "incident": {
            "id": incident.pk,
            "number": incident.number,
            "title": incident.title,
            "description": incident.description,
            "severity": incident.severity,
            "status": incident.status,
            "progress": incident.progress,
            "start_time": incident.start_time,
            "channel": incident.channel.name,
            "labels": dict(incident.labels),
            "alert_count": len(alerts),
            "active_alert_count": sum(1 for alert in alerts if alert["progress"] == AlertProgress.TRIGGERED),
            "alerts": alerts,
        },
        "event": event,
        "level": level + 1,
        "round": round,
        "recipient_name": recipient_name,
        "detail_url": incident_detail_url(incident.pk),
    }
