"""Nothing is lost when a process dies between deciding and doing: the ticker finds the rows and hands them out.

Each test stops one hand-over on its way (as if the process had died right after its commit) and checks that the
ticker recovers it, once, after the lease that guards it runs out.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels_app import tasks as channel_tasks
from channels_app.models import Delivery
from escalation import tasks as escalation_tasks
from escalation.models import Timer
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.lib import queue
from oncall.models import Incident, IncidentEvent, Source, User
from oncall.services import events, lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = {"title_rule": "Disk full", "event_status": "Critical", "alert_key": "disk"}


@pytest.fixture
def key():
    alice = make_user("alice")
    channel = make_channel()
    make_rule(channel, [{"people": [alice]}])
    return make_integration(channel=channel)[1]


def run_ticker():
    return tick(now=clock_module.now())


def push_losing(client, key, monkeypatch, lost: str) -> None:
    """Push an event while every hand-over of task `lost` vanishes, as if its process had died after the commit:
    neither the queue gets it nor does the worker that decided it do it itself."""
    real_async_task, real_run_inline = queue.async_task, queue._run_inline

    def maybe_drop(func, *args, **kwargs):
        if func != lost:
            return real_async_task(func, *args, **kwargs)
        return None

    def maybe_skip(func, args, group):
        if func != lost:
            real_run_inline(func, args, group)

    with monkeypatch.context() as patch:
        patch.setattr(queue, "async_task", maybe_drop)
        patch.setattr(queue, "_run_inline", maybe_skip)
        push(client, key, EVENT)


def test_an_event_whose_dispatch_never_ran_is_dispatched_by_the_ticker(client, clock, key, mailoutbox, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(events, "incident_events_dispatch", lambda **kwargs: 0)
        push(client, key, EVENT)
    assert IncidentEvent.objects.get().dispatched_at is None
    assert mailoutbox == []

    clock.advance(seconds=2)
    run_ticker()
    assert mailoutbox == [], "a fresh event may still be in its writer's hands"
    clock.advance(seconds=4)
    report = run_ticker()
    assert report.events == 1
    assert len(mailoutbox) == 1
    run_ticker()
    assert len(mailoutbox) == 1


def test_a_level_whose_task_was_lost_runs_when_its_lease_ends(client, clock, key, mailoutbox, monkeypatch):
    push_losing(client, key, monkeypatch, "escalation.tasks.timer_fire")
    timer = Timer.objects.get()
    assert timer.done_at is None and timer.lease_until is not None

    clock.advance(seconds=10)
    assert run_ticker().timers == 0, "still leased to the worker it was handed to"
    clock.advance(seconds=21)
    assert run_ticker().timers == 1
    assert len(mailoutbox) == 1
    clock.advance(seconds=31)
    run_ticker()
    assert len(mailoutbox) == 1


def test_sends_whose_tasks_were_lost_go_out_once(client, clock, key, mailoutbox, monkeypatch):
    push_losing(client, key, monkeypatch, "channels_app.tasks.delivery_send")
    assert Delivery.objects.get().status == "pending"
    clock.advance(seconds=31)
    assert run_ticker().deliveries == 1
    assert len(mailoutbox) == 1
    assert Delivery.objects.get().status == "sent"


def test_a_send_whose_task_was_lost_is_not_made_once_the_incident_is_acknowledged(
    client, clock, key, mailoutbox, monkeypatch
):
    """A first attempt that waited (here a lost hand-over; also a queue backlog or the bulkhead) is not made after
    someone acknowledged: it would wake a person for nothing."""
    push_losing(client, key, monkeypatch, "channels_app.tasks.delivery_send")
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(
        incident=incident, by=User.objects.get(username="alice"), source=Source.WEB, now=clock.current
    )
    clock.advance(seconds=31)
    run_ticker()
    assert mailoutbox == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == ("cancelled", "The incident was acknowledged meanwhile.")


def test_a_send_interrupted_by_a_dying_worker_is_attempted_again_once(client, clock, key, mailoutbox, monkeypatch):
    push_losing(client, key, monkeypatch, "channels_app.tasks.delivery_send")
    delivery = Delivery.objects.get()
    # The worker claimed it, then died before the provider answered.
    Delivery.objects.filter(pk=delivery.pk).update(
        status="sending", attempts=1, lease_until=clock.current + timedelta(seconds=45)
    )
    clock.advance(seconds=44)
    run_ticker()
    assert Delivery.objects.get().status == "sending"
    clock.advance(seconds=2)
    run_ticker()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(mailoutbox) == 1


def test_duplicate_tasks_do_nothing_the_second_time(client, clock, key, mailoutbox):
    push(client, key, EVENT)
    timer = Timer.objects.filter(done_at__isnull=False).get()
    delivery = Delivery.objects.get()
    escalation_tasks.timer_fire(timer.pk)
    channel_tasks.delivery_send(delivery.pk)
    assert len(mailoutbox) == 1
    assert Delivery.objects.count() == 1


def test_incidents_whose_dispatch_keeps_failing_do_not_hold_up_the_others(client, clock, mailoutbox, monkeypatch):
    alice = make_user("alice")
    channel = make_channel()
    make_rule(channel, [{"people": [alice]}])
    key = make_integration(channel=channel)[1]
    with monkeypatch.context() as patch:
        patch.setattr(events, "incident_events_dispatch", lambda **kwargs: 0)
        for n in range(3):
            push(client, key, {**EVENT, "alert_key": f"disk-{n}", "title_rule": f"Disk {n} full"})
    stuck = sorted(IncidentEvent.objects.values_list("incident_id", flat=True))[:2]
    real_dispatch = events.incident_events_dispatch

    def failing(*, incident_id, now=None):
        if incident_id in stuck:
            raise RuntimeError("this incident's receivers keep failing")
        return real_dispatch(incident_id=incident_id, now=now)

    monkeypatch.setattr(events, "incident_events_dispatch", failing)
    clock.advance(seconds=6)
    now = clock_module.now()
    sent = [events.incident_events_dispatch_overdue(now=now, limit=2) for _ in range(2)]
    assert sent == [0, 1], "the third incident waited behind the two failing ones"
    assert len(mailoutbox) == 1
    assert set(IncidentEvent.objects.filter(dispatched_at__isnull=True).values_list("incident_id", flat=True)) == set(
        stuck
    )
