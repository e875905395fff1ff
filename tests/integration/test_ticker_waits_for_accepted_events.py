"""The ticker does not end a snooze or auto-resolve an incident ahead of an event already accepted for it.

When the worker is behind, an event the monitor sent before the deadline may still wait in its batch when the
deadline comes: a repeat of a firing alert (the incident must stay open), a recovery (nobody is to be paged). The
ticker leaves such an incident for a later tick, once the batch is processed, and for at most
PENDING_EVENTS_WAIT when it never is.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.lib import queue
from oncall.models import EventBatch, Incident, Source
from oncall.services import ingest, lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = lifecycle.PENDING_EVENTS_WAIT


def event(key: str, status: str = "Critical") -> dict:
    return {"title_rule": f"{key} down", "event_status": status, "alert_key": key}


def recipients(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


@pytest.fixture
def ingest_behind(monkeypatch):
    """The worker is behind on pushes: none is processed until the test calls the returned catch-up. Everything
    else it is handed (escalation steps, deliveries) runs as usual."""
    hand_over = queue.async_task

    def async_task(func, *args, **kwargs):
        if func != ingest.PROCESS_TASK:
            return hand_over(func, *args, **kwargs)
        return None

    monkeypatch.setattr(queue, "async_task", async_task)

    def catch_up(integration, clock) -> None:
        ingest.batches_process(integration_id=integration.pk, now=clock.current)

    return catch_up


def ticks(clock, **delta):
    clock.advance(**delta)
    return tick(now=clock_module.now())


def auto_resolving(client, clock):
    alice = make_user("alice")
    channel = make_channel(auto_resolve_minutes=60)
    make_rule(channel, [{"people": [alice]}])
    integration, key = make_integration(channel=channel)
    push(client, key, event("a"))
    ingest.batches_process(integration_id=integration.pk, now=clock.current)  # at once, also under ingest_behind
    return integration, key


def test_auto_resolve_does_not_close_an_incident_whose_event_was_accepted_before_its_deadline(
    client, clock, mailoutbox, ingest_behind
):
    integration, key = auto_resolving(client, clock)
    assert recipients(mailoutbox) == ["alice"]
    repeated_at = clock.advance(minutes=59, seconds=59)
    push(client, key, event("a"))  # stored, not yet processed
    assert ticks(clock, seconds=1).auto_resolved == 0, "the monitor said it is still firing before the deadline"
    ingest_behind(integration, clock)
    assert ticks(clock, seconds=1).auto_resolved == 0
    incident = Incident.objects.get()
    assert incident.progress == "Triggered"
    assert incident.auto_resolve_at == repeated_at + timedelta(minutes=60)
    assert recipients(mailoutbox) == ["alice"], "no second incident, no second page"
    assert ticks(clock, minutes=60).auto_resolved == 1, "it still closes once its alert is quiet for the time"


def test_an_event_accepted_after_the_auto_resolve_deadline_does_not_keep_the_incident_open(
    client, clock, ingest_behind
):
    _, key = auto_resolving(client, clock)
    clock.advance(minutes=60, seconds=1)
    push(client, key, event("a"))  # after the deadline: the incident was due to close before it came
    assert tick(now=clock_module.now()).auto_resolved == 1


def test_an_event_waiting_in_another_integration_does_not_hold_an_auto_resolve_back(client, clock, ingest_behind):
    auto_resolving(client, clock)
    _, other_key = make_integration(channel=make_channel())
    clock.advance(minutes=59)
    push(client, other_key, event("a"))
    assert ticks(clock, minutes=1).auto_resolved == 1, "its alerts are not that integration's"


def test_an_event_the_worker_never_processes_holds_an_auto_resolve_back_for_a_bounded_time(
    client, clock, ingest_behind
):
    _, key = auto_resolving(client, clock)
    clock.advance(minutes=59, seconds=59)
    push(client, key, event("a"))
    assert ticks(clock, seconds=1).auto_resolved == 0
    assert ticks(clock, seconds=WAIT.total_seconds() - 1).auto_resolved == 0
    assert ticks(clock, seconds=1).auto_resolved == 1, "closed at most PENDING_EVENTS_WAIT late"


def test_a_batch_set_aside_for_good_does_not_hold_an_auto_resolve_back(client, clock, ingest_behind):
    _, key = auto_resolving(client, clock)
    clock.advance(minutes=59, seconds=59)
    push(client, key, event("a"))
    EventBatch.objects.update(attempts=len(ingest.BATCH_RETRY) + 1, failed_at=clock.current)  # its last retry failed
    assert ticks(clock, seconds=1).auto_resolved == 1


@pytest.fixture
def snoozed(client, clock):
    """An incident alice acknowledged and snoozed for 10 minutes; she was paged once."""
    alice = make_user("alice")
    channel = make_channel()
    make_rule(channel, [{"people": [alice]}])
    integration, key = make_integration(channel=channel)
    push(client, key, event("checkout"))
    ingest.batches_process(integration_id=integration.pk, now=clock.current)  # at once, also under ingest_behind
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(incident=incident, by=alice, source=Source.WEB, now=clock.current)
    lifecycle.incident_snooze(incident=incident, by=alice, minutes=10, source=Source.WEB, now=clock.current)
    return integration, key, incident


def test_a_snooze_ending_after_a_recovery_was_accepted_does_not_page_for_the_recovered_incident(
    client, clock, mailoutbox, snoozed, ingest_behind
):
    integration, key, incident = snoozed
    assert recipients(mailoutbox) == ["alice"]
    clock.advance(minutes=9, seconds=59)
    push(client, key, event("checkout", "Ok"))
    assert ticks(clock, seconds=1).woken == 0, "the recovery came before the snooze ended"
    ingest_behind(integration, clock)
    assert ticks(clock, seconds=1).woken == 0
    incident.refresh_from_db()
    assert (incident.progress, incident.status) == ("Closed", "Ok")
    assert not incident.timeline.filter(kind="woken").exists()
    ticks(clock, hours=1)
    assert recipients(mailoutbox) == ["alice"], "nobody is paged for an incident that recovered"


def test_a_snooze_held_back_for_a_repeat_of_the_alert_ends_once_the_repeat_is_processed(
    client, clock, mailoutbox, snoozed, ingest_behind
):
    integration, key, incident = snoozed
    clock.advance(minutes=9, seconds=59)
    push(client, key, event("checkout"))
    assert ticks(clock, seconds=1).woken == 0
    ingest_behind(integration, clock)
    assert ticks(clock, seconds=1).woken == 1, "still firing: the snooze ends"
    assert Incident.objects.get(pk=incident.pk).progress == "Triggered"
    assert recipients(mailoutbox) == ["alice", "alice"]


def test_a_snooze_ends_at_most_pending_events_wait_late_when_the_worker_never_processes_the_event(
    client, clock, snoozed, ingest_behind
):
    _, key, _ = snoozed
    clock.advance(minutes=9, seconds=59)
    push(client, key, event("checkout", "Ok"))
    assert ticks(clock, seconds=1).woken == 0
    assert ticks(clock, seconds=WAIT.total_seconds() - 1).woken == 0
    assert ticks(clock, seconds=1).woken == 1, "a page is never held back longer than PENDING_EVENTS_WAIT"
