"""Writing deliveries: one pending row per message, before anything is sent, handed to the worker on commit."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils.translation import gettext as _

from channels_app.models import Delivery, TemplateSet
from oncall.lib import queue
from oncall.models import Incident

logger = logging.getLogger(__name__)

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
    template_error = ""
    if template_set_id is not None and not TemplateSet.objects.filter(pk=template_set_id).exists():
        # The rule frozen on the incident names a set deleted since (once the rule no longer used it): its messages
        # go out in the default wording rather than fail on the missing row and never be written.
        logger.warning(
            "Template set %s was deleted; incident %s is notified with the default", template_set_id, incident.pk
        )
        template_error = _("Template set #%(id)s was deleted; the default templates were used.") % {
            "id": template_set_id
        }
        template_set_id = None
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
            template_error=template_error,
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


def attempt_still_ours(delivery: Delivery, **changes) -> bool:
    """Whether the delivery is still in the attempt this worker claimed (sending, with the claim's attempt count),
    checked against the row itself just before the provider is called, writing `changes` only if it is (a worker
    that lost its attempt must not overwrite what the attempt now running keeps). An UPDATE, not a read: on
    PostgreSQL it waits for a ticker's hand-over of the row being committed, then sees it."""
    return bool(this_attempt(delivery).update(**(changes or {"last_attempt_at": F("last_attempt_at")})))


def this_attempt(delivery: Delivery):
    """The delivery's row while it is still in the attempt this worker claimed: what a worker writes about its
    attempt goes through it, so a worker that lost the attempt changes nothing."""
    return Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts)
