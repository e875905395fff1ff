"""Settings refuse unsafe production configurations at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_django(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "Q_RETRY", "Q_TIMEOUT")}
    environment.update(DJANGO_SETTINGS_MODULE="oncall.settings", VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = start_django(tmp_path, DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_mode_starts_with_a_development_key(tmp_path):
    result = start_django(tmp_path, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "x" * 40)
    result = start_django(tmp_path, DEBUG="false", SECRET_KEY_FILE=str(secret))
    assert result.returncode == 0, result.stderr


def test_retry_must_exceed_the_task_timeout(tmp_path):
    result = start_django(tmp_path, DEBUG="true", Q_TIMEOUT="60", Q_RETRY="60")
    assert result.returncode != 0
    assert "Q_RETRY must be larger than Q_TIMEOUT" in result.stderr


def test_a_value_that_is_not_a_number_names_its_variable(tmp_path):
    for name, value in (("Q_WORKERS", "two"), ("EMAIL_PORT", ""), ("TICKER_INTERVAL", "fast")):
        result = start_django(tmp_path, DEBUG="true", **{name: value})
        assert result.returncode != 0
        assert f"ImproperlyConfigured: {name}={value!r} is not a valid" in result.stderr, result.stderr[-400:]


def test_log_level_and_format_are_read_in_any_case_and_refused_when_unknown(tmp_path):
    assert start_django(tmp_path, DEBUG="true", LOG_LEVEL="info", LOG_FORMAT="JSON").returncode == 0
    for name, value in (("LOG_LEVEL", "verbose"), ("LOG_FORMAT", "jsno")):
        result = start_django(tmp_path, DEBUG="true", **{name: value})
        assert result.returncode != 0
        assert f"ImproperlyConfigured: {name}=" in result.stderr, result.stderr[-400:]


def test_a_ticker_interval_of_zero_or_less_is_refused(tmp_path):
    for value in ("0", "-1"):
        result = start_django(tmp_path, DEBUG="true", TICKER_INTERVAL=value)
        assert result.returncode != 0
        assert "TICKER_INTERVAL must be above 0" in result.stderr
