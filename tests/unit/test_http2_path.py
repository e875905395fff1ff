"""The HTTP/2 path APNs uses (oncall.lib.http.request_http2) keeps the promises of the HTTP/1.1 one: it reaches a
server, refuses private addresses unless allowed, and bounds time. (Over plain http the fake server answers in
HTTP/1.1; h2 itself is negotiated only over TLS.)"""

from __future__ import annotations

import pytest

from oncall.lib import http


@pytest.fixture(autouse=True)
def _fresh_client():
    http.http2_reset()
    yield
    http.http2_reset()


def test_it_reaches_a_server_and_returns_its_answer(fake_providers):
    response = http.request_http2("POST", fake_providers.url("/webpush/abc"), content=b"x")
    assert response.status == 201
    assert fake_providers.received("/webpush/abc")[0].headers["user-agent"].startswith("oncall-platform/")


def test_private_addresses_are_refused_unless_allowed(fake_providers, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(http.HttpError, match="private or local address"):
        http.request_http2("POST", fake_providers.url("/webpush/abc"), content=b"x")
    assert fake_providers.received("/webpush/") == []


def test_a_slow_server_times_out(fake_providers):
    fake_providers.delay("/webpush", 1.0)
    with pytest.raises(http.HttpError) as caught:
        http.request_http2("POST", fake_providers.url("/webpush/abc"), content=b"x", total_timeout=0.3)
    assert caught.value.timeout


def test_only_http_urls_are_requested():
    with pytest.raises(http.HttpError, match="not an http") as caught:
        http.request_http2("POST", "file:///etc/passwd")
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.push.apple.com:99999/3/device/abc", "its port is not a number from 1 to 65535"),
        ("https://api.push.apple.com:0/3/device/abc", "its port is not a number from 1 to 65535"),
        ("https://" + "a" * 64 + ".example/3/device/abc", "it could not be encoded"),  # a label past 63 characters
    ],
)
def test_a_url_no_request_can_be_made_to_fails_for_good(url, problem):
    with pytest.raises(http.HttpError, match=problem) as caught:
        http.request_http2("POST", url, content=b"x")
    assert caught.value.permanent and not caught.value.may_have_arrived
