"""The condition language shared by routing, escalation rules, bots and (later) silences. Pure functions.

A filter is an OR of AND-groups of conditions: `[[cond, cond], [cond]]` matches when every condition of at least
one group matches; an empty filter matches everything. A condition is `{"key", "op", "values"}`:

- `key`: `severity`, `title`, `description`, `integration` (its id or its name), or `labels.<name>`.
  Flashduty's names are read as ours: `alert_severity` and `incident_severity` as `severity`, `data_source_id` as
  `integration`. An exact `severity` value under IN must be one of `Critical`, `Warning`, `Info`, in any case
  (`critical` is read as `Critical`, under NOTIN too): any other text could never match, and a rule that silently
  never applies pages nobody. Under NOTIN such a value excludes nothing and is left alone.
- `op`: `IN` (at least one value matches) or `NOTIN` (no value matches).
- each value, by its form:
  - `/regex/` — a regular expression searched in the text, run by RE2, which has no catastrophic backtracking
    (its time is linear in the input), so a hostile pattern or label cannot stall the platform;
  - containing `*` or `?` — a wildcard over the whole text (`db-*`, `web-??`); `*` alone means "the key is
    present" (with NOTIN: "absent");
  - `cidr:10.0.0.0/8` — the text is an IP address inside that network;
  - `num:gt:90` (`gt`, `ge`, `lt`, `le`) — the text is a number compared with 90;
  - anything else — the exact text.

A key the subject lacks matches no value, so `IN` fails and `NOTIN` passes (except `*`, see above).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import re2

logger = logging.getLogger(__name__)

OPS = ("IN", "NOTIN")
BASE_KEYS = ("severity", "title", "description", "integration")
# Flashduty's filter keys, read as ours so that a filter copied from Flashduty keeps its meaning.
KEY_ALIASES = {"alert_severity": "severity", "incident_severity": "severity", "data_source_id": "integration"}
# What a subject's severity can be: an incident's, or a trigger event's (recoveries are not routed). Kept equal to
# oncall.models.Severity by a test; this module stays free of models.
SEVERITIES = ("Critical", "Warning", "Info")
_SEVERITY_BY_FOLD = {severity.casefold(): severity for severity in SEVERITIES}
LABEL_PREFIX = "labels."
MAX_GROUPS = 20
MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_VALUE_LENGTH = 1024
_NUM_OPS = {"gt": float.__gt__, "ge": float.__ge__, "lt": float.__lt__, "le": float.__le__}

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20


class FilterError(ValueError):
    """A filter that cannot be used; `path` says where (e.g. "[0][1].values[2]")."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Subject:
    """What conditions look at: an event (routing) or an incident (escalation rules, bots)."""

    severity: str = ""
    title: str = ""
    description: str = ""
    integration_id: int | None = None
    integration_name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def values_of(self, key: str) -> tuple[str, ...] | None:
        """The text(s) `key` refers to, or None when the subject lacks it."""
        if key.startswith(LABEL_PREFIX):
            value = self.labels.get(key[len(LABEL_PREFIX) :])
            return None if value is None else (value,)
        if key == "integration":
            if self.integration_id is None and not self.integration_name:
                return None
            return tuple(v for v in (str(self.integration_id or ""), self.integration_name) if v)
        return (getattr(self, key),)


class _Matcher:
    kind = "exact"

    def __init__(self, raw: str) -> None:
        self.raw = raw

    def presence_only(self) -> bool:
        return False

    def match(self, text: str) -> bool:
        return text == self.raw


class _Regex(_Matcher):
    kind = "regex"

    def __init__(self, raw: str) -> None:
        super().__init__(raw)
        self.pattern = _compile_regex(raw[1:-1])

    def match(self, text: str) -> bool:
        return self.pattern.search(text) is not None


class _Wildcard(_Matcher):
    kind = "wildcard"

    def __init__(self, raw: str) -> None:
        super().__init__(raw)
        # Only * and ? are special (no [] classes as in fnmatch): the rest is matched literally. RE2 here too:
        # "*a*a*a*b" over a long value would backtrack for ages in a backtracking engine.
        self.pattern = _compile_regex("(?s)" + "".join(_wildcard_part(ch) for ch in raw))

    def presence_only(self) -> bool:
        return self.raw == "*"

    def match(self, text: str) -> bool:
        return self.pattern.fullmatch(text) is not None


def _wildcard_part(char: str) -> str:
    return {"*": ".*", "?": "."}.get(char, re.escape(char))


class _Cidr(_Matcher):
    kind = "cidr"

    def __init__(self, raw: str) -> None:
        super().__init__(raw)
        try:
            self.network = ipaddress.ip_network(raw[len("cidr:") :].strip(), strict=False)
        except ValueError as exc:
            raise FilterError("", f"{raw!r} is not a network such as cidr:10.0.0.0/8 ({exc})") from None

    def match(self, text: str) -> bool:
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            return False
        return address.version == self.network.version and address in self.network


class _Number(_Matcher):
    kind = "num"

    def __init__(self, raw: str) -> None:
        super().__init__(raw)
        parts = raw.split(":", 2)
        if len(parts) != 3 or parts[1] not in _NUM_OPS:
            raise FilterError("", f"{raw!r} must look like num:gt:90 (gt, ge, lt or le)")
        try:
            self.bound = float(parts[2])
        except ValueError:
            raise FilterError("", f"{raw!r}: {parts[2]!r} is not a number") from None
        if not math.isfinite(self.bound):
            raise FilterError("", f"{raw!r}: the number must be finite")
        self.compare = _NUM_OPS[parts[1]]

    def match(self, text: str) -> bool:
        try:
            number = float(text.strip())
        except ValueError:
            return False
        return math.isfinite(number) and self.compare(number, self.bound)


