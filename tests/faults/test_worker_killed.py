"""A worker (`manage.py qcluster`) killed with SIGKILL while its provider calls are in flight: once a worker runs
again, every delivery ends up sent, and none reaches a person twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from channels_app.models import Delivery
from tests.factories import make_bot, make_channel, make_rule, make_user
from tests.faults.conftest import integration_key
from tests.faults.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# DELIVERY_SEND_LEASE_SECONDS: how long an attempt is the dead worker's before it is settled. An attempt ends its
# requests by 80% of it, so it must outlast the few seconds until the worker is killed mid-request.
LEASE = 15
# django-q hands a dead worker's tasks out again Q_RETRY after it took them (each runs again, on worker-2): as soon
# as the settings allow (above Q_TIMEOUT, itself above WORKER_INLINE_SECONDS + HTTP_TOTAL_TIMEOUT), and after the
# lease, so that the repeats find every attempt already settled.
Q_TIMEOUT = 18
Q_RETRY = 20


def test_a_worker_killed_mid_send_leaves_every_delivery_sent_exactly_once(fake, start_platform):
    sam = make_user("sam", phone="+14155550123")
    vic = make_user("vic", phone="+14155550124")
    channel = make_channel("Ops")
    gateway = make_bot("webhook", fake.url("/hook/gw"))
    make_rule(channel, [{"people": [sam, vic], "methods": ["sms", "voice"], "bots": [gateway]}])
    key = integration_key(channel)

    # Twilio accepts each message and call and says so by its status callback, but its answer to our request (and
    # the gateway's) never comes back to the worker.
    fake.twilio_status_callbacks.update({"Messages.json": ["queued"], "Calls.json": ["initiated"]})
    fake.hang("/twilio")
    fake.hang("/hook")
    platform = start_platform(
        DELIVERY_SEND_LEASE_SECONDS=LEASE,
        HTTP_TOTAL_TIMEOUT=12,  # the hanging requests last until the worker is killed (80% of LEASE at most)
        DELIVERY_BULKHEAD_SLOW_LIMIT=10,  # all to one fake server: let them be in flight together
        DELIVERY_RECONCILE_SECONDS=3,
        TIMER_LEASE_SECONDS=3,
        Q_WORKERS=6,  # every send in flight at once
        WORKER_INLINE_SECONDS=5,
        Q_TIMEOUT=Q_TIMEOUT,
        Q_RETRY=Q_RETRY,
    )
    platform.start("web")
    platform.start("ticker")
    platform.start("worker")
    platform.push(key, "disk")

    # 2 people x (SMS + call) and the gateway: five requests in flight, each SMS and call reported back by Twilio.
    wait_until(
        lambda: len(fake.received("/twilio/")) == 4 and len(fake.received("/hook/")) == 1,
        timeout=60,
        what=f"five sends in flight\n{platform.logs()}",
    )
    wait_until(lambda: len(fake.callbacks_made) == 4, timeout=30, what="Twilio's four status callbacks")
    assert {code for _url, _status, code in fake.callbacks_made} == {204}
    platform.kill("worker")
    killed = time.monotonic()
    fake.release()
    assert Delivery.objects.filter(status=Delivery.Status.SENDING).count() == 5
    # The tasks the dead worker had taken (the sends in flight, and the task that sent the first one itself) are
    # still in the queue, locked to it until Q_RETRY after it took them.
    held = list(OrmQ.objects.filter(lock__gt=timezone.now()).values_list("lock", flat=True))
    assert len(held) >= 4, list(OrmQ.objects.values("pk", "lock"))

    started = time.monotonic()
    platform.start("worker-2")
    wait_until(
        lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 5,
        timeout=60,
        what=f"every delivery sent\n{platform.logs()}",
    )
    print(f"settled {time.monotonic() - started:.1f} s after the restart")
    # Then django-q hands the dead worker's tasks out again, and worker-2 runs each of them: a task leaves the queue
    # only once it has run, so when none is left, anything they sent twice has reached the fake providers.
    wait_until(
        lambda: not OrmQ.objects.exists(),
        timeout=Q_RETRY + 30,
        what=f"the dead worker's tasks run again, and the queue empty\n{platform.logs()}",
    )
    assert timezone.now() >= max(held)
    print(f"its tasks ran again {time.monotonic() - killed:.1f} s after the kill")

    deliveries = list(Delivery.objects.order_by("id"))
    assert {d.status for d in deliveries} == {Delivery.Status.SENT}
    # Twilio had every message and call at the first attempt: each was received once, and settled by its callback
    # with Twilio's id instead of being sent again.
    calls = Counter((r.path.rsplit("/", 1)[1], r.field("To")) for r in fake.received("/twilio/"))
    assert calls == {
        ("Messages.json", "+14155550123"): 1,
        ("Messages.json", "+14155550124"): 1,
        ("Calls.json", "+14155550123"): 1,
        ("Calls.json", "+14155550124"): 1,
    }
    twilio_deliveries = [d for d in deliveries if d.method in ("sms", "voice")]
    assert [d.attempts for d in twilio_deliveries] == [1, 1, 1, 1]
    assert all(d.provider_id[:2] in ("SM", "CA") for d in twilio_deliveries)
    # The gateway cannot tell us whether it got the first request: it is sent again, with the same Idempotency-Key,
    # so the gateway recognises the repeat and acts on the message once.
    hooks = fake.received("/hook/")
    [bot_delivery] = [d for d in deliveries if d.bot_id == gateway.pk]
    assert bot_delivery.attempts == 2
    assert len(hooks) == 2
    assert len({r.headers["idempotency-key"] for r in hooks}) == 1
    assert hooks[0].json["event_id"] == hooks[1].json["event_id"] == hooks[0].headers["idempotency-key"]
