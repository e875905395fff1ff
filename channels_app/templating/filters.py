"""The platform's own template filters: dates in a time zone, "ago", severity colours, labels across alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from jinja2 import pass_context
from jinja2.runtime import Context, Undefined

DEFAULT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
MAX_FORMAT_CHARS = 200

# Flashduty's palette: Critical, Warning, Info, and recovered.
SEVERITY_COLORS = {"Critical": "#C80000", "Warning": "#FA7D00", "Info": "#FABE00", "Ok": "#008800"}
UNKNOWN_COLOR = "#808080"


def to_datetime(value: object) -> datetime | None:
    """A datetime from a datetime, an ISO 8601 string or Unix seconds; None for nothing."""
    if value is None or isinstance(value, Undefined) or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
    else:
        raise TypeError(f"cannot read a date from {type(value).__name__}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


@pass_context
def date(context: Context, value: object, format: str = DEFAULT_DATE_FORMAT, tz: str | None = None) -> str:
    """`value` formatted with strftime in `tz` (default: the message's time zone)."""
    moment = to_datetime(value)
    if moment is None:
        return ""
    if len(format) > MAX_FORMAT_CHARS:
        raise ValueError(f"a date format may have at most {MAX_FORMAT_CHARS} characters")
    return moment.astimezone(_zone(tz or context.get("time_zone"))).strftime(format)


def _units(seconds: int) -> list[str]:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(ngettext("%(n)d day", "%(n)d days", days) % {"n": days})
    if hours:
        parts.append(ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours})
    if minutes and not days:
        parts.append(ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes})
    return parts[:2]


@pass_context
def ago(context: Context, value: object) -> str:
    """How long before the render `value` was ("5 minutes ago", "1 day 2 hours ago", "in 3 minutes")."""
    moment = to_datetime(value)
    if moment is None:
        return ""
    now = to_datetime(context.get("now")) or datetime.now(UTC)
    seconds = int((now - moment).total_seconds())
    parts = _units(abs(seconds))
    if not parts:
        return _("just now")
    span = " ".join(parts)
    return (_("%(span)s ago") if seconds > 0 else _("in %(span)s")) % {"span": span}


def severity_color(severity: object) -> str:
    """The colour of a severity, as a #RRGGBB string."""
    return SEVERITY_COLORS.get(str(severity), UNKNOWN_COLOR)


def join_labels(source: object, key: str, separator: str = ", ") -> str:
    """The distinct values of label `key` across alerts, in order: `incident|join_labels("host")` or
    `incident.alerts|join_labels("host", " / ")`."""
    alerts = source.get("alerts", ()) if isinstance(source, Mapping) else source
    values: list[str] = []
    if isinstance(alerts, Iterable):
        for alert in alerts:
            labels = alert.get("labels") if isinstance(alert, Mapping) else None
            value = labels.get(key) if isinstance(labels, Mapping) else None
            if value not in (None, "") and str(value) not in values:
                values.append(str(value))
    return separator.join(values)


def timestamp(value: object) -> int | None:
    """Unix seconds of a date (None stays None): `{{ incident.start_time|timestamp }}`."""
    moment = to_datetime(value)
    return int(moment.timestamp()) if moment else None


def timestamp_ms(value: object) -> int | None:
    """Unix milliseconds of a date (None stays None), as Flashduty's webhooks give `event_time`."""
    moment = to_datetime(value)
    return int(moment.timestamp() * 1000) if moment else None


FILTERS = {
    "date": date,
    "timestamp": timestamp,
    "timestamp_ms": timestamp_ms,
    "ago": ago,
    "severity_color": severity_color,
    "join_labels": join_labels,
}
