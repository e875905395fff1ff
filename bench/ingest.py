"""Ingest throughput: the standard endpoint beside a bare DRF endpoint that validates and inserts one row.

    python -m bench.ingest [--seconds 15]

Runs on PostgreSQL (BENCH_DATABASE_URL, default postgres://oncall:oncall@127.0.0.1:5432/oncall_bench; the
database is created when missing) under gunicorn (2 processes x 4 threads), driven by the same load generator
(8 keep-alive clients) for each endpoint. Scenarios:

- ceiling: the framework ceiling (validate, insert one row);
- repeat: the standard endpoint with 100 alert keys, so most pushes merge into an open alert (what monitors do
  while something stays broken);
- new: the standard endpoint with a new alert key every push, so each becomes an incident of its own once the
  worker processes the stored push (the worker is not running here: the pushes and their tasks queue up).

Budget (ARCHITECTURE.md): the standard endpoint sustains at least 60% of the ceiling's requests per second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import BENCH_KEY
from bench.common import MANAGE, ROOT, Row, database_url, django_env, ensure_database, free_port, wait_for_port
from bench.common import table as format_table
from bench.loadgen import Result, load
from bench.procs import Platform

# The production server of the README's deployment section, sized for a 2-core machine.
GUNICORN_OPTIONS = ["--workers", "2", "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]


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


def run(*, seconds: float = 15.0, verbose: bool = True) -> list[Row]:
    db_url = database_url()
    ensure_database(db_url)
    env = django_env(db_url)
    subprocess.run([*MANAGE, "migrate", "--verbosity", "0"], env=env, cwd=ROOT, check=True)
    subprocess.run([*MANAGE, "bench_prepare"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "oncall.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    with Platform("ingest", env) as platform:
        platform.start("web", [*gunicorn, *GUNICORN_OPTIONS])
        wait_for_port(port)
        push = f"/event/push/alert/standard?integration_key={BENCH_KEY}"
        common = {"host": "127.0.0.1", "port": port, "seconds": seconds}
        scenarios = [
            ("ceiling", "/bench/ceiling", lambda worker, n: event(f"k{n % 100}")),
            ("repeat", push, lambda worker, n: event(f"w{worker}-k{n % 100}")),
            ("new", push, lambda worker, n: event(f"w{worker}-n{n}-{time.time_ns()}")),
        ]
        for name, path, body in scenarios:  # warm up every code path and connection pool
            load(name, path=path, make_body=body, **{**common, "seconds": 2})
        # Two interleaved rounds, so drift in the machine's load hits every scenario alike.
        rounds = [[load(name, path=path, make_body=body, **common) for name, path, body in scenarios] for _ in range(2)]
    results = [merge(first, second) for first, second in zip(*rounds, strict=True)]
    ceiling, repeat, new = results
    errors = sum(result.errors for result in results)
    worst = min(repeat.rate, new.rate) / ceiling.rate if ceiling.rate else 0
    if verbose:
        print(f"Ingest on PostgreSQL, gunicorn 2x4 threads, 8 clients, 2 x {seconds:g} s per scenario")
        print(report(results, ceiling.rate))
        print(f"standard endpoint at {worst:.0%} of the ceiling (worst scenario); budget 60%")
    share = f"{repeat.rate / ceiling.rate:.0%}" if ceiling.rate else "-"
    share_new = f"{new.rate / ceiling.rate:.0%}" if ceiling.rate else "-"
    return [
        Row(
            "ingest: standard endpoint / bare DRF ceiling",
            f"{worst:.0%} (repeat {repeat.rate:.0f} req/s = {share}, new {new.rate:.0f} req/s = {share_new}, "
            f"ceiling {ceiling.rate:.0f} req/s)",
            ">= 60%",
            worst >= 0.6 and errors == 0,
        ),
        Row(
            "ingest: push latency (new alert keys)",
            f"p50 {new.percentile(50):.0f} ms, p99 {new.percentile(99):.0f} ms, {errors} error(s)",
        ),
        *platform.memory_rows({"web": "gunicorn 2x4 threads (ingest)"}),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load time per scenario")
    args = parser.parse_args()
    rows = run(seconds=args.seconds)
    print(format_table(rows))
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
