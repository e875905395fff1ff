"""A burst of 10,000 events from one integration, against the real web process (gunicorn, as deployed).

The integration's rate limit answers the excess with 429 and `Retry-After`, the process keeps answering its health
and readiness checks, and every push answered 2xx is stored and becomes an alert, while no refused push leaves a
row. The integration has limits of its own (50 per second, 250 per minute) below the defaults (100, 1000): the same
code path, and fewer accepted batches for the worker to turn into alerts at the end of the test.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from oncall.lib import clock
from oncall.models import Alert, EventBatch
from oncall.services.ingest import batches_process
from tests.factories import make_channel, make_integration
from tests.fakes.smtp import free_port
from tests.faults.ingest_support import Monitor, Poller, wait_for_http_ok
from tests.faults.processes import database_url, gunicorn, platform_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BURST = 10_000
SENDERS = 8
PER_SECOND, PER_MINUTE = 50, 250


@pytest.fixture
def web(tmp_path):
    port = free_port()
    process = gunicorn(port, env=platform_env(database_url()), log_dir=tmp_path, workers=1, threads=8)
    try:
        wait_for_http_ok(
            f"http://127.0.0.1:{port}/healthz", timeout=30, alive=process.alive, output=lambda: process.output
        )
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def windows_spanned(started: float, ended: float, seconds: int) -> int:
    return math.floor(ended / seconds) - math.floor(started / seconds) + 1


def test_a_burst_of_10000_events_is_limited_with_429s_while_the_process_stays_healthy_and_loses_nothing(web):
    process, base_url = web
    integration, key = make_integration(
        channel=make_channel(), rate_limit_per_second=PER_SECOND, rate_limit_per_minute=PER_MINUTE
    )
    monitor = Monitor(base_url, key, pagerduty_every=10)

    began = time.monotonic()
    wall_began = time.time()
    with Poller([f"{base_url}/healthz", f"{base_url}/readyz"], interval=0.1) as health:
        answers = monitor.burst(BURST, threads=SENDERS)
    wall_ended = time.time()
    elapsed = time.monotonic() - began
    # About 50 s on two cores shared with other test runs; the bound keeps a stuck server from hanging the suite.
    assert elapsed < 90, f"the burst took {elapsed:.1f} s"

    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) <= {200, 202, 429}, (
        f"{statuses}; {[a for a in answers if a.status not in (200, 202, 429)][:3]}"
    )
    accepted = [answer for answer in answers if answer.accepted]
    refused = [answer for answer in answers if answer.status == 429]
    assert len(accepted) + len(refused) == BURST
    # The limits hold: no second window took more than its 50, no minute window more than its 250.
    assert PER_SECOND <= len(accepted) <= PER_SECOND * windows_spanned(wall_began, wall_ended, 1)
    assert len(accepted) <= PER_MINUTE * windows_spanned(wall_began, wall_ended, 60)
    assert len(refused) >= BURST - PER_MINUTE * windows_spanned(wall_began, wall_ended, 60)
    for answer in refused:
        assert answer.retry_after and int(answer.retry_after) >= 1
        if answer.path.endswith("/standard"):
            assert answer.body["error"]["code"] == "RequestTooFrequently"
            assert answer.body["error"]["limit"] in {"50 requests per second", "250 requests per minute"}
        else:
            assert answer.body["status"] == "throttle exceeded"
    assert {a.status for a in accepted if a.path.endswith("/pagerduty")} <= {202}

    # Healthy during and after the burst.
    assert health.statuses("/healthz") and set(health.statuses("/healthz")) == {200}, health.seen
    assert health.statuses("/readyz") and set(health.statuses("/readyz")) == {200}, health.seen
    assert process.alive(), process.output
    assert "Traceback" not in process.output, process.output[-5000:]
    wait_for_http_ok(f"{base_url}/readyz", timeout=5, alive=process.alive, output=lambda: process.output)

    # Nothing accepted is lost and nothing refused is stored: the stored batches hold exactly the accepted events...
    stored = [
        event["alert_key"] for batch in EventBatch.objects.filter(integration=integration) for event in batch.events
    ]
    assert Counter(stored) == Counter(answer.alert_key for answer in accepted)
    # ...and the worker turns each into its alert.
    # (A drain hands what it has not done after a few seconds to a new task, which runs at once in tests.)
    assert batches_process(integration_id=integration.pk, now=clock.now()) > 0
    assert not EventBatch.objects.filter(integration=integration).exists()
    alert_keys = list(Alert.objects.filter(integration=integration).values_list("alert_key", flat=True))
    assert sorted(alert_keys) == sorted(answer.alert_key for answer in accepted)
    print(
        f"\nburst: {BURST} pushes in {elapsed:.1f} s, {len(accepted)} accepted, {len(refused)} answered 429, "
        f"{len(alert_keys)} alerts stored; health checks {len(health.seen)}, all 200"
    )
