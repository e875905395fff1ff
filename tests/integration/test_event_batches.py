"""Accepted pushes are stored as batches and processed by the worker in arrival order, never lost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.lib import queue
from oncall.models import Alert, EventBatch, Incident, IncidentEvent, IngestTask
from oncall.services import events, ingest
from oncall.sources.base import NormalizedEvent
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


def event(key: str, status: str = "Critical") -> dict:
    return {"title_rule": f"{key} down", "event_status": status, "alert_key": key}


@pytest.fixture
def integration():
    return make_integration(channel=make_channel())


def push_without_worker(client, key, body, monkeypatch, **kwargs):
    """Push while the hand-over to the worker is lost, as if the web process died right after answering."""
    with monkeypatch.context() as patch:
        patch.setattr(queue, "async_task", lambda *args, **kwargs: None)
        return push(client, key, body, **kwargs)


def test_the_answer_means_stored_and_the_worker_processes_it(client, clock, integration):
    _, key = integration
    assert push(client, key, event("a")).status_code == 200
    assert Alert.objects.get().alert_key == "a"
    assert not EventBatch.objects.exists(), "processed batches are removed"


def test_batches_are_processed_in_arrival_order(client, clock, integration, monkeypatch):
    _, key = integration
    push_without_worker(client, key, event("a"), monkeypatch)
    push_without_worker(client, key, event("a", "Ok"), monkeypatch)
    push_without_worker(client, key, event("b"), monkeypatch)
    assert EventBatch.objects.count() == 3 and not Alert.objects.exists()
    assert ingest.batches_process(integration_id=integration[0].pk, now=clock.current) == 3
    assert dict(Alert.objects.values_list("alert_key", "progress")) == {"a": "Closed", "b": "Triggered"}


def test_a_push_whose_hand_over_was_lost_is_processed_by_the_ticker(client, clock, integration, monkeypatch):
    """The push marked a task as queued, but the broker never got it: the ticker takes the mark for lost once it
    is TASK_LOST old, and queues the task itself."""
    _, key = integration
    push_without_worker(client, key, event("a"), monkeypatch)
    clock.advance(seconds=3)
    assert tick(now=clock_module.now()).batches == 0, "stalled, but a task is queued and may yet start"
    clock.advance(seconds=ingest.TASK_LOST.total_seconds() - 4)
    assert tick(now=clock_module.now()).batches == 0
    assert not Alert.objects.exists()
    clock.advance(seconds=2)
    assert tick(now=clock_module.now()).batches == 1
    assert Alert.objects.get().alert_key == "a"


def test_batches_left_by_a_drain_that_died_are_handed_out_once_they_stall(client, clock, integration, monkeypatch):
    """A task clears the mark as it starts; should its worker die before the batches are drained, nothing is
    queued for them, and the ticker hands them out as soon as they are BATCH_STALL old."""
    instance, key = integration
    push_without_worker(client, key, event("a"), monkeypatch)
    IngestTask.objects.filter(integration=instance).update(queued=False)  # what a starting task does
    clock.advance(seconds=1)
    assert tick(now=clock_module.now()).batches == 0, "not stalled yet"
    clock.advance(seconds=2)
    assert tick(now=clock_module.now()).batches == 1
    assert Alert.objects.get().alert_key == "a"


def test_a_worker_that_is_behind_is_not_handed_the_same_batches_every_tick(client, clock, integration, monkeypatch):
    """When every batch waits longer than BATCH_STALL because the worker is busy, the task queued with the first
    push is enough: the ticker queues no more while it waits, nor do the pushes after it."""
    instance, key = integration
    handed = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args, **kwargs: handed.append((func, args)))
    for second in range(10):
        push(client, key, event(f"a{second}"))
        clock.advance(seconds=1)
        tick(now=clock_module.now())
    assert handed == [(ingest.PROCESS_TASK, (instance.pk,))]
    assert EventBatch.objects.count() == 10 and not Alert.objects.exists()


def test_a_failing_batch_is_retried_then_set_aside_and_the_rest_go_on(client, clock, integration, monkeypatch):
    integration, key = integration
    real_ingest = ingest.alert_ingest
    calls = {"n": 0}

    def broken_for_a(*, integration, events, now):
        if events[0].alert_key == "a":
            calls["n"] += 1
            raise RuntimeError("database hiccup")
        return real_ingest(integration=integration, events=events, now=now)

    monkeypatch.setattr(ingest, "alert_ingest", broken_for_a)
    push_without_worker(client, key, event("a"), monkeypatch)
    push_without_worker(client, key, event("b"), monkeypatch)
    assert ingest.batches_process(integration_id=integration.pk, now=clock.current) == 0
    first = EventBatch.objects.first()
    assert (first.attempts, first.error) == (1, "RuntimeError: database hiccup")
    assert not Alert.objects.exists(), "b waits behind a, to keep the order"

    for wait in (5, 30, 120, 300):
        clock.advance(seconds=wait)
        ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert calls["n"] == 5
    kept = EventBatch.objects.get()
    assert kept.failed_at is not None and kept.events[0]["alert_key"] == "a", "kept for an operator to look at"
    assert list(Alert.objects.values_list("alert_key", flat=True)) == ["b"]


def test_events_of_one_push_all_take_effect_or_none_do(client, clock, integration, monkeypatch):
    integration, _key = integration
    good = NormalizedEvent(status="Critical", alert_key="good", title="good")
    bad = NormalizedEvent(status="Critical", alert_key="bad", title="fails half-way")
    real_create = ingest._create

    def create_failing_on_bad(*, event, **kwargs):
        if event.alert_key == "bad":
            raise RuntimeError("failed after the first event was written")
        return real_create(event=event, **kwargs)

    monkeypatch.setattr(ingest, "_create", create_failing_on_bad)
    with monkeypatch.context() as patch:
        patch.setattr(queue, "async_task", lambda *args, **kwargs: None)
        ingest.events_accept(integration=integration, events=[good, bad], now=clock.current)
    ingest.batches_process(integration_id=integration.pk, now=clock.current)
    assert not Alert.objects.exists()
    assert not Incident.objects.exists()
    assert EventBatch.objects.get().attempts == 1


def fail_once(monkeypatch, alert_key: str) -> None:
    """The first try at storing `alert_key`'s alert fails (its batch then waits its retry); later ones succeed."""
    real_create = ingest._create
    failed = []

    def create_failing_once(*, event, **kwargs):
        if event.alert_key == alert_key and not failed:
            failed.append(event.alert_key)
            raise RuntimeError("database hiccup")
        return real_create(event=event, **kwargs)

    monkeypatch.setattr(ingest, "_create", create_failing_once)


