"""The single seam through which work is handed to the django-q2 worker.

A task never runs before the transaction that decided it has committed, and a rolled-back decision never
enqueues anything:

- With django-q2's ORM broker on the platform's own database (the default), the task row is written inside the
  deciding transaction: it becomes visible to the worker exactly when that transaction commits, and there is no
  moment at which the decision is stored but the hand-over is not.
- With any other broker (Redis), or outside a transaction, the task is enqueued once the transaction commits.
  Should the process die in between, the ticker hands the work out again (timers, deliveries and event batches
  are rows with leases).
"""

from __future__ import annotations

import logging

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django_q.conf import Conf
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def _broker_commits_with_us() -> bool:
    return Conf.ORM == DEFAULT_DB_ALIAS and not Conf.SYNC and connection.in_atomic_block


def enqueue(func: str, *args: object, group: str | None = None) -> None:
    """Run `func` (a dotted path to a task function) with `args` on the worker once the transaction commits."""
    if _broker_commits_with_us():
        async_task(func, *args, group=group, hook=None)
        return

    def _send() -> None:
        async_task(func, *args, group=group, hook=None)

    # robust: a broker hiccup must not turn a committed request into an error; the ticker re-hands out whatever
    # was not picked up.
    transaction.on_commit(_send, robust=True)
