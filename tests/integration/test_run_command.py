"""The README's run command, for real: start web + worker + ticker, paste the README's curl, see the incident
and the email, then stop everything with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fakes.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def readme_block(needle: str, port: int) -> str:
    """The README's first shell block containing `needle`, aimed at this test's port."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if needle in b)
    command = "\n".join(line.strip() for line in block.strip().splitlines())
    return command.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(".venv/bin/python", sys.executable)


def readme_curl(port: int) -> str:
    return readme_block("integration_key", port)


class Output:
    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text:
                return True
            time.sleep(0.2)
        return False


def newcomer_env(var_dir: Path, **settings: str) -> dict[str, str]:
    """A newcomer's environment: none of the settings the test suite itself runs with, plus `settings`."""
    ours = ("DATABASE_URL", "SECRET_KEY", "Q_", "EMAIL", "PUBLIC_URL", "ALLOWED_HOSTS", "DEBUG", "CACHE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(DEBUG="true", VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="oncall.settings")
    return {**env, **settings}


def runplatform(env: dict[str, str], port: int) -> tuple[subprocess.Popen, Output]:
    """`manage.py runplatform` in its own process group, its output collected as it comes."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return process, Output(process.stdout)


def wait_for_http(url: str, output: Output, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, output.text
        time.sleep(0.3)


def interrupt(process: subprocess.Popen) -> None:
    """Ctrl-C, as a person stops it; everything is killed if it has not stopped within 30 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def test_make_run_starts_the_platform_command():
    if not shutil.which("make"):
        pytest.skip("make is not installed on this machine")
    dry = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "manage.py runplatform --port 8123" in dry.stdout


@pytest.mark.skipif(not shutil.which("curl"), reason="the README's tour uses curl")
def test_the_readme_curl_produces_an_incident_and_an_email(tmp_path):
    port = free_port()
    # A newcomer's environment: none of the settings the test suite itself runs with.
    env = newcomer_env(tmp_path)
    process, output = runplatform(env, port)
    try:
        assert output.wait_for("integration_key=demo", 120), output.text
        assert f"http://127.0.0.1:{port}/admin/" in output.text
        wait_for_http(f"http://127.0.0.1:{port}/admin/login/", output)
        assert output.wait_for("ready for work", 60), output.text

        pushed = subprocess.run(["bash", "-c", readme_curl(port)], capture_output=True, text=True, timeout=30)
        assert pushed.returncode == 0, pushed.stderr
        assert '"alert_key":"cpu-db-1"' in pushed.stdout.replace(" ", "")

        assert output.wait_for("Subject: [Critical] #1 CPU above 90% on db-1", 60), output.text
        assert "To: alice@example.com" in output.text
        assert f"http://127.0.0.1:{port}/incidents/1/" in output.text, "links point at this server"
        with sqlite3.connect(tmp_path / "oncall.sqlite3") as db:
            assert db.execute("select title, progress from oncall_incident").fetchall() == [
                ("CPU above 90% on db-1", "Triggered")
            ]
            # The worker records the send just after the console backend prints it: give it a moment.
            deliveries = "select address, status from channels_app_delivery"
            deadline = time.monotonic() + 30
            while db.execute(deliveries).fetchall() != [("alice@example.com", "sent")] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert db.execute(deliveries).fetchall() == [("alice@example.com", "sent")]

        # The tour's next step: acknowledge through the REST API with a token made on the command line.
        acked = subprocess.run(
            ["bash", "-c", readme_block("create_api_token", port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        assert acked.returncode == 0, acked.stderr
        assert '"progress":"Processing"' in acked.stdout.replace(" ", "")
    finally:
        interrupt(process)
    # The worker stopped by itself (its tasks may finish), not by the SIGKILL that follows 5 s later.
    assert "has stopped." in output.text and "sending SIGKILL" not in output.text, output.text[-2000:]
    children = re.findall(r"started \(pid=(\d+)\)", output.text)
    assert len(children) == 3, output.text
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
