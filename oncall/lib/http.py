"""The only path by which the platform makes an outbound HTTP request.

Every request has a connect timeout and a total deadline, never follows redirects (a provider that redirects is
misconfigured, and following one could lead anywhere), reads at most a bounded body, and is logged by host only:
provider URLs carry secrets in their path or query (Telegram bot tokens, Slack webhook paths, DingTalk tokens).

Bots and webhooks accept any URL, so an admin could point one at the platform's own network. Unless
OUTBOUND_ALLOW_PRIVATE is on (the embedded demo and tests), a connection whose peer is a loopback, private,
link-local or otherwise non-public address is refused. The check is made on the socket actually connected, after
DNS resolution, so a name that resolves (or rebinds) to an internal address is refused too.

APNs speaks only HTTP/2, which requests cannot: `request_http2` is the same path on httpx with h2 (same timeouts,
address check, size bound and host-only logging).

Within `attempt_deadline` (a delivery attempt, several requests to one provider under one lease) no request runs
past the deadline: each waits at most until then, and one that would start after it is not made at all.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json as jsonlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationValueError, NewConnectionError

from oncall.lib import clock

logger = logging.getLogger(__name__)
# urllib3 logs every request line, query string included, at DEBUG: bot tokens live in URLs (DingTalk's
# access_token, Telegram's path), so it never logs below INFO, whatever LOG_LEVEL says.
logging.getLogger("urllib3").setLevel(logging.INFO)

USER_AGENT = "oncall-platform/0.1 (+https://github.com/)"
MAX_RESPONSE_BYTES = 1024 * 1024

_local = threading.local()


class HttpError(Exception):
    """The request did not produce an HTTP response: timeout, refused connection, bad URL, oversized body.

    `may_have_arrived`: whether the server may have the request all the same (no answer came after it was sent: a
    read timeout, a connection reset, an answer cut off), as opposed to one that surely never left (not called,
    a forbidden address, a name that does not resolve, a connection refused or never made).

    `permanent`: no request can be made to the URL as written (see `url_problem`), so trying again cannot help;
    only a corrected URL can. Such a request was never sent."""

    def __init__(
        self, message: str, *, timeout: bool = False, may_have_arrived: bool = False, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.may_have_arrived = may_have_arrived
        self.permanent = permanent


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


class ForbiddenAddress(OSError):
    """The peer's address is not one the platform may connect to."""


def address_allowed(address: str) -> bool:
    """Whether the platform may connect to `address` when private addresses are not allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def forbidden_host(url: str) -> str | None:
    """The host of an outbound `url` when the URL itself shows it is refused (an address literal or a localhost
    name, with private addresses not allowed), for forms to refuse it when entered; None otherwise. Other names
    are resolved only when connecting, where every connection is checked anyway."""
    if settings.OUTBOUND_ALLOW_PRIVATE:
        return None
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        return None if address_allowed(host) else host
    except ValueError:
        return None  # a name, not an address


def url_problem(url: str) -> str | None:
    """Why no request can be made to `url` as written, or None: it cannot be parsed, is not http(s), has no host,
    or names a port outside 1 to 65535 (which the URL validators of forms let through). Forms refuse such a URL;
    `request` fails it at once, for good. The reasons never quote the URL (it may carry secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket, characters a host cannot have
        return "the URL cannot be parsed"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        port = parts.port
    except ValueError:  # only noticed when read: not a number, or above 65535
        port = 0
    if port == 0:
        return "its port is not a number from 1 to 65535"
    return None


def _refuse_unusable(url: str) -> None:
    problem = url_problem(url)
    if problem is not None:
        raise HttpError(f"{safe_target(url)} was not called: {problem}", permanent=True)


def _check_peer(sock: socket.socket) -> None:
    if settings.OUTBOUND_ALLOW_PRIVATE:
        return
    peer = sock.getpeername()[0]
    if not address_allowed(peer):
        sock.close()
        raise ForbiddenAddress(f"connecting to {peer} is not allowed (a private or local address)")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock)
        return sock

    def connect(self) -> None:
        # A connection reset or stalled during the TLS handshake (say by a firewall filtering on the server name)
        # carried none of the request: it is reported as a connection that was never made, like a refused one, so
        # the caller knows the server cannot have it. Certificate and other TLS errors keep their own kind.
        try:
            super().connect()
        except (ForbiddenAddress, NewConnectionError, ssl.SSLError, ssl.CertificateError):
            raise
        except OSError as exc:
            raise NewConnectionError(self, f"the connection failed before the request was sent: {exc!r}") from exc


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }


