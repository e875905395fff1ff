"""A ticker (`manage.py ticker`) killed with SIGKILL and started again: the escalation timers that fell due while it
was gone fire at once, and none fires twice."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Delivery
from escalation.models import Timer
from tests.factories import make_bot, make_channel, make_rule
from tests.faults.conftest import integration_key
from tests.faults.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMER_LEASE = 2


def test_overdue_timers_fire_at_once_after_a_ticker_restart_and_none_twice(fake, start_platform):
    keys = []
    for n in range(3):
        channel = make_channel(f"Service {n}")
        first, second = (
            make_bot("webhook", fake.url(f"/hook/first-{n}")),
            make_bot("webhook", fake.url(f"/hook/next-{n}")),
        )
        make_rule(channel, [{"people": [], "bots": [first], "after": 1}, {"people": [], "bots": [second]}])
        keys.append(integration_key(channel))
    platform = start_platform(TIMER_LEASE_SECONDS=TIMER_LEASE)
    platform.start("web")
    platform.start("worker")
    platform.start("ticker")
    for n, key in enumerate(keys):
        platform.push(key, f"disk-{n}")
    wait_until(lambda: len(fake.received("/hook/first-")) == 3, timeout=30, what=f"level 1 of 3\n{platform.logs()}")
    escalations = Timer.objects.filter(kind=Timer.Kind.LEVEL, level=1, done_at__isnull=True)
    wait_until(lambda: escalations.count() == 3, timeout=10, what="three escalation timers set")

    platform.kill("ticker")
    # The escalation timeouts pass while no ticker runs: nothing fires them.
    escalations.update(due_at=timezone.now() - timedelta(minutes=2))
    time.sleep(1.5)
    assert fake.received("/hook/next-") == []

    restarted = time.monotonic()
    platform.start("ticker-2")
    wait_until(
        lambda: len(fake.received("/hook/next-")) == 3, timeout=20, what=f"the overdue levels\n{platform.logs()}"
    )
    # At once: the ticker's start (a Django process) and one tick, on a busy test machine.
    assert time.monotonic() - restarted < 15
    time.sleep(TIMER_LEASE + 1.5)  # past the lease of every claim: a timer handed out twice would have fired again
    # Each bot got each message once: level 1 announced the new incident (and, when level 2 began, the escalation)
    # and level 2 its first message.
    received = Counter((r.path, r.json["event_type"]) for r in fake.received("/hook/"))
    assert set(received.values()) == {1}, received
    assert {path for path, _event in received if path.startswith("/hook/next-")} == {
        f"/hook/next-{n}" for n in range(3)
    }
    assert Delivery.objects.count() == Delivery.objects.filter(status=Delivery.Status.SENT).count() == len(received)
    assert not Timer.objects.filter(kind=Timer.Kind.LEVEL, level=1, done_at__isnull=True).exists()
