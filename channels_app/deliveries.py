"""Writing deliveries: one pending row per message, before anything is sent, handed to the worker on commit."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from channels_app.models import Delivery
from oncall.lib import queue
from oncall.models import Incident

SEND_TASK = "channels_app.tasks.delivery_send"


@dataclass(frozen=True)
class PlannedDelivery:
    recipient_key: str
    address: str
    method: str
    recipient_id: int | None = None
    bot_id: int | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


def deliveries_create(
    *,
    incident: Incident,
    run: int,
    level: int,
    round: int,
    event: str,
    planned: Sequence[PlannedDelivery],
    now: datetime,
    event_id: int | None = None,
    template_set_id: int | None = None,
    scope: str | None = None,
) -> list[int]:
    """Write one pending delivery per planned message and hand them to the worker once the transaction commits.

    A delivery that already exists (same incident, run, level, round, recipient and method; or, for a
    notification caused by one incident event, same event, recipient and method; or the same `scope`, such as
    the fallback of one bot delivery) is left alone: the unique key turns a second writer into a no-op, never
    into a second page.
    """
    if scope is None:
        scope = f"event/{event_id}" if event_id is not None else f"{run}/{level}/{round}"
    rows = [
        Delivery(
            incident=incident,
            escalation_run=run,
            level=level,
            round=round,
            recipient_id=item.recipient_id,
            bot_id=item.bot_id,
            recipient_key=item.recipient_key,
            address=item.address,
            method=item.method,
            event=event,
            template_set_id=template_set_id,
            dedup_key=Delivery.make_dedup_key(
                incident_id=incident.pk, scope=scope, recipient_key=item.recipient_key, method=item.method
            ),
            status=Delivery.Status.PENDING,
            callback_code=secrets.token_urlsafe(24),
            state=dict(item.state),
            next_attempt_at=now,
            # Leased to the enqueue below; if that never happens, the ticker hands it out when the lease ends.
            lease_until=now + timedelta(seconds=settings.TIMER_LEASE_SECONDS),
            created_at=now,
        )
        for item in planned
    ]
    Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    ids = list(
        Delivery.objects.filter(dedup_key__in=[row.dedup_key for row in rows], status=Delivery.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # A worker writing them sends the first itself and hands the rest round, so other workers send them alongside.
    for position, delivery_id in enumerate(ids):
        queue.enqueue(SEND_TASK, delivery_id, group="delivery", leased=position == 0)
    return ids
