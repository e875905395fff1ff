"""What every inbound adapter produces: normalized events, or a SourceError naming the bad field."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from oncall.models.incidents import EventStatus

TITLE_MAX = 512
DESCRIPTION_MAX = 2048
ALERT_KEY_MAX = 255
LABELS_MAX = 50
LABEL_KEY_MAX = 128
LABEL_VALUE_MAX = 2048
IMAGES_MAX = 20
IMAGE_SRC_MAX = 256
IMAGE_ALT_MAX = 128
IMAGE_HREF_MAX = 256

# Prometheus label names, plus "." "-" and "/" so keys such as app.kubernetes.io/name pass.
LABEL_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_VARIABLE_RE = re.compile(r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_.\-/]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
# The Go-template actions a `[TPL]` rule may use, read with a regex so a title rule can never run code:
# {{.Labels.x}}, {{index .Labels "a.b"}} (or a `raw` string) and {{.Field}}, with optional spaces and the
# "{{- " / " -}}" markers that trim the whitespace of the text beside them. Every match starts at "{{" or "$":
# a pattern that looked back over whitespace would take quadratic time on a long run of spaces.
_GO_ACTION = (
    r"\{\{(?P<ltrim>-\s)?\s*"
    r"(?:\.Labels\.(?P<label>[A-Za-z_][A-Za-z0-9_]*)"
    r"|index\s+\.Labels\s+(?:\"(?P<quoted>[^\"\\]*)\"|`(?P<raw>[^`]*)`)"
    r"|\.(?P<field>[A-Za-z_][A-Za-z0-9_]*))"
    r"\s*(?P<rtrim>\s-)?\}\}"
)
_TEMPLATE_RE = re.compile(rf"{_GO_ACTION}|{_VARIABLE_RE.pattern}")
TEMPLATE_PREFIX = "[TPL]"


class SourceError(Exception):
    """The payload is not acceptable; `field` names what is wrong (dotted path), `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class IntegrationInfo:
    """The integration a push arrived at, as a `[TPL]` title reads it: {{.IntegrationName}}, {{.IntegrationType}}."""

    name: str
    kind: str  # Integration.Kind: standard, prometheus, grafana, pagerduty


@dataclass(frozen=True)
class Image:
    src: str
    alt: str = ""
    href: str = ""


class EventAction:
    TRIGGER = "trigger"  # open or update the alert
    RECOVER = "recover"  # the alert recovered (status Ok)
    ACKNOWLEDGE = "acknowledge"  # the monitor acknowledged it (PagerDuty's event_action=acknowledge)


@dataclass(frozen=True)
class NormalizedEvent:
    """One event in the platform's own terms, whatever format it arrived in."""

    status: str  # EventStatus: Critical, Warning, Info or Ok
    alert_key: str
    title: str
    title_rule: str = ""
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    images: tuple[Image, ...] = ()
    event_time: datetime | None = None  # when the monitor says it happened, if it says
    alert_key_generated: bool = False
    acknowledge: bool = False  # an acknowledgement of the open alert, not a state of it
    # Where routing sent a trigger (channel ids), decided when the push was accepted; empty for recoveries and
    # acknowledgements, which find their open alerts by key in whatever channel.
    channel_ids: tuple[int, ...] = ()

    @property
    def action(self) -> str:
        if self.acknowledge:
            return EventAction.ACKNOWLEDGE
        return EventAction.RECOVER if self.status == EventStatus.OK else EventAction.TRIGGER

    @property
    def is_recovery(self) -> bool:
        return self.action == EventAction.RECOVER

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "alert_key": self.alert_key,
            "title": self.title,
            "title_rule": self.title_rule,
            "description": self.description,
            "labels": dict(self.labels),
            "images": [{"src": i.src, "alt": i.alt, "href": i.href} for i in self.images],
            "event_time": self.event_time.isoformat() if self.event_time else None,
            "alert_key_generated": self.alert_key_generated,
            "acknowledge": self.acknowledge,
            "channel_ids": list(self.channel_ids),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> NormalizedEvent:
        return cls(
            status=data["status"],
            alert_key=data["alert_key"],
            title=data["title"],
            title_rule=data.get("title_rule", ""),
            description=data.get("description", ""),
            labels=data.get("labels", {}),
            images=tuple(Image(**image) for image in data.get("images", ())),
            event_time=datetime.fromisoformat(data["event_time"]) if data.get("event_time") else None,
            alert_key_generated=data.get("alert_key_generated", False),
            acknowledge=data.get("acknowledge", False),
            channel_ids=tuple(data.get("channel_ids", ())),
        )


def truncate(text: str, limit: int) -> str:
    """Cut text to `limit` characters, marking the cut, as the documented limits of titles promise."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def generated_alert_key(title_rule: str, labels: Mapping[str, str]) -> str:
    """A stable key for events that bring none: equal title rule and labels mean the same alert."""
    material = json.dumps([title_rule, sorted(labels.items())], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def render_title(title_rule: str, labels: Mapping[str, str], fields: Mapping[str, str] | None = None) -> str:
    """Fill the references of a title rule with the event's labels (and, in a template, its fields).

    Without the `[TPL]` prefix only `${label}` / `$label` references to labels that exist are replaced, so a plain
    title such as "Cost over $5" stays as written. A rule starting with `[TPL]` is a template (reference/product.md
    §8): every `${label}` / `$label` is replaced and a missing label reads `<no value>`; Go-template actions
    `{{.Labels.x}}`, `{{index .Labels "a.b"}}` and `{{.Field}}` read the label or the event's field from `fields`
    (Flashduty's AlertEvent names: EventStatus, EventSeverity, AlertKey…), and anything missing reads "". Other
    actions (pipes, `if`, functions) are left as written.
    """
    if not title_rule.startswith(TEMPLATE_PREFIX):

        def keep_unknown(match: re.Match[str]) -> str:
            return labels.get(match.group("braced") or match.group("bare"), match.group(0))

        return _VARIABLE_RE.sub(keep_unknown, title_rule)

    fields = fields or {}

    def fill(match: re.Match[str]) -> str:
        for group in ("label", "quoted", "raw"):
            if match.group(group) is not None:
                return labels.get(match.group(group), "")
        if match.group("field") is not None:
            return fields.get(match.group("field"), "")
        return labels.get(match.group("braced") or match.group("bare"), "<no value>")

    rule = title_rule[len(TEMPLATE_PREFIX) :].lstrip()
    parts: list[str] = []
    position, trim_next = 0, False
    for match in _TEMPLATE_RE.finditer(rule):
        text = rule[position : match.start()]
        text = text.lstrip() if trim_next else text
        parts += [text.rstrip() if match.group("ltrim") else text, fill(match)]
        position, trim_next = match.end(), bool(match.group("rtrim"))
    tail = rule[position:]
    return "".join([*parts, tail.lstrip() if trim_next else tail])


def require_string(payload: Mapping, key: str, *, path: str | None = None, required: bool = True) -> str | None:
    path = path or key
    value = payload.get(key)
    if value is None:
        if required:
            raise SourceError(path, "is required")
        return None
    if not isinstance(value, str):
        raise SourceError(path, f"must be a string, not {type(value).__name__}")
    return value


def clean_labels(value: object, *, path: str = "labels") -> dict[str, str]:
    """Validate a label map: at most 50 pairs, Prometheus-style keys up to 128, string values up to 2048."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourceError(path, "must be an object of string keys and string values")
    if len(value) > LABELS_MAX:
        raise SourceError(path, f"has {len(value)} pairs; at most {LABELS_MAX} are allowed")
    labels: dict[str, str] = {}
    for key, item in value.items():
        if len(key) > LABEL_KEY_MAX:
            raise SourceError(f"{path}.{key[:40]}…", f"key is longer than {LABEL_KEY_MAX} characters")
        if not LABEL_KEY_RE.match(key):
            raise SourceError(
                f"{path}.{key}", "key must start with a letter or _ and contain only letters, digits, _ . - /"
            )
        if not isinstance(item, str):
            raise SourceError(f"{path}.{key}", f"value must be a string, not {type(item).__name__}")
        if len(item) > LABEL_VALUE_MAX:
            raise SourceError(f"{path}.{key}", f"value is longer than {LABEL_VALUE_MAX} characters")
        labels[key] = item
    return labels


# Letters and digits of any script stay (Chinese label names are common); other characters become "_".
_INVALID_KEY_CHARS = re.compile(r"[^\w.\-/]")


def sanitize_labels(pairs: Mapping[str, object], *, first: Mapping[str, object] | None = None) -> dict[str, str]:
    """Labels from a foreign monitor, made acceptable instead of refused.

    Monitors such as Alertmanager cannot fix their payloads and drop an alert on any 4xx, so foreign adapters
    keep what they can: keys keep letters and digits of any script, "_", ".", "-" and "/" (anything else becomes
    "_"; a key that then collides with an earlier one is dropped), values become strings cut
    to the limit, and when there are more than 50 pairs those of `first` (the labels proper) win over `pairs`
    (annotations and the like), each in the order given.
    """
    result: dict[str, str] = {}
    for source in (first or {}, pairs):
        for raw_key, raw_value in source.items():
            if len(result) >= LABELS_MAX:
                return result
            key = _INVALID_KEY_CHARS.sub("_", str(raw_key))[:LABEL_KEY_MAX]
            if not key:
                continue
            if not (key[0].isalpha() or key[0] == "_"):
                key = f"_{key}"[:LABEL_KEY_MAX]
            if key in result or raw_value is None:
                continue
            value = raw_value if isinstance(raw_value, str) else json.dumps(raw_value, ensure_ascii=False)
            result[key] = truncate(value, LABEL_VALUE_MAX)
    return result


_MILLISECONDS_ABOVE = 10**11  # 10^11 seconds is the year 5138; larger unix times are milliseconds


def parse_time(value: object) -> datetime | None:
    """An aware datetime from unix seconds (or milliseconds) or an RFC 3339 string; None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            if parsed.year <= 1:  # Go's zero time: "not set"
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        try:
            seconds = value / 1000 if value > _MILLISECONDS_ABOVE else value
            return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None
        except (OverflowError, OSError, ValueError):
            return None
    return None


def usable_url(value: object, limit: int) -> bool:
    """Whether `value` is an http(s) URL of at most `limit` characters (what an image or link may be)."""
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) <= limit


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def clean_images(value: object, *, path: str = "images") -> tuple[Image, ...]:
    """Validate images: each needs a src (an http(s) URL or an image key); images with the same alt are one."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SourceError(path, "must be a list of {src, alt, href} objects")
    if len(value) > IMAGES_MAX:
        raise SourceError(path, f"has {len(value)} images; at most {IMAGES_MAX} are allowed")
    images: list[Image] = []
    seen_alts: set[str] = set()
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise SourceError(item_path, "must be an object with src, alt and href")
        src = require_string(item, "src", path=f"{item_path}.src")
        if not src.strip():
            raise SourceError(f"{item_path}.src", "must not be empty")
        if len(src) > IMAGE_SRC_MAX:
            raise SourceError(f"{item_path}.src", f"is longer than {IMAGE_SRC_MAX} characters")
        if "://" in src and not _is_url(src):
            raise SourceError(f"{item_path}.src", "must be an http(s) URL or an uploaded image key")
        alt = require_string(item, "alt", path=f"{item_path}.alt", required=False) or ""
        if len(alt) > IMAGE_ALT_MAX:
            raise SourceError(f"{item_path}.alt", f"is longer than {IMAGE_ALT_MAX} characters")
        href = require_string(item, "href", path=f"{item_path}.href", required=False) or ""
        if len(href) > IMAGE_HREF_MAX:
            raise SourceError(f"{item_path}.href", f"is longer than {IMAGE_HREF_MAX} characters")
        if href and not _is_url(href):
            raise SourceError(f"{item_path}.href", "must be an http(s) URL")
        if alt and alt in seen_alts:
            continue
        seen_alts.add(alt)
        images.append(Image(src=src, alt=alt, href=href))
    return tuple(images)
