"""An SMS whose worker died mid-send (still "sending" after its lease) is settled by Twilio's status callback when
there is one, and sent again only when Twilio never reported on it."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from channels_app import services as channel_services
from channels_app.bots import sending as bot_sending
from channels_app.models import DailyUsage, Delivery
from tests.factories import make_bot, make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import SMS_FROM, TWILIO_SID, configure_twilio, later, run_ticker, twilio_callback
from tests.integration.test_lost_handovers import push_losing

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+14155550123"
SID = "SM" + "a" * 32


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    settings.DELIVERY_RECONCILE_SECONDS = 120
    return fake_providers


@pytest.fixture
def interrupted(client, clock, twilio, monkeypatch):
    """An SMS claimed by a worker that then died, its request possibly on its way to Twilio."""
    sam = make_user("sam", phone=PHONE)
    channel = make_channel("Ops")
    make_rule(channel, [{"people": [sam], "methods": ["sms"]}])
    push_losing(client, make_integration(channel=channel)[1], monkeypatch, "channels_app.tasks.delivery_send")
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status="sending", attempts=1, last_attempt_at=clock.current, lease_until=clock.current + timedelta(seconds=45)
    )
    return Delivery.objects.get()


def status(client, delivery: Delivery, value: str):
    url = f"{settings.PUBLIC_URL}/hooks/twilio/sms/{delivery.callback_code}/status/"
    params = {"AccountSid": TWILIO_SID, "MessageSid": SID, "To": PHONE, "From": SMS_FROM, "MessageStatus": value}
    assert twilio_callback(client, url, params).status_code == 204


def test_twilios_callback_settles_the_attempt_as_sent_without_sending_it_again(client, clock, twilio, interrupted):
    status(client, interrupted, "queued")
    assert Delivery.objects.get().status == "sending"  # the attempt is the worker's until its lease ends
    later(clock, seconds=46)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.provider_id) == ("sent", 1, SID)
    assert twilio.received("/twilio/") == []
    status(client, delivery, "delivered")
    assert Delivery.objects.get().status == "delivered"


def test_a_final_callback_during_the_attempt_applies_once_it_is_settled(client, clock, twilio, interrupted):
    status(client, interrupted, "delivered")
    later(clock, seconds=46)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.provider_id) == ("delivered", SID)
    assert twilio.received("/twilio/") == []


def test_a_callback_within_the_reconcile_window_still_settles_it(client, clock, twilio, interrupted):
    later(clock, seconds=46)
    later(clock, seconds=100)
    assert Delivery.objects.get().status == "sending"  # waiting for Twilio to report on it
    status(client, interrupted, "sent")
    later(clock, seconds=1)
    assert (Delivery.objects.get().status, Delivery.objects.get().attempts) == ("sent", 1)
    assert twilio.received("/twilio/") == []


def test_without_a_callback_it_is_sent_again_after_the_reconcile_window(client, clock, twilio, interrupted):
    later(clock, seconds=46)
    assert Delivery.objects.get().status == "sending"
    later(clock, seconds=120)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    [sms] = twilio.received("/twilio/")
    assert sms.field("To") == PHONE
    assert delivery.attempt_log[0]["outcome"] == "interrupted"


def test_an_sms_whose_last_attempt_was_interrupted_and_never_reported_on_fails_without_being_sent_again(
    client, clock, twilio, interrupted
):
    Delivery.objects.filter(pk=interrupted.pk).update(attempts=settings.DELIVERY_MAX_ATTEMPTS)
    later(clock, seconds=46)
    later(clock, seconds=120)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", settings.DELIVERY_MAX_ATTEMPTS)
    assert twilio.received("/twilio/") == []
    [failed] = delivery.incident.timeline.filter(kind="notify_failed")
    assert failed.message == (
        f"SMS to {PHONE} failed after {settings.DELIVERY_MAX_ATTEMPTS} attempt(s): The previous attempt was "
        "interrupted and the provider did not report on it within 120 s."
    )


def test_an_email_whose_worker_dies_on_every_attempt_fails_after_the_last_instead_of_repeating_for_ever(
    client, clock, mailoutbox, monkeypatch
):
    """The worker dies after the mail server took the email and before it records that (killed at Q_TIMEOUT, out
    of memory, a crash in the recording), on every attempt: the email is sent again for each interrupted attempt
    up to DELIVERY_MAX_ATTEMPTS, then the delivery fails and the timeline says so; the person is not emailed the
    same page every lease for ever."""
    alice = make_user("alice")
    channel = make_channel("Production")
    make_rule(channel, [{"people": [alice], "after": 60}])

    def worker_killed(**kwargs):
        raise RuntimeError("the worker died before it recorded the attempt")

    monkeypatch.setattr(channel_services, "delivery_record_outcome", worker_killed)
    push(client, make_integration(channel=channel)[1], {"title_rule": "db down", "event_status": "Critical"})
    for _ in range(10):  # ten leases: about 8 minutes
        later(clock, seconds=settings.DELIVERY_SEND_LEASE_SECONDS + 1)
    delivery = Delivery.objects.get()
    assert len(mailoutbox) == settings.DELIVERY_MAX_ATTEMPTS, f"one page was emailed {len(mailoutbox)} times"
    assert (delivery.status, delivery.attempts) == ("failed", settings.DELIVERY_MAX_ATTEMPTS)
    assert [entry["outcome"] for entry in delivery.attempt_log] == ["interrupted"] * settings.DELIVERY_MAX_ATTEMPTS
    [failed] = delivery.incident.timeline.filter(kind="notify_failed")
    assert failed.message == (
        f"Email to alice@example.com failed after {settings.DELIVERY_MAX_ATTEMPTS} attempt(s): "
        "The previous attempt was interrupted."
    )


def test_a_bot_message_whose_worker_dies_on_every_attempt_fails_and_its_people_get_the_fallback(
    client, clock, fakes, mailoutbox, monkeypatch
):
    fakes.dingtalk_tokens["T1"] = None
    robot = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops", fallback="email")
    carol = make_user("carol")
    channel = make_channel()
    make_rule(channel, [{"people": [carol], "methods": [], "bots": [robot]}])

    def worker_killed(**kwargs):
        raise RuntimeError("the worker died before it recorded the attempt")

    monkeypatch.setattr(bot_sending, "delivery_record_outcome", worker_killed)
    push(client, make_integration(channel=channel)[1], {"title_rule": "db down", "event_status": "Critical"})
    for _ in range(10):
        later(clock, seconds=settings.DELIVERY_SEND_LEASE_SECONDS + 1)
    post = Delivery.objects.get(method="bot")
    assert len(fakes.received("/dingtalk")) == settings.DELIVERY_MAX_ATTEMPTS
    assert (post.status, post.attempts) == ("failed", settings.DELIVERY_MAX_ATTEMPTS)
    assert [mail.to for mail in mailoutbox] == [["carol@example.com"]]
    assert mailoutbox[0].subject.startswith("[Bot failed]")
    assert post.incident.timeline.filter(
        kind="notify_failed",
        message=f"Bot Ops could not post after {settings.DELIVERY_MAX_ATTEMPTS} attempt(s): "
        "The previous attempt was interrupted.",
    ).exists()


def test_an_attempt_of_several_slow_requests_ends_before_its_lease_and_no_chat_gets_it_twice(
    client, clock, fakes, monkeypatch
):
    """A Telegram bot posts to four group chats, one request each, in one attempt under one lease. The API answers
    each in 14 s (within HTTP_TOTAL_TIMEOUT): four in a row would outlast the 45 s lease (and the 30 s after which
    django-q2 kills the task), and the ticker would send the attempt again while the worker is still on it. The
    attempt stops calling in time (27 s: Q_TIMEOUT less a margin, before 80% of the lease); the chats it did not
    reach get the message from the retry, once."""
    from oncall.lib import http
    from tests.factories import make_bot
    from tests.integration.botkit import fire, paging_setup

    assert (settings.HTTP_TOTAL_TIMEOUT, settings.DELIVERY_SEND_LEASE_SECONDS) == (15, 45)
    fakes.telegram_bots.add("123:ABC")
    bot = make_bot("telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-1", "-2", "-3", "-4"])
    key = paging_setup(people=[make_user("ann")], bots=[bot])
    real_request = http.request
    ticked = []

    def slow_telegram(method, url, **kwargs):
        response = real_request(method, url, **kwargs)
        if "/sendMessage" in url:
            clock.advance(seconds=14)  # the answer comes 14 s later
            ticked.append(clock.current)
            run_ticker()  # the ticker looks while the worker is between chats
        return response

    monkeypatch.setattr(http, "request", slow_telegram)
    fire(client, key)
    delivery = Delivery.objects.get(method="bot")
    assert len(ticked) == 2, "the third chat was not called: the attempt had used its time"
    assert delivery.status == "pending" and delivery.attempts == 1
    assert sorted(delivery.state["progress"]["done"]) == ["-1", "-2"]

    later(clock, minutes=2)
    later(clock, minutes=2)
    per_chat = Counter(request.json["chat_id"] for request in fakes.received("/telegram"))
    assert per_chat == {-1: 1, -2: 1, -3: 1, -4: 1}
    assert Delivery.objects.get(method="bot").status == "sent"


def test_an_attempt_makes_no_request_its_worker_task_would_be_killed_in(client, clock, fakes, monkeypatch):
    """django-q2 kills a task at Q_TIMEOUT, mid-request or not; a killed attempt is sent again in full. So an
    attempt whose task has less than the margin left calls nobody, and the retry posts once."""
    from oncall.lib import queue
    from tests.factories import make_bot
    from tests.integration.botkit import fire, paging_setup

    fakes.telegram_bots.add("123:ABC")
    bot = make_bot("telegram", fakes.url("/telegram"), secret="123:ABC", chat_ids=["-1"])
    key = paging_setup(people=[make_user("ann")], bots=[bot])
    with monkeypatch.context() as patch:
        patch.setattr(queue, "task_seconds_left", lambda: 2.0)
        fire(client, key)
    delivery = Delivery.objects.get(method="bot")
    assert (delivery.status, fakes.received("/telegram")) == ("pending", [])
    assert "was not called: the attempt had run out of time" in delivery.error

    later(clock, minutes=2)
    assert len(fakes.received("/telegram")) == 1
    assert Delivery.objects.get(method="bot").status == "sent"


def test_a_worker_task_knows_when_it_would_be_killed(settings):
    from oncall.lib import queue

    assert queue.task_seconds_left() is None, "outside a worker task"
    with queue.worker_task():
        assert settings.Q_CLUSTER["timeout"] - 1 < queue.task_seconds_left() <= settings.Q_CLUSTER["timeout"]
    assert queue.task_seconds_left() is None


@pytest.fixture
def held_up(client, clock, monkeypatch):
    """An email claimed by worker A, which is then held up after its claim and before calling the mail server (a
    lock wait, a slow render, a GC pause); `resume()` lets it go on and waits for it to finish."""
    carol = make_user("carol")
    yield from hold_up(client, clock, monkeypatch, level={"people": [carol]}, method="email")


@pytest.fixture
def held_up_sms(client, clock, twilio, monkeypatch):
    """The same with an SMS, which takes a unit of the person's daily SMS quota."""
    sam = make_user("sam", phone=PHONE)
    yield from hold_up(client, clock, monkeypatch, level={"people": [sam], "methods": ["sms"]}, method="sms")


