"""The optional Redis broker (Q_REDIS_URL) and shared cache (CACHE_URL): the whole platform on a local redis-server
turns a push into an incident and an email, with tasks travelling through Redis instead of the database."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time

import pytest
import redis
import requests

from oncall.management.commands.load_demo import DEMO_INTEGRATION_KEY
from tests.fakes.smtp import free_port
from tests.integration.test_run_command import interrupt, newcomer_env, runplatform, wait_for_http

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed (.ci/run installs it)"),
]


@pytest.fixture
def redis_url(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


def test_the_platform_runs_on_the_redis_broker_and_cache(tmp_path, redis_url):
    url = redis_url
    port = free_port()
    env = newcomer_env(tmp_path, Q_REDIS_URL=f"{url}/0", CACHE_URL=f"{url}/1")
    process, output = runplatform(env, port)
    try:
        # The cluster names the Redis list it reads once every worker process is up.
        assert output.wait_for("[django_q:oncall:q]", 120), output.text
        wait_for_http(f"http://127.0.0.1:{port}/readyz", output)

        pushed = requests.post(
            f"http://127.0.0.1:{port}/event/push/alert/standard?integration_key={DEMO_INTEGRATION_KEY}",
            data=json.dumps({"title_rule": "Queue backlog", "event_status": "Critical", "alert_key": "q"}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert pushed.status_code == 200, pushed.text
        assert output.wait_for("Subject: [Critical] #1 Queue backlog", 60), output.text
        with sqlite3.connect(tmp_path / "oncall.sqlite3") as db:
            assert db.execute("select address, status from channels_app_delivery").fetchall() == [
                ("alice@example.com", "sent")
            ]
        # The integration-key lookup and the push's rate-limit counter live in the shared cache.
        assert redis.Redis.from_url(f"{url}/1").keys("*")
    finally:
        interrupt(process)
