"""Every benchmark, one after the other, then one table: `python -m bench` (what `make bench` runs).

    python -m bench [--quick] [--only ingest,escalation,latency]

`--quick` (or BENCH_QUICK=1) runs each benchmark for a few seconds instead of its full length: a smoke run that
shows everything works, not figures to compare with the budgets. Exits 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable

from bench import escalation, ingest, latency
from bench.common import LOG_DIR, Row, database_url, table

# name -> (full run, quick run)
BENCHMARKS: dict[str, tuple[Callable[[], list[Row]], Callable[[], list[Row]]]] = {
    "ingest": (lambda: ingest.run(seconds=15), lambda: ingest.run(seconds=3)),
    "escalation": (
        lambda: escalation.run(incidents=1000, spread=60, people=200),
        lambda: escalation.run(incidents=100, spread=10, people=200),
    ),
    # The budget's rate, then (reported only) a rate the default processes keep up with on two cores, and a light
    # one that shows the path's own latency.
    "latency": (
        lambda: [
            *latency.run(rate=50, seconds=60, bots=10, drain=30),
            *latency.run(rate=20, seconds=60, bots=10, drain=30, budget=False),
            *latency.run(rate=1, seconds=30, bots=10, drain=30, budget=False),
        ],
        lambda: [
            *latency.run(rate=50, seconds=10, bots=10, drain=20),
            *latency.run(rate=1, seconds=5, bots=10, drain=20, budget=False),
        ],
    ),
}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    started = time.monotonic()
    load_before = load_average()
    rows: list[Row] = []
    for name in chosen:
        print(f"\n=== {name}{' (quick)' if args.quick else ''}", flush=True)
        full, quick = BENCHMARKS[name]
        try:
            rows.extend(quick() if args.quick else full())
        except Exception as exc:
            traceback.print_exc()
            rows.append(Row(name, f"did not complete: {type(exc).__name__}: {exc}"[:200], "completes", False))
        # Other work on the machine moves every figure: its load is part of the result.
        rows.append(Row(f"load average (1, 5, 15 min) after {name}", load_average()))
        sys.stdout.flush()

    minutes = (time.monotonic() - started) / 60
    print(
        f"\nBenchmarks{' (QUICK: smoke run, not comparable with the budgets)' if args.quick else ''} on "
        f"{os.cpu_count()} CPU(s), {platform.python_implementation()} {platform.python_version()}, "
        f"PostgreSQL at {database_url().rsplit('@', 1)[-1]}; {minutes:.1f} min; "
        f"load average before {load_before}, after {load_average()}"
    )
    print(table(rows))
    print(f"Logs of the processes: {LOG_DIR}/")
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
