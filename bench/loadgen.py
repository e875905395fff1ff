"""A closed-loop HTTP load generator: N keep-alive connections for a fixed time, latencies recorded.

Processes (not threads) so the generator itself is not held back by one interpreter lock; the same generator
drives every endpoint of a comparison, so its own overhead cancels out.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]


def _worker(host: str, port: int, path: str, make_body, seconds: float, connections: int, seed: int, queue) -> None:
    import threading

    results: list[tuple[int, list[float]]] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        latencies, errors, n = [], 0, 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            body = json.dumps(make_body(seed * 1000 + offset, n)).encode()
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += 0 if ok else 1
            n += 1
        conn.close()
        with lock:
            results.append((errors, latencies))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


def load(
    name: str,
    *,
    host: str,
    port: int,
    path: str,
    make_body: Callable[[int, int], dict],
    seconds: float,
    processes: int = 2,
    connections_per_process: int = 4,
) -> Result:
    """Drive `path` with `processes` x `connections_per_process` concurrent clients for `seconds`."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.monotonic()
    workers = [
        ctx.Process(target=_worker, args=(host, port, path, make_body, seconds, connections_per_process, seed, queue))
        for seed in range(processes)
    ]
    for worker in workers:
        worker.start()
    collected = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    errors = sum(e for batch in collected for e, _ in batch)
    latencies = [ms for batch in collected for _, lat in batch for ms in lat]
    return Result(name=name, requests=len(latencies), errors=errors, seconds=elapsed, latencies_ms=latencies)
