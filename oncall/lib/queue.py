"""The single seam through which work is handed to the django-q2 worker.

Work is always enqueued after the transaction that decided it has committed: a task never sees rows that
might still roll back, and a rolled-back decision never sends anything.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def enqueue(func: str, *args: object, group: str | None = None) -> None:
    """Run `func` (a dotted path to a task function) with `args` on the worker once the transaction commits."""

    def _send() -> None:
        async_task(func, *args, group=group, hook=None)

    # robust: a broker hiccup must not turn a committed request into an error; the ticker re-hands out whatever
    # was not picked up (timers and deliveries are rows with leases).
    transaction.on_commit(_send, robust=True)
