"""What one bot message costs the database: the statements of an attempt are counted, so that the send path (every
alert's way to a chat) does not grow a query unnoticed."""

from __future__ import annotations

import pytest
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models.sql import compiler
from django.test.utils import CaptureQueriesContext

from channels_app import services as channel_services
from channels_app.deliveries import SEND_TASK
from channels_app.models import Delivery
from oncall.lib import queue
from tests.factories import make_bot, make_mapping_table, make_user
from tests.integration.botkit import bot_deliveries, fire, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)

# The claim and its read (2); the bulkhead's admission (5 with its transaction); the bot's pacing (5); the message's
# alerts and responders (2); the mark that the provider is being called (1); the outcome (4); the bot's last
# success, the provider's answer time and the end of the call in flight (3).
FIRST_ATTEMPT_STATEMENTS = 22
# The same about people: who they are (1), and their ids in the mapping tables (1), their emails taken from the
# people and responders already read.
ABOUT_PEOPLE_STATEMENTS = FIRST_ATTEMPT_STATEMENTS + 2


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


def count_queries_built_for_nothing(monkeypatch) -> list[int]:
    """How many queries are built and found to match nothing before they are sent (an `IN ()`), counted in the
    returned list's only item: building one costs the worker as much as most statements it sends."""
    empty = [0]
    for klass in (compiler.SQLCompiler, compiler.SQLUpdateCompiler):
        real = klass.as_sql

        def as_sql(self, *args, real=real, **kwargs):
            try:
                return real(self, *args, **kwargs)
            except EmptyResultSet:
                empty[0] += 1
                raise

        monkeypatch.setattr(klass, "as_sql", as_sql)
    return empty


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


def test_a_bot_message_about_nobody_builds_no_query_for_its_people(client, clock, fakes, monkeypatch):
    bot = make_bot("webhook", fakes.url("/hook/plain"))
    key = paging_setup(bots=[bot], methods=[])
    fire(client, key, key="web-1")
    fire_unsent(client, key, monkeypatch, key="web-2")
    delivery = bot_deliveries(bot)[-1]
    empty = count_queries_built_for_nothing(monkeypatch)

    channel_services.delivery_send(delivery_id=delivery.pk, now=clock.current)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    assert empty == [0]


def test_a_bot_message_about_people_reads_each_person_once(client, clock, fakes, monkeypatch):
    ann = make_user("ann", email="Ann@example.com")
    make_mapping_table("slack", {"ann@example.com": "U0ANN0001"})
    bot = make_bot("webhook", fakes.url("/hook/plain"))
    key = paging_setup(people=[ann], bots=[bot])
    fire(client, key, key="web-1")
    fire_unsent(client, key, monkeypatch, key="web-2")
    delivery = bot_deliveries(bot)[-1]
    assert delivery.state["people"] == [ann.pk]

    with CaptureQueriesContext(connection) as queries:
        channel_services.delivery_send(delivery_id=delivery.pk, now=clock.current)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    (ann_card,) = fakes.received("/hook")[-1].json["incident"]["responders"]
    assert (ann_card["person_id"], ann_card["im_ids"]) == (ann.pk, {"slack": "U0ANN0001"})
    statements = [query["sql"][:120] for query in queries.captured_queries]
    assert len(statements) <= ABOUT_PEOPLE_STATEMENTS, "\n".join(statements)
