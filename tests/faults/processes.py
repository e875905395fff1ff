"""Running the platform's own processes (web, worker, ticker) for fault tests, against the test's database.

Each process runs `manage.py` (or gunicorn) from the project root with the production settings module and an
environment built here, in its own session so that stopping it stops its children (the qcluster's workers,
gunicorn's). Output goes to a log file the test shows when an assertion fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# Variables of the test run that must not leak into the platform's processes (they choose its database, its
# settings module and inline tasks).
_OURS = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "Q_", "DELIVERY_", "HTTP_", "INGEST_", "CACHE_URL", "DEBUG")


def database_url(settings_dict: Mapping | None = None) -> str:
    """A DATABASE_URL for the database `settings_dict` describes (the test database by default)."""
    db = settings_dict or connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def platform_env(database: str, **overrides: object) -> dict[str, str]:
    """The environment of a platform process on `database`: production settings, tasks on the worker, the test
    run's secret key (tasks the test enqueues are signed with it), loopback allowed for the fake providers."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OURS)}
    env.update(
        DJANGO_SETTINGS_MODULE="oncall.settings",
        DATABASE_URL=database,
        DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_URL=settings.PUBLIC_URL,
        OUTBOUND_ALLOW_PRIVATE="true",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        Q_SYNC="false",
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class Process:
    """One platform process, started at once; `stop()` ends it and its children."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after `timeout` seconds."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError):  # children that outlived their parent (a stuck worker)
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()


def manage(name: str, *args: str, env: Mapping[str, str], log_dir: Path) -> Process:
    """`manage.py <args>` as a platform process."""
    return Process(name, [sys.executable, "manage.py", *args], env, log_dir)


def gunicorn(port: int, *, env: Mapping[str, str], log_dir: Path, workers: int = 1, threads: int = 8) -> Process:
    """The web process as the README deploys it (gunicorn), on 127.0.0.1:`port`."""
    args = [sys.executable, "-m", "gunicorn", "oncall.wsgi", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", str(workers), "--threads", str(threads), "--access-logfile", "-", "--log-level", "info"]
    return Process("web", args, env, log_dir)


def wait_until(check: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "the condition") -> T:
    """Call `check` until it returns something true, and return that; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


def memory_kib(pid: int) -> int:
    """Resident memory (VmRSS) of process `pid` and its descendants, in KiB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, ()))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total