def alertmanager_group(count: int) -> dict:
    """One Alertmanager push holding `count` firing alerts, as a large outage makes one group of."""
    alerts = [
        {"status": "firing", "labels": {"alertname": "Down", "instance": f"host-{n}"}, "fingerprint": f"{n:016x}"}
        for n in range(count)
    ]
    return {"version": "4", "status": "firing", "receiver": "oncall", "alerts": alerts}


def test_a_push_of_many_events_is_stored_as_batches_in_order(client, clock, integration, monkeypatch):
    """So no worker transaction runs for minutes: one killed at the worker's timeout would be tried again, and
    killed again, for good, holding back every later push of its integration."""
    instance, key = integration
    count = 2 * ingest.BATCH_EVENTS + 7
    response = push_without_worker(client, key, alertmanager_group(count), monkeypatch, source="prometheus")
    assert response.status_code == 200, response.content
    assert len(response.json()["data"]["alert_keys"]) == count
    sizes = [len(events) for events in EventBatch.objects.order_by("id").values_list("events", flat=True)]
    assert sizes == [ingest.BATCH_EVENTS, ingest.BATCH_EVENTS, 7]
    stored = [event["alert_key"] for events in EventBatch.objects.values_list("events", flat=True) for event in events]
    assert stored == [f"{n:016x}" for n in range(count)], "every event, once, in the order of the push"

    monkeypatch.setattr(ingest, "DRAIN_SECONDS", 600.0)  # one drain, however slow the machine
    assert ingest.batches_process(integration_id=instance.pk, now=clock.current) == 3
    assert Alert.objects.count() == count and not EventBatch.objects.exists()


def outage(severities: list[str]) -> dict:
    """One Alertmanager push whose alerts group into one incident (by alertname), with these severities."""
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "Down", "host": f"h{n}", "severity": severity},
            "fingerprint": f"{n:x}",
        }
        for n, severity in enumerate(severities)
    ]
    return {"version": "4", "status": "firing", "receiver": "oncall", "alerts": alerts}


