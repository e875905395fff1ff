"""What one bot message costs the database: the statements of an attempt are counted, so that the send path (every
alert's way to a chat) does not grow a query unnoticed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app import services as channel_services
from channels_app.deliveries import SEND_TASK
from channels_app.models import Delivery
from oncall.lib import queue
from tests.factories import make_bot
from tests.integration.botkit import bot_deliveries, fire, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)

# The claim and its read (2); the bulkhead's admission (5 with its transaction); the bot's pacing (5); the message's
# alerts and responders (2); the mark that the provider is being called (1); the outcome (4); the bot's last
# success, the provider's answer time and the end of the call in flight (3).
FIRST_ATTEMPT_STATEMENTS = 22


def fire_unsent(client, push_key: str, monkeypatch, **fields) -> None:
    """Fire an alert whose bot messages are written but not sent (their hand-over to a worker is held back)."""
    real_async_task, real_run_inline = queue.async_task, queue._run_inline

    def held_async_task(func, *args, **kwargs):
        return None if func == SEND_TASK else real_async_task(func, *args, **kwargs)

    def held_run_inline(func, args, group):
        if func != SEND_TASK:
            real_run_inline(func, args, group)

    with monkeypatch.context() as patch:
        patch.setattr(queue, "async_task", held_async_task)
        patch.setattr(queue, "_run_inline", held_run_inline)
        fire(client, push_key, **fields)


def test_a_bot_messages_first_attempt_takes_no_more_statements_than_it_needs(client, clock, fakes, monkeypatch):
    bot = make_bot("webhook", fakes.url("/hook/plain"))
    key = paging_setup(bots=[bot], methods=[])
    fire(client, key, key="web-1")  # the provider and the bot have been posted to before, as in steady use
    fire_unsent(client, key, monkeypatch, key="web-2")
    delivery = bot_deliveries(bot)[-1]
    assert delivery.status == Delivery.Status.PENDING

    with CaptureQueriesContext(connection) as queries:
        channel_services.delivery_send(delivery_id=delivery.pk, now=clock.current)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    assert len(fakes.received("/hook")) == 2
    statements = [query["sql"][:120] for query in queries.captured_queries]
    assert len(statements) <= FIRST_ATTEMPT_STATEMENTS, "\n".join(statements)
