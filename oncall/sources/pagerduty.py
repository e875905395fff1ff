"""PagerDuty's Events API, v2 and v1, so a monitor set up for PagerDuty works by changing only the host.

Served at `POST /event/push/alert/pagerduty` and PagerDuty's own `POST /v2/enqueue` (oncall/api/pagerduty.py),
which answer in PagerDuty's response shapes; that is why this adapter is not in `PARSERS`. Besides `parse`, it
tells the endpoint which API version a body speaks (`version`) and which integration key it carries
(`routing_key`: v2 `routing_key` or v1 `service_key`).

Version: a body with a non-empty `event_action` is v2; without one, a body with `event_type` or `service_key` is
v1 (Alertmanager's v1 messages carry `"event_action": ""` and `"payload": null`); anything else is treated as v2
(and refused for lacking `event_action`).

v2 (PagerDuty/api-schema `reference/events-v2/openapiv3.json`; developer-docs `events-API-v2`), validated as
PagerDuty validates it, every problem reported at once (`InvalidEvent.errors`):
- `event_action` trigger | acknowledge | resolve (case-sensitive); `dedup_key` a string of at most 255
  characters, required to acknowledge or resolve, generated (a UUID4 hex) on a trigger without one.
- A trigger needs `payload` with `summary` (at most 1024 characters), `source` and `severity`
  (critical | error | warning | info); `component`, `group`, `class` must be strings when present.
- Mapping: trigger → severity critical, error → Critical, warning → Warning, info → Info; resolve → Ok (a
  recovery); acknowledge → an acknowledgement of the open alert. alert_key = dedup_key. title = summary cut to 512
  characters; the description holds the whole summary when it was cut, then the `links` as "text: href" lines.
  labels = source, component, group, class, client, client_url, then `custom_details` flattened (nested keys joined
  with ".", values that are not strings JSON-encoded, nesting deeper than 8 levels JSON-encoded whole), through
  `sanitize_labels`. images = `images[{src, href, alt}]`, leaving out any whose src is not an http(s) URL of at most
  256 characters (an unusable href or over-long alt is dropped or cut, not the image). event_time =
  `payload.timestamp` when it parses, else none (v1 events, acknowledges and resolves never carry one). Context
  (payload, images, links, client) is read on triggers only, as PagerDuty does.

v1 (`reference/events-v1/openapiv3.json`, "generic events API"): `service_key`, `event_type` trigger |
acknowledge | resolve, `incident_key` (as dedup_key above), `description` (required to trigger, at most 1024
characters: the title), `details` (flattened into labels like custom_details), `client`, `client_url`,
`contexts[{type: link|image, href, src, alt, text}]` (images and description lines). v1 has no severity: a trigger
is Critical, because a v1 event is what paged someone in PagerDuty.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime

from oncall.models.incidents import EventStatus
from oncall.sources.base import (
    DESCRIPTION_MAX,
    IMAGE_ALT_MAX,
    IMAGE_HREF_MAX,
    IMAGE_SRC_MAX,
    IMAGES_MAX,
    TITLE_MAX,
    Image,
    NormalizedEvent,
    SourceError,
    parse_time,
    sanitize_labels,
    truncate,
    usable_url,
)

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = {
    "critical": EventStatus.CRITICAL,
    "error": EventStatus.CRITICAL,
    "warning": EventStatus.WARNING,
    "info": EventStatus.INFO,
}
V1_TRIGGER_STATUS = EventStatus.CRITICAL
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
DETAILS_DEPTH = 8
CONTEXT_FIELDS = ("source", "component", "group", "class")

Problems = list[tuple[str, str]]


class InvalidEvent(SourceError):
    """The event breaks PagerDuty's rules; `problems` lists every (field, message), the first is `field`."""

    def __init__(self, problems: Problems) -> None:
        super().__init__(*problems[0])
        self.problems = tuple(problems)

    @property
    def errors(self) -> list[str]:
        """The problems as PagerDuty words its `errors`: each names the field it is about."""
        return [f"'{field}' {message}" for field, message in self.problems]