def test_an_incident_a_later_batch_of_its_push_raises_is_escalated_for_the_raised_severity(client, clock, mailoutbox):
    """The push is one: its incident, Critical once all of it is in, is escalated as Critical, not as the Warning
    its first batch of 100 made it (a rule that pages only for Critical would otherwise page nobody)."""
    channel = make_channel(group_keys=["alertname"])
    rule = make_rule(channel, [{"people": [make_user("ann")]}], name="Critical only")
    rule.levels.update(warning_methods=[], info_methods=[])
    key = make_integration(channel=channel)[1]
    push(client, key, outage(["warning"] * ingest.BATCH_EVENTS + ["critical"]), source="prometheus")
    assert Incident.objects.get().severity == "Critical"
    assert [mail.to[0].split("@")[0] for mail in mailoutbox] == ["ann"]
    assert not IncidentEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_a_push_whose_last_batch_fails_does_not_hold_back_the_pages_of_its_first(
    client, clock, integration, monkeypatch
):
    """The first batch's events are held while the last one waits its turn; when the last one fails, they go out
    at once instead of after its retries (up to 7.5 minutes), and the last one's follow when its retry succeeds."""
    _, key = integration
    fail_once(monkeypatch, f"{ingest.BATCH_EVENTS:x}")  # the first event of the second batch
    push(client, key, outage(["critical"] * (ingest.BATCH_EVENTS + 1)), source="prometheus")
    undispatched = IncidentEvent.objects.filter(dispatched_at__isnull=True)
    assert EventBatch.objects.get().attempts == 1
    assert not undispatched.exists(), "released when the last batch failed"
    assert Incident.objects.count() == ingest.BATCH_EVENTS
    clock.advance(seconds=5)
    tick(now=clock_module.now())  # the retry is due
    assert not EventBatch.objects.exists() and not undispatched.exists()
    assert Incident.objects.count() == ingest.BATCH_EVENTS + 1


def test_the_sweep_leaves_events_held_for_a_push_alone_while_its_last_batch_waits_its_turn(clock, integration):
    """Held events are the ticker's only once no batch of their push waits a first try (or its drain died)."""
    instance, _ = integration
    incident = Incident.objects.create(
        channel=instance.channel, title="held", start_time=clock.current, last_time=clock.current
    )
    held = IncidentEvent.objects.create(incident=incident, kind="opened", created_at=clock.current)
    batch = EventBatch.objects.create(integration=instance, events=[], received_at=clock.current)
    later = clock.current + timedelta(seconds=10)
    assert events.incident_events_dispatch_overdue(now=later) == 0
    EventBatch.objects.filter(pk=batch.pk).update(attempts=1)
    assert events.incident_events_dispatch_overdue(now=later) == 1
    held.refresh_from_db()
    assert held.dispatched_at is not None


def test_each_batch_of_a_large_push_takes_effect_on_its_own(client, clock, integration, monkeypatch):
    """A batch that fails holds back only itself and the batches after it; those before it stay done."""
    instance, key = integration
    fail_once(monkeypatch, f"{ingest.BATCH_EVENTS + 3:016x}")  # in the second batch
    push_without_worker(client, key, alertmanager_group(2 * ingest.BATCH_EVENTS + 7), monkeypatch, source="prometheus")
    assert ingest.batches_process(integration_id=instance.pk, now=clock.current) == 1
    assert Alert.objects.count() == ingest.BATCH_EVENTS
    assert list(EventBatch.objects.values_list("attempts", flat=True)) == [1, 0]

    clock.advance(seconds=5)
    assert ingest.batches_process(integration_id=instance.pk, now=clock.current) == 2
    assert Alert.objects.count() == 2 * ingest.BATCH_EVENTS + 7


def test_batches_keep_the_time_they_arrived(client, clock, integration, monkeypatch):
    _, key = integration
    arrived = clock.current
    push_without_worker(client, key, event("a"), monkeypatch)
    clock.advance(minutes=5)
    tick(now=clock_module.now())
    alert = Alert.objects.get()
    assert alert.start_time == arrived
    assert Incident.objects.get().start_time == arrived
    assert clock.current - arrived == timedelta(minutes=5)


def test_the_ticker_hands_out_no_drain_while_the_oldest_batch_waits_its_retry(client, clock, integration, monkeypatch):
    """A drain stops at the oldest batch while its retry waits (the order is kept): handing the integration out
    before then would only queue drains that do nothing, every tick."""
    integration, key = integration
    real_ingest = ingest.alert_ingest

    def broken_for_a(*, integration, events, now):
        if events[0].alert_key == "a":
            raise RuntimeError("database hiccup")
        return real_ingest(integration=integration, events=events, now=now)

    monkeypatch.setattr(ingest, "alert_ingest", broken_for_a)
    push(client, key, event("a"))
    push(client, key, event("b"))
    assert EventBatch.objects.first().attempts == 1
    handed = []
    real_enqueue = queue.enqueue

    def counting(func, *args, **kwargs):
        handed.append(func)
        return real_enqueue(func, *args, **kwargs)

    monkeypatch.setattr(queue, "enqueue", counting)
    for _ in range(4):  # the first retry is due 5 s after the failure
        clock.advance(seconds=1)
        tick(now=clock_module.now())
    assert handed.count(ingest.PROCESS_TASK) == 0
    clock.advance(seconds=2)
    tick(now=clock_module.now())
    assert handed.count(ingest.PROCESS_TASK) == 1, "handed out once its retry is due"
    assert EventBatch.objects.first().attempts == 2