@lru_cache(maxsize=2048)
def _compile_regex(pattern: str):
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FilterError("", f"/{pattern}/ is not a valid regular expression: {message}") from None


def _matcher(raw: str) -> _Matcher:
    if len(raw) >= 2 and raw.startswith("/") and raw.endswith("/"):
        return _Regex(raw)
    if raw.startswith("cidr:"):
        return _Cidr(raw)
    if raw.startswith("num:"):
        return _Number(raw)
    if "*" in raw or "?" in raw:
        return _Wildcard(raw)
    return _Matcher(raw)


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    values: tuple[str, ...]

    def matches(self, subject: Subject) -> bool:
        texts = subject.values_of(self.key)
        hit = any(_value_matches(value, texts) for value in self.values)
        return hit if self.op == "IN" else not hit

    def to_json(self) -> dict:
        return {"key": self.key, "op": self.op, "values": list(self.values)}


def _value_matches(value: str, texts: tuple[str, ...] | None) -> bool:
    matcher = _cached_matcher(value)
    if matcher.presence_only():
        return texts is not None
    return texts is not None and any(matcher.match(text) for text in texts)


@lru_cache(maxsize=4096)
def _cached_matcher(value: str) -> _Matcher:
    return _matcher(value)


Filters = tuple[tuple[Condition, ...], ...]


def parse_filters(data: object) -> Filters:
    """Read and check a filter given as JSON data; raise FilterError saying where and why it is wrong."""
    if data is None or data == []:
        return ()
    if not isinstance(data, list):
        raise FilterError("", "a filter is a list of groups, each a list of conditions")
    if len(data) > MAX_GROUPS:
        raise FilterError("", f"at most {MAX_GROUPS} groups")
    groups = []
    for g, group in enumerate(data):
        if not isinstance(group, list) or not group:
            raise FilterError(f"[{g}]", "a group is a non-empty list of conditions (all of them must match)")
        if len(group) > MAX_CONDITIONS:
            raise FilterError(f"[{g}]", f"at most {MAX_CONDITIONS} conditions in a group")
        groups.append(tuple(_parse_condition(item, f"[{g}][{c}]") for c, item in enumerate(group)))
    return tuple(groups)


def parse_saved_filters(data: object, *, rule: str) -> Filters | None:
    """The filters of a rule as saved; None, with an error in the log naming `rule`, when they cannot be read (saved
    past the admin's checks, or before they were made): the rule is then left out rather than failing every event
    it is tried on."""
    try:
        return parse_filters(data)
    except FilterError as exc:
        logger.error("%s has an invalid filter (%s: %s); ignored", rule, exc.path, exc.message)
        return None


def _parse_condition(item: object, path: str) -> Condition:
    if not isinstance(item, dict):
        raise FilterError(path, 'a condition is {"key": …, "op": "IN" or "NOTIN", "values": […]}')
    key, op, values = item.get("key"), item.get("op", item.get("oper")), item.get("values", item.get("vals"))
    key = KEY_ALIASES.get(key, key) if isinstance(key, str) else key
    if not isinstance(key, str) or not (key in BASE_KEYS or (key.startswith(LABEL_PREFIX) and len(key) > 7)):
        raise FilterError(f"{path}.key", f"{key!r} is not a key; use {', '.join(BASE_KEYS)} or labels.<name>")
    if op not in OPS:
        raise FilterError(f"{path}.op", f"{op!r} is not IN or NOTIN")
    if not isinstance(values, list) or not values:
        raise FilterError(f"{path}.values", "give at least one value")
    if len(values) > MAX_VALUES:
        raise FilterError(f"{path}.values", f"at most {MAX_VALUES} values")
    values = list(values)
    for v, value in enumerate(values):
        where = f"{path}.values[{v}]"
        if not isinstance(value, str) or not value:
            raise FilterError(where, "a value is non-empty text")
        if key == "severity":
            values[v] = value = canonical_severity(value) or value  # "critical" means Critical
        if len(value) > MAX_VALUE_LENGTH:
            raise FilterError(where, f"a value is at most {MAX_VALUE_LENGTH} characters")
        try:
            matcher = _cached_matcher(value)
        except FilterError as exc:
            raise FilterError(where, exc.message) from None
        if key == "severity" and op == "IN":
            # Under NOTIN a value that is no severity excludes nothing; under IN it is a rule that never applies.
            _check_severity_value(matcher, where)
    return Condition(key=key, op=op, values=tuple(values))


def canonical_severity(text: str) -> str | None:
    """The severity `text` names in any case ("critical" is Critical, as Flashduty spells it), or None."""
    return _SEVERITY_BY_FOLD.get(text.casefold())


def _check_severity_value(matcher: _Matcher, where: str) -> None:
    # Patterns (/regex/, wildcards) are the author's explicit choice and may well match; an exact text, an address
    # range or a number can only match if it is a severity, so anything else is a typo that would never apply.
    if matcher.kind in ("regex", "wildcard") or matcher.raw in SEVERITIES:
        return
    allowed = ", ".join(SEVERITIES)
    raise FilterError(where, f"{matcher.raw!r} is not a severity; use one of {allowed}")


def matches(filters: Filters, subject: Subject) -> bool:
    """Whether `subject` passes: every condition of at least one group matches (an empty filter passes all)."""
    if not filters:
        return True
    return any(all(condition.matches(subject) for condition in group) for group in filters)


def filters_to_json(filters: Sequence[Sequence[Condition]]) -> list:
    return [[condition.to_json() for condition in group] for group in filters]