@pytest.fixture
def held_up_bot(client, clock, fakes, monkeypatch):
    """The same with a message to a DingTalk robot (bots are attempted by their own code, which renders too)."""
    yield from hold_up_bot(client, clock, fakes, monkeypatch, at="template_failures_record")


@pytest.fixture
def held_up_bot_pacing(client, clock, fakes, monkeypatch):
    """The same, held up waiting for the bot's schedule (a lock wait), which then gives it a time 61 s away."""
    monkeypatch.setattr(bot_sending, "bot_slot_reserve", lambda **kwargs: clock.current + timedelta(seconds=61))
    yield from hold_up_bot(client, clock, fakes, monkeypatch, at="bot_slot_reserve")


def hold_up_bot(client, clock, fakes, monkeypatch, *, at: str):
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    robot = make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops", secret="SECsecret")
    level = {"people": [], "bots": [robot]}
    yield from hold_up(client, clock, monkeypatch, level=level, method="bot", held_in=bot_sending, at=at)


def hold_up(
    client, clock, monkeypatch, *, level: dict, method: str, held_in=channel_services, at="template_failures_record"
):
    channel = make_channel()
    make_rule(channel, [level])
    push_losing(client, make_integration(channel=channel)[1], monkeypatch, "channels_app.tasks.delivery_send")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.method) == ("pending", method)
    reached, go_on = threading.Event(), threading.Event()
    real_record = getattr(held_in, at)

    def holding_up(**kwargs):
        if threading.current_thread().name == "worker-a":
            reached.set()
            assert go_on.wait(30)
        return real_record(**kwargs)

    monkeypatch.setattr(held_in, at, holding_up)

    def worker_a(claimed_at):
        try:
            channel_services.delivery_send(delivery_id=delivery.pk, now=claimed_at)
        finally:
            connection.close()

    thread = threading.Thread(target=worker_a, args=(clock.current,), name="worker-a")
    thread.start()
    assert reached.wait(30)
    assert Delivery.objects.get().status == "sending"

    def resume():
        go_on.set()
        thread.join(30)
        assert not thread.is_alive()
        return Delivery.objects.get()

    yield resume
    go_on.set()
    thread.join(30)


