"""`manage.py bench_escalation`: the escalation benchmarks (run through `python -m bench.escalation`)."""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from bench.common import Row, django_env, percentile
from bench.procs import Platform, task_stats
from channels_app.models import Delivery
from escalation.models import EscalationLevel, EscalationRule, EscalationState, Timer
from escalation.services import timer_fire
from escalation.snapshots import rule_snapshot
from oncall.models import Channel, Incident, User


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


def timer_lateness(db_url: str, incidents: int, spread: float) -> tuple[dict, Platform]:
    _reset()
    people = _people(2, "lat-")
    _, snapshot = _rule("Lateness", [[people[0]], [people[1]]])
    states = _incidents(incidents, snapshot, timezone.now())
    connection.close()
    # The default worker and ticker, with the platform's own settings, as `make run` starts them.
    platform = Platform("escalation", django_env(db_url, settings="oncall.settings"))
    with platform:
        platform.start_manage("worker", "qcluster")
        platform.start_manage("ticker", "ticker")
        # Ready when a due timer (a stale one: its token matches no escalation) has gone through both.
        now = timezone.now()
        probe = Timer.objects.create(
            state=states[0], kind="level", token=uuid.uuid4(), level=1, round=0, due_at=now, created_at=now
        )
        if not platform.wait_until(lambda: Timer.objects.filter(pk=probe.pk, done_at__isnull=False).exists(), 120):
            raise RuntimeError(f"worker and ticker not ready; see {platform.log_path('worker')}")
        probe.delete()
        start = timezone.now() + timedelta(seconds=2)
        cpu_before = platform.cpu_seconds("worker")
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
        pending = Timer.objects.filter(kind="level", level=1, done_at__isnull=True)
        platform.wait_until(lambda: not pending.exists(), 2 + spread + 60)
        cpu_used, measured_until = platform.cpu_seconds("worker") - cpu_before, time.time()
    worker = task_stats(platform.log_path("worker"), since=start.timestamp(), until=measured_until)
    worker.cpu_seconds = cpu_used
    done = list(Timer.objects.filter(kind="level", level=1).values_list("due_at", "done_at"))
    late = [(ran - due).total_seconds() for due, ran in done if ran is not None]
    # A timer that never ran (in the minute after the last was due) is later than every one that did.
    everyone = late + [math.inf] * (len(done) - len(late))
    return {
        "timers": len(done),
        "ran": len(late),
        "p50": percentile(everyone, 50),
        "p95": percentile(everyone, 95),
        "p99": percentile(everyone, 99),
        "max": max(late, default=float("nan")),
        "worker": worker,
    }, platform


def _s(seconds: float) -> str:
    """Seconds, or "not run" for a percentile that falls on a timer that never ran (infinite)."""
    return f"{seconds:.2f} s" if math.isfinite(seconds) else "not run"


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
        parser.add_argument("--rows", type=Path, help="write the rows of the benchmark table here (JSON)")

    def handle(self, *args, incidents: int, spread: float, people: int, rows: Path | None, **options) -> None:
        db_url = os.environ["DATABASE_URL"]
        fan = fan_out(people)
        late, platform = timer_lateness(db_url, incidents, spread)
        self.stdout.write(
            f"Escalation on PostgreSQL: qcluster + ticker (defaults); {incidents} timers due over {spread:g} s"
        )
        self.stdout.write(
            f"timer lateness  ran {late['ran']}/{late['timers']}  p50 {_s(late['p50'])}  p95 {_s(late['p95'])}  "
            f"p99 {_s(late['p99'])}  max of those that ran {late['max']:.2f} s   (budget p99 < 2 s)"
        )
        self.stdout.write(
            f"fan-out         {fan['people']} people x {fan['methods']} method(s) = {fan['deliveries']} deliveries, "
            f"{fan['queued']} sends queued, in {fan['seconds']:.2f} s   (budget < 2 s)"
        )
        workers = os.environ.get("Q_WORKERS", "2")
        table = [
            Row(
                "escalation: timer lateness",
                f"p50 {_s(late['p50'])}, p99 {_s(late['p99'])}, max ran {late['max']:.2f} s "
                f"({late['ran']}/{late['timers']} due over {spread:g} s ran by a minute after the last was due)",
                "p99 < 2 s, all ran",
                late["ran"] == late["timers"] and late["p99"] < 2,
            ),
            Row(
                "escalation: fan-out of one level",
                f"{fan['seconds']:.2f} s ({fan['people']} people x {fan['methods']} methods = "
                f"{fan['deliveries']} deliveries, {fan['queued']} sends queued)",
                "< 2 s",
                fan["seconds"] < 2 and fan["deliveries"] == fan["people"] * fan["methods"],
            ),
            Row(
                "escalation: worker throughput (timers)",
                f"{late['worker'].count} tasks at {late['worker'].rate():.1f}/s; mean ms per task: "
                f"level {late['worker'].mean_ms('escalation.tasks.timer_fire'):.0f}, "
                f"send {late['worker'].mean_ms('channels_app.tasks.delivery_send'):.0f}; "
                f"CPU {late['worker'].cpu_ms_per_task():.0f} ms per task",
            ),
            *platform.memory_rows(
                {"worker": f"qcluster, Q_WORKERS={workers} (timers)", "ticker": "ticker (timers)"},
            ),
        ]
        if rows is not None:
            rows.write_text(json.dumps([row.to_json() for row in table]))
