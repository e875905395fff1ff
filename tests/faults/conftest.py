"""The platform's real processes (web, worker, ticker) on the test database, with the fake providers on 127.0.0.1,
for tests that kill and restart them while they work."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.factories import make_integration
from tests.fakes.provider_server import ProviderServer
from tests.fakes.smtp import free_port
from tests.faults.processes import Process, database_url, gunicorn, manage, platform_env, wait_until
from tests.integration.paging import SMS_FROM, TWILIO_SID, TWILIO_TOKEN, VOICE_FROM


class Platform:
    """Web, workers and tickers started by name (`start("worker")`, `start("ticker-2")`), all on the test database
    and with Twilio pointed at the fake providers; `kill()` is SIGKILL, as when a machine loses a process."""

    def __init__(self, *, fake: ProviderServer, log_dir: Path, **settings: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        fake.twilio_accounts[TWILIO_SID] = TWILIO_TOKEN
        base = {
            # Twilio calls back to the web process started here.
            "PUBLIC_URL": self.url,
            "TWILIO_API_URL": fake.url("/twilio"),
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_VOICE_FROM": ",".join(VOICE_FROM),
            "TWILIO_SMS_FROM": SMS_FROM,
            "TICKER_INTERVAL": 0.2,
            "Q_WORKERS": 2,
            "Q_POLL": 0.05,
        }
        self.env = platform_env(database_url(), **{**base, **settings})
        self.log_dir = log_dir
        self.processes: dict[str, Process] = {}
        self._runs = 0

    def start(self, name: str, **settings: object) -> Process:
        """Start `web`, or a worker (`worker...`: the qcluster) or a ticker (`ticker...`), with extra `settings`."""
        self._runs += 1
        env = {**self.env, **{key: str(value) for key, value in settings.items()}}
        log_name = f"{self._runs:02d}-{name}"
        if name == "web":
            process = gunicorn(self.port, env=env, log_dir=self.log_dir, threads=4)
            process.name = name
        elif name.startswith("worker"):
            process = manage(log_name, "qcluster", env=env, log_dir=self.log_dir)
        elif name.startswith("ticker"):
            process = manage(log_name, "ticker", env=env, log_dir=self.log_dir)
        else:
            raise ValueError(name)
        self.processes[name] = process
        if name == "web":
            wait_until(self._ready, timeout=60, interval=0.2, what=f"the web process answering /readyz\n{self.logs()}")
        return process

    def kill(self, name: str) -> None:
        """SIGKILL to the process and its children (a qcluster's workers in the middle of their tasks)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.popen.wait(10)
        process.stop()

    def stop(self) -> None:
        """SIGTERM to every process at once; SIGKILL to any still there 3 s later."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(0.0, deadline - time.monotonic()))
        for name in list(self.processes):
            self.processes.pop(name).stop(timeout=0.5)

    def push(self, key: str, alert_key: str, title: str = "Disk full") -> None:
        """An alert as a monitor sends it, to the web process."""
        response = requests.post(
            f"{self.url}/event/push/alert/standard?integration_key={key}",
            data=json.dumps({"title_rule": f"{title} {alert_key}", "event_status": "Critical", "alert_key": alert_key}),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    def logs(self) -> str:
        """Every process's output so far, for an assertion message."""
        return "\n".join(
            f"----- {path.name}\n{path.read_text(encoding='utf-8', errors='replace')[-6000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture
def fake(fake_providers) -> ProviderServer:
    """The fake providers on 127.0.0.1 (every provider's protocol; the processes reach them by URL)."""
    return fake_providers


@pytest.fixture
def start_platform(fake, tmp_path) -> Iterator:
    """`start_platform(**settings)` makes a Platform (no process started yet); its processes are stopped after
    the test."""
    made: list[Platform] = []

    def make(**settings: object) -> Platform:
        platform = Platform(fake=fake, log_dir=tmp_path, **settings)
        made.append(platform)
        return platform

    yield make
    for platform in made:
        platform.stop()


def integration_key(channel) -> str:
    """A new integration pushing into `channel`, by its secret key."""
    return make_integration(channel=channel)[1]
