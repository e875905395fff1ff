"""Scale-out: two workers and two tickers on one PostgreSQL database, racing for the same escalation timers and
deliveries: every message is sent exactly once."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

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
    platform = start_platform(TIMER_LEASE_SECONDS=2, Q_WORKERS=2)
    platform.start("web")
    for name in ("worker-a", "worker-b", "ticker-a", "ticker-b"):
        platform.start(name)
    with ThreadPoolExecutor(SERVICES) as pool:
        list(pool.map(lambda n: platform.push(keys[n], f"disk-{n}"), range(SERVICES)))

    # Level 1 of every incident: an SMS to each of the three people and the bot's message.
    wait_until(
        lambda: len(fake.received("/twilio/")) == SERVICES * 3 and len(fake.received("/hook/first-")) == SERVICES,
        timeout=60,
        what=f"level 1 of every incident\n{platform.logs()}",
    )
    escalations = Timer.objects.filter(kind=Timer.Kind.LEVEL, level=1, done_at__isnull=True)
    wait_until(lambda: escalations.count() == SERVICES, timeout=10, what="an escalation timer per incident")
    # Every escalation timeout passes at once: both tickers see all of them due in the same second.
    escalations.update(due_at=timezone.now() - timedelta(seconds=1))
    wait_until(lambda: len(fake.received("/hook/next-")) == SERVICES, timeout=30, what=f"level 2\n{platform.logs()}")
    time.sleep(3.5)  # past every lease: anything handed out twice would have been sent again by now

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
    assert {d.attempts for d in deliveries} == {1}
