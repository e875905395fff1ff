"""Log records that say which incident, delivery, timer or integration they are about.

Tasks bind the ids they work on with `log_context(...)`; every record logged inside carries them, as fields of the
JSON format (LOG_FORMAT=json) or appended to the text line, so one incident's or one delivery's story can be
followed across the web, worker and ticker processes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

FIELDS = ("incident_id", "delivery_id", "timer_id", "integration_id", "reminder_id")

_context: ContextVar[Mapping[str, object]] = ContextVar("oncall_log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**fields: object) -> Iterator[Callable[..., None]]:
    """Add `fields` (ids) to every record logged inside the block, on top of those bound outside it. The block gets
    a function that adds more for the rest of it, such as an id it reads (`with log_context() as bind:`)."""
    token = _context.set(_with_bound(fields))

    def bind(**more: object) -> None:
        _context.set(_with_bound(more))  # undone with the rest when the block ends

    try:
        yield bind
    finally:
        _context.reset(token)


def _with_bound(fields: Mapping[str, object]) -> Mapping[str, object]:
    return {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}


_QUERY_STRING = re.compile(r"\?[^\s\"]*")


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record, and a ready-made " key=value" suffix for text lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in FIELDS:
            if not hasattr(record, name) and name in bound:
                setattr(record, name, bound[name])
        present = [(name, getattr(record, name)) for name in FIELDS if getattr(record, name, None) is not None]
        record.context = "".join(f" {name}={value}" for name, value in present)
        return True


class QueryStringFilter(logging.Filter):
    """Drops query strings from the request lines of the embedded web server (django.server): a push URL carries
    its integration key there, and an acknowledge link its signed token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "django.server":
            record.msg = _QUERY_STRING.sub("", record.getMessage())
            record.args = ()
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per record: time, level, logger, message, process and the bound ids."""
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        ["asctime", "levelname", "name", "message", "process"],
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        # `context` is the text format's suffix; the ids themselves are already fields. `request` is the request
        # object django.request attaches to its records: written out, it is the full URL with its query string,
        # and an ingest URL carries the integration key there.
        reserved_attrs=[*RESERVED_ATTRS, "context", "taskName", "request"],
    )
