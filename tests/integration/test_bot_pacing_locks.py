"""Deleting a bot while its queue is given new times (after a "too fast" answer) does not deadlock on PostgreSQL:
the replan locks the bot, then its waiting deliveries; the admin's delete locks the deliveries (setting their bot
to NULL), then the bot. The replan leaves rows another transaction holds alone."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from channels_app import registry
from channels_app.bots.pacing import bot_queue_replan
from channels_app.models import Bot, BotSend
from escalation.models import EscalationLevel
from oncall.lib import clock as clock_module
from tests.factories import make_bot, make_user
from tests.integration.botkit import bot_deliveries, fire, paging_setup

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite has no row locks (one writer at a time), so no lock order to deadlock on; CI runs it on PG",
    ),
]


def test_deleting_a_bot_while_its_queue_is_replanned_does_not_deadlock(client, clock, fakes):
    ann = make_user("ann")
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    ops = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops", secret="SECsecret")
    key = paging_setup(people=[ann], bots=[ops], methods=[])
    for n in range(21):
        fire(client, key, key=f"host-{n}")
    waiting = [d for d in bot_deliveries(ops) if d.status == "pending"]
    assert len(waiting) == 1 and "slot" in waiting[0].state, "the 21st message waits for its time"
    for level in EscalationLevel.objects.filter(bots=ops):
        level.bots.remove(ops)  # the admin takes the bot off its level first, as the delete page asks
    root = make_user("root", is_staff=True, is_superuser=True)
    limits = registry.bot_kind("dingtalk").rate_limits
    now = clock_module.now()

    bot_locked, deliveries_locked = threading.Event(), threading.Event()
    errors: dict[str, BaseException | None] = {"replan": None, "delete": None}
    answers = []

    def replan_wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if '"channels_app_bot"' in sql and "FOR UPDATE" in sql:
            bot_locked.set()
            deliveries_locked.wait(5)  # the worker is descheduled for a moment between its two statements
        return result

    def delete_wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "channels_app_delivery" SET "bot_id"'):
            deliveries_locked.set()
        return result

    def worker() -> None:  # a worker that got DingTalk's 130101 for another message
        try:
            with connection.execute_wrapper(replan_wrapper):
                bot_queue_replan(bot_id=ops.pk, limits=limits, now=now)
        except BaseException as exc:
            errors["replan"] = exc
        finally:
            connection.close()

    def admin() -> None:  # the admin deletes the bot on its page
        try:
            bot_locked.wait(5)
            staff = Client()
            staff.force_login(root)
            with connection.execute_wrapper(delete_wrapper):
                answers.append(staff.post(f"/admin/channels_app/bot/{ops.pk}/delete/", {"post": "yes"}).status_code)
        except BaseException as exc:
            errors["delete"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker), threading.Thread(target=admin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == {"replan": None, "delete": None}, errors
    assert answers == [302]
    assert not Bot.objects.filter(pk=ops.pk).exists() and not BotSend.objects.filter(bot_id=ops.pk).exists()