def _session() -> requests.Session:
    # The peer is checked when a connection opens, so kept-alive connections opened while private addresses were
    # allowed must not outlive that setting: the session (its pool) belongs to the setting's value.
    session = getattr(_local, "session", None)
    if session is not None and _local.session_allow_private != settings.OUTBOUND_ALLOW_PRIVATE:
        session.close()
        session = None
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        session.trust_env = False  # no proxies from the environment: the address check must see the real peer
        session.mount("http://", _GuardedAdapter())
        session.mount("https://", _GuardedAdapter())
        _local.session = session
        _local.session_allow_private = settings.OUTBOUND_ALLOW_PRIVATE
    return session


def safe_target(url: str) -> str:
    """What may be logged of a URL: scheme and host, never path or query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?"
    return f"{parts.scheme}://{parts.hostname or '?'}"


_attempt_deadline: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("attempt_deadline", default=None)


@contextmanager
def attempt_deadline(at: datetime) -> Iterator[None]:
    """Let no request inside run past `at` (the platform clock): a worker's lease on what it sends ends then, and
    whatever is still being sent would be sent again by another."""
    token = _attempt_deadline.set(at)
    try:
        yield
    finally:
        _attempt_deadline.reset(token)


def attempt_seconds_left() -> float | None:
    """Seconds left before the current attempt's deadline (0 or less: none); None outside `attempt_deadline`."""
    at = _attempt_deadline.get()
    return None if at is None else (at - clock.now()).total_seconds()


def _time_left(url: str, total_timeout: float) -> float:
    """`total_timeout`, cut to what is left before the attempt's deadline; HttpError (nothing sent) if none is."""
    left = attempt_seconds_left()
    if left is None:
        return total_timeout
    if left <= 0:
        raise HttpError(f"{safe_target(url)} was not called: the attempt had run out of time")
    return min(total_timeout, left)


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
    _refuse_unusable(url)
    total_timeout = _time_left(url, total_timeout or settings.HTTP_TOTAL_TIMEOUT)
    connect_timeout = min(connect_timeout or settings.HTTP_CONNECT_TIMEOUT, total_timeout)
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
                    raise HttpError(
                        f"response from {safe_target(url)} exceeds {MAX_RESPONSE_BYTES} bytes", may_have_arrived=True
                    )
                if time.monotonic() > deadline:
                    raise HttpError(
                        f"{safe_target(url)} did not answer within {total_timeout:g} s",
                        timeout=True,
                        may_have_arrived=True,
                    )
                chunks.append(chunk)
        finally:
            response.close()
    except requests.ConnectTimeout as exc:
        raise HttpError(f"{safe_target(url)} did not answer within {total_timeout:g} s", timeout=True) from exc
    except requests.Timeout as exc:
        raise HttpError(
            f"{safe_target(url)} did not answer within {total_timeout:g} s", timeout=True, may_have_arrived=True
        ) from exc
    except requests.ConnectionError as exc:
        if _caused_by(exc, ForbiddenAddress):
            raise HttpError(
                f"{safe_target(url)} is a private or local address, which this platform does not call"
            ) from exc
        raise HttpError(
            f"could not reach {safe_target(url)}: {type(exc).__name__}", may_have_arrived=not _never_connected(exc)
        ) from exc
    except (requests.exceptions.InvalidURL, LocationValueError) as exc:
        # What requests and urllib3 refuse before sending that url_problem lets through (a host name IDNA cannot
        # encode, which urllib3 raises as a ValueError when connecting).
        raise HttpError(f"{safe_target(url)} was not called: the URL is not valid", permanent=True) from exc
    except requests.RequestException as exc:
        raise HttpError(f"could not reach {safe_target(url)}: {type(exc).__name__}", may_have_arrived=True) from exc
    elapsed = time.monotonic() - started
    logger.info("HTTP %s %s -> %s in %.0f ms", method, safe_target(url), response.status_code, elapsed * 1000)
    return HttpResponse(
        status=response.status_code, headers=dict(response.headers), body=b"".join(chunks), elapsed=elapsed
    )


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether a connection error came before the request could be sent: the name did not resolve, or the
    connection was refused or never made (urllib3's NewConnectionError, a DNS failure, a TLS handshake refused)."""
    return _caused_by(exc, NewConnectionError) or _caused_by(exc, requests.exceptions.SSLError)


def _caused_by(exc: BaseException | None, kind: type[BaseException], depth: int = 0) -> bool:
    """Whether `kind` is somewhere in the chain of `exc` (requests and urllib3 wrap it several times)."""
    if exc is None or depth > 10:
        return False
    if isinstance(exc, kind):
        return True
    nested = [exc.__cause__, exc.__context__, getattr(exc, "reason", None), *exc.args]
    return any(_caused_by(item, kind, depth + 1) for item in nested if isinstance(item, BaseException))


# -- HTTP/2 (APNs accepts nothing else) -----------------------------------------------------------------------


class _ForbiddenConnect(httpx.ConnectError):
    pass


class _GuardedNetworkBackend(httpcore.NetworkBackend):
    """httpcore's synchronous sockets, with the same peer-address check as the HTTP/1.1 path."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        sock = stream.get_extra_info("socket")
        if sock is not None:
            try:
                _check_peer(sock)
            except ForbiddenAddress as exc:
                raise _ForbiddenConnect(str(exc)) from exc
        return stream

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover - never used
        raise httpx.ConnectError("unix sockets are not used")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _GuardedHTTP2Transport(httpx.HTTPTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(http2=True, trust_env=False)
        # The pool httpx would build, on our guarded sockets (httpx takes no network backend of its own).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            http2=True,
            network_backend=_GuardedNetworkBackend(),
        )


def http2_transport(ssl_context: ssl.SSLContext | None = None) -> httpx.BaseTransport:
    """The transport HTTP/2 requests use: TLS verified against the system's CAs (or `ssl_context`: the tests' fake
    APNs has a self-signed certificate), on sockets checked against OUTBOUND_ALLOW_PRIVATE."""
    return _GuardedHTTP2Transport(ssl_context)


def _http2_client() -> httpx.Client:
    # One client (one connection pool) per thread, kept: APNs wants long-lived connections, not one per push.
    client = getattr(_local, "http2_client", None)
    if client is not None and _local.http2_allow_private != settings.OUTBOUND_ALLOW_PRIVATE:
        http2_reset()  # as for _session: no connection outlives the setting it was checked under
        client = None
    if client is None:
        client = httpx.Client(transport=http2_transport(), follow_redirects=False, trust_env=False)
        _local.http2_client = client
        _local.http2_allow_private = settings.OUTBOUND_ALLOW_PRIVATE
    return client


def http2_reset() -> None:
    """Drop this thread's HTTP/2 client (after the transport changed, or a connection went bad)."""
    client = getattr(_local, "http2_client", None)
    _local.http2_client = None
    if client is not None:
        client.close()


