"""The demo data set, the embedded database mode, and the .env.example that documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from escalation.models import EscalationLevel, EscalationRule
from oncall.management.commands.load_demo import DEMO_INTEGRATION_KEY
from oncall.models import Channel, Integration, Team, User
from oncall.selectors import integration_get_by_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_loading_the_demo_twice_changes_nothing_and_restores_what_was_broken():
    call_command("load_demo", verbosity=0)
    counts = [model.objects.count() for model in (User, Team, Channel, Integration, EscalationRule, EscalationLevel)]
    Integration.objects.update(enabled=False)
    User.objects.get(username="admin").set_password("changed")
    call_command("load_demo", verbosity=0)
    assert [m.objects.count() for m in (User, Team, Channel, Integration, EscalationRule, EscalationLevel)] == counts
    integration = integration_get_by_key(DEMO_INTEGRATION_KEY)
    assert integration.enabled and integration.channel.name == "Production"
    assert User.objects.get(username="admin").check_password("admin")
    levels = EscalationLevel.objects.filter(rule__name="Default").order_by("position")
    assert [[p.username for p in level.people.all()] for level in levels] == [["alice"], ["bob"]]


@pytest.mark.django_db
def test_the_embedded_database_runs_in_wal_mode():
    if connection.vendor != "sqlite":
        pytest.skip("WAL is a SQLite setting; this run uses " + connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_env_example_lists_every_setting_read_from_the_environment():
    settings_source = (ROOT / "oncall" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', settings_source))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the settings read no variables?"
    assert read - documented == set()


def test_env_example_can_be_read_by_a_shell():
    """docs/deployment.md runs manage.py with `set -a; . /etc/oncall/oncall.env`, a copy of .env.example."""
    import subprocess

    sourced = subprocess.run(
        ["sh", "-c", 'set -a; . ./.env.example; printf "%s" "$DEFAULT_FROM_EMAIL"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert sourced.returncode == 0, sourced.stderr
    assert sourced.stdout == "On-call <oncall@example.com>"
