"""Alert in → first bot webhook received: the whole path of an alert, timed from outside, under a steady load.

    python -m bench.latency [--rate 50] [--seconds 60] [--bots 10] [--drain 30]

The default processes, as `make run` starts them (`runserver --noreload`, `qcluster`, `ticker`), run on
PostgreSQL with the platform's own settings (DEBUG off, OUTBOUND_ALLOW_PRIVATE on so bots may post to loopback).
A webhook receiver on 127.0.0.1 timestamps every arrival. The load generator pushes `--rate` alerts a second for
`--seconds` through the standard ingest endpoint, open loop (each push at its scheduled time, whatever the
answers before it took), each with a new alert key so each opens an incident. Each incident's channel rule posts
to a custom-webhook bot; alerts are spread over `--bots` bots by a `shard` label, because the platform paces
each bot to its provider's rate limit (a custom webhook: 10 messages in any second) and one bot cannot take 50 a
second without making them wait.

Latency = arrival at the receiver - the moment the push was sent (one clock: the same machine's wall clock).
After the last push the run waits up to `--drain` seconds; an alert whose webhook has not arrived by then counts
as not delivered, and as later than any arrival in the percentiles ("not arrived" when a percentile falls on
one), so a backlog cannot flatter the figures. Budget (ARCHITECTURE.md): p99 under 1 s, none lost. Also reported:
where the time goes (from the rows the platform wrote), what the worker got through (from its log: tasks a
second, mean time per task function, tasks still queued at the end) and the peak memory of web, worker and ticker.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

from bench import BENCH_KEY
from bench.common import (
    MANAGE,
    ROOT,
    Row,
    database_url,
    django_env,
    ensure_database,
    free_port,
    percentile,
    wait_for_port,
)
from bench.common import table as format_table
from bench.procs import Platform, TaskStats, task_stats
from bench.receiver import Receiver

PUSH_PATH = f"/event/push/alert/standard?integration_key={BENCH_KEY}"


@dataclass(frozen=True)
class Push:
    seq: str
    sent_at: float  # wall clock, seconds
    status: int  # 0: no answer
    answer_ms: float
    behind_ms: float  # how late the push left against its schedule (the generator's own lag)


def alert(seq: str, shard: int, run: str) -> dict:
    return {
        "title_rule": f"Bench latency alert {seq} on $host",
        "event_status": "Critical",
        "alert_key": f"latency-{run}-{seq}",
        "description": "pushed by bench.latency",
        "labels": {"host": f"web-{shard}", "service": "bench", "shard": str(shard), "seq": seq},
    }


def _push_loop(port: int, prefix: str, count: int, rate: float, start: float, bots: int, run: str, threads: int, out):
    """Push `count` alerts at `rate` a second from `start` (wall clock), on `threads` keep-alive connections."""
    lock = threading.Lock()
    next_index = [0]
    pushes: list[Push] = []

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= count:
                break
            due = start + index / rate
            body = json.dumps(alert(f"{prefix}{index}", index % bots, run)).encode()
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            sent_at = time.time()
            status = 0
            try:
                conn.request("POST", PUSH_PATH, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            answered = time.time()
            pushes.append(
                Push(f"{prefix}{index}", sent_at, status, (answered - sent_at) * 1000, max(0.0, sent_at - due) * 1000)
            )
        conn.close()

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.send(pushes)


def push_alerts(*, port: int, prefix: str, count: int, rate: float, bots: int, run: str, threads: int = 8):
    """Push from a process of its own (so the pushes never wait on this one's interpreter lock)."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    start = time.time() + 0.2
    process = ctx.Process(target=_push_loop, args=(port, prefix, count, rate, start, bots, run, threads, send))
    process.start()
    pushes: list[Push] = receive.recv()
    process.join()
    return pushes


def stages(db_url: str) -> tuple[dict[str, dict], int, dict[str, str]]:
    """Per alert (by seq): when the platform dispatched its incident, ran the level, started the send (from rows);
    how many tasks were still queued for the worker; and where each alert stands (see bench_latency_report)."""
    env = django_env(db_url)
    output = subprocess.run(
        [*MANAGE, "bench_latency_report"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    report = json.loads(output)
    return report["steps"], report["queued"], report["where"]


# The worker's task functions on the path of an alert, in order, with short names for the table (a level and its
# first send run inside the task that decided them, so most alerts show up as one "ingest batch" task).
TASKS = {
    "oncall.tasks.batches_process": "ingest batch",
    "escalation.tasks.timer_fire": "level",
    "channels_app.tasks.delivery_send": "bot send",
}


def worker_figure(stats: TaskStats, queued: int | None, arrived: int) -> str:
    """Tasks finished (a task also does the follow-ups it decides, so there are fewer than steps), the mean time of
    each kind, and the worker's CPU time per alert that arrived."""
    means = ", ".join(
        f"{short} {len(stats.done[name])} x {stats.mean_ms(name):.0f} ms"
        for name, short in TASKS.items()
        if name in stats.done
    )
    left = "?" if queued is None else str(queued)
    per_alert = f"{stats.cpu_seconds * 1000 / arrived:.0f} ms" if arrived else "-"
    return (
        f"{stats.count} tasks at {stats.rate():.1f}/s ({means or 'none finished'}); "
        f"CPU {per_alert} per alert; {left} still queued at the end"
    )


# Where a missing alert may still be waiting (bench_latency_report's stages) -> the name shown.
WAITING = {"ingest": "ingest", "escalation": "level", "pending": "send", "sending": "send"}


def ms(value: float) -> str:
    """Milliseconds, or "not arrived" for a percentile that falls on an alert that never arrived (infinite)."""
    return f"{value:.0f} ms" if math.isfinite(value) else "not arrived"


def breakdown(pushes: dict[str, Push], first: dict[str, float], rows: dict[str, dict]) -> list[str]:
    """p50/p99 of each step of the path, in milliseconds."""
    steps = [
        ("push → ingested (incident opened, its event dispatched)", None, "dispatched"),
        ("ingested → level ran (timer task started)", "dispatched", "level_ran"),
        ("level ran → bot send started (delivery task)", "level_ran", "send_started"),
        ("send started → received", "send_started", None),
    ]
    lines = []
    for label, since, until in steps:
        values = []
        for seq, push in pushes.items():
            row = rows.get(seq)
            if row is None or seq not in first:
                continue
            begin = push.sent_at if since is None else row.get(since)
            end = first[seq] if until is None else row.get(until)
            if begin is not None and end is not None:
                values.append((end - begin) * 1000)
        lines.append(
            f"  {label:<58} p50 {percentile(values, 50):7.0f} ms  p99 {percentile(values, 99):7.0f} ms"
            f"  (n={len(values)})"
        )
    return lines


def run(
    *,
    rate: float = 50,
    seconds: float = 60,
    bots: int = 10,
    drain: float = 30,
    budget: bool = True,
    verbose: bool = True,
) -> list[Row]:
    """The rows of one run. `budget=False`: a run at another rate than the budget's, reported without a verdict
    (and without memory rows), to show the path's latency when the worker keeps up."""
    db_url = database_url()
    ensure_database(db_url)
    prepare_env = django_env(db_url)
    subprocess.run([*MANAGE, "migrate", "--verbosity", "0"], env=prepare_env, cwd=ROOT, check=True)
    subprocess.run([*MANAGE, "bench_prepare"], env=prepare_env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    receiver_port, web_port = free_port(), free_port()
    subprocess.run(
        [
            *MANAGE,
            "bench_latency_prepare",
            "--bots",
            str(bots),
            "--hook-base",
            f"http://127.0.0.1:{receiver_port}/hook",
        ],
        env=prepare_env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # The processes of `make run` (manage.py runplatform), with the platform's own settings.
    env = django_env(
        db_url,
        settings="oncall.settings",
        OUTBOUND_ALLOW_PRIVATE="true",
        PUBLIC_URL=f"http://127.0.0.1:{web_port}",
    )
    run_id = uuid.uuid4().hex[:8]
    count = round(rate * seconds)
    warm = 2 * bots
    with Receiver(receiver_port) as receiver, Platform(f"latency-{rate:g}-per-s", env) as platform:
        platform.start_manage("web", "runserver", f"127.0.0.1:{web_port}", "--noreload")
        platform.start_manage("worker", "qcluster")
        platform.start_manage("ticker", "ticker")
        wait_for_port(web_port)
        # Warm up until the whole path works (the worker is up and every bot has posted once).
        warm_pushes = push_alerts(port=web_port, prefix="w", count=warm, rate=5, bots=bots, run=run_id)
        if not platform.wait_until(lambda: receiver.alerts_seen >= warm, 120):
            raise RuntimeError(
                f"warm-up: {receiver.alerts_seen} of {warm} webhooks arrived "
                f"(push answers: {sorted({p.status for p in warm_pushes})}); see {platform.log_path('worker')}"
            )
        started = time.monotonic()
        cpu_before = platform.cpu_seconds("worker")
        pushes = push_alerts(port=web_port, prefix="", count=count, rate=rate, bots=bots, run=run_id)
        pushing = time.monotonic() - started
        accepted = sum(1 for push in pushes if 200 <= push.status < 300)
        platform.wait_until(lambda: receiver.alerts_seen >= warm + accepted, drain)
        cpu_used, measured_until = platform.cpu_seconds("worker") - cpu_before, time.time()
        platform.stop()
        arrivals = receiver.stop()
    # What the worker got through from the first push of the run on (its log has a line per task).
    worker = task_stats(platform.log_path("worker"), since=pushes[0].sent_at if pushes else 0.0, until=measured_until)
    worker.cpu_seconds = cpu_used

    first: dict[str, float] = {}
    for arrival in arrivals:
        body = arrival.json() or {}
        seq = str(((body.get("incident") or {}).get("labels") or {}).get("seq", ""))
        if seq and (seq not in first or arrival.at < first[seq]):
            first[seq] = arrival.at
    by_seq = {push.seq: push for push in pushes}
    latencies = [(first[seq] - push.sent_at) * 1000 for seq, push in by_seq.items() if seq in first]
    missing = len(by_seq) - len(latencies)
    refused = len(pushes) - accepted
    # An alert that never arrived is later than every one that did: percentiles over all pushes.
    p50, p95, p99 = (percentile(latencies + [math.inf] * missing, p) for p in (50, 95, 99))
    behind = [push.behind_ms for push in pushes]
    answers = [push.answer_ms for push in pushes]

    if verbose:
        print(
            f"Alert → first bot webhook on PostgreSQL: runserver + qcluster + ticker (defaults), "
            f"{len(pushes)} alerts at {rate:g}/s over {pushing:.1f} s, {bots} webhook bot(s)"
        )
        print(
            f"  latency: p50 {ms(p50)}  p95 {ms(p95)}  p99 {ms(p99)}"
            f"  max arrived {max(latencies, default=math.nan):.0f} ms"
            f"   arrived {len(latencies)}/{len(pushes)}, not within {drain:g} s of the last push {missing}"
            f" (pushes refused {refused})"
        )
        print(
            f"  push answers ms: p50 {percentile(answers, 50):.0f}  p99 {percentile(answers, 99):.0f};"
            f"  generator behind schedule ms: p99 {percentile(behind, 99):.0f}"
        )
    queued, where = None, {}
    try:
        steps, queued, where = stages(db_url)
        if verbose:
            for line in breakdown(by_seq, first, steps):
                print(line)
    except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
        print(f"  (no breakdown: {exc})")
    # A missing alert still waiting in the platform (its push stored, its level or send queued) would arrive
    # after a restart: late, not lost. Lost: refused, failed, or found nowhere.
    waiting: dict[str, int] = {}
    for seq in by_seq.keys() - first.keys():
        stage = where.get(seq, "nowhere")
        if stage in WAITING:
            waiting[WAITING[stage]] = waiting.get(WAITING[stage], 0) + 1
    lost = missing - sum(waiting.values())
    late = ", ".join(f"{stage} {waiting.get(stage, 0)}" for stage in dict.fromkeys(WAITING.values()))
    worker_line = worker_figure(worker, queued, len(latencies))
    if verbose:
        print(f"  worker (Q_WORKERS={env.get('Q_WORKERS', '2')}): {worker_line}")
        print(f"  not arrived: {missing}, of which still waiting in the platform ({late}), lost {lost}")

    labels = {
        "web": "runserver (alert → bot)",
        "worker": f"qcluster, Q_WORKERS={env.get('Q_WORKERS', '2')} (alert → bot)",
        "ticker": "ticker (alert → bot)",
    }
    name = "alert → first bot webhook" if budget else f"alert → first bot webhook at {rate:g}/s (no budget)"
    rows = [
        Row(
            name,
            f"p50 {ms(p50)}, p95 {ms(p95)}, p99 {ms(p99)} ({rate:g}/s for {seconds:g} s, {bots} bots)",
            "p99 < 1000 ms" if budget else "-",
            (bool(latencies) and p99 < 1000) if budget else None,
        ),
        Row(
            f"{name}: lost",
            f"{lost} of {len(pushes)} lost; "
            + (
                f"{missing - lost} more not arrived {drain:g} s after the last push, still waiting in the platform "
                f"({late}); "
                if missing > lost
                else ""
            )
            + f"latest arrival {max(latencies, default=math.nan) / 1000:.1f} s after its push",
            "0 lost",
            lost == 0 and len(pushes) > 0,
        ),
        Row(f"{name}: worker throughput", worker_line),
    ]
    return [*rows, *platform.memory_rows(labels)] if budget else rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to push")
    parser.add_argument("--bots", type=int, default=10, help="webhook bots the alerts are spread over")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for webhooks after the last push")
    args = parser.parse_args()
    rows = run(rate=args.rate, seconds=args.seconds, bots=args.bots, drain=args.drain)
    print(format_table(rows))
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