def test_a_worker_held_up_past_its_lease_does_not_send_the_email_the_ticker_gave_another(clock, mailoutbox, held_up):
    """Worker A's lease runs out while it is held up: the ticker takes the attempt for a dead worker's and worker B
    sends the email. A, going on past its attempt's deadline, sends nothing and records nothing."""
    later(clock, seconds=settings.DELIVERY_SEND_LEASE_SECONDS + 1)
    assert (Delivery.objects.get().status, Delivery.objects.get().attempts, len(mailoutbox)) == ("sent", 2, 1)
    delivery = held_up()
    assert len(mailoutbox) == 1, "the person got the email twice"
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert [entry["outcome"] for entry in delivery.attempt_log] == ["interrupted", "sent"]


def test_a_worker_whose_attempt_was_given_to_another_does_not_send_even_if_its_clock_says_it_has_time(
    clock, mailoutbox, held_up
):
    """The ticker and worker B run on hosts whose clocks are ahead of worker A's: the ticker hands A's attempt to B
    while A still counts time left. A checks the row before calling the mail server, sees the attempt is no longer
    its own and sends nothing."""
    later(clock, seconds=settings.DELIVERY_SEND_LEASE_SECONDS + 1)
    clock.advance(seconds=-(settings.DELIVERY_SEND_LEASE_SECONDS + 1))  # worker A's clock
    assert (Delivery.objects.get().status, Delivery.objects.get().attempts, len(mailoutbox)) == ("sent", 2, 1)
    delivery = held_up()
    assert len(mailoutbox) == 1, "the person got the email twice"
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_an_email_whose_attempt_ran_out_of_time_is_not_started_and_is_sent_by_the_retry(clock, mailoutbox, held_up):
    """Worker A goes on after its attempt's deadline (80% of the lease) but before the lease ends, so the attempt
    is still its own: it does not start a send that could outlast the lease, records the attempt as one that ran
    out of time, and the retry sends the email once."""
    clock.advance(seconds=settings.DELIVERY_SEND_LEASE_SECONDS - 5)
    delivery = held_up()
    assert (delivery.status, delivery.attempts, mailoutbox) == ("pending", 1, [])
    assert delivery.error == "Email was not sent: the attempt had run out of time"
    later(clock, seconds=30)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(mailoutbox)) == ("sent", 2, 1)


