"""The routing decision, in tables: order, fallthrough, several channels, default route, name mapping, no route."""

from __future__ import annotations

import pytest

from oncall.lib.filters import Subject, parse_filters
from oncall.lib.routing import CHANNELS, NAME_MAPPING, RouteCase, RouteTable, matched_cases, route

DB, WEB, OPS, PAY, DEFAULT = 1, 2, 3, 4, 9


def when(key: str, *values: str, op: str = "IN"):
    return parse_filters([[{"key": key, "op": op, "values": list(values)}]])


def case(*channel_ids: int, filters=(), fallthrough: bool = True, enabled: bool = True, name: str = "") -> RouteCase:
    return RouteCase(
        filters=filters, mode=CHANNELS, channel_ids=channel_ids, fallthrough=fallthrough, enabled=enabled, name=name
    )


def by_label(label: str, filters=(), fallthrough: bool = True, name: str = "") -> RouteCase:
    return RouteCase(filters=filters, mode=NAME_MAPPING, name_mapping_label=label, fallthrough=fallthrough, name=name)


CRITICAL_DB = Subject(severity="Critical", title="Disk full on db-1", labels={"service": "db", "team": "payments"})
WARNING_WEB = Subject(severity="Warning", title="Slow page", labels={"service": "web"})
CHANNEL_IDS_BY_NAME = {"payments": PAY, "ops": OPS}

CASES = [
    # (what it shows, cases, default route, subject, expected channels)
    ("no rules: the default route", (), DEFAULT, CRITICAL_DB, (DEFAULT,)),
    ("no rules and no default: no route", (), None, CRITICAL_DB, ()),
    ("an empty filter takes every event", (case(OPS),), DEFAULT, WARNING_WEB, (OPS,)),
    (
        "a matching rule sends to its channel",
        (case(DB, filters=when("labels.service", "db")),),
        None,
        CRITICAL_DB,
        (DB,),
    ),
    (
        "the default route is not used when a rule matched",
        (case(DB, filters=when("labels.service", "db")),),
        DEFAULT,
        CRITICAL_DB,
        (DB,),
    ),
    (
        "the default route is used only when nothing matched",
        (case(DB, filters=when("labels.service", "db")),),
        DEFAULT,
        WARNING_WEB,
        (DEFAULT,),
    ),
    (
        "nothing matched and no default: no route",
        (case(DB, filters=when("labels.service", "db")),),
        None,
        WARNING_WEB,
        (),
    ),
    ("one rule, several channels, in its order", (case(DB, OPS),), None, CRITICAL_DB, (DB, OPS)),
    (
        "fallthrough on: every matching rule adds its channels, in rule order",
        (case(OPS, filters=when("severity", "Critical")), case(DB, filters=when("labels.service", "db"))),
        None,
        CRITICAL_DB,
        (OPS, DB),
    ),
    (
        "fallthrough off: a matching rule stops the evaluation",
        (
            case(OPS, filters=when("severity", "Critical"), fallthrough=False),
            case(DB, filters=when("labels.service", "db")),
        ),
        None,
        CRITICAL_DB,
        (OPS,),
    ),
    (
        "fallthrough off on a rule that does not match stops nothing",
        (
            case(WEB, filters=when("labels.service", "web"), fallthrough=False),
            case(DB, filters=when("labels.service", "db")),
        ),
        None,
        CRITICAL_DB,
        (DB,),
    ),
    (
        "rules are evaluated in order: the first stopping rule wins",
        (case(DB, fallthrough=False), case(OPS, fallthrough=False)),
        None,
        CRITICAL_DB,
        (DB,),
    ),
    (
        "a channel chosen by two rules is sent to once, at its first place",
        (case(DB, OPS), case(OPS, DB, WEB)),
        None,
        CRITICAL_DB,
        (DB, OPS, WEB),
    ),
    (
        "a disabled rule is skipped, stop or not",
        (case(OPS, enabled=False, fallthrough=False), case(DB)),
        None,
        CRITICAL_DB,
        (DB,),
    ),
    ("only disabled rules: the default route", (case(OPS, enabled=False),), DEFAULT, CRITICAL_DB, (DEFAULT,)),
    (
        "NOTIN: the rule takes events without the value",
        (case(WEB, filters=when("labels.service", "db", op="NOTIN")),),
        DEFAULT,
        WARNING_WEB,
        (WEB,),
    ),
    ("name mapping: the channel named by the label", (by_label("team"),), DEFAULT, CRITICAL_DB, (PAY,)),
    (
        "name mapping, the label names no channel: not matched, the default route",
        (by_label("service"),),
        DEFAULT,
        CRITICAL_DB,
        (DEFAULT,),
    ),
    (
        "name mapping, the event lacks the label: not matched, no default, no route",
        (by_label("team"),),
        None,
        WARNING_WEB,
        (),
    ),
    (
        "a name mapping miss does not stop the evaluation even with fallthrough off",
        (by_label("service", fallthrough=False), case(DB)),
        None,
        CRITICAL_DB,
        (DB,),
    ),
    (
        "a name mapping hit with fallthrough off stops it",
        (by_label("team", fallthrough=False), case(DB)),
        None,
        CRITICAL_DB,
        (PAY,),
    ),
    (
        "name mapping with a filter that fails: not matched",
        (by_label("team", filters=when("severity", "Info")),),
        DEFAULT,
        CRITICAL_DB,
        (DEFAULT,),
    ),
    (
        "a channels rule left with no channel (all deleted) counts as not matched",
        (case(fallthrough=False), case(DB)),
        None,
        CRITICAL_DB,
        (DB,),
    ),
]


@pytest.mark.parametrize(("cases", "default", "subject", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route(cases, default, subject, expected):
    table = RouteTable(cases=cases, default_channel_id=default)
    assert route(table, subject, CHANNEL_IDS_BY_NAME) == expected


def test_matched_cases_say_which_rules_took_the_event_and_where_each_sent_it():
    first = case(DB, OPS, name="databases")
    second = by_label("team", name="by team", fallthrough=False)
    third = case(WEB, name="never reached")
    table = RouteTable(cases=(first, case(WEB, filters=when("severity", "Info")), second, third))
    found = matched_cases(table, CRITICAL_DB, CHANNEL_IDS_BY_NAME)
    assert [(match.case.name, match.channel_ids) for match in found] == [("databases", (DB, OPS)), ("by team", (PAY,))]


def test_the_names_to_look_up_are_those_the_enabled_name_mapping_rules_read():
    table = RouteTable(
        cases=(
            by_label("team"),
            by_label("service"),
            RouteCase(mode=NAME_MAPPING, name_mapping_label="owner", enabled=False),
            case(DB),
            by_label("missing"),
        )
    )
    assert table.mapped_names(CRITICAL_DB) == {"payments", "db"}
    assert table.mapped_names(WARNING_WEB) == {"web"}
    assert RouteTable(cases=(case(DB),)).mapped_names(CRITICAL_DB) == set()
