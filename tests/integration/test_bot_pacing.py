"""A bot's pacing when the provider says "too fast" anyway (someone else posted to the robot that minute): the
message it refused and the messages waiting with it go out in the order they were written once the pause ends,
within the limit (the fake DingTalk refuses more than 20 requests in any 60 s of the test's clock, the refused
ones included), none posted twice or lost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels_app.bots.services import bot_test_send
from channels_app.models import BotSend, Delivery
from oncall.models import Incident
from tests.factories import make_bot, make_user
from tests.integration.botkit import bot_deliveries, fire, later, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)

TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}


@pytest.fixture
def ann():
    return make_user("ann", phone="+8613800000001")


@pytest.fixture
def dingtalk(fakes):
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    fakes.rate_limits["/dingtalk"] = (20, 60)
    return make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops", secret="SECsecret")


def posted_numbers(fakes) -> list[int]:
    """The incident number each DingTalk request announced (refused ones included), in the order they came."""
    return [int(r.json["markdown"]["title"].split("#", 1)[1].split()[0]) for r in fakes.received("/dingtalk")]


def numbers(first: int, last: int) -> list[int]:
    return list(range(first, last + 1))


def sent_at(number: int):
    return next(d.sent_at for d in bot_deliveries() if d.incident.number == number)


def assert_each_sent_once(count: int) -> None:
    deliveries = bot_deliveries()
    assert len(deliveries) == count and {d.status for d in deliveries} == {Delivery.Status.SENT}
    assert all(d.attempts == 1 for d in deliveries)


def fire_hosts(client, key: str, hosts: range) -> None:
    """One new incident per host number, in order (alert keys host-N)."""
    for n in hosts:
        fire(client, key, key=f"host-{n}")


def test_a_message_the_provider_answered_too_fast_keeps_its_place_in_a_burst(client, clock, fakes, ann, dingtalk):
    """25 incidents at once; DingTalk answers the first post 130101. The bot is held a minute; the first incident
    then goes out first, not behind the other 24, and the chat gets them in order, 20 per minute."""
    fakes.fail_next("/dingtalk", status=200, json=TOO_FAST)
    key = paging_setup(people=[ann], bots=[dingtalk], methods=[])
    start = clock.current
    fire_hosts(client, key, range(25))
    first = Incident.objects.order_by("pk").first().number
    assert posted_numbers(fakes) == [first], "nothing else is posted while the bot is held"
    for _ in range(3 * 61):
        later(clock, seconds=1)
    assert_each_sent_once(25)
    accepted = posted_numbers(fakes)[1:]  # the first request was refused
    assert accepted == numbers(first, first + 24), "the chat got the incidents out of order"
    # The refused request counts in DingTalk's minute too: 19 at the pause's end, one more when it leaves the window.
    assert sent_at(first) == start + timedelta(seconds=60)
    assert [sent_at(n) for n in (first + 18, first + 19, first + 20)] == [
        start + timedelta(seconds=60),
        start + timedelta(seconds=61),
        start + timedelta(seconds=121),
    ]
    assert len(fakes.received("/dingtalk")) == 26, "the fake refused a request past the limit"


def test_messages_whose_time_fell_inside_the_pause_keep_their_order_ahead_of_later_ones(
    client, clock, fakes, ann, dingtalk
):
    """25 incidents: 20 posted, 21-25 wait for 61 s. Half a minute later 20 more: 26-40 take the rest of that
    minute, 41-45 the next. DingTalk answers the first post at 61 s "too fast": the 20 messages of that minute wait
    for the pause with their place kept, and their times given up do not hold back 41-45."""
    key = paging_setup(people=[ann], bots=[dingtalk], methods=[])
    start = clock.current
    fire_hosts(client, key, range(25))
    clock.advance(seconds=30)
    fire_hosts(client, key, range(25, 45))
    first = Incident.objects.order_by("pk").first().number
    assert posted_numbers(fakes) == numbers(first, first + 19)
    fakes.fail_next("/dingtalk", status=200, json=TOO_FAST)
    clock.advance(seconds=30)
    for _ in range(3 * 61):
        later(clock, seconds=1)
    assert_each_sent_once(45)
    posted = posted_numbers(fakes)
    refused = posted.pop(20)
    assert refused in numbers(first + 20, first + 39)
    assert posted == numbers(first, first + 44), "the chat got the incidents out of order"
    resumed = start + timedelta(seconds=121)
    # The refused request (at 61 s) counts until 122 s: 19 go when the pause ends, one at 122 s, the last five a
    # window after those 19.
    assert [sent_at(n) for n in (first + 20, first + 38)] == [resumed, resumed]
    assert sent_at(first + 39) == resumed + timedelta(seconds=1)
    assert {sent_at(n) for n in numbers(first + 40, first + 44)} == {resumed + timedelta(seconds=61)}
    assert len(fakes.received("/dingtalk")) == 46, "the fake refused a request past the limit"


def test_messages_waiting_when_the_admins_test_message_is_answered_too_fast_keep_their_order(
    client, clock, fakes, ann, dingtalk
):
    """The pause can come from a message that is not in the queue: the admin's test message. 25 incidents (21-25
    wait), 14 more half a minute later (they fill that minute but one place); at 61 s the admin sends a test
    message, DingTalk answers 130101, and three incidents arrive during the pause. The 19 incidents whose time
    was inside the pause still go before those three."""
    key = paging_setup(people=[ann], bots=[dingtalk], methods=[])
    start = clock.current
    fire_hosts(client, key, range(25))
    clock.advance(seconds=30)
    fire_hosts(client, key, range(25, 39))
    clock.advance(seconds=31)
    fakes.fail_next("/dingtalk", status=200, json=TOO_FAST)
    answer = bot_test_send(bot=dingtalk, person=None, now=clock.current)
    assert "130101" in answer.error
    fire_hosts(client, key, range(39, 42))
    first = Incident.objects.order_by("pk").first().number
    for _ in range(3 * 61):
        later(clock, seconds=1)
    assert_each_sent_once(42)
    posted = posted_numbers(fakes)
    assert posted.pop(20) == 0, "the admin's test message (a made-up incident #0) was the 21st request"
    assert posted == numbers(first, first + 41), "the chat got the incidents out of order"
    resumed = start + timedelta(seconds=121)
    assert {sent_at(n) for n in numbers(first + 20, first + 38)} == {resumed}
    assert sent_at(first + 39) == resumed + timedelta(seconds=1)
    assert len(fakes.received("/dingtalk")) == 43, "the fake refused a request past the limit"


def test_times_given_up_in_a_pause_no_longer_count_against_the_limit(client, clock, fakes, ann, dingtalk):
    """After the burst has gone out, the bot's schedule holds one reservation per request DingTalk got (the refused
    one included), none for the times given up in the pause."""
    key = paging_setup(people=[ann], bots=[dingtalk], methods=[])
    fire_hosts(client, key, range(25))
    fakes.fail_next("/dingtalk", status=200, json=TOO_FAST)
    later(clock, seconds=61)
    for _ in range(2 * 61):
        later(clock, seconds=1)
    assert_each_sent_once(25)
    assert BotSend.objects.filter(bot=dingtalk).count() == len(fakes.received("/dingtalk")) == 26
    assert all("slot" not in d.state for d in bot_deliveries())
