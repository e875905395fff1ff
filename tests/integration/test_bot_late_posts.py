"""A level's bot message whose first attempt did not get it into the chat, and that is no longer needed when it is
tried again (acknowledged, closed, run restarted meanwhile): the chat sees each incident's message once. It is
still posted when nothing can have put it there yet (its worker died before posting, the provider refused it);
it is not posted again when an earlier attempt may have (its worker died while posting, no answer came), nor when
the chat has the incident from another of its messages. The timeline says which."""

from __future__ import annotations

import pytest
from django.conf import settings

from channels_app.bots import sending as bot_sending
from channels_app.models import Bot
from oncall.models import Incident, Source
from oncall.services import lifecycle
from tests.factories import make_bot, make_user
from tests.fakes.smtp import free_port
from tests.integration.botkit import bot_deliveries, fire, later, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)
WEB = Source.WEB
LEASE = settings.DELIVERY_SEND_LEASE_SECONDS


@pytest.fixture
def ann():
    return make_user("ann", first_name="Ann", last_name="Lee")


@pytest.fixture
def ops(fakes):
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    return make_bot("dingtalk", fakes.url("/dingtalk/robot/send?access_token=T1"), name="Ops", secret="SECsecret")


def posted(fakes) -> list[str]:
    """The title of each message the DingTalk robot received (answered or not), in order."""
    return [request.json["markdown"]["title"] for request in fakes.received("/dingtalk")]


def notified() -> list[str]:
    return list(Incident.objects.get().timeline.filter(kind="notified").values_list("message", flat=True))


def worker_killed(**kwargs):
    raise RuntimeError("the worker was killed")


def acknowledge(clock, ann) -> Incident:
    clock.advance(seconds=5)
    return lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=WEB, now=clock.current)


def test_a_message_whose_worker_died_before_posting_still_reaches_the_chat_after_an_ack(
    client, clock, fakes, monkeypatch, ann, ops
):
    """The worker dies while preparing the message (before it calls DingTalk); Ann acknowledges from her email
    before the ticker hands the message out again. The chat has not seen the incident: it gets its message, once,
    after the acknowledgement notice."""
    key = paging_setup(people=[ann], bots=[ops])
    with monkeypatch.context() as patch:
        patch.setattr(bot_sending, "bot_mentions", worker_killed)
        fire(client, key, title="db down")
    assert posted(fakes) == []
    incident = acknowledge(clock, ann)
    later(clock, seconds=LEASE)
    later(clock, minutes=5)
    title = f"[Critical] #{incident.number} db down"
    assert posted(fakes) == [f"[Acknowledged] {title}", title]
    post = bot_deliveries(ops)[0]
    assert (post.event, post.status, post.attempts) == ("triggered", "sent", 2)
    assert (
        "Posted to DingTalk bot Ops late, as no earlier attempt had reached the chat: "
        "The incident was acknowledged meanwhile."
    ) in notified()


def test_a_message_the_provider_refused_at_first_still_reaches_the_chat_after_an_ack(client, clock, fakes, ann, ops):
    fakes.fail_next("/dingtalk", status=503, text="")
    fire(client, paging_setup(people=[ann], bots=[ops]), title="db down")
    assert bot_deliveries(ops)[0].status == "pending"  # attempted again in 30 s
    incident = acknowledge(clock, ann)
    later(clock, seconds=30)
    title = f"[Critical] #{incident.number} db down"
    refused, *chat = posted(fakes)  # the fake records the request the outage refused too
    assert (refused, chat) == (title, [f"[Acknowledged] {title}", title])
    assert bot_deliveries(ops)[0].status == "sent"


def test_a_message_whose_first_attempt_could_not_connect_still_reaches_the_chat_after_an_ack(client, clock, fakes, ann):
    """Nothing listened at the chat's webhook host (the connection was refused): the request never left, so the
    chat does not have the incident, and the retry after the acknowledgement posts it."""
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    down = f"http://127.0.0.1:{free_port()}/dingtalk/robot/send?access_token=T1"
    ops = make_bot("dingtalk", down, name="Ops", secret="SECsecret")
    fire(client, paging_setup(people=[ann], bots=[ops]), title="db down")
    first = bot_deliveries(ops)[0]
    assert (first.status, first.attempt_log[-1]["may_have_arrived"]) == ("pending", False), first.attempt_log
    Bot.objects.filter(pk=ops.pk).update(url=fakes.url("/dingtalk/robot/send?access_token=T1"))  # the host is back
    incident = acknowledge(clock, ann)
    later(clock, seconds=30)
    title = f"[Critical] #{incident.number} db down"
    assert posted(fakes) == [f"[Acknowledged] {title}", title], "the chat saw the incident, not only its notice"
    assert bot_deliveries(ops)[0].status == "sent"


@pytest.mark.parametrize("cut", ["worker killed after posting", "no answer"])
def test_a_message_an_earlier_attempt_may_have_posted_is_not_posted_again_and_the_chat_still_hears_the_rest(
    client, clock, fakes, monkeypatch, ann, ops, cut
):
    """The first attempt reached DingTalk, but either its worker died before recording the answer, or the
    connection was reset before the answer came: the message may be in the chat. Once Ann has acknowledged, it is
    not posted again (the timeline says why), and the bot, which takes only triggered and closed messages, still
    hears that the incident closed."""
    ops.event_types = ["triggered", "closed"]
    ops.save(update_fields=["event_types"])
    key = paging_setup(people=[ann], bots=[ops])
    with monkeypatch.context() as patch:
        if cut == "no answer":
            fakes.drop_next("/dingtalk")
        else:
            patch.setattr(bot_sending, "delivery_record_outcome", worker_killed)
        fire(client, key, title="db down")
    assert len(posted(fakes)) == 1
    incident = acknowledge(clock, ann)
    later(clock, seconds=LEASE)
    later(clock, minutes=5)
    title = f"[Critical] #{incident.number} db down"
    assert posted(fakes) == [title], "the chat got the incident's message twice"
    post = bot_deliveries(ops)[0]
    assert (post.status, post.error) == (
        "cancelled",
        "The incident was acknowledged meanwhile. An earlier attempt may have posted it.",
    )
    assert (
        "Not posted to DingTalk bot Ops again: an earlier attempt may have posted it (it was cut off before "
        "DingTalk's answer), and it is no longer needed: The incident was acknowledged meanwhile."
    ) in notified()

    lifecycle.incident_resolve(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=1)
    assert posted(fakes) == [title, f"[Closed] {title}"]


def test_a_message_the_chat_has_from_the_restarted_run_is_not_posted_late(client, clock, fakes, ann, ops):
    """The first post meets an outage; Ann acknowledges, then unacknowledges: the restarted run posts the incident
    to the chat. The first run's retry would show it a second time: it is not posted."""
    fakes.fail_next("/dingtalk", status=503, text="")
    fire(client, paging_setup(people=[ann], bots=[ops]), title="db down")
    incident = acknowledge(clock, ann)
    clock.advance(seconds=5)
    lifecycle.incident_unacknowledge(incident=incident, by=ann, source=WEB, now=clock.current)
    later(clock, seconds=1)
    later(clock, seconds=30)
    title = f"[Critical] #{incident.number} db down"
    refused, *chat = posted(fakes)
    assert (refused, chat.count(title)) == (title, 1), chat
    first, *_rest = bot_deliveries(ops)
    assert (first.escalation_run, first.status) == (1, "cancelled")
    assert (
        "Not posted to DingTalk bot Ops: the chat has the incident from another of its messages, and this one is "
        "no longer needed: The escalation started again since; its new run notifies anew."
    ) in notified()
