"""oncall.lib.http against a local server: timeouts, no redirects, bounded bodies, secrets kept out of logs."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oncall.lib import clock, http


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        if self.path.startswith("/reset"):
            self.connection.close()  # the request arrived; the server hangs up without an answer
            return
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            return
        if self.path.startswith("/huge"):
            payload = b"x" * (http.MAX_RESPONSE_BYTES + 10)
        else:
            payload = b'{"echo": ' + (body or b"null") + b"}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the timeout test hangs up on the slow handler on purpose


@pytest.fixture(scope="module")
def server():
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_json_request_gets_its_response(server, settings):
    response = http.request("POST", f"{server}/hook", json={"a": 1})
    assert response.status == 200
    assert response.json() == {"echo": {"a": 1}}


def test_a_slow_server_hits_the_total_timeout(server):
    started = time.monotonic()
    with pytest.raises(http.HttpError) as caught:
        http.request("POST", f"{server}/slow", json={}, total_timeout=0.5)
    assert caught.value.timeout
    assert caught.value.may_have_arrived, "the server had the request when the answer timed out"
    assert time.monotonic() - started < 1.4


def test_within_an_attempts_deadline_a_request_waits_no_longer_than_it(server):
    started = time.monotonic()
    with http.attempt_deadline(clock.now() + timedelta(seconds=0.5)), pytest.raises(http.HttpError) as caught:
        http.request("POST", f"{server}/slow", json={})  # allowed HTTP_TOTAL_TIMEOUT on its own
    assert caught.value.timeout
    assert time.monotonic() - started < 1.4


def test_after_an_attempts_deadline_no_request_is_made(server, monkeypatch):
    made = []
    real_session = http._session
    monkeypatch.setattr(http, "_session", lambda: made.append(1) or real_session())
    with http.attempt_deadline(clock.now() - timedelta(seconds=1)), pytest.raises(http.HttpError) as caught:
        http.request("POST", f"{server}/hook", json={})
    assert made == []
    assert not caught.value.timeout, "nothing was sent, so nothing may have arrived"
    assert not caught.value.may_have_arrived
    assert "was not called: the attempt had run out of time" in str(caught.value)
    assert http.request("POST", f"{server}/hook", json={}).status == 200, "the deadline ends with its block"


def test_redirects_are_not_followed(server):
    response = http.request("POST", f"{server}/redirect", json={})
    assert response.status == 302


def test_oversized_responses_are_refused(server):
    with pytest.raises(http.HttpError, match="exceeds") as caught:
        http.request("POST", f"{server}/huge", json={})
    assert caught.value.may_have_arrived


def test_unreachable_and_non_http_urls_raise(server):
    with pytest.raises(http.HttpError, match="could not reach") as refused:
        http.request("POST", "http://127.0.0.1:1/x", json={}, connect_timeout=0.5)
    assert not refused.value.may_have_arrived, "a refused connection carried nothing"
    with pytest.raises(http.HttpError, match="not an http") as bad:
        http.request("POST", "file:///etc/passwd")
    assert not bad.value.may_have_arrived
    assert bad.value.permanent and not refused.value.permanent, "only a URL no request can be made to is for good"


UNUSABLE_URLS = [
    ("https://hooks.slack.com:99999/services/T0/B0/SECRET", "its port is not a number from 1 to 65535"),
    ("https://hooks.slack.com:0/services/T0/B0/SECRET", "its port is not a number from 1 to 65535"),
    ("https://hooks.slack.com:https/services/T0/B0/SECRET", "its port is not a number from 1 to 65535"),
    ("https://[::1/services/T0/B0/SECRET", "the URL cannot be parsed"),
    ("https:///services/T0/B0/SECRET", "not an http(s) URL"),
]


@pytest.mark.parametrize(("url", "problem"), UNUSABLE_URLS)
def test_a_url_no_request_can_be_made_to_fails_for_good_without_calling_anyone(monkeypatch, url, problem):
    """A port the URL validators let through (0, past 65535) used to escape as a ValueError from deep in the
    request (a delivery then stayed "sending"); now it is a permanent error, and nothing is sent."""
    made = []
    monkeypatch.setattr(http, "_session", lambda: made.append(1))
    assert http.url_problem(url) == problem
    with pytest.raises(http.HttpError) as caught:
        http.request("POST", url, json={})
    assert problem in str(caught.value) and "SECRET" not in str(caught.value)
    assert caught.value.permanent and not caught.value.may_have_arrived and not caught.value.timeout
    assert made == []


@pytest.mark.parametrize("url", ["https://hooks.slack.com/x", "http://hooks.slack.com:1/x", "https://h.io:65535/x"])
def test_a_url_with_a_port_from_1_to_65535_or_none_can_be_requested(url):
    assert http.url_problem(url) is None


def test_a_host_name_requests_cannot_encode_fails_for_good(server):
    with pytest.raises(http.HttpError, match="the URL is not valid") as caught:
        http.request("POST", "http://" + "a" * 64 + ".example/x", json={})  # a label past 63 characters
    assert caught.value.permanent and not caught.value.may_have_arrived


def test_a_server_that_hangs_up_after_the_request_may_have_it(server):
    """No answer after the request was sent: the server may have acted on it (a chat may show the message)."""
    with pytest.raises(http.HttpError, match="could not reach") as caught:
        http.request("POST", f"{server}/reset", json={})
    assert caught.value.may_have_arrived


def test_only_scheme_and_host_are_logged(server, caplog):
    with caplog.at_level(logging.INFO, logger="oncall.lib.http"):
        http.request("POST", f"{server}/bot123456:SECRET-TOKEN/sendMessage?access_token=abc", json={})
    logged = caplog.text
    assert "127.0.0.1" in logged
    assert "SECRET-TOKEN" not in logged and "access_token" not in logged


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address, allowed):
    assert http.address_allowed(address) is allowed


def test_private_addresses_are_refused_unless_allowed(server, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(http.HttpError, match="private or local address") as caught:
        http.request("POST", f"{server}/hook", json={})
    assert not caught.value.may_have_arrived
    host_url = server.replace("127.0.0.1", "localhost")  # a name that resolves to loopback is refused too
    with pytest.raises(http.HttpError, match="private or local address"):
        http.request("POST", f"{host_url}/hook", json={})
    settings.OUTBOUND_ALLOW_PRIVATE = True
    assert http.request("POST", f"{server}/hook", json={}).status == 200


class KeepAliveHandler(Handler):
    protocol_version = "HTTP/1.1"  # keeps the connection open between requests, as providers do


def test_a_connection_kept_alive_while_private_addresses_were_allowed_is_not_reused_after(settings):
    httpd = QuietServer(("127.0.0.1", 0), KeepAliveHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        settings.OUTBOUND_ALLOW_PRIVATE = True
        assert http.request("POST", url, json={}).status == 200
        settings.OUTBOUND_ALLOW_PRIVATE = False
        with pytest.raises(http.HttpError, match="private or local address"):
            http.request("POST", url, json={})
    finally:
        httpd.shutdown()


@pytest.mark.parametrize(
    ("url", "forbidden"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1"),
        ("http://[::1]/hook", "::1"),
        ("https://169.254.169.254/latest/", "169.254.169.254"),
        ("http://LOCALHOST./x", "localhost"),
        ("http://app.localhost/x", "app.localhost"),
        ("https://hooks.slack.com/services/T0/B0/x", None),  # names are checked when connecting
        ("https://8.8.8.8/x", None),
    ],
)
def test_forms_can_tell_a_url_at_a_private_address(settings, url, forbidden):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    assert http.forbidden_host(url) == forbidden
    settings.OUTBOUND_ALLOW_PRIVATE = True
    assert http.forbidden_host(url) is None
