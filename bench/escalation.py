"""Escalation timing: timer lateness under load, and the fan-out of one big level.

    python -m bench.escalation [--incidents 1000] [--spread 60] [--people 200]

On PostgreSQL (BENCH_DATABASE_URL, as bench.ingest). Two measurements:

- timer lateness: `--incidents` open incidents whose level-2 timers fall due evenly over `--spread` seconds, run by
  one real ticker process and one real worker process (`manage.py ticker`, `manage.py qcluster` with one worker).
  Lateness = when the level actually ran minus when it was due. Budget: p99 under 2 s.
- fan-out: one level that notifies `--people` people by every registered notification method; time from the level
  firing to all its delivery rows written and handed to the worker (committed). Budget: under 2 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.ingest import DEFAULT_DB, ensure_database

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    ensure_database(db_url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": db_url,
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "DEBUG": "false",
    }
    env.pop("Q_SYNC", None)
    command = [sys.executable, str(ROOT / "manage.py"), "bench_escalation", *sys.argv[1:]]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
