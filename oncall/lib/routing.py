"""Routing: which channels an event goes to. A pure decision over plain data.

An integration has ordered routing rules (Flashduty's route "cases"). Evaluated top to bottom, every enabled rule
whose filter matches the event adds its channels:

- "channels" mode: the channels chosen on the rule;
- "name mapping" mode: the channel whose name equals the value of one of the event's labels; when the event lacks
  that label or no channel has that name, the rule counts as not matched.

A matched rule that does not fall through ends the evaluation. The integration's default route is used only when
no rule matched; with no default route either, the event has nowhere to go and is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oncall.lib.filters import Filters, Subject, matches

CHANNELS = "channels"
NAME_MAPPING = "name_mapping"


@dataclass(frozen=True)
class RouteCase:
    """One routing rule as the decision sees it."""

    filters: Filters = ()
    mode: str = CHANNELS
    channel_ids: tuple[int, ...] = ()
    name_mapping_label: str = ""
    fallthrough: bool = True
    enabled: bool = True
    name: str = ""

    def mapped_name(self, subject: Subject) -> str | None:
        """The channel name this rule looks up for `subject` (name mapping only), or None."""
        if self.mode != NAME_MAPPING or not self.name_mapping_label:
            return None
        return subject.labels.get(self.name_mapping_label) or None

    def targets(self, subject: Subject, channel_ids_by_name: Mapping[str, int]) -> tuple[int, ...]:
        """The channels this rule sends `subject` to; empty when it does not apply (disabled, filter fails,
        or nothing to send to)."""
        if not self.enabled or not matches(self.filters, subject):
            return ()
        if self.mode == NAME_MAPPING:
            name = self.mapped_name(subject)
            channel_id = channel_ids_by_name.get(name) if name else None
            return () if channel_id is None else (channel_id,)
        return self.channel_ids


@dataclass(frozen=True)
class RouteTable:
    """An integration's routing rules, in order, and its default route (a channel id, or None)."""

    cases: tuple[RouteCase, ...] = ()
    default_channel_id: int | None = None

    def mapped_names(self, subject: Subject) -> set[str]:
        """The channel names the name-mapping rules would look up for `subject`, so that the caller loads only
        those."""
        names = (case.mapped_name(subject) for case in self.cases if case.enabled)
        return {name for name in names if name}


@dataclass(frozen=True)
class CaseMatch:
    case: RouteCase
    channel_ids: tuple[int, ...]


def matched_cases(table: RouteTable, subject: Subject, channel_ids_by_name: Mapping[str, int]) -> tuple[CaseMatch, ...]:
    """The rules that take `subject`, in order, each with its channels, up to the first that does not fall through."""
    found = []
    for case in table.cases:
        channel_ids = case.targets(subject, channel_ids_by_name)
        if not channel_ids:
            continue
        found.append(CaseMatch(case=case, channel_ids=channel_ids))
        if not case.fallthrough:
            break
    return tuple(found)


def route(table: RouteTable, subject: Subject, channel_ids_by_name: Mapping[str, int]) -> tuple[int, ...]:
    """The channels `subject` goes to, in order and each once; empty when it has no route.

    `channel_ids_by_name` maps channel names to ids for name mapping; it needs to hold only the names of
    `table.mapped_names(subject)`.
    """
    found = matched_cases(table, subject, channel_ids_by_name)
    if not found:
        return () if table.default_channel_id is None else (table.default_channel_id,)
    return tuple(dict.fromkeys(channel_id for match in found for channel_id in match.channel_ids))
