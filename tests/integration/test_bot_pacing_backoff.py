"""A message that must wait for its retry's backoff past a bot's pause holds no time: the messages written after it
go when the pause ends, not behind its backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels_app.models import Delivery
from tests.factories import make_bot, make_user
from tests.integration.botkit import bot_deliveries, fire, later, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)

TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}


def test_a_new_incident_is_not_held_behind_an_old_messages_retry_backoff(client, clock, fakes):
    """Someone else floods the DingTalk robot for an hour: incident A's post is refused "too fast" every minute.
    Past the first hour such refusals count as attempts, with the usual backoff (1, 2, then 5 minutes). Right
    after A's third counted refusal (the bot is paused for DingTalk's minute), incident B opens. The provider
    asked for one minute: B's post goes when that pause ends, not five minutes later behind A's backoff."""
    ann = make_user("ann")
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    ops = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops", secret="SECsecret")
    key = paging_setup(people=[ann], bots=[ops], methods=[])
    fakes.fail_next("/dingtalk", status=200, json=TOO_FAST, times=63)  # A's attempts at 0, 1, ..., 61 and 63 min
    start = clock.current
    fire(client, key, key="a")
    for _ in range(63):
        later(clock, seconds=60)
    a = bot_deliveries(ops)[0]
    assert (a.status, a.attempts, len(fakes.received("/dingtalk"))) == ("pending", 3, 63), a.attempt_log[-3:]
    ops.refresh_from_db()
    pause_end = ops.paused_until
    assert pause_end == start + timedelta(minutes=64)
    assert a.next_attempt_at == start + timedelta(minutes=68), "A waits for its 5-minute backoff"
    clock.advance(seconds=1)
    fire(client, key, key="b")
    while clock.current < start + timedelta(minutes=70):
        later(clock, seconds=1)
    b = next(d for d in bot_deliveries(ops) if d.pk != a.pk)
    assert b.status == Delivery.Status.SENT
    assert b.sent_at <= pause_end + timedelta(seconds=1), (
        f"B's chat post went {(b.sent_at - pause_end).total_seconds():.0f} s after DingTalk's pause ended"
    )
