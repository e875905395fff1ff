"""Claiming due rows so that any number of tickers can run at once and each row is handed out once per lease."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import QuerySet


def claim_due(
    queryset: QuerySet, *, now: datetime, lease: timedelta, limit: int = 500, order: tuple[str, ...] = ("pk",)
) -> list[int]:
    """Lease up to `limit` rows of `queryset` (already filtered to "due and not leased") and return their ids, in
    `order` (the order they are handed out: on PostgreSQL an unordered scan returns rows in whatever order their
    last update left them, so messages due together would go out shuffled).

    The model needs a nullable `lease_until` field. On PostgreSQL the rows are locked with
    `SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent tickers take disjoint rows without waiting on each other;
    elsewhere (SQLite) each row is taken by a compare-and-set on its current lease.
    """
    model = queryset.model
    until = now + lease
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(
                queryset.select_for_update(skip_locked=True, of=("self",))
                .order_by(*order)
                .values_list("pk", flat=True)[:limit]
            )
            if ids:
                model.objects.filter(pk__in=ids).update(lease_until=until)
            return ids
        claimed = []
        for pk, lease_until in queryset.order_by(*order).values_list("pk", "lease_until")[:limit]:
            if model.objects.filter(pk=pk, lease_until=lease_until).update(lease_until=until):
                claimed.append(pk)
        return claimed
