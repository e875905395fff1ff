"""The client address the sign-in lockout and the password-reset limits count: the connection's without a proxy,
the one the outermost trusted proxy saw behind proxies, never what the client wrote itself."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from oncall.lib.client_ip import client_ip


def request(remote_addr: str = "10.0.0.2", forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().post("/accounts/login/", **extra)


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, None, "10.0.0.2"),
        (0, "198.51.100.7", "10.0.0.2"),  # no proxy: anyone can send the header
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "192.0.2.1, 198.51.100.7", "198.51.100.7"),  # the client's own entry is left of the proxy's
        (1, "192.0.2.1,198.51.100.7 ", "198.51.100.7"),
        (2, "192.0.2.1, 198.51.100.7, 10.0.0.9", "198.51.100.7"),  # a CDN, then a load balancer
        (2, "198.51.100.7", "198.51.100.7"),  # a proxy that did not append: the farthest address seen
        (1, None, "10.0.0.2"),  # the proxy sent no header
        (1, "not-an-address", "10.0.0.2"),
        (1, "[2001:db8::7]", "2001:db8::"),
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, proxies, forwarded_for, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(request(forwarded_for=forwarded_for)) == expected


def test_ipv6_clients_count_by_their_64_network(settings):
    """A client given a /64 could otherwise take a new address for every guess."""
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request("2001:db8:1:2:aaaa::1")) == client_ip(request("2001:db8:1:2:bbbb::2")) == "2001:db8:1:2::"
    assert client_ip(request("2001:db8:1:3::1")) == "2001:db8:1:3::"
    assert client_ip(request("::ffff:198.51.100.7")) == "198.51.100.7"


def test_a_request_without_an_address_has_none(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request("")) is None
