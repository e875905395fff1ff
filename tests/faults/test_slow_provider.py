"""A provider that hangs does not hold up deliveries to other providers (the delivery bulkhead), and its own
deliveries arrive exactly once when it answers again."""

from __future__ import annotations

import pytest

from channels_app.models import Delivery
from tests.factories import make_bot, make_channel, make_rule
from tests.fakes.provider_server import ProviderServer
from tests.faults.conftest import integration_key
from tests.faults.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hanging():
    """A second fake provider server: another host:port, so another provider to the bulkhead."""
    server = ProviderServer().start()
    yield server
    server.stop()


def test_a_hanging_provider_does_not_hold_up_the_others_and_still_gets_its_messages_once(fake, hanging, start_platform):
    hanging.hang("/hook")
    stuck = [make_bot("webhook", hanging.url(f"/hook/stuck-{n}"), name=f"Stuck {n}") for n in range(3)]
    quick = [make_bot("webhook", fake.url(f"/hook/quick-{n}"), name=f"Quick {n}") for n in range(3)]
    stuck_channel, quick_channel = make_channel("Storage"), make_channel("Web")
    make_rule(stuck_channel, [{"people": [], "bots": stuck}])
    make_rule(quick_channel, [{"people": [], "bots": quick}])
    platform = start_platform(
        Q_WORKERS=2,
        DELIVERY_BULKHEAD_SLOW_SECONDS=1,
        DELIVERY_BULKHEAD_DEFER_SECONDS=0.5,
        # Far longer than the test waits for the quick provider: without the bulkhead, two workers stuck on the
        # hanging provider would hold everything up until then.
        HTTP_TOTAL_TIMEOUT=40,
        DELIVERY_SEND_LEASE_SECONDS=50,
        WORKER_INLINE_SECONDS=5,
        Q_TIMEOUT=50,
        Q_RETRY=60,
    )
    platform.start("web")
    platform.start("ticker")
    platform.start("worker")
    platform.push(integration_key(stuck_channel), "disk")
    wait_until(lambda: hanging.received("/hook/"), timeout=25, what=f"the first call that hangs\n{platform.logs()}")
    platform.push(integration_key(quick_channel), "latency")

    wait_until(
        lambda: len(fake.received("/hook/")) == 3,
        timeout=25,
        what=f"the quick provider's three messages while the other hangs\n{platform.logs()}",
    )
    assert {r.path for r in fake.received("/hook/")} == {f"/hook/quick-{n}" for n in range(3)}
    # Only one attempt at a time was let through to the provider that hangs; the others wait, without spending
    # their attempts.
    assert len(hanging.received("/hook/")) == 1
    waiting = Delivery.objects.filter(bot__in=stuck)
    # (Polled: a waiting one is "sending" for the instant between a worker taking it and putting it back.)
    wait_until(
        lambda: sorted((d.status, d.attempts) for d in waiting) == [("pending", 0), ("pending", 0), ("sending", 1)],
        timeout=20,  # the waiting ones are handed out again every DEFER_SECONDS: seen pending between hand-outs
        what=f"two deliveries waiting, not counted as attempts, and one in flight\n{platform.logs()}",
    )

    hanging.release("/hook")
    wait_until(
        lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 6,
        timeout=30,
        what=f"every message sent once the provider answers\n{platform.logs()}",
    )
    received = hanging.received("/hook/")
    assert sorted(r.path for r in received) == [f"/hook/stuck-{n}" for n in range(3)]
    assert len({r.headers["idempotency-key"] for r in received}) == 3
    assert [d.attempts for d in Delivery.objects.filter(bot__in=stuck)] == [1, 1, 1]
    assert len(fake.received("/hook/")) == 3
