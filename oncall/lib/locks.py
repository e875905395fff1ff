"""Named locks held until the end of the current transaction."""

from __future__ import annotations

import hashlib

from django.db import connection


def transaction_lock(name: str, *, shared: bool = False) -> None:
    """Serialise transactions that use the same `name` until each commits or rolls back. `shared` holders do not
    wait for each other, only for an exclusive holder, which waits for all of them.

    PostgreSQL: a transaction-level advisory lock. SQLite needs none: a write transaction there already holds
    the only write lock (the connection is opened in IMMEDIATE mode).
    """
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [_lock_number(name)])


def _lock_number(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)
