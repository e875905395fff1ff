"""Tickers and workers racing over the same rows: every page goes out exactly once.

Threads stand in for processes: each has its own database connection, as separate tickers and workers would, and
runs the real ticker and task code. On PostgreSQL the tickers split due rows with SELECT ... FOR UPDATE SKIP
LOCKED; on SQLite each row is taken by a compare-and-set.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from channels_app import tasks as channel_tasks
from channels_app.models import Delivery
from escalation import services
from escalation.models import Timer
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.lib import queue
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


def race(*jobs, rounds: int = 1) -> list:
    """Run the jobs in threads that start together; return their results."""
    results, errors = [], []
    barrier = threading.Barrier(len(jobs) * rounds)

    def run(job) -> None:
        try:
            barrier.wait()
            results.append(job())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs for _ in range(rounds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


@pytest.fixture
def incidents(client, clock):
    """Twenty incidents whose level 2 (bob) is due five minutes from now."""
    alice, bob = make_user("alice"), make_user("bob")
    channel = make_channel()
    make_rule(channel, [{"people": [alice], "after": 5}, {"people": [bob]}])
    _, key = make_integration(channel=channel)
    for n in range(20):
        push(client, key, {"title_rule": f"host {n} down", "event_status": "Critical", "alert_key": f"h{n}"})
    clock.advance(minutes=5)


def test_two_tickers_ticking_together_escalate_each_incident_once(incidents, mailoutbox):
    reports = race(lambda: tick(now=clock_module.now()), lambda: tick(now=clock_module.now()))
    assert sum(report.timers for report in reports) == 20
    pages = Counter(mail.subject for mail in mailoutbox if mail.to == ["bob@example.com"])
    assert len(pages) == 20 and set(pages.values()) == {1}
    assert Delivery.objects.filter(recipient__username="bob").count() == 20


def test_two_workers_given_the_same_timer_run_it_once(incidents, mailoutbox, monkeypatch):
    due = list(Timer.objects.filter(done_at__isnull=True).values_list("pk", flat=True))
    assert len(due) == 20
    for timer_id in due:
        outcomes = race(
            lambda timer_id=timer_id: services.timer_fire(timer_id=timer_id, now=clock_module.now()),
            lambda timer_id=timer_id: services.timer_fire(timer_id=timer_id, now=clock_module.now()),
        )
        assert sorted(outcomes) == ["ran", "stale"]
    bob_pages = [mail for mail in mailoutbox if mail.to == ["bob@example.com"]]
    assert len(bob_pages) == 20


def test_two_workers_given_the_same_delivery_send_it_once(client, clock, mailoutbox, monkeypatch):
    channel = make_channel()
    make_rule(channel, [{"people": [make_user("carol")]}])
    _, key = make_integration(channel=channel)
    with monkeypatch.context() as patch:  # the level runs, but its sends are left for the racing workers
        real = queue.async_task
        patch.setattr(
            queue,
            "async_task",
            lambda func, *a, **k: None if func == "channels_app.tasks.delivery_send" else real(func, *a, **k),
        )
        push(client, key, {"title_rule": "disk", "event_status": "Critical", "alert_key": "d"})
    delivery = Delivery.objects.get()
    race(lambda: channel_tasks.delivery_send(delivery.pk), lambda: channel_tasks.delivery_send(delivery.pk), rounds=2)
    assert len(mailoutbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