def version(payload: object) -> int:
    """1 for a v1 (generic events API) body, 2 for everything else."""
    is_v1 = (
        isinstance(payload, Mapping)
        and not payload.get("event_action")
        and (payload.get("event_type") is not None or payload.get("service_key") is not None)
    )
    return 1 if is_v1 else 2


def key_field(payload: object) -> str:
    """The field of the body that carries the integration key in this body's version."""
    return "service_key" if version(payload) == 1 else "routing_key"


def routing_key(payload: object) -> str:
    """The integration key the body carries (v2 `routing_key`, v1 `service_key`); "" when it carries none."""
    if not isinstance(payload, Mapping):
        return ""
    field = key_field(payload)
    value = payload.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvent([(field, f"must be a string, not {type(value).__name__}")])
    return value.strip()


def parse(payload: object, *, now: datetime) -> list[NormalizedEvent]:
    if not isinstance(payload, Mapping):
        raise InvalidEvent([("body", "must be a JSON object")])
    routing_key(payload)  # refuses a key of the wrong type
    return [_parse_v1(payload) if version(payload) == 1 else _parse_v2(payload)]


def _parse_v2(body: Mapping) -> NormalizedEvent:
    problems: Problems = []
    action = _choice(body, "event_action", ACTIONS, problems)
    known = len(problems)
    dedup_key = _string(body, "dedup_key", problems, limit=DEDUP_KEY_MAX)
    if action in ("acknowledge", "resolve") and not dedup_key and len(problems) == known:
        problems.append(("dedup_key", f"is required to {action}"))

    context = body.get("payload")
    summary = ""
    status = EventStatus.WARNING
    if action == "trigger":
        if context is None:
            problems.append(("payload", "is required to trigger"))
        elif not isinstance(context, Mapping):
            problems.append(("payload", f"must be an object, not {type(context).__name__}"))
        else:
            summary = _string(context, "summary", problems, path="payload.summary", required=True, limit=SUMMARY_MAX)
            _string(context, "source", problems, path="payload.source", required=True)
            severity = _choice(context, "severity", tuple(SEVERITIES), problems, path="payload.severity")
            status = SEVERITIES.get(severity, status)
            for name in CONTEXT_FIELDS[1:]:
                _string(context, name, problems, path=f"payload.{name}")
    if problems:
        raise InvalidEvent(problems)

    if action != "trigger":
        return _follow_up(action, dedup_key, body.get("payload"))
    first = {name: context.get(name) for name in CONTEXT_FIELDS}
    first.update(_client(body))
    links = [(item.get("text"), item.get("href")) for item in _objects(body.get("links"))]
    images = [(item.get("src"), item.get("href"), item.get("alt")) for item in _objects(body.get("images"))]
    return _trigger(
        key=dedup_key,
        summary=summary,
        status=status,
        labels=sanitize_labels(_flatten(context.get("custom_details"), "custom_details"), first=first),
        links=links,
        images=images,
        event_time=parse_time(context.get("timestamp")),
    )


def _parse_v1(body: Mapping) -> NormalizedEvent:
    problems: Problems = []
    action = _choice(body, "event_type", ACTIONS, problems)
    known = len(problems)
    incident_key = _string(body, "incident_key", problems, limit=DEDUP_KEY_MAX)
    if action in ("acknowledge", "resolve") and not incident_key and len(problems) == known:
        problems.append(("incident_key", f"is required to {action}"))
    description = _string(body, "description", problems, required=action == "trigger", limit=SUMMARY_MAX)
    if problems:
        raise InvalidEvent(problems)

    if action != "trigger":
        return _follow_up(action, incident_key, {"summary": description})
    contexts = _objects(body.get("contexts"))
    links = [item for item in contexts if item.get("type") == "link"]
    images = [item for item in contexts if item.get("type") == "image"]
    return _trigger(
        key=incident_key,
        summary=description,
        status=V1_TRIGGER_STATUS,
        labels=sanitize_labels(_flatten(body.get("details"), "details"), first=_client(body)),
        links=[(item.get("text"), item.get("href")) for item in links],
        images=[(item.get("src"), item.get("href"), item.get("alt")) for item in images],
    )


