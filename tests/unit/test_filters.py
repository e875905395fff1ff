"""The condition language: every value form, IN and NOTIN, missing keys, groups, and refusals with a reason."""

from __future__ import annotations

import time

import pytest

from oncall.lib.filters import SEVERITIES, FilterError, Subject, filters_to_json, matches, parse_filters
from oncall.models import Severity

SUBJECT = Subject(
    severity="Critical",
    title="Disk full on db-12",
    description="97% used on /var/lib/postgresql",
    integration_id=7,
    integration_name="Prometheus prod",
    labels={"host": "db-12", "ip": "10.1.2.3", "ip6": "2001:db8::1", "cpu": "93.5", "env": "prod", "team": "交易"},
)


def cond(key: str, *values: str, op: str = "IN") -> list:
    return [[{"key": key, "op": op, "values": list(values)}]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], True),
        (cond("severity", "Critical"), True),
        (cond("severity", "Warning", "Info"), False),
        (cond("severity", "/^(Critical|Warning)$/"), True),  # patterns over severities are the author's call
        (cond("severity", "Crit*"), True),
        (cond("severity", "/^critical$/"), False),
        (cond("severity", "Critical", op="NOTIN"), False),
        (cond("severity", "Info", op="NOTIN"), True),
        (cond("title", "Disk full on db-12"), True),
        (cond("title", "Disk full*"), True),
        (cond("title", "*db-1?"), True),
        (cond("title", "*db-1"), False),
        (cond("title", "disk*"), False),
        (cond("title", "/db-[0-9]+/"), True),
        (cond("title", "/^db/"), False),
        (cond("title", "/(?i)^disk/"), True),
        (cond("description", "/9[0-9]%/"), True),
        (cond("integration", "7"), True),
        (cond("integration", "Prometheus prod"), True),
        (cond("integration", "8", "Grafana"), False),
        (cond("labels.host", "db-*"), True),
        (cond("labels.team", "交易"), True),
        (cond("labels.ip", "cidr:10.0.0.0/8"), True),
        (cond("labels.ip", "cidr:192.168.0.0/16"), False),
        (cond("labels.ip6", "cidr:2001:db8::/32"), True),
        (cond("labels.ip6", "cidr:10.0.0.0/8"), False),
        (cond("labels.host", "cidr:10.0.0.0/8"), False),  # not an address: no match, no error
        (cond("labels.cpu", "num:gt:90"), True),
        (cond("labels.cpu", "num:ge:93.5"), True),
        (cond("labels.cpu", "num:lt:93.5"), False),
        (cond("labels.cpu", "num:le:100"), True),
        (cond("labels.host", "num:gt:0"), False),  # not a number: no match
        (cond("labels.env", "*"), True),  # present
        (cond("labels.missing", "*"), False),
        (cond("labels.missing", "*", op="NOTIN"), True),  # absent
        (cond("labels.env", "*", op="NOTIN"), False),
        (cond("labels.missing", "x"), False),  # missing key: IN fails
        (cond("labels.missing", "x", op="NOTIN"), True),  # and NOTIN passes
    ],
)
def test_a_single_condition(filters, expected):
    assert matches(parse_filters(filters), SUBJECT) is expected


def test_conditions_of_a_group_must_all_match_and_any_group_will_do():
    both = [
        {"key": "severity", "op": "IN", "values": ["Critical"]},
        {"key": "labels.env", "op": "IN", "values": ["dev"]},
    ]
    assert not matches(parse_filters([both]), SUBJECT)
    assert matches(parse_filters([both, [{"key": "labels.env", "op": "IN", "values": ["prod"]}]]), SUBJECT)


def test_flashduty_spellings_oper_and_vals_are_accepted():
    filters = parse_filters([[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]])
    assert matches(filters, SUBJECT)


@pytest.mark.parametrize("key", ["alert_severity", "incident_severity"])
def test_flashduty_legacy_severity_keys_filter_on_severity(key):
    filters = parse_filters([[{"key": key, "oper": "IN", "vals": ["Critical"]}]])
    assert filters_to_json(filters) == cond("severity", "Critical")
    assert matches(filters, SUBJECT)
    assert not matches(filters, Subject(severity="Info"))
    with pytest.raises(FilterError, match="'urgent' is not a severity"):
        parse_filters([[{"key": key, "oper": "IN", "vals": ["urgent"]}]])


def test_a_severity_in_another_case_is_read_as_the_severity():
    filters = parse_filters([[{"key": "severity", "op": "NOTIN", "values": ["critical", "WARNING"]}]])
    assert filters_to_json(filters) == cond("severity", "Critical", "Warning", op="NOTIN")
    assert matches(filters, Subject(severity="Info"))
    assert not matches(filters, SUBJECT)


def test_flashduty_data_source_id_filters_on_the_integration():
    filters = parse_filters([[{"key": "data_source_id", "oper": "IN", "vals": ["7"]}]])
    assert filters_to_json(filters) == cond("integration", "7")
    assert matches(filters, SUBJECT)
    assert not matches(filters, Subject(integration_id=8, integration_name="Grafana"))


def test_the_severities_filters_accept_are_the_platforms():
    assert list(SEVERITIES) == list(Severity.values)


def test_catastrophic_patterns_finish_at_once():
    subject = Subject(labels={"a": "a" * 5000})
    for value in ("/(a+)+$b/", "/(a|a)*c/", "*a*a*a*a*a*a*b"):
        started = time.monotonic()
        assert not matches(parse_filters(cond("labels.a", value)), subject)
        assert time.monotonic() - started < 0.1, value


@pytest.mark.parametrize(
    ("filters", "path", "reason"),
    [
        ({"key": "x"}, "", "list of groups"),
        ([[]], "[0]", "non-empty list"),
        ([["severity"]], "[0][0]", "a condition is"),
        (cond("host", "x"), "[0][0].key", "is not a key"),
        (cond("labels.", "x"), "[0][0].key", "is not a key"),
        (cond("severity", "x", op="EQ"), "[0][0].op", "not IN or NOTIN"),
        ([[{"key": "severity", "op": "IN", "values": []}]], "[0][0].values", "at least one"),
        (cond("severity", ""), "[0][0].values[0]", "non-empty"),
        (cond("title", "/(unclosed/"), "[0][0].values[0]", "not a valid regular expression"),
        (cond("title", r"/(a)\1/"), "[0][0].values[0]", "not a valid regular expression"),
        (cond("labels.ip", "cidr:10.0.0.0/33"), "[0][0].values[0]", "not a network"),
        (cond("labels.cpu", "num:gte:5"), "[0][0].values[0]", "num:gt:90"),
        (cond("labels.cpu", "num:gt:five"), "[0][0].values[0]", "not a number"),
        (cond("labels.cpu", "num:gt:inf"), "[0][0].values[0]", "finite"),
        # A severity that is not one would never match: the rule would silently never apply.
        (cond("severity", "urgent"), "[0][0].values[0]", "'urgent' is not a severity; use one of Critical"),
        (cond("severity", "Info", "Ok"), "[0][0].values[1]", "'Ok' is not a severity"),
        (cond("severity", "num:gt:1"), "[0][0].values[0]", "is not a severity"),
    ],
)
def test_invalid_filters_are_refused_with_where_and_why(filters, path, reason):
    with pytest.raises(FilterError) as caught:
        parse_filters(filters)
    assert caught.value.path == path
    assert reason in caught.value.message