def request_http2(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    connect_timeout: float | None = None,
    total_timeout: float | None = None,
) -> HttpResponse:
    """Like `request`, over HTTP/2 (httpx with h2): same timeouts, address check, size bound and logging."""
    _refuse_unusable(url)
    total_timeout = _time_left(url, total_timeout or settings.HTTP_TOTAL_TIMEOUT)
    connect_timeout = min(connect_timeout or settings.HTTP_CONNECT_TIMEOUT, total_timeout)
    started = time.monotonic()
    deadline = started + total_timeout
    timeout = httpx.Timeout(total_timeout, connect=connect_timeout)
    headers = {"User-Agent": USER_AGENT, **(headers or {})}
    try:
        with _http2_client().stream(method, url, headers=headers, content=content, timeout=timeout) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes(chunk_size=16384):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise HttpError(
                        f"response from {safe_target(url)} exceeds {MAX_RESPONSE_BYTES} bytes", may_have_arrived=True
                    )
                if time.monotonic() > deadline:
                    raise HttpError(
                        f"{safe_target(url)} did not answer within {total_timeout:g} s",
                        timeout=True,
                        may_have_arrived=True,
                    )
                chunks.append(chunk)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise HttpError(f"{safe_target(url)} was not called: the URL is not valid", permanent=True) from exc
    except UnicodeError as exc:
        # Raised before anything is sent: a host name IDNA cannot encode (when connecting), a header not in ASCII.
        raise HttpError(f"{safe_target(url)} was not called: it could not be encoded", permanent=True) from exc
    except httpx.TimeoutException as exc:
        connecting = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        raise HttpError(
            f"{safe_target(url)} did not answer within {total_timeout:g} s",
            timeout=True,
            may_have_arrived=not connecting,
        ) from exc
    except httpx.HTTPError as exc:
        if isinstance(exc, _ForbiddenConnect):
            raise HttpError(
                f"{safe_target(url)} is a private or local address, which this platform does not call"
            ) from exc
        http2_reset()
        raise HttpError(
            f"could not reach {safe_target(url)}: {type(exc).__name__}",
            may_have_arrived=not isinstance(exc, httpx.ConnectError),
        ) from exc
    elapsed = time.monotonic() - started
    logger.info("HTTP/2 %s %s -> %s in %.0f ms", method, safe_target(url), response.status_code, elapsed * 1000)
    return HttpResponse(
        status=response.status_code, headers=dict(response.headers), body=b"".join(chunks), elapsed=elapsed
    )
