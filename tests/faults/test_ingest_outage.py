"""PostgreSQL restarted while monitors push: the web process (gunicorn, as deployed) answers a retryable 503 with
`Retry-After` during the outage, on the standard and the PagerDuty endpoints alike, reports itself not ready, and
accepts pushes again once the database is back, without a restart of its own. Afterwards every push answered 2xx is
stored (and becomes its alert and incident), and no push answered 5xx left a row, not even one whose batch was
written when the database stopped.

It runs on a private cluster of its own (initdb, fsync off) so that stopping it disturbs nobody else's database.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg
import pytest

from tests.fakes.smtp import free_port
from tests.faults.ingest_support import (
    Monitor,
    Poller,
    PrivatePostgres,
    keep_pushing,
    private_postgres_unavailable,
    wait_for_answers,
    wait_for_http_ok,
)
from tests.faults.processes import ROOT, gunicorn, platform_env, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(private_postgres_unavailable()), reason=f"{private_postgres_unavailable()}"),
]

KEY = "outage0000000000000000000000key1"
SENDERS = 4  # monitors pushing at once, as many as the web process has threads
SETUP = f"""
from oncall.models import Channel, Integration, Team
channel = Channel.objects.create(name="Databases", team=Team.objects.create(name="DBA"))
integration = Integration(name="Edge monitor", channel=channel)
integration.set_new_key("{KEY}")
integration.save()
print(integration.pk)
"""
PROCESS = """
from oncall.lib import clock
from oncall.services.ingest import batches_process
print(batches_process(integration_id={id}, now=clock.now()))
"""


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


@pytest.fixture
def postgres():
    cluster = PrivatePostgres()
    try:
        yield cluster.create()
    finally:
        cluster.destroy()


@pytest.fixture
def platform(postgres, tmp_path):
    """The web process on the private cluster, migrated, with one integration (its id)."""
    # Limits high enough that the pushes below are never throttled: this test is about the database. The key cache
    # is short so that during the outage both the key lookup and the insert meet the missing database.
    env = platform_env(
        postgres.url,
        INGEST_RATE_LIMIT_PER_SECOND=100_000,
        INGEST_RATE_LIMIT_PER_MINUTE=1_000_000,
        INTEGRATION_KEY_CACHE_SECONDS=1,
    )
    manage(env, "migrate", "--noinput")
    integration_id = int(manage(env, "shell", "-c", SETUP).strip())
    port = free_port()
    web = gunicorn(port, env=env, log_dir=tmp_path, workers=1, threads=4)
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30, alive=web.alive, output=lambda: web.output)
        yield web, f"http://127.0.0.1:{port}", env, integration_id
    finally:
        web.stop()


def stored_alert_keys(postgres: PrivatePostgres) -> list[str]:
    rows = postgres.query("SELECT events FROM oncall_eventbatch ORDER BY id")
    return [event["alert_key"] for (events,) in rows for event in events]


def pushes_waiting_for(postgres: PrivatePostgres, table: str, *, count: int) -> list[int]:
    """The database sessions (pids) of the pushes waiting for a lock on `table`, once `count` are; else []."""
    rows = postgres.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND query LIKE %s",
        f"%{table}%",
    )
    return [pid for (pid,) in rows] if len(rows) >= count else []


def test_a_postgresql_restart_during_ingest_answers_503_then_recovers_and_leaves_no_partial_rows(postgres, platform):
    web, base_url, env, integration_id = platform
    monitor = Monitor(base_url, KEY, pagerduty_every=3, timeout=15)
    stop = threading.Event()
    began = time.monotonic()
    with Poller([f"{base_url}/healthz", f"{base_url}/readyz"], interval=0.1) as health:
        senders = keep_pushing(monitor, threads=SENDERS, stop=stop)
        try:
            wait_for_answers(
                monitor, lambda a: a.accepted, count=20, since=began, timeout=20, what="20 pushes accepted"
            )
            # The database stops while pushes are mid-write: an admin holds the ingest task table, so every push
            # in flight has inserted its batch and waits to hand it over to the worker.
            admin = psycopg.connect(postgres.admin_dsn())
            try:
                admin.execute("LOCK TABLE oncall_ingesttask IN ACCESS EXCLUSIVE MODE")
                mid_write = wait_until(
                    lambda: pushes_waiting_for(postgres, "oncall_ingesttask", count=SENDERS),
                    timeout=10,
                    what="every push in flight waiting for the ingest task table",
                )
                down_from = time.monotonic()
                # The stop ends their sessions first: ended together with the admin's, a push could take the lock
                # it frees and commit in the instant before its own session ends.
                postgres.query("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", mid_write)
                postgres.stop("fast")
                down = time.monotonic()
            finally:
                admin.close()  # its session ended with the server's stop, and the lock with it
            wait_for_answers(
                monitor, lambda a: a.status == 503, count=30, since=down, timeout=20, what="30 pushes answered 503"
            )
            wait_until(lambda: 503 in health.statuses("/readyz", since=down), timeout=10, what="/readyz saying 503")
            # Past the key cache's second, so that pushes also fail at the key lookup, not only at the insert.
            wait_until(lambda: time.monotonic() - down > 1.5, timeout=5, what="1.5 s of outage")
            up_from = time.monotonic()
            postgres.start()
            up = time.monotonic()
            wait_for_answers(
                monitor, lambda a: a.accepted, count=30, since=up, timeout=30, what="30 pushes accepted after restart"
            )
            wait_until(lambda: 200 in health.statuses("/readyz", since=up), timeout=10, what="/readyz saying 200")
        finally:
            stop.set()
            for sender in senders:
                sender.join(20)
    elapsed = time.monotonic() - began
    answers = list(monitor.answers)
    log = f"\n--- web ---\n{web.output[-5000:]}\n--- postgres ---\n{postgres.server_log[-3000:]}"

    # Every push got an HTTP answer, and only ever a success or a retryable 503: never a 500, never a dropped
    # connection, and the process did not need a restart.
    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 202, 503}, (
        f"{statuses}: {[a for a in answers if a.status not in (200, 202, 503)][:3]}{log}"
    )
    assert web.alive(), log
    assert "Traceback" not in web.output, f"an unhandled error in the web process{log}"
    for answer in answers:
        if answer.status == 503:
            assert answer.retry_after and int(answer.retry_after) >= 1, answer
            if answer.path.endswith("/standard"):
                assert answer.body["error"]["code"] == "ServiceUnavailable", answer
            else:  # PagerDuty's endpoints answer in PagerDuty's shape
                assert answer.body["status"] == "unavailable", answer
    outage = [a for a in answers if down <= a.sent_at and a.answered_at < up_from]
    assert outage and {a.status for a in outage} == {503}, Counter(a.status for a in outage)
    assert {a.path.rsplit("/", 1)[1] for a in outage} == {"standard", "pagerduty"}
    slowest = max(a.answered_at - a.sent_at for a in outage)
    assert slowest < 5, f"a push waited {slowest:.1f} s for its 503: monitors need a quick answer to retry"
    after = [a for a in answers if a.sent_at >= up]
    assert sum(a.accepted for a in after) >= 30

    # Health: the process stayed alive throughout; readiness followed the database.
    assert set(health.statuses("/healthz")) == {200}, health.seen
    assert 503 in health.statuses("/readyz", since=down) and set(health.statuses("/readyz", since=up + 2)) <= {200}

    # Every accepted push is stored, with its hand-over to the worker, and nothing refused left a row: not even
    # the pushes whose batch was written when the database stopped.
    accepted = [a.alert_key for a in answers if a.accepted]
    stored = stored_alert_keys(postgres)
    cut_off = [a for a in answers if a.sent_at < down_from <= a.answered_at and a.status == 503]
    assert len(cut_off) >= len(mid_write), [a for a in answers if a.sent_at < down_from <= a.answered_at]
    assert not set(stored) & {a.alert_key for a in cut_off}, f"pushes answered 503 were stored{log}"
    assert Counter(stored) == Counter(accepted), log
    # One task drains them all (pushes ride on a task queued before them, the outage notwithstanding); only pushes
    # racing to queue the first may each have queued one.
    tasks = postgres.query("SELECT count(*) FROM django_q_ormq")[0][0]
    assert 1 <= tasks <= 4, tasks
    assert postgres.query("SELECT queued FROM oncall_ingesttask") == [(True,)]

    # The worker turns every stored batch into its alert and incident, all consistent.
    assert int(manage(env, "shell", "-c", PROCESS.format(id=integration_id)).strip()) == len(accepted)
    assert postgres.query("SELECT count(*) FROM oncall_eventbatch")[0][0] == 0
    alert_keys = [key for (key,) in postgres.query("SELECT alert_key FROM oncall_alert")]
    assert Counter(alert_keys) == Counter(accepted)
    assert postgres.query(
        "SELECT count(*) FROM oncall_incident i "
        "WHERE NOT EXISTS (SELECT 1 FROM oncall_alert a WHERE a.incident_id = i.id)"
    ) == [(0,)]
    assert postgres.query("SELECT count(*) FROM oncall_alert WHERE event_count < 1") == [(0,)]
    print(
        f"\noutage: {len(answers)} pushes in {elapsed:.1f} s: {dict(statuses)}; "
        f"{len(cut_off)} cut off mid-write and {len(outage)} during the outage all 503, "
        f"{sum(a.accepted for a in after)} accepted after the restart; "
        f"{len(accepted)} accepted, {len(alert_keys)} alerts stored; outage {up_from - down_from:.1f} s, "
        f"slowest 503 {slowest * 1000:.0f} ms"
    )
