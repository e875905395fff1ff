"""Ingest throughput: the standard endpoint beside a bare DRF endpoint that validates and inserts one row.

    python -m bench.ingest [--seconds 15]

Runs on PostgreSQL (BENCH_DATABASE_URL, default postgres://oncall:oncall@127.0.0.1:5432/oncall_bench; the
database is created when missing) under gunicorn (2 processes x 4 threads), driven by the same load generator
(8 keep-alive clients) for each endpoint. Scenarios:

- ceiling: the framework ceiling (validate, insert one row);
- repeat: the standard endpoint with 100 alert keys, so most pushes merge into an open alert (what monitors do
  while something stays broken);
- new: the standard endpoint with a new alert key every push, so each opens an incident and starts its
  escalation (the worker is not running; its tasks queue up).

Budget (ARCHITECTURE.md): the standard endpoint sustains at least 60% of the ceiling's requests per second.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import BENCH_KEY
from bench.loadgen import Result, load

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://oncall:oncall@127.0.0.1:5432/oncall_bench"


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def event(alert_key: str) -> dict:
    return {
        "title_rule": "CPU above 90% on $host",
        "event_status": "Critical",
        "alert_key": alert_key,
        "description": "load average 12.3 for 5 minutes",
        "labels": {"host": "db-1", "service": "billing", "env": "prod", "region": "eu-west-1"},
    }


def merge(first: Result, second: Result) -> Result:
    return Result(
        name=first.name,
        requests=first.requests + second.requests,
        errors=first.errors + second.errors,
        seconds=first.seconds + second.seconds,
        latencies_ms=first.latencies_ms + second.latencies_ms,
    )


def report(rows: list[Result], ceiling: float) -> str:
    lines = [
        f"{'scenario':<10} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of ceiling':>11}",
    ]
    for row in rows:
        share = f"{row.rate / ceiling:.0%}" if ceiling else "-"
        lines.append(
            f"{row.name:<10} {row.requests:>9} {row.errors:>7} {row.rate:>8.0f} "
            f"{row.percentile(50):>8.1f} {row.percentile(99):>8.1f} {share:>11}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load time per scenario")
    args = parser.parse_args()

    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    ensure_database(db_url)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": db_url, "DEBUG": "false"}
    env.pop("Q_SYNC", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], env=env, cwd=ROOT, check=True)
    subprocess.run([*manage, "bench_prepare"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "oncall.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for(port)
        push = f"/event/push/alert/standard?integration_key={BENCH_KEY}"
        common = {"host": "127.0.0.1", "port": port, "seconds": args.seconds}
        scenarios = [
            ("ceiling", "/bench/ceiling", lambda worker, n: event(f"k{n % 100}")),
            ("repeat", push, lambda worker, n: event(f"w{worker}-k{n % 100}")),
            ("new", push, lambda worker, n: event(f"w{worker}-n{n}-{time.time_ns()}")),
        ]
        for name, path, body in scenarios:  # warm up every code path and connection pool
            load(name, path=path, make_body=body, **{**common, "seconds": 2})
        # Two interleaved rounds, so drift in the machine's load hits every scenario alike.
        rounds = [[load(name, path=path, make_body=body, **common) for name, path, body in scenarios] for _ in range(2)]
    finally:
        server.terminate()
        server.wait(10)
    results = [merge(first, second) for first, second in zip(*rounds, strict=True)]
    ceiling = results[0].rate
    print(f"Ingest on PostgreSQL, gunicorn 2x4 threads, 8 clients, 2 x {args.seconds:g} s per scenario")
    print(report(results, ceiling))
    worst = min(results[1].rate, results[2].rate) / ceiling if ceiling else 0
    print(f"standard endpoint at {worst:.0%} of the ceiling (worst scenario); budget 60%")
    return 0 if worst >= 0.6 else 1


if __name__ == "__main__":
    sys.exit(main())
