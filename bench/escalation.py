"""Escalation timing: timer lateness under load, and the fan-out of one big level.

    python -m bench.escalation [--incidents 1000] [--spread 60] [--people 200]

On PostgreSQL (BENCH_DATABASE_URL, as bench.ingest). Two measurements:

- timer lateness: `--incidents` open incidents whose level-2 timers fall due evenly over `--spread` seconds, run by
  the default worker and ticker (`manage.py qcluster`, `manage.py ticker`), each level notifying one person by
  email and SMS. Lateness = when the level actually ran minus when it was due; a timer still not run a minute
  after the last one was due counts as later than every one that ran. Budget: p99 under 2 s, all ran.
- fan-out: one level that notifies `--people` people by email and SMS; time from the level firing to all its
  delivery rows written and handed to the worker (committed). Budget: under 2 s.

The work runs in `manage.py bench_escalation` (it needs the models); this module starts it and reads its rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import MANAGE, ROOT, Row, database_url, django_env, ensure_database
from bench.common import table as format_table


def run(*, incidents: int = 1000, spread: float = 60.0, people: int = 200, verbose: bool = True) -> list[Row]:
    db_url = database_url()
    ensure_database(db_url)
    env = django_env(db_url)
    subprocess.run([*MANAGE, "migrate", "--verbosity", "0"], env=env, cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as folder:
        rows_file = Path(folder) / "rows.json"
        command = [
            *MANAGE,
            "bench_escalation",
            f"--incidents={incidents}",
            f"--spread={spread}",
            f"--people={people}",
            f"--rows={rows_file}",
        ]
        subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=None if verbose else subprocess.DEVNULL)
        return [Row.from_json(row) for row in json.loads(rows_file.read_text())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=1000, help="timers due over --spread seconds")
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--people", type=int, default=200, help="people of the fan-out level")
    args = parser.parse_args()
    rows = run(incidents=args.incidents, spread=args.spread, people=args.people)
    print(format_table(rows))
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
