"""`manage.py bench_escalation`: the escalation benchmarks (run through `python -m bench.escalation`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from channels_app.models import Delivery
from escalation.models import EscalationLevel, EscalationRule, EscalationState, Timer
from escalation.services import rule_snapshot, timer_fire
from oncall.models import Channel, Incident, User

ROOT = Path(__file__).resolve().parents[3]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _reset() -> None:
    call_command("migrate", verbosity=0)
    call_command("bench_prepare", verbosity=0)


# The level's methods: email and SMS, to a verified address and phone number each.
METHODS = ("email", "sms")


def _people(count: int, prefix: str):
    """`count` new people, each with a verified email address and phone number."""
    User.objects.filter(username__startswith=prefix).delete()
    verified = timezone.now()
    area = 100 + sum(map(ord, prefix)) % 900  # distinct numbers per prefix, stable between runs
    User.objects.bulk_create(
        User(
            username=f"{prefix}{n}",
            email=f"{prefix}{n}@bench.test",
            email_verified_at=verified,
            phone=f"+1415{area}{n:04d}",
            phone_verified_at=verified,
        )
        for n in range(count)
    )
    return list(User.objects.filter(username__startswith=prefix).order_by("pk"))


def _rule(name: str, levels: list[list]):
    channel = Channel.objects.get(name="Bench")
    rule, _ = EscalationRule.objects.get_or_create(channel=channel, name=name)
    rule.levels.all().delete()

    for position, people in enumerate(levels):
        level = EscalationLevel.objects.create(
            rule=rule,
            position=position,
            critical_methods=list(METHODS),
            warning_methods=list(METHODS),
            info_methods=list(METHODS),
            escalate_after_minutes=30,
        )
        level.people.set(people)
    return rule, rule_snapshot(rule)


def _incidents(count: int, snapshot, now):
    """Incidents escalated to level 1 already, with their level-2 timers not yet due."""
    channel = Channel.objects.get(name="Bench")
    incidents = Incident.objects.bulk_create(
        [
            Incident(
                channel=channel,
                title=f"bench {n}",
                severity="Critical",
                status="Critical",
                start_time=now,
                last_time=now,
            )
            for n in range(count)
        ]
    )
    states = EscalationState.objects.bulk_create(
        [
            EscalationState(
                incident=incident,
                snapshot=snapshot.to_json(),
                status="running",
                run=1,
                token=uuid.uuid4(),
                level=0,
                round=0,
                level_started_at=now,
                started_at=now,
            )
            for incident in incidents
        ]
    )
    return states


def timer_lateness(db_url: str, incidents: int, spread: float) -> dict:
    _reset()
    people = _people(2, "lat-")
    _, snapshot = _rule("Lateness", [[people[0]], [people[1]]])
    start = timezone.now() + timedelta(seconds=8)  # time for the processes to start
    states = _incidents(incidents, snapshot, timezone.now())
    Timer.objects.bulk_create(
        [
            Timer(
                state=state,
                kind="level",
                token=state.token,
                level=1,
                round=0,
                due_at=start + timedelta(seconds=spread * n / incidents),
                created_at=timezone.now(),
            )
            for n, state in enumerate(states)
        ]
    )
    connection.close()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": db_url,
        "Q_WORKERS": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
    }
    env.pop("Q_SYNC", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    processes = [
        subprocess.Popen(
            [*manage, "qcluster"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ),
        subprocess.Popen([*manage, "ticker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        deadline = time.monotonic() + 8 + spread + 60
        while time.monotonic() < deadline:
            if not Timer.objects.filter(kind="level", level=1, done_at__isnull=True).exists():
                break
            time.sleep(1)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    done = list(Timer.objects.filter(kind="level", level=1).values_list("due_at", "done_at"))
    late = [(ran - due).total_seconds() for due, ran in done if ran is not None]
    return {
        "timers": len(done),
        "ran": len(late),
        "p50": _percentile(late, 50) if late else float("nan"),
        "p95": _percentile(late, 95) if late else float("nan"),
        "p99": _percentile(late, 99) if late else float("nan"),
        "max": max(late) if late else float("nan"),
    }


def fan_out(people: int) -> dict:
    _reset()
    targets = _people(people, "fan-")
    _, snapshot = _rule("Fan-out", [targets])
    now = timezone.now()
    [state] = _incidents(1, snapshot, now)
    state.level_started_at = None
    state.save()
    timer = Timer.objects.create(
        state=state, kind="level", token=state.token, level=0, round=0, due_at=now, created_at=now
    )
    started = time.perf_counter()
    outcome = timer_fire(timer_id=timer.pk, now=timezone.now())  # commits: rows written and handed over
    elapsed = time.perf_counter() - started

    return {
        "outcome": outcome,
        "people": people,
        "methods": len(METHODS),
        "deliveries": Delivery.objects.filter(incident_id=state.incident_id).count(),
        "queued": OrmQ.objects.count(),
        "seconds": elapsed,
    }


class Command(BaseCommand):
    help = "Measure timer lateness and level fan-out on this database (a PostgreSQL benchmark database)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--incidents", type=int, default=1000)
        parser.add_argument("--spread", type=float, default=60.0)
        parser.add_argument("--people", type=int, default=200)

    def handle(self, *args, incidents: int, spread: float, people: int, **options) -> None:
        db_url = os.environ["DATABASE_URL"]
        fan = fan_out(people)
        late = timer_lateness(db_url, incidents, spread)
        self.stdout.write(
            f"Escalation on PostgreSQL: one ticker, one worker process; {incidents} timers due over {spread:g} s"
        )
        self.stdout.write(
            f"timer lateness  ran {late['ran']}/{late['timers']}  p50 {late['p50']:.2f} s  p95 {late['p95']:.2f} s  "
            f"p99 {late['p99']:.2f} s  max {late['max']:.2f} s   (budget p99 < 2 s)"
        )
        self.stdout.write(
            f"fan-out         {fan['people']} people x {fan['methods']} method(s) = {fan['deliveries']} deliveries, "
            f"{fan['queued']} sends queued, in {fan['seconds']:.2f} s   (budget < 2 s)"
        )
        if not (late["ran"] == late["timers"] and late["p99"] < 2 and fan["seconds"] < 2):
            sys.exit(1)
