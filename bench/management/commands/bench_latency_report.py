"""`manage.py bench_latency_report`: when each step of the alert → bot path happened, per alert, as JSON.

Read from the rows the platform wrote: the incident's "opened" event dispatched (ingest done), its level-1 timer
run (the escalation level ran), and its bot delivery's first attempt (the send task started). `steps` is keyed by
the alerts' `seq` labels, times in Unix seconds; `queued` counts the tasks still waiting for the worker; `where`
says where each alert stands in the platform (so an alert whose webhook never arrived can be told apart as still
waiting or lost).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django_q.models import OrmQ

from channels_app.models import Delivery
from escalation.models import Timer
from oncall.models import EventBatch, Incident, IncidentEvent


def _epoch(value) -> float | None:
    return value.timestamp() if value is not None else None


class Command(BaseCommand):
    help = "Print when each alert of the latency benchmark was ingested, escalated and sent (JSON)."

    def handle(self, *args, **options) -> None:
        seq_of = {
            pk: str(labels.get("seq"))
            for pk, labels in Incident.objects.filter(labels__has_key="seq").values_list("pk", "labels")
        }
        steps: dict[str, dict[str, float | None]] = {seq: {} for seq in seq_of.values()}
        for incident_id, at in IncidentEvent.objects.filter(
            incident_id__in=seq_of, kind=IncidentEvent.Kind.OPENED
        ).values_list("incident_id", "dispatched_at"):
            steps[seq_of[incident_id]]["dispatched"] = _epoch(at)
        for incident_id, at in Timer.objects.filter(
            state__incident_id__in=seq_of, kind=Timer.Kind.LEVEL, level=0, round=0
        ).values_list("state__incident_id", "done_at"):
            steps[seq_of[incident_id]]["level_ran"] = _epoch(at)
        for incident_id, created, attempted in Delivery.objects.filter(
            incident_id__in=seq_of, bot__isnull=False
        ).values_list("incident_id", "created_at", "last_attempt_at"):
            steps[seq_of[incident_id]]["send_started"] = _epoch(attempted)
            steps[seq_of[incident_id]]["delivery_created"] = _epoch(created)
        where = _where(seq_of, steps)
        self.stdout.write(json.dumps({"steps": steps, "queued": OrmQ.objects.count(), "where": where}))


def _where(seq_of: dict[int, str], steps: dict[str, dict]) -> dict[str, str]:
    """Per alert (by seq): "ingest" (its push is stored, not yet processed), "ingest failed", "escalation" (its
    incident is open, its first level not run yet), "no bot delivery" (the level ran and wrote none), or its bot
    delivery's status ("pending", "sending", "sent", "failed"...)."""
    where: dict[str, str] = {}
    for events, failed_at in EventBatch.objects.values_list("events", "failed_at"):
        for event in events:
            seq = (event.get("labels") or {}).get("seq")
            if seq is not None:
                where[str(seq)] = "ingest failed" if failed_at else "ingest"
    for seq in seq_of.values():
        where[seq] = "no bot delivery" if steps[seq].get("level_ran") else "escalation"
    for incident_id, status in Delivery.objects.filter(incident_id__in=seq_of, bot__isnull=False).values_list(
        "incident_id", "status"
    ):
        where[seq_of[incident_id]] = status
    return where