def test_a_worker_that_lost_its_attempt_takes_no_quota_and_keeps_nothing(clock, twilio, held_up_sms):
    """Worker A's SMS attempt is handed to worker B while A is held up: B sends it; A neither sends it nor takes a
    unit of the person's daily SMS quota for it."""
    later(clock, seconds=settings.DELIVERY_SEND_LEASE_SECONDS + 1)
    later(clock, seconds=settings.DELIVERY_RECONCILE_SECONDS + 1)  # no callback came about A's attempt
    assert (Delivery.objects.get().status, len(twilio.received("/twilio/"))) == ("sent", 1)
    delivery = held_up_sms()
    assert (delivery.status, delivery.attempts, len(twilio.received("/twilio/"))) == ("sent", 2, 1)
    assert DailyUsage.objects.get(method="sms").count == 1, "the quota was taken twice for one SMS"


def test_a_bot_worker_held_up_past_its_lease_does_not_post_the_message_another_worker_posted(clock, fakes, held_up_bot):
    """Worker A's attempt at a DingTalk message is handed to worker B while A is held up (its clock behind, so its
    attempt's deadline does not stop it): B posts the message; A posts nothing and records nothing."""
    later(clock, seconds=settings.DELIVERY_SEND_LEASE_SECONDS + 1)
    clock.advance(seconds=-(settings.DELIVERY_SEND_LEASE_SECONDS + 1))  # worker A's clock
    assert (Delivery.objects.get().status, len(fakes.received("/dingtalk"))) == ("sent", 1)
    delivery = held_up_bot()
    assert len(fakes.received("/dingtalk")) == 1, "the chat got the same incident message twice"
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert [entry["outcome"] for entry in delivery.attempt_log] == ["interrupted", "sent"]


def test_a_bot_worker_that_lost_its_attempt_while_paced_does_not_move_the_live_attempt(
    clock, fakes, held_up_bot_pacing
):
    """Worker A is held up waiting for the bot's schedule, which then tells it to wait 61 s;
    meanwhile the ticker has handed the message to worker B, which is posting it. A's "wait for your time" must
    leave B's attempt alone."""
    lease_until = clock.current + timedelta(seconds=settings.DELIVERY_SEND_LEASE_SECONDS * 2)
    Delivery.objects.update(attempts=2, lease_until=lease_until)  # B's claim, B still sending
    delivery = held_up_bot_pacing()
    assert fakes.received("/dingtalk") == []
    assert (delivery.status, delivery.attempts, delivery.lease_until) == ("sending", 2, lease_until), (
        "a stale worker changed the live attempt's row"
    )
