"""What the bot providers share: a request as plain data, sending it through oncall.lib.http, reading the answer,
and the small text helpers every chat message needs (its title, its colour, fitting mentions within a limit)."""

from __future__ import annotations

import dataclasses
import json as jsonlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from channels_app.base import SendResult
from channels_app.templating import limits
from channels_app.templating.escaping import escape_for
from channels_app.templating.slots import MarkupKind, Unit
from channels_app.templating.slots import slot as template_slot
from oncall.lib import http

RESPONSE_SHOWN = 1000  # characters of a provider's answer kept on the delivery and shown by "Send test message"


@dataclass(frozen=True)
class Request:
    """One HTTP request to a bot, as plain data: what tests compare with golden files."""

    url: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None  # sent as is instead of `json` (a body that is signed byte for byte)

    def payload(self) -> Any:
        """The JSON document this request carries."""
        return jsonlib.loads(self.body) if self.body is not None else self.json


def with_query(url: str, query: str) -> str:
    """`url` with `query` (already encoded) appended, so nothing is encoded twice."""
    return f"{url}{'&' if '?' in url else '?'}{query}"


def send(request: Request) -> http.HttpResponse | SendResult:
    """POST the request; an answer, or a retryable result when there was none (timeout, refused connection)."""
    headers = {"Content-Type": "application/json; charset=utf-8", **request.headers}
    body = request.body
    if body is None:
        body = jsonlib.dumps(request.json, ensure_ascii=False).encode("utf-8")
    try:
        return http.request("POST", request.url, headers=headers, data=body)
    except http.HttpError as exc:
        # Whether the chat may have the message all the same (no answer after it was sent) decides whether a later
        # attempt that is no longer needed may still post it (channels_app/bots/sending.py).
        none = {"http_status": None, "response": "", "may_have_arrived": exc.may_have_arrived}
        if exc.permanent:  # a URL no request can be made to: only the admin fixing it helps
            return SendResult.permanent(str(exc), detail=none)
        return SendResult.retryable(str(exc), detail=none)


def detail(response: http.HttpResponse) -> dict[str, Any]:
    return {"http_status": response.status, "response": response.text[:RESPONSE_SHOWN]}


def retry_after(headers: Mapping[str, str], default: float | None = None) -> float | None:
    value = {key.lower(): v for key, v in headers.items()}.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return default


def classify_status(response: http.HttpResponse, name: str, *, rate_wait: float = 30.0) -> SendResult:
    """For the kinds whose HTTP status is the answer (Slack, Zoom, Teams, webhooks): 2xx sent; 429 too fast;
    408 and 5xx retried; any other 4xx is a configuration error (a revoked URL, a bad token)."""
    info = detail(response)
    status = response.status
    text = response.text.strip()[:300]
    error = f"{name} answered HTTP {status}" + (f": {text}" if text else "")
    if 200 <= status < 300:
        return SendResult.sent(detail=info)
    if status == 429:
        return SendResult.retryable(
            error, retry_after=retry_after(response.headers, rate_wait), rate_limited=True, detail=info
        )
    if status == 408 or status >= 500:
        return SendResult.retryable(error, retry_after=retry_after(response.headers), detail=info)
    return SendResult.permanent(error, detail=info)


def title_of(context: Mapping[str, Any], limit: int = 200, markup: MarkupKind = MarkupKind.TEXT) -> str:
    """A message's one-line title: `[Critical] #42 Disk full`, and the event when it is not a trigger; its values
    escaped for `markup` (for a card that renders the title as markup), at most `limit` characters in all."""
    incident = context.get("incident") or {}
    event = context.get("event")
    severity, number = (escape_for(markup, incident.get(key)) for key in ("severity", "number"))
    # As a default template writes it: the brackets and "#" are the platform's, only the values are escaped.
    head = f"[{severity}] #{number} "
    if event not in ("triggered", None):
        head = f"[{escape_for(markup, context.get('event_label', event))}] {head}"
    return (head + one_line(str(incident.get("title", "")), max(limit - len(head), 1), markup)).strip()


def one_line(text: str, limit: int, markup: MarkupKind = MarkupKind.TEXT) -> str:
    """`text` on one line, escaped for `markup`, cut to at most `limit` characters with "…". The cut is made
    before escaping, so it never splits an escape (half of `\\*` or `&lt;` would be markup again)."""
    text = " ".join(text.split())
    escaped = escape_for(markup, text)
    if len(escaped) <= limit:
        return escaped
    low, high = 0, len(text)
    while low < high:  # the longest start of the text that fits once escaped, with the marker
        middle = (low + high + 1) // 2
        if len(escape_for(markup, text[:middle].rstrip())) + 1 <= limit:
            low = middle
        else:
            high = middle - 1
    return escape_for(markup, text[:low].rstrip()) + "…"


