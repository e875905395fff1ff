"""Secrets the platform hands out (integration keys, tokens): generated with a CSPRNG, stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets


def new_key(nbytes: int = 16) -> str:
    """A fresh random key: 32 hex characters, the shape monitors expect of a PagerDuty routing key."""
    return secrets.token_hex(nbytes)


def key_hash(key: str) -> str:
    """What is stored and looked up. Keys are long and random, so a plain SHA-256 is enough (no salt, no KDF)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def mask(hint: str) -> str:
    """How a stored secret is shown back: only its last characters."""
    return f"••••••••{hint}" if hint else ""
