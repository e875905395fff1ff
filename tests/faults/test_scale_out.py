"""Scale-out: two workers and two tickers on one PostgreSQL database, racing for the same escalation timers and
deliveries: every message is sent exactly once.

The races are made to happen: messages wait in the queue past their lease, so that the tickers hand them out again
and two workers take the two copies at once; and the escalation timers fall due while a claim holds them, so that
both tickers try to take them in the same ticks."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_q.models import OrmQ

from channels_app.models import Delivery
from escalation.models import Timer
from oncall.models import Incident
from tests.factories import make_bot, make_channel, make_rule, make_user
from tests.faults.conftest import integration_key
from tests.faults.processes import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="scale-out needs PostgreSQL (SQLite is the one-machine embedded mode); CI runs the suite on both",
    ),
]

SERVICES = 4
# How long a ticker's claim on a timer or delivery lasts (and a new delivery's lease on its first hand-over).
LEASE = 2
WORKERS = 4  # per worker process: 8 tasks at once in all
HANDED_OUT = re.compile(r"Handed out (\d+) timer\(s\), (\d+) delivery\(ies\)")


def handed_out(platform) -> tuple[int, int]:
    """How many timers and deliveries the tickers have handed to the workers so far, from their logs."""
    timers = deliveries = 0
    for path in platform.log_dir.glob("*-ticker-*.log"):
        for match in HANDED_OUT.finditer(path.read_text(encoding="utf-8", errors="replace")):
            timers += int(match[1])
            deliveries += int(match[2])
    return timers, deliveries


def test_two_workers_and_two_tickers_send_every_message_exactly_once(fake, start_platform):
    fake.twilio_status_callbacks["Messages.json"] = ["queued"]
    people = [make_user(f"oncall{n}", phone=f"+1415555010{n}") for n in range(3)]
    keys = []
    for n in range(SERVICES):
        channel = make_channel(f"Service {n}")
        first, second = (
            make_bot("webhook", fake.url(f"/hook/first-{n}")),
            make_bot("webhook", fake.url(f"/hook/next-{n}")),
        )
        levels = [{"people": people, "methods": ["sms"], "bots": [first], "after": 1}, {"people": [], "bots": [second]}]
        make_rule(channel, levels)
        keys.append(integration_key(channel))
    # Twilio hangs at first: the workers' slots fill with SMS in flight and the other messages of level 1 wait in
    # the queue past their lease, so the tickers hand them out again; each is then in the queue twice.
    fake.hang("/twilio")
    platform = start_platform(
        TIMER_LEASE_SECONDS=LEASE,
        Q_WORKERS=WORKERS,
        DELIVERY_BULKHEAD_SLOW_LIMIT=2 * WORKERS,  # all to one fake server: let them be in flight together
    )
    platform.start("web")
    for name in ("worker-a", "worker-b", "ticker-a", "ticker-b"):
        platform.start(name)
    with ThreadPoolExecutor(SERVICES) as pool:
        list(pool.map(lambda n: platform.push(keys[n], f"disk-{n}"), range(SERVICES)))

    wait_until(
        lambda: handed_out(platform)[1] >= 4,
        timeout=60,
        what=f"level 1's waiting messages handed out again\n{platform.logs()}",
    )
    # Twilio answers again, slowly: the workers take both copies of a waiting message side by side, and one finds
    # the other's attempt in flight.
    fake.delay("/twilio", 1.5)
    fake.release("/twilio")
    # Level 1 of every incident: an SMS to each of the three people and the bot's message.
    wait_until(
        lambda: len(fake.received("/twilio/")) >= SERVICES * 3 and len(fake.received("/hook/first-")) >= SERVICES,
        timeout=60,
        what=f"level 1 of every incident\n{platform.logs()}",
    )
    wait_until(lambda: not OrmQ.objects.exists(), timeout=30, what=f"every task of level 1 run\n{platform.logs()}")
    escalations = Timer.objects.filter(kind=Timer.Kind.LEVEL, level=1, done_at__isnull=True)
    wait_until(lambda: escalations.count() == SERVICES, timeout=10, what="an escalation timer per incident")
    timers_before = handed_out(platform)[0]

    # Every escalation timeout passes at once while a third claimant holds the timers (a ticker stalled in its
    # claim): both tickers find them due in the same ticks, and must leave them to it rather than take them too.
    due_at = timezone.now() + timedelta(seconds=1)
    escalations.update(due_at=due_at)
    with transaction.atomic():
        assert len(escalations.select_for_update()) == SERVICES
        time.sleep((due_at - timezone.now()).total_seconds() + 1.5)  # 7 ticks of each ticker with the timers due
        assert fake.received("/hook/next-") == []
    wait_until(lambda: len(fake.received("/hook/next-")) >= SERVICES, timeout=30, what=f"level 2\n{platform.logs()}")
    wait_until(lambda: not OrmQ.objects.exists(), timeout=30, what=f"every task run\n{platform.logs()}")
    time.sleep(LEASE + 1.5)  # past every lease: anything handed out twice would have been sent again by now

    numbers = {incident.number for incident in Incident.objects.all()}
    assert len(numbers) == SERVICES
    sms = Counter((r.field("To"), r.field("Body").split("#")[1].split()[0]) for r in fake.received("/twilio/"))
    assert sms == {(person.phone, str(number)): 1 for person in people for number in numbers}
    bots = Counter((r.path, r.json["event_type"]) for r in fake.received("/hook/"))
    assert set(bots.values()) == {1}, bots
    assert {path for path, _event in bots if path.startswith("/hook/next-")} == {
        f"/hook/next-{n}" for n in range(SERVICES)
    }
    deliveries = Delivery.objects.all()
    assert {d.status for d in deliveries} == {Delivery.Status.SENT}
    assert len(deliveries) == sum(sms.values()) + sum(bots.values())
    # Every delivery was attempted once: the copies handed out again found it taken and sent nothing.
    assert {d.attempts for d in deliveries} == {1}
    # Both tickers found every escalation timer due at once, and only one of them took it.
    timers_handed_out = handed_out(platform)[0] - timers_before
    assert timers_handed_out == SERVICES, f"{timers_handed_out} escalation timers handed out for {SERVICES}"
