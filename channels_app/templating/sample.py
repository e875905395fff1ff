"""Realistic made-up incidents: what the admin checks templates against and previews, and what tests render.

No database: the data goes through the same `build_context` as a real incident's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from channels_app.templating.context import build_context

SAMPLE_NOW = datetime(2026, 3, 2, 9, 12, 0, tzinfo=UTC)
VARIANTS = ("full", "bare", "many", "long", "unicode")
SAMPLE_URL = "https://oncall.example.com"


def _alert(n: int, start: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "title": f"Disk usage above 90% on db-{n}",
        "description": f"/var/lib/postgresql is {90 + n % 10}% full.",
        "severity": "Critical" if n % 3 else "Warning",
        "status": "Critical" if n % 3 else "Warning",
        "progress": "Triggered",
        "start_time": start + timedelta(seconds=20 * n),
        "last_time": start + timedelta(minutes=5, seconds=20 * n),
        "end_time": None,
        "labels": {"host": f"db-{n}", "service": "billing", "region": "eu-west-1"},
        **fields,
    }


def sample_incident(variant: str = "full", *, now: datetime = SAMPLE_NOW) -> dict[str, Any]:
    """The parts of a sample incident: its fields, alerts, counts and responders."""
    start = now - timedelta(minutes=12)
    incident: dict[str, Any] = {
        "id": 42,
        "number": 42,
        "title": "Disk usage above 90% on db-1",
        "description": "The primary database is running out of disk space.\nWrites fail once it is full.",
        "severity": "Critical",
        "status": "Critical",
        "progress": "Triggered",
        "start_time": start,
        "last_time": now - timedelta(minutes=1),
        "ack_time": None,
        "close_time": None,
        "end_time": None,
        "snoozed_until": None,
        "channel": "Production",
        "channel_id": 1,
        "labels": {"host": "db-1", "service": "billing", "region": "eu-west-1"},
    }
    alerts = [_alert(n, start) for n in (1, 2, 3)]
    responders = [
        {
            "person_id": 7,
            "name": "Alice Chen",
            "email": "alice@example.com",
            "phone": "+8613800000000",
            "im_ids": {"feishu": "ou_7d8a6e6df7621556ce0d21922b676706", "slack": "U012AB3CD"},
            "assigned_at": start,
            "acknowledged_at": None,
        }
    ]
    if variant == "bare":
        incident.update(description="", labels={}, title="Heartbeat missing")
        alerts = [_alert(1, start, title="Heartbeat missing", description="", labels={})]
        responders = []
    elif variant == "many":
        alerts = [_alert(n, start) for n in range(1, 121)]
        incident["title"] = "120 disks above 90%"
    elif variant == "long":
        incident["title"] = ("Very long title " * 40)[:512]
        incident["description"] = "A long description line that goes on. " * 400
        incident["labels"] = {f"label_{n}": "value " * 20 for n in range(40)}
        alerts = [_alert(n, start, title=("Long alert title " * 30)[:512]) for n in range(1, 51)]
    elif variant == "unicode":
        incident.update(
            title="数据库磁盘使用率超过 90% — 主库 db-1 🔥",
            description="写入将在磁盘写满后失败。Ünïcödé ✓ «quotes» עברית",
            channel="生产环境",
            labels={"主机": "db-1", "服务": "账单"},
        )
        alerts = [_alert(1, start, title="磁盘使用率超过 90%", labels={"主机": "db-1"})]
        responders[0]["name"] = "陈爱丽"
    total = len(alerts)
    return {
        "incident": incident,
        "alerts": alerts,
        "alert_count": total,
        "active_alert_count": total,
        "responders": responders,
    }


def sample_context(
    event: str = "triggered", variant: str = "full", *, now: datetime = SAMPLE_NOW, time_zone: str = "Europe/Berlin"
) -> dict[str, Any]:
    """A complete template context for a sample incident announcing `event`."""
    parts = sample_incident(variant, now=now)
    incident = parts["incident"]
    actor = None
    if event in ("acknowledged", "unacknowledged", "snoozed", "closed", "reopened", "assigned", "reassigned"):
        actor = {"id": 8, "name": "Bob Martin", "email": "bob@example.com"}
    if event == "acknowledged":
        incident.update(progress="Processing", ack_time=now - timedelta(minutes=1))
        parts["responders"] = [dict(r, acknowledged_at=now - timedelta(minutes=1)) for r in parts["responders"]]
    elif event == "snoozed":
        incident.update(
            progress="Processing", ack_time=now - timedelta(minutes=3), snoozed_until=now + timedelta(hours=1)
        )
    elif event == "closed":
        incident.update(progress="Closed", status="Ok", close_time=now, end_time=now)
    return build_context(
        **parts,
        event=event,
        now=now,
        detail_url=f"{SAMPLE_URL}/incidents/{incident['id']}/",
        ack_url=f"{SAMPLE_URL}/incidents/{incident['id']}/ack/1tTnQV:sample-token/",
        time_zone=time_zone,
        actor=actor,
        recipient={"name": "Alice Chen", "email": "alice@example.com"},
        level=2 if event == "escalated" else 1,
        round=1 if event == "refired" else 0,
        event_id="5f0c2a9e8d1b4c3a2f1e0d9c",
        event_time=now,
        people=[
            {key: responder[key] for key in ("person_id", "name", "email", "phone", "im_ids")}
            for responder in parts["responders"]
        ],
    )
