"""What every benchmark shares: the database, free ports, percentiles and the rows of the final table."""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
DEFAULT_DB = "postgres://oncall:oncall@127.0.0.1:5432/oncall_bench"
# Output of the processes a benchmark starts (web, worker, ticker), to read when a figure looks wrong.
LOG_DIR = ROOT / "var" / "bench"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)


def ensure_database(url: str) -> None:
    """Create the benchmark database when it is missing (the role needs CREATEDB)."""
    import psycopg

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"BENCH_DATABASE_URL must be a PostgreSQL URL, not {parts.scheme}://")
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def django_env(db_url: str, settings: str = "bench.settings", **extra: str) -> dict[str, str]:
    """The environment of a process of the platform pointed at the benchmark database.

    Production-like: DEBUG off, tasks on the worker (never inline), django-q2's default ORM broker. Nothing leaves
    the machine: email goes to a dummy backend and Twilio (SMS, calls) is left unconfigured, so those deliveries
    fail permanently without a request, whatever the caller's environment says.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret-key"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "PYTHONUNBUFFERED": "1",
        # WhiteNoise warns in every process that static files were not collected; benchmarks do not serve them.
        "PYTHONWARNINGS": "ignore:No directory at",
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "Q_REDIS_URL": "",
        **extra,
    }
    env.pop("Q_SYNC", None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (NaN when there are no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass(frozen=True)
class Row:
    """One line of the final table. `passed` is None for a figure that has no budget (reported only)."""

    benchmark: str
    figure: str
    budget: str = "-"
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "-"}[self.passed]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Row:
        return cls(**data)


def table(rows: list[Row]) -> str:
    """The rows as a plain-text table (also valid Markdown)."""
    header = ("benchmark", "figure", "budget", "result")
    cells = [header, *[(row.benchmark, row.figure, row.budget, row.verdict) for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]

    def line(values) -> str:
        return "| " + " | ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def megabytes(kib: int) -> str:
    return f"{kib / 1024:.0f} MB"
