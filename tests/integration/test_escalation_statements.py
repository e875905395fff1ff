"""What escalating a new incident costs the database: the dispatch of its opened event and its first level, which the
worker runs itself right after. At 50 alerts a second the worker's CPU goes mostly to building SQL statements
(bench/latency.py); a change that adds statements back to this path shows here first."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app import services as channel_services
from channels_app.models import Delivery
from escalation.models import EscalationState, Timer
from oncall.lib import queue
from oncall.models import EventBatch, Incident, IncidentEvent
from oncall.services import events, ingest
from tests.factories import make_bot, make_channel, make_integration, make_rule, push

pytestmark = pytest.mark.django_db(transaction=True)

# The dispatch (lock the incident, read its events, choose and freeze the rule, schedule level 1) and the level
# (lock the incident, its escalation state and the timer, post to the bot, schedule the end), each in its own
# transaction, BEGIN and COMMIT included; as many on SQLite as on PostgreSQL.
STATEMENTS = 25


@pytest.fixture
def opened(client, clock, monkeypatch) -> Incident:
    """An incident opened by an alert whose events are not dispatched yet, in a channel whose rules (one per shard
    label, as the benchmark's) post from their first level to a bot and page nobody."""
    channel = make_channel()
    for shard in range(3):
        rule = make_rule(channel, [{"bots": [make_bot("webhook", f"http://127.0.0.1:9/hook/{shard}")], "methods": []}])
        rule.filters = [[{"key": "labels.shard", "op": "IN", "values": [str(shard)]}]]
        rule.save(update_fields=["filters"])
    integration, key = make_integration(channel=channel)
    monkeypatch.setattr(queue, "async_task", lambda *args, **kwargs: None)  # the push's task: run below
    body = {"title_rule": "disk full", "event_status": "Critical", "alert_key": "disk", "labels": {"shard": "1"}}
    assert push(client, key, body).status_code == 200
    with events.incident_events_held():
        ingest.batches_drain(integration_id=integration.pk, now=clock.current)
    assert not EventBatch.objects.exists()
    return Incident.objects.get()


def test_a_new_incident_is_escalated_and_its_level_posted_in_a_bounded_number_of_statements(opened, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(channel_services, "delivery_send", lambda *, delivery_id, now: sent.append(delivery_id))

    with queue.worker_task(), CaptureQueriesContext(connection) as captured:
        assert events.incident_events_dispatch(incident_id=opened.pk) == 1

    post = Delivery.objects.get(incident=opened)
    assert (post.bot.url, post.status) == ("http://127.0.0.1:9/hook/1", Delivery.Status.PENDING)
    assert sent == [post.pk], "the worker sends the post itself once the level has committed"
    level = Timer.objects.get(state__incident=opened, kind=Timer.Kind.LEVEL)
    assert level.done_at is not None, "the worker ran the level itself"
    assert EscalationState.objects.get(incident=opened).level_started_at is not None
    assert not IncidentEvent.objects.filter(incident=opened, dispatched_at__isnull=True).exists()
    statements = [query["sql"] for query in captured.captured_queries]
    assert len(statements) <= STATEMENTS, "\n".join(statements)
