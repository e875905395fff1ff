"""The single seam through which work is handed to the django-q2 worker.

A task never runs before the transaction that decided it has committed, and a rolled-back decision never
enqueues anything:

- With django-q2's ORM broker on the platform's own database (the default), the task row is written inside the
  deciding transaction: it becomes visible to the worker exactly when that transaction commits, and there is no
  moment at which the decision is stored but the hand-over is not.
- With any other broker (Redis), or outside a transaction, the task is enqueued once the transaction commits.
  Should the process die in between, the ticker hands the work out again (timers, deliveries and event batches
  are rows with leases).

Inside a worker task (`worker_task`), work on a leased row (a level due now, a delivery) is not sent round the
broker at all: this worker does it itself right after the deciding transaction commits. An alert's whole path
(ingest, first level, bot posts) then costs one hand-over instead of three, which is most of what bounds how many
alerts a second the worker takes. Should the worker die first, the lease runs out and the ticker hands the row out
as it would a lost task. A follow-up that fails, or comes after the task has run WORKER_INLINE_SECONDS, goes to
the broker instead.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def _broker_commits_with_us() -> bool:
    return Conf.ORM == DEFAULT_DB_ALIAS and not Conf.SYNC and connection.in_atomic_block


# When the current worker task stops doing follow-ups itself (time.monotonic()); None outside a worker task.
_inline_until: contextvars.ContextVar[float | None] = contextvars.ContextVar("queue_inline_until", default=None)
# When django-q2 kills the current worker task (Q_TIMEOUT after it started; time.monotonic()).
_killed_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("queue_killed_at", default=None)


@contextmanager
def worker_task() -> Iterator[None]:
    """Mark the body as a worker task: leased follow-ups it hands out run here once their transaction commits."""
    if _inline_until.get() is not None:  # a follow-up run inline keeps the budget of the task that started it
        yield
        return
    started = time.monotonic()
    token = _inline_until.set(started + settings.WORKER_INLINE_SECONDS)
    killed = _killed_at.set(started + settings.Q_CLUSTER["timeout"])
    try:
        yield
    finally:
        _inline_until.reset(token)
        _killed_at.reset(killed)


def task_seconds_left() -> float | None:
    """How long the current worker task may still run before django-q2 kills it (Q_TIMEOUT); None outside one."""
    killed_at = _killed_at.get()
    return None if killed_at is None else killed_at - time.monotonic()


def enqueue(func: str, *args: object, group: str | None = None, leased: bool = False) -> None:
    """Run `func` (a dotted path to a task function) with `args` on the worker once the transaction commits.

    `leased`: the work is a row under a lease that the ticker hands out again should this hand-over be lost (a
    timer, a delivery), so a worker task may do it itself after the commit instead.
    """
    until = _inline_until.get()
    if leased and until is not None and time.monotonic() < until:
        transaction.on_commit(partial(_run_inline, func, args, group))
        return
    if _broker_commits_with_us():
        async_task(func, *args, group=group, hook=None)
        return
    # After the commit; a broker hiccup then must not turn a committed request into an error (_hand_over logs it),
    # the ticker re-hands out whatever was not picked up.
    transaction.on_commit(partial(_hand_over, func, args, group))


def _run_inline(func: str, args: tuple, group: str | None) -> None:
    """Do a follow-up in this worker, or hand it to the broker if its task has run long enough or it fails."""
    until = _inline_until.get()
    if until is None or time.monotonic() >= until:
        _hand_over(func, args, group)
        return
    try:
        import_string(func)(*args)
    except Exception:
        logger.exception("Follow-up %s%r failed in the worker; handing it to the queue", func, args)
        _hand_over(func, args, group)


def _hand_over(func: str, args: tuple, group: str | None) -> None:
    """Give a task to the broker now; a broker that fails is logged, not raised."""
    try:
        async_task(func, *args, group=group, hook=None)
    except Exception:
        # The row's lease runs out and the ticker hands it out.
        logger.exception("Handing %s%r to the queue failed; the ticker will", func, args)
