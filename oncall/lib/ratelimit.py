"""Fixed-window request counters in the cache: per-integration ingest limits, password-reset mails.

Counters live in the Django cache: per process with the default local-memory cache, shared by every process when
CACHE_URL points at Redis or memcached (what a multi-process deployment should do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    max: int
    window_seconds: int

    def describe(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour"}.get(self.window_seconds, f"{self.window_seconds} seconds")
        return f"{self.max} requests per {unit}"


@dataclass(frozen=True)
class Exceeded:
    limit: Limit
    retry_after: int  # whole seconds until the window that was exceeded ends


def hit(scope: str, limits: Sequence[Limit], *, now: float) -> Exceeded | None:
    """Count one request against every limit of `scope`; say which limit it exceeds, if any."""
    for limit in limits:
        window = int(now // limit.window_seconds)
        key = f"ratelimit:{scope}:{limit.window_seconds}:{window}"
        if cache.add(key, 1, timeout=limit.window_seconds + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=limit.window_seconds + 1)
                count = 1
        if count > limit.max:
            retry_after = math.ceil((window + 1) * limit.window_seconds - now)
            return Exceeded(limit=limit, retry_after=max(1, retry_after))
    return None
