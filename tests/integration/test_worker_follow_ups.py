"""A worker task does the follow-ups it decides itself, and one task drains an integration's pushes.

An alert's path is ingest → its first level → its messages. Handing each step to the queue costs a round trip
through the broker; a worker task instead runs the level due now and the first message it writes as soon as the
deciding transaction commits, hands the other messages round so other workers send them alongside, and gives up
doing follow-ups itself after WORKER_INLINE_SECONDS. Pushes that arrive while a task is queued ride on it.
"""

from __future__ import annotations

import pytest

from channels_app.deliveries import SEND_TASK
from channels_app.models import Delivery
from escalation import services as escalation_services
from escalation.models import Timer
from escalation.services import FIRE_TASK
from oncall import tasks as oncall_tasks
from oncall.lib import queue
from oncall.models import Alert, EventBatch
from oncall.services import ingest
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


def event(key: str) -> dict:
    return {"title_rule": f"{key} down", "event_status": "Critical", "alert_key": key}


@pytest.fixture
def handed(monkeypatch) -> list[tuple[str, tuple]]:
    """What is handed to the queue (and not run: there is no worker)."""
    calls: list[tuple[str, tuple]] = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args, **kwargs: calls.append((func, args)))
    return calls


@pytest.fixture
def integration():
    channel = make_channel()
    make_rule(channel, [{"people": [make_user("alice"), make_user("bob")], "methods": ["email"]}])
    return make_integration(channel=channel)


def test_pushes_waiting_for_a_queued_task_ride_on_it(client, clock, integration, handed):
    instance, key = integration
    for name in ("a", "b", "c"):
        assert push(client, key, event(name)).status_code == 200
    assert handed == [(ingest.PROCESS_TASK, (instance.pk,))], "one task for the three pushes"

    oncall_tasks.batches_process(instance.pk)
    assert sorted(Alert.objects.values_list("alert_key", flat=True)) == ["a", "b", "c"]
    assert not EventBatch.objects.exists()

    handed.clear()
    push(client, key, event("d"))
    assert [func for func, _ in handed] == [ingest.PROCESS_TASK], "a push after the task started queues its own"


def test_a_worker_task_runs_the_level_and_sends_the_first_message_itself(
    client, clock, integration, handed, mailoutbox
):
    instance, key = integration
    push(client, key, event("disk"))
    handed.clear()

    oncall_tasks.batches_process(instance.pk)

    level = Timer.objects.get(kind=Timer.Kind.LEVEL)
    assert level.done_at is not None, "the level ran in the task"
    deliveries = list(Delivery.objects.order_by("pk"))
    assert [d.status for d in deliveries] == ["sent", "pending"]
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [deliveries[0].address]
    # The second message goes round, for another worker to send alongside; nothing else was queued.
    assert handed == [(SEND_TASK, (deliveries[1].pk,))]
    assert deliveries[1].lease_until is not None, "leased, so the ticker hands it out should the hand-over be lost"


def test_after_its_budget_a_task_queues_its_follow_ups(client, clock, integration, handed, settings, mailoutbox):
    settings.WORKER_INLINE_SECONDS = 0
    instance, key = integration
    push(client, key, event("disk"))
    handed.clear()

    oncall_tasks.batches_process(instance.pk)

    timer = Timer.objects.get(kind=Timer.Kind.LEVEL)
    assert timer.done_at is None and handed == [(FIRE_TASK, (timer.pk,))]
    assert mailoutbox == []


def test_a_follow_up_that_fails_in_the_task_is_handed_to_the_queue(client, clock, integration, handed, monkeypatch):
    instance, key = integration
    push(client, key, event("disk"))
    handed.clear()

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(escalation_services, "timer_fire", broken)
    oncall_tasks.batches_process(instance.pk)

    timer = Timer.objects.get(kind=Timer.Kind.LEVEL)
    assert timer.done_at is None and handed == [(FIRE_TASK, (timer.pk,))]
    assert Alert.objects.count() == 1, "the alert itself is stored"


def test_a_long_drain_hands_the_rest_to_a_new_task(client, clock, integration, handed, monkeypatch):
    instance, key = integration
    for name in ("a", "b", "c"):
        push(client, key, event(name))
    handed.clear()
    monkeypatch.setattr(ingest, "DRAIN_SECONDS", -1.0)

    oncall_tasks.batches_process(instance.pk)

    assert list(Alert.objects.values_list("alert_key", flat=True)) == ["a"], "one batch at least, in order"
    assert EventBatch.objects.count() == 2
    assert [func for func, _ in handed].count(ingest.PROCESS_TASK) == 1


def test_a_drain_running_already_leaves_later_pushes_riding_on_the_queued_task(client, clock, integration, handed):
    """A task started before a push drains that push's batch too; the task queued with the push still waits, so
    the pushes after it ride on that one rather than each queueing another."""
    instance, key = integration
    push(client, key, event("a"))
    oncall_tasks.batches_process(instance.pk)  # a first task starts: the pushes after it queue another
    handed.clear()
    push(client, key, event("b"))
    assert handed == [(ingest.PROCESS_TASK, (instance.pk,))]

    assert ingest.batches_drain(integration_id=instance.pk, now=clock.current) == 1, "the first task goes on"
    assert not EventBatch.objects.exists()
    for name in ("c", "d"):
        push(client, key, event(name))
    ingest_tasks = [call for call in handed if call[0] == ingest.PROCESS_TASK]
    assert ingest_tasks == [(ingest.PROCESS_TASK, (instance.pk,))], "c and d ride on the task queued with b"

    oncall_tasks.batches_process(instance.pk)  # that task starts at last and finds c and d
    assert sorted(Alert.objects.values_list("alert_key", flat=True)) == ["a", "b", "c", "d"]


def test_a_broker_failing_after_the_commit_leaves_the_push_stored_and_answered(
    client, clock, integration, monkeypatch, caplog
):
    """With a broker outside the database (Redis), the task is handed over after the commit; a broker that fails
    then does not turn the stored push into an error: the ticker hands its batch out later."""
    instance, key = integration

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(queue, "_broker_commits_with_us", lambda: False)
    monkeypatch.setattr(queue, "async_task", broker_down)
    assert push(client, key, event("a")).status_code == 200
    assert EventBatch.objects.filter(integration=instance).count() == 1
    assert "Handing oncall.tasks.batches_process" in caplog.text