def _trigger(
    *,
    key: str,
    summary: str,
    status: str,
    labels: dict[str, str],
    links: list[tuple[object, object]],
    images: list[tuple[object, object, object]],
    event_time: datetime | None = None,
) -> NormalizedEvent:
    summary = summary.strip()
    title = truncate(summary, TITLE_MAX)
    lines = [summary] if title != summary else []
    for text, href in links:
        if usable_url(href, limit=2048):
            lines.append(f"{text.strip()}: {href}" if isinstance(text, str) and text.strip() else href)
    return NormalizedEvent(
        status=status,
        alert_key=key or uuid.uuid4().hex,
        alert_key_generated=not key,
        title=title,
        title_rule=title,
        description=truncate("\n".join(lines), DESCRIPTION_MAX),
        labels=labels,
        images=_images(images),
        event_time=event_time,
    )


def _follow_up(action: str, key: str, context: object) -> NormalizedEvent:
    """An acknowledge or resolve: only the key matters; PagerDuty ignores the rest of such events."""
    summary = context.get("summary") if isinstance(context, Mapping) else None
    title = truncate(summary.strip() if isinstance(summary, str) and summary.strip() else key, TITLE_MAX)
    return NormalizedEvent(
        status=EventStatus.OK if action == "resolve" else EventStatus.WARNING,
        alert_key=key,
        title=title,
        title_rule=title,
        acknowledge=action == "acknowledge",
    )


def _string(
    body: Mapping, key: str, problems: Problems, *, path: str | None = None, required: bool = False, limit: int = 0
) -> str:
    """The string at `key` ("" when absent or blank), or "" with a problem recorded."""
    path = path or key
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append((path, "is missing or blank"))
        return ""
    if not isinstance(value, str):
        problems.append((path, f"must be a string, not {type(value).__name__}"))
        return ""
    if limit and len(value) > limit:
        problems.append((path, f"is longer than {limit} characters"))
        return ""
    return value


def _choice(body: Mapping, key: str, choices: tuple[str, ...], problems: Problems, *, path: str | None = None) -> str:
    path = path or key
    value = body.get(key)
    if value is None or value == "":
        problems.append((path, "is missing or blank"))
        return ""
    if value not in choices:
        problems.append((path, f"is invalid (must be one of {', '.join(choices)}), not {value!r}"))
        return ""
    return value


def _client(body: Mapping) -> dict[str, object]:
    return {name: body.get(name) for name in ("client", "client_url")}


def _objects(value: object) -> list[Mapping]:
    """The objects of a list-valued context field; anything else in it is left out, not refused."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _flatten(details: object, field: str) -> dict[str, object]:
    """custom_details / details as label pairs: nested keys joined with ".", other values left to sanitize_labels.

    A value that is not an object (PagerDuty also takes a plain string) becomes one label named after `field`.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        return {field: details}
    pairs: dict[str, object] = {}

    def walk(mapping: Mapping, prefix: str, depth: int) -> None:
        for key, value in mapping.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if not isinstance(value, Mapping):
                pairs[name] = value
            elif depth + 1 >= DETAILS_DEPTH:  # bounded, so a hostile nesting cannot exhaust the stack
                pairs[name] = json.dumps(value, ensure_ascii=False)
            else:
                walk(value, name, depth + 1)

    walk(details, "", 0)
    return pairs


def _images(candidates: list[tuple[object, object, object]]) -> tuple[Image, ...]:
    images: list[Image] = []
    seen_alts: set[str] = set()
    for src, href, alt in candidates:
        if len(images) >= IMAGES_MAX:
            break
        if not usable_url(src, IMAGE_SRC_MAX):
            continue
        alt = truncate(alt.strip(), IMAGE_ALT_MAX) if isinstance(alt, str) else ""
        if alt and alt in seen_alts:
            continue
        seen_alts.add(alt)
        images.append(Image(src=src, alt=alt, href=href if usable_url(href, IMAGE_HREF_MAX) else ""))
    return tuple(images)
