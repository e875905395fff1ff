"""What the ingest fault tests share: a private PostgreSQL cluster they can stop and start, and monitors pushing
events concurrently over HTTP, each answer kept.

PostgreSQL refuses to run as root, so when the tests run as root its programs run as the `postgres` user
(`runuser`), in a directory of their own that is removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

from tests.fakes.smtp import free_port
from tests.faults.processes import wait_until


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl live (Debian keeps them out of PATH), or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def private_postgres_unavailable() -> str | None:
    """Why a private cluster cannot be started here, or None when it can."""
    if postgres_bin_dir() is None:
        return "initdb is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:`port` (fsync off: nothing in it needs to survive a crash of
    the machine), with one database `oncall` owned by the role `oncall`, trust authentication on loopback."""

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="oncall-pg-"))
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.url = f"postgres://oncall@127.0.0.1:{self.port}/oncall"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self._as_owner, str(self.bin / program), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.dir,
        )

    def create(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "oncall", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE oncall")
        return self

    def admin_dsn(self, dbname: str = "oncall") -> str:
        return f"host=127.0.0.1 port={self.port} user=oncall dbname={dbname} connect_timeout=5"

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session (rolling back open transactions), as an operator's restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.admin_dsn()) as conn:
            return conn.execute(sql, params).fetchall()

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@dataclass(frozen=True)
class Answer:
    """One push and what the platform answered (status 0: no HTTP answer at all, `error` says why)."""

    alert_key: str
    path: str
    status: int
    sent_at: float
    answered_at: float
    retry_after: str | None = None
    body: object = None
    error: str = ""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def standard_event(alert_key: str) -> dict:
    return {"title_rule": f"burst {alert_key}", "event_status": "Warning", "alert_key": alert_key}


def pagerduty_event(alert_key: str) -> dict:
    return {
        "event_action": "trigger",
        "dedup_key": alert_key,
        "payload": {"summary": f"burst {alert_key}", "source": "fault-test", "severity": "warning"},
    }


class Monitor:
    """Pushes events to one integration over HTTP from a pool of threads, one keep-alive connection per thread, and
    keeps every answer. Every `pagerduty_every`-th push goes to the PagerDuty-compatible endpoint."""

    def __init__(self, base_url: str, key: str, *, pagerduty_every: int = 0, timeout: float = 10) -> None:
        self.base_url, self.key = base_url, key
        parsed = urlsplit(base_url)
        self._host, self._port = parsed.hostname, parsed.port
        self.pagerduty_every, self.timeout = pagerduty_every, timeout
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._count = 0

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self.timeout
            )
        return connection

    def _post(self, path: str, body: dict) -> tuple[int, str | None, bytes]:
        # http.client rather than requests: the client shares two cores with the server, so it must cost little.
        connection = self._connection()
        try:
            connection.request(
                "POST", f"{path}?integration_key={self.key}", json.dumps(body), {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            return response.status, response.getheader("Retry-After"), response.read()
        except Exception:
            connection.close()
            self._local.connection = None
            raise

    def push(self, alert_key: str | None = None) -> Answer:
        with self._lock:
            self._count += 1
            n = self._count
        alert_key = alert_key or f"fault-{n}-{uuid.uuid4().hex[:8]}"
        if self.pagerduty_every and n % self.pagerduty_every == 0:
            path, body = "/event/push/alert/pagerduty", pagerduty_event(alert_key)
        else:
            path, body = "/event/push/alert/standard", standard_event(alert_key)
        sent_at = time.monotonic()
        try:
            status, retry_after, raw = self._post(path, body)
        except (OSError, http.client.HTTPException) as exc:
            answer = Answer(alert_key, path, 0, sent_at, time.monotonic(), error=f"{type(exc).__name__}: {exc}")
        else:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw[:500].decode(errors="replace")
            answer = Answer(alert_key, path, status, sent_at, time.monotonic(), retry_after, parsed)
        with self._lock:
            self.answers.append(answer)
        return answer

    def burst(self, count: int, *, threads: int) -> list[Answer]:
        """`count` pushes as fast as `threads` senders go."""
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda _: self.push(), range(count)))


@dataclass
class Poller:
    """Asks `urls` every `interval` seconds in a thread until stopped, keeping (time, url, status) of each ask."""

    urls: Iterable[str]
    interval: float = 0.1
    timeout: float = 10
    seen: list[tuple[float, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            for url in self.urls:
                try:
                    status = session.get(url, timeout=self.timeout).status_code
                except requests.RequestException:
                    status = 0
                self.seen.append((time.monotonic(), url, status))
            self._stop.wait(self.interval)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def statuses(self, url_end: str, since: float = 0.0) -> list[int]:
        return [status for at, url, status in list(self.seen) if url.endswith(url_end) and at >= since]


def keep_pushing(
    monitor: Monitor, *, threads: int, stop: threading.Event, pause: float = 0.01
) -> list[threading.Thread]:
    """`threads` senders pushing one event after another (with a short pause) until `stop` is set."""

    def sender() -> None:
        while not stop.is_set():
            monitor.push()
            stop.wait(pause)

    senders = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for thread in senders:
        thread.start()
    return senders


def wait_for_answers(
    monitor: Monitor, condition: Callable[[Answer], bool], *, count: int, since: float, timeout: float, what: str
) -> None:
    """Wait until `count` answers sent after `since` satisfy `condition`."""
    wait_until(
        lambda: sum(1 for a in list(monitor.answers) if a.sent_at >= since and condition(a)) >= count,
        timeout=timeout,
        interval=0.05,
        what=what,
    )


def wait_for_http_ok(url: str, *, timeout: float, alive: Callable[[], bool], output: Callable[[], str]) -> None:
    """Wait until `url` answers 200; fail at once with the process output if the process has died."""

    def ready() -> bool:
        assert alive(), f"the process died while starting:\n{output()}"
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, timeout=timeout, interval=0.1, what=f"{url} answering 200")
