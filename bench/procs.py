"""The platform's processes under a benchmark: started as `make run` starts them, watched for memory, stopped.

Memory is each process's resident set (VmRSS) plus that of all its descendants (the qcluster forks a sentinel,
a pusher, a monitor and its workers; gunicorn its workers), sampled from /proc every half second; the peak is
kept. Forked children share pages with their parent, so a sum of RSS counts those pages more than once: the
proportional set size (Pss, shared pages divided among their sharers) is kept beside it. The CPU time (user +
system) of the tree is read in the same samples: on a shared machine it says what the work cost, where wall-clock
figures also say how busy the machine was.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.common import LOG_DIR, MANAGE, ROOT, Row, megabytes


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:  # the process ended meanwhile
        return ""


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc/<pid>/stat (the kernel here has no /proc/<pid>/task/*/children)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read(f"/proc/{entry.name}/stat")
        if not stat:
            continue
        # The command name (2nd field) may hold spaces and parentheses: the fields after its last ")" are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """`pid` and all its descendants."""
    children = _children_map() if children is None else children
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def _field_kib(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(stat: str) -> float:
    """User + system CPU time of a process (and of its children it has waited for), from /proc/<pid>/stat."""
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime


def tree_memory(pid: int, children: dict[int, list[int]] | None = None) -> tuple[int, int, int, float]:
    """(RSS KiB, PSS KiB, number of processes, CPU seconds so far) of `pid` and its descendants."""
    rss = pss = count = 0
    cpu = 0.0
    for member in process_tree(pid, children):
        status = _read(f"/proc/{member}/status")
        stat = _read(f"/proc/{member}/stat")
        if not status or not stat:
            continue
        count += 1
        rss += _field_kib(status, "VmRSS:")
        pss += _field_kib(_read(f"/proc/{member}/smaps_rollup"), "Pss:")
        cpu += _cpu_seconds(stat)
    return rss, pss, count, cpu


@dataclass
class Peak:
    rss_kib: int = 0
    pss_kib: int = 0
    processes: int = 0
    cpu_seconds: float = 0.0  # CPU time used by the process tree (the last sample: it only grows)

    def update(self, rss: int, pss: int, count: int, cpu: float) -> None:
        if rss > self.rss_kib:
            self.rss_kib, self.processes = rss, count
        self.pss_kib = max(self.pss_kib, pss)
        self.cpu_seconds = max(self.cpu_seconds, cpu)


@dataclass
class Platform:
    """Named processes of one benchmark (web, worker, ticker...), their logs and their peak memory."""

    bench: str
    env: dict[str, str]
    interval: float = 0.5
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    peaks: dict[str, Peak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "wb") as log:
            process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        self.peaks[name] = Peak()
        if self._sampler is None:
            self._sampler = threading.Thread(target=self._sample_loop, name="memory-sampler", daemon=True)
            self._sampler.start()
        return process

    def start_manage(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, [*MANAGE, *args])

    def log_path(self, name: str) -> Path:
        return LOG_DIR / f"{self.bench}-{name}.log"

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_path(name)}")

    def wait_until(self, condition, timeout: float) -> bool:
        """Whether `condition()` came true within `timeout` seconds, while every process kept running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            self.check_running()
            time.sleep(0.2)
        return condition()

    def cpu_seconds(self, name: str) -> float:
        """The CPU time the process `name` and its living descendants have used so far (read now)."""
        process = self.processes[name]
        return tree_memory(process.pid)[3] if process.poll() is None else self.peaks[name].cpu_seconds

    def sample(self) -> None:
        children = _children_map()
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                self.peaks[name].update(*tree_memory(process.pid, children))

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to every process (the qcluster finishes its tasks), SIGKILL to what is still there after
        `timeout`; the sampler stops first, so the peaks are those of the run, not of the shutdown."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # The whole tree: a qcluster's workers would otherwise outlive it.
                for pid in reversed(process_tree(process.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def memory_rows(self, labels: dict[str, str]) -> list[Row]:
        """One table row per process: its peak RSS (with the PSS beside it) and the CPU time it used; `labels` names
        what ran."""
        rows = []
        for name, peak in self.peaks.items():
            figure = (
                f"{megabytes(peak.rss_kib)} RSS ({peak.processes} proc., PSS {megabytes(peak.pss_kib)}); "
                f"CPU {peak.cpu_seconds:.0f} s"
            )
            rows.append(Row(f"peak memory: {name}, {labels.get(name, name)}", figure))
        return rows


@dataclass
class TaskStats:
    """What a qcluster did, read from its log: tasks finished per function and how long each took."""

    done: dict[str, list[float]] = field(default_factory=dict)  # function -> durations in ms
    first: float | None = None  # wall clock of the first finished task
    last: float | None = None

    cpu_seconds: float = 0.0  # the worker's CPU time over the same span, when the caller measured it

    @property
    def count(self) -> int:
        return sum(len(durations) for durations in self.done.values())

    def rate(self) -> float:
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return self.count / (self.last - self.first)

    def cpu_ms_per_task(self) -> float:
        """CPU time per finished task (the worker's idle polling counted in: only meaningful when it is busy)."""
        return self.cpu_seconds * 1000 / self.count if self.count else float("nan")

    def mean_ms(self, function: str) -> float:
        durations = self.done.get(function) or []
        return sum(durations) / len(durations) if durations else float("nan")


_STARTED = re.compile(r"^(\S+ \S+) INFO django-q Process-\w+ processing ([\w-]+) '([\w.]+)'")
_FINISHED = re.compile(r"^(\S+ \S+) INFO django-q Processed '([\w.]+)' \(([\w-]+)\)")


def _log_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # the log's local time


def task_stats(log: Path, since: float = 0.0, until: float = float("inf")) -> TaskStats:
    """The tasks a qcluster's log says it started at or after `since` and finished by `until` (wall clock)."""
    stats, started = TaskStats(), {}
    with open(log, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if match := _STARTED.match(line):
                at = _log_time(match[1])
                if at >= since:
                    started[match[2]] = at
            elif (match := _FINISHED.match(line)) and match[3] in started:
                at = _log_time(match[1])
                if at > until:
                    continue
                stats.done.setdefault(match[2], []).append((at - started.pop(match[3])) * 1000)
                stats.first = at if stats.first is None else min(stats.first, at)
                stats.last = at if stats.last is None else max(stats.last, at)
    return stats
