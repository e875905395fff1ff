"""A ticker (`manage.py ticker`) killed with SIGKILL and started again: the escalation timers that fell due while it
was gone fire at once, those it had claimed but not handed out fire as soon as its claim runs out, and none fires
twice."""

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

# Long enough that the new ticker is up and ticking while the dead ticker's claims still hold.
TIMER_LEASE = 5
OVERDUE = range(3)  # escalation timeouts that pass while no ticker runs
CLAIMED = range(3, 5)  # ... and ones the ticker had claimed, but not yet handed to the worker, when it died


def test_overdue_timers_fire_at_once_after_a_ticker_restart_and_none_twice(fake, start_platform):
    keys = []
    for n in (*OVERDUE, *CLAIMED):
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
    wait_until(lambda: len(fake.received("/hook/first-")) == len(keys), timeout=30, what=f"level 1\n{platform.logs()}")
    escalations = Timer.objects.filter(kind=Timer.Kind.LEVEL, level=1, done_at__isnull=True)
    wait_until(lambda: escalations.count() == len(keys), timeout=10, what="an escalation timer per incident")
    overdue = escalations.filter(state__incident__channel__name__in=[f"Service {n}" for n in OVERDUE])
    claimed = escalations.filter(state__incident__channel__name__in=[f"Service {n}" for n in CLAIMED])

    platform.kill("ticker")
    # The escalation timeouts pass while no ticker runs: nothing fires them. Some the ticker had already claimed
    # (leased) in its last tick, and died before handing them to the worker: no task exists for them.
    now = timezone.now()
    overdue.update(due_at=now - timedelta(minutes=2))
    lease_until = now + timedelta(seconds=TIMER_LEASE)
    assert claimed.update(due_at=now - timedelta(minutes=2), lease_until=lease_until) == len(CLAIMED)
    time.sleep(1.5)
    assert fake.received("/hook/next-") == []

    restarted = time.monotonic()
    platform.start("ticker-2")
    overdue_paths = tuple(f"/hook/next-{n}" for n in OVERDUE)
    wait_until(
        lambda: len([r for r in fake.received("/hook/next-") if r.path in overdue_paths]) == len(OVERDUE),
        timeout=20,
        what=f"the overdue levels\n{platform.logs()}",
    )
    # At once: the ticker's start (a Django process) and one tick, on a busy test machine.
    assert time.monotonic() - restarted < 15
    # The dead ticker's claims: left alone while their lease holds, handed out again as soon as it ends.
    claimed_paths = tuple(f"/hook/next-{n}" for n in CLAIMED)
    wait_until(
        lambda: len([r for r in fake.received("/hook/next-") if r.path in claimed_paths]) == len(CLAIMED),
        timeout=TIMER_LEASE + 20,
        what=f"the levels whose timers the dead ticker had claimed\n{platform.logs()}",
    )
    arrived = [r.received_at for r in fake.received("/hook/next-") if r.path in claimed_paths]
    assert min(arrived) >= lease_until.timestamp()
    assert max(arrived) < lease_until.timestamp() + 15
    time.sleep(TIMER_LEASE + 1.5)  # past the lease of every claim: a timer handed out twice would have fired again
    # Each bot got each message once: level 1 announced the new incident (and, when level 2 began, the escalation)
    # and level 2 its first message.
    received = Counter((r.path, r.json["event_type"]) for r in fake.received("/hook/"))
    assert set(received.values()) == {1}, received
    assert {path for path, _event in received if path.startswith("/hook/next-")} == {
        f"/hook/next-{n}" for n in (*OVERDUE, *CLAIMED)
    }
    assert Delivery.objects.count() == Delivery.objects.filter(status=Delivery.Status.SENT).count() == len(received)
    assert not Timer.objects.filter(kind=Timer.Kind.LEVEL, level=1, done_at__isnull=True).exists()
