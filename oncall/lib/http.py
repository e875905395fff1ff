"""The only path by which the platform makes an outbound HTTP request.

Every request has a connect timeout and a total deadline, never follows redirects (a provider that redirects is
misconfigured, and following one could lead anywhere), reads at most a bounded body, and is logged by host only:
provider URLs carry secrets in their path or query (Telegram bot tokens, Slack webhook paths, DingTalk tokens).
"""

from __future__ import annotations

import json as jsonlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

USER_AGENT = "oncall-platform/0.1 (+https://github.com/)"
MAX_RESPONSE_BYTES = 1024 * 1024

_local = threading.local()


class HttpError(Exception):
    """The request did not produce an HTTP response: timeout, refused connection, bad URL, oversized body."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (providers answer HTML error pages too)."""
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            return None


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        _local.session = session
    return session


def safe_target(url: str) -> str:
    """What may be logged of a URL: scheme and host, never path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    json: Any = None,
    data: Mapping[str, Any] | bytes | str | None = None,
    auth: tuple[str, str] | None = None,
    connect_timeout: float | None = None,
    total_timeout: float | None = None,
) -> HttpResponse:
    """Send one request and return the response, whatever its status; raise HttpError if there is none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {safe_target(url)}")
    connect_timeout = connect_timeout or settings.HTTP_CONNECT_TIMEOUT
    total_timeout = total_timeout or settings.HTTP_TOTAL_TIMEOUT
    started = time.monotonic()
    deadline = started + total_timeout
    try:
        response = _session().request(
            method,
            url,
            headers=headers,
            params=params,
            json=json,
            data=data,
            auth=auth,
            timeout=(connect_timeout, total_timeout),
            allow_redirects=False,
            stream=True,
        )
        try:
            chunks, size = [], 0
            for chunk in response.iter_content(chunk_size=16384):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise HttpError(f"response from {safe_target(url)} exceeds {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise HttpError(f"{safe_target(url)} did not answer within {total_timeout:g} s", timeout=True)
                chunks.append(chunk)
        finally:
            response.close()
    except requests.Timeout as exc:
        raise HttpError(f"{safe_target(url)} did not answer within {total_timeout:g} s", timeout=True) from exc
    except requests.RequestException as exc:
        raise HttpError(f"could not reach {safe_target(url)}: {type(exc).__name__}") from exc
    elapsed = time.monotonic() - started
    logger.info("HTTP %s %s -> %s in %.0f ms", method, safe_target(url), response.status_code, elapsed * 1000)
    return HttpResponse(
        status=response.status_code, headers=dict(response.headers), body=b"".join(chunks), elapsed=elapsed
    )
