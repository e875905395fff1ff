"""The address a request comes from, as the sign-in lockout and the password-reset limits count it.

Without a proxy it is the connection's address (REMOTE_ADDR); X-Forwarded-For is then ignored, since any client can
write it. Behind TRUSTED_PROXY_COUNT proxies (1 by default with BEHIND_TLS_PROXY), each of which appends the address
it received the request from to X-Forwarded-For, the client is that many entries from the right: what the
outermost proxy saw. Entries to its left were written by the client and are never used.

IPv6 clients are counted by their /64 network: one subscriber line or host is usually given a whole /64, so counting
single addresses would let a client change address for every guess.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address (an IPv6 one as its /64 network address), or None when the request has none."""
    address = _forwarded_for(request) or _parse(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)


def _forwarded_for(request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    proxies = settings.TRUSTED_PROXY_COUNT
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not proxies or not header:
        return None
    entries = [entry.strip() for entry in header.split(",")]
    # Fewer entries than proxies: a proxy that does not append; the farthest address any of them saw is the best
    # there is.
    return _parse(entries[-proxies] if len(entries) >= proxies else entries[0])


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
