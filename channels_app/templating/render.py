"""Rendering a slot: the custom body if there is one and it works, else the default, never nothing.

Every render streams the template's output under the sandbox's deadline and stops at the slot's size, then tidies
the text (control characters go, single-line slots lose their newlines), checks that it says something and that a
JSON body parses, and cuts the text to the slot's limit with a visible marker. A custom body that fails for any
reason (syntax, runtime error, sandbox violation, budget, invalid JSON, nothing rendered) is replaced by the slot's
default, and `Rendered.error` says why, with the line.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from jinja2 import Template, TemplateSyntaxError

from channels_app.templating import limits
from channels_app.templating.context import EVENTS, alerts_within
from channels_app.templating.escaping import escape_for, to_json
from channels_app.templating.filters import timestamp, timestamp_ms
from channels_app.templating.markup import html_problem
from channels_app.templating.sandbox import MAX_SOURCE_CHARS, budget_scope, environment, tick
from channels_app.templating.slots import SLOTS, MarkupKind, Slot, slot
from oncall.lib.text import xml_safe

logger = logging.getLogger(__name__)

_TEMPLATE_FILENAME = "<template>"
_BLANK_LINES = re.compile(r"\n{3,}")
# What a JSON body's alerts may take of its limit: the rest is for the incident (its labels alone may take 50 KB).
JSON_ALERTS_SHARE = 0.5


class TemplateFailure(Exception):
    """A body that cannot be rendered; `line` is the template line it failed on, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line:
            return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}
        return self.message


@dataclass(frozen=True)
class Rendered:
    slot: str
    text: str
    origin: str  # "custom", "default", or "builtin" (the default failed too: a minimal text built in code)
    error: str = ""  # why the custom body (or the default) was not used
    truncated: bool = False


@cache
def default_source(name: str) -> str:
    return slot(name).default_source()


@lru_cache(maxsize=512)
def _compile(kind: MarkupKind, source: str) -> Template:
    return environment(kind).from_string(source)


def compile_body(kind: MarkupKind, source: str) -> Template:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateFailure(_("The template is longer than %(n)d characters.") % {"n": MAX_SOURCE_CHARS})
    try:
        return _compile(kind, source)
    except TemplateSyntaxError as exc:
        raise TemplateFailure(exc.message or str(exc), exc.lineno) from exc
    except RecursionError as exc:
        raise TemplateFailure(_("The template is nested too deeply.")) from exc


def _failure_line(exc: BaseException) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _TEMPLATE_FILENAME:
            line = frame.lineno
    return line


def _tidy(text: str, slot: Slot) -> str:
    # A control character from an alert (an ANSI colour code in a log line) makes the voice call's TwiML invalid
    # XML, and no message is better for it: none survives in any slot.
    text = xml_safe(text)
    if slot.single_line:
        return " ".join(text.split())
    if slot.markup in (MarkupKind.HTML, MarkupKind.JSON):
        return text.strip()
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def render_body(slot: Slot, source: str, context: Mapping[str, Any]) -> tuple[str, bool]:
    """`source` rendered for `slot`: the text and whether it was cut to the slot's limit.

    Raises TemplateFailure when it cannot be rendered within the budget.
    """
    template = compile_body(slot.markup, source)
    chunks: list[str] = []
    size = 0
    with budget_scope():
        stream = template.generate(context)
        try:
            for chunk in stream:
                chunks.append(chunk)
                size += len(chunk)
                if size > slot.render_cap:
                    break  # the rest could only be cut away
                tick()
        except TemplateFailure:
            raise
        except RecursionError as exc:
            raise TemplateFailure(_("The template calls itself too deeply."), _failure_line(exc)) from exc
        except Exception as exc:
            raise TemplateFailure(f"{type(exc).__name__}: {exc}", _failure_line(exc)) from exc
        finally:
            stream.close()
    text = _tidy("".join(chunks), slot)
    if not text.strip():
        # An empty message is refused for good by every service (Twilio 21602, Telegram "message text is empty",
        # WeCom 44004): the default says something instead.
        raise TemplateFailure(_("The template rendered nothing."))
    if slot.markup == MarkupKind.JSON:
        try:
            json.loads(text)
        except ValueError as exc:
            raise TemplateFailure(_("The body is not valid JSON: %(error)s") % {"error": exc}) from exc
    try:
        text, truncated = limits.truncate(text, slot, max_segments=settings.SMS_MAX_SEGMENTS, keep=_links(context))
    except ValueError as exc:
        raise TemplateFailure(str(exc)) from exc
    if slot.html_tags is not None:
        # Checked as it will be sent: a cut closes the tags it leaves open.
        problem = html_problem(text, slot.html_tags)
        if problem:
            raise TemplateFailure(problem)
    return text, truncated


