"""A webhook receiver on 127.0.0.1 that timestamps every arrival, in a process of its own so that the load
generator's work never delays a timestamp.

The time is taken (wall clock, `time.time()`, the clock the sender uses too) as soon as the request's headers
are read, before its body; the answer is 200 `{"ok": true}` at once.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Arrival:
    at: float
    path: str
    body: bytes

    def json(self) -> dict | None:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _alert_seq(body: bytes) -> str | None:
    """The `seq` label the load generator put on the alert a webhook is about (None if there is none)."""
    try:
        return str(json.loads(body)["incident"]["labels"]["seq"])
    except (ValueError, KeyError, TypeError):
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer leaves in one write (the handler flushes after each request). Unbuffered, its headers and body
    # went as two small writes, and on a keep-alive connection the second waited for the sender's delayed ACK:
    # 40 ms more per webhook, during which the platform's worker waits for the answer, as no real provider makes it.
    wbufsize = -1

    def do_POST(self) -> None:
        at = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.server.arrivals.append(Arrival(at, self.path, body))  # list.append is atomic
        key = _alert_seq(body)
        with self.server.lock:
            if key is not None and key not in self.server.seen:
                self.server.seen.add(key)
                self.server.distinct.value += 1

    def log_message(self, format: str, *args) -> None:
        pass


def _serve(port: int, ready, stop, results, distinct) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.arrivals, server.seen, server.lock, server.distinct = [], set(), threading.Lock(), distinct
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ready.set()
    stop.wait()
    server.shutdown()
    server.server_close()
    results.send([(a.at, a.path, a.body) for a in server.arrivals])


class Receiver:
    """`with Receiver(port) as receiver: ...; arrivals = receiver.stop()`."""

    def __init__(self, port: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.port = port
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._results, child_end = ctx.Pipe(duplex=False)
        self._distinct = ctx.Value("i", 0)
        self._process = ctx.Process(
            target=_serve, args=(port, self._ready, self._stop, child_end, self._distinct), daemon=True
        )
        self._arrivals: list[Arrival] | None = None

    def start(self) -> Receiver:
        self._process.start()
        if not self._ready.wait(30):
            raise RuntimeError("the webhook receiver did not start")
        return self

    @property
    def alerts_seen(self) -> int:
        """How many distinct alerts (by their `seq` label) webhooks have been received about so far."""
        return self._distinct.value

    def stop(self) -> list[Arrival]:
        if self._arrivals is None:
            self._stop.set()
            raw = self._results.recv() if self._results.poll(60) else []
            self._process.join(10)
            self._arrivals = [Arrival(*item) for item in raw]
        return self._arrivals

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