def color_name(context: Mapping[str, Any]) -> str:
    """A colour word for the incident's state: red, orange, yellow (by severity) or green once closed."""
    incident = context.get("incident") or {}
    if incident.get("progress") == "Closed":
        return "green"
    return {"Critical": "red", "Warning": "orange", "Info": "yellow"}.get(incident.get("severity"), "grey")


# At most this share of a message's limit goes to its @mentions: a level that pages a big team must not crowd the
# incident out of the message (or push the message over the limit).
MENTIONS_SHARE = 0.4


def more_marker(count: int) -> str:
    """What stands for the mentions left out."""
    return _("… and %(n)d more") % {"n": count}


def mention_list(items: Sequence[str], *, room: int, unit: Unit, separator: str = " ") -> str:
    """`items` joined by `separator`, as many as fit in `room` (counted in `unit`), then "… and N more" for the
    others; "" when not even that fits."""
    items = list(items)
    joined = separator.join(items)
    if limits.size_of(joined, unit) <= room:
        return joined
    gap = limits.size_of(separator, unit)
    kept: list[str] = []
    used = 0
    for index, item in enumerate(items):
        cost = limits.size_of(item, unit) + (gap if kept else 0)
        after = limits.size_of(more_marker(len(items) - index - 1), unit) + gap
        if used + cost + after > room:
            break
        kept.append(item)
        used += cost
    listed = separator.join([*kept, more_marker(len(items) - len(kept))])
    return listed if limits.size_of(listed, unit) <= room else ""


def mention_suffix(
    items: Sequence[str], *, slot: str, limit: int | None = None, lead: str = "", separator: str = " "
) -> str:
    """What a message's @mentions add after its text: `lead`, then `items` within MENTIONS_SHARE of `limit`
    (default: the slot's limit), the ones that do not fit counted as "… and N more"; "" without mentions."""
    if not items:
        return ""
    base = template_slot(slot)
    room = int((limit or base.limit) * MENTIONS_SHARE) - limits.size_of(lead, base.unit)
    listed = mention_list(items, room=room, unit=base.unit, separator=separator)
    return lead + listed if listed else ""


def fit(text: str, suffix: str, *, slot: str, limit: int | None = None) -> str:
    """`text` + `suffix`, the text cut (with the slot's marker) so that both fit in `limit` (default: the slot's
    limit), counted in the slot's unit. Mentions are added after rendering; they must not push a message over
    what the service takes, nor leave no room for the incident.

    A suffix over MENTIONS_SHARE of the limit (one not built by `mention_suffix`) is cut between its
    space-separated mentions."""
    base = template_slot(slot)
    limit = limit or base.limit
    if limits.size_of(suffix, base.unit) > limit * MENTIONS_SHARE:
        lead = suffix[: len(suffix) - len(suffix.lstrip())]
        suffix = mention_suffix(suffix.split(), slot=slot, limit=limit, lead=lead)
    room = limit - limits.size_of(suffix, base.unit)
    cut, _cut = limits.truncate(text, dataclasses.replace(base, limit=room), max_segments=settings.SMS_MAX_SEGMENTS)
    return cut + suffix


@dataclass(frozen=True)
class BodyCodes:
    """How a kind whose answer is a code in the body (DingTalk, WeCom, Feishu) sorts its codes: too fast (wait
    `rate_wait` and try again without spending an attempt), transient (retry), anything else a configuration
    error, with a hint for the admin where one is known."""

    name: str
    rate_limited: Collection[int]
    rate_wait: float
    transient: Collection[int] = ()
    hints: Mapping[int, str] = field(default_factory=dict)
    server_errors_transient: bool = False  # a code that comes with HTTP 5xx is retried whatever it is

    def unreadable(self, response: http.HttpResponse) -> SendResult:
        """An answer without the code: judged by its HTTP status."""
        info = detail(response)
        if response.status == 429:
            return SendResult.retryable(
                f"{self.name}: HTTP 429", retry_after=self.rate_wait, rate_limited=True, detail=info
            )
        if 400 <= response.status < 500:
            return SendResult.permanent(f"{self.name}: HTTP {response.status}", detail=info)
        return SendResult.retryable(f"{self.name}: unexpected answer (HTTP {response.status})", detail=info)

    def failed(self, response: http.HttpResponse, code: object, message: str) -> SendResult:
        """A non-zero code."""
        info = detail(response)
        error = f"{self.name} error {code}: {message}"
        if code in self.rate_limited:
            return SendResult.retryable(error, retry_after=self.rate_wait, rate_limited=True, detail=info)
        if code in self.transient or (self.server_errors_transient and response.status >= 500):
            return SendResult.retryable(error, detail=info)
        hint = self.hints.get(code)
        return SendResult.permanent(f"{error} ({hint})" if hint else error, detail=info)