def _links(context: Mapping[str, Any]) -> tuple[str, ...]:
    """The links the platform built, which a cut must keep whole, the one to act with first."""
    return tuple(link for link in (context.get("ack_url"), context.get("detail_url")) if isinstance(link, str))


def _builtin(slot: Slot, context: Mapping[str, Any]) -> str:
    """The last resort when even the default fails: the essentials, built in code."""
    incident = context.get("incident") or {}
    if slot.markup == MarkupKind.JSON:
        # The default's shape (Flashduty's incident webhook body), with only what cannot grow large.
        return to_json(
            {
                "event_id": context.get("event_id"),
                "event_time": timestamp_ms(context.get("event_time")),
                "event_type": context.get("event_type"),
                "oncall": {key: context.get(key) for key in ("event", "headline", "fire_type", "level", "round")},
                "incident": {
                    "incident_id": str(incident.get("id")),
                    "num": str(incident.get("number")),
                    "title": incident.get("title"),
                    "incident_severity": incident.get("severity"),
                    "incident_status": incident.get("status"),
                    "progress": incident.get("progress"),
                    "channel_id": incident.get("channel_id"),
                    "channel_name": incident.get("channel"),
                    "start_time": timestamp(incident.get("start_time")),
                    "alert_cnt": incident.get("alert_count"),
                    "active_alert_cnt": incident.get("active_alert_count"),
                    "detail_url": context.get("detail_url"),
                    "ack_url": context.get("ack_url"),
                },
            }
        )
    text = f"[{incident.get('severity')}] #{incident.get('number')} {incident.get('title')}"
    text = escape_for(slot.markup, " ".join(xml_safe(text).split()))
    if slot.name not in ("voice", "email_subject", "push_title"):
        text += f" {context.get('detail_url', '')}"
    return limits.truncate(text, slot, max_segments=settings.SMS_MAX_SEGMENTS, keep=_links(context))[0]


def render_slot(name: str, *, bodies: Mapping[str, str] | None, context: Mapping[str, Any]) -> Rendered:
    """Slot `name` for one message: the template set's body (`bodies`), else the default."""
    target = slot(name)
    if target.markup == MarkupKind.JSON:
        context = alerts_within(context, int(target.limit * JSON_ALERTS_SHARE))
    custom = (bodies or {}).get(name) or ""
    error = ""
    if custom.strip():
        try:
            text, truncated = render_body(target, custom, context)
            return Rendered(name, text, "custom", truncated=truncated)
        except TemplateFailure as exc:
            error = str(exc)
    try:
        text, truncated = render_body(target, default_source(name), context)
        return Rendered(name, text, "default", error, truncated)
    except TemplateFailure as exc:
        logger.error("The default template of slot %s failed: %s", name, exc)
        return Rendered(name, _builtin(target, context), "builtin", error or str(exc))


def render_slots(names: Iterable[str], *, bodies: Mapping[str, str] | None, context: Mapping[str, Any]):
    return {name: render_slot(name, bodies=bodies, context=context) for name in names}


def check_body(name: str, source: str, contexts: Iterable[Mapping[str, Any]]) -> str:
    """Why `source` cannot serve as slot `name` (rendered against each context), or "" when it can."""
    target = slot(name)
    for context in contexts:
        try:
            render_body(target, source, context)
        except TemplateFailure as exc:
            event = context.get("event")
            return _("%(error)s (announcing %(event)s)") % {"error": exc, "event": event} if event else str(exc)
    return ""


__all__ = ["EVENTS", "SLOTS", "Rendered", "TemplateFailure", "check_body", "render_body", "render_slot", "render_slots"]
