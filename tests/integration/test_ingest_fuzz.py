"""Bounded fuzzing of the ingest endpoints: whatever a monitor sends, no 5xx and no partial write.

Hypothesis generates payloads around each format's shape: for the standard format from its fields, for the others
by mutating real samples (values replaced by wrong types, nasty text or arbitrary JSON; keys removed). Every answer
must be 2xx or 4xx; a refused push must leave the database exactly as it was; an accepted one must be processed by
the worker without error (no batch left failing). FUZZ_EXAMPLES raises the budget locally.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall.models import Alert, EventBatch, Incident, IncidentEvent, TimelineEntry
from tests.factories import make_channel, make_integration, push

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),  # CI repeats the same examples; FUZZ_RANDOM=1 explores
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text that databases choke on (NUL, unpaired surrogates) and sizes around the limits.
nasty = st.sampled_from(["a\x00b", "\ud800x", "\udfff", "\x00", "é🔥中文", "x" * 511, "x" * 513, "y" * 2049])
texts = st.text(max_size=40) | st.text(st.characters(codec="utf-8"), max_size=20) | nasty
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False), texts)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
statuses = st.sampled_from(["Critical", "Warning", "Info", "Ok", "critical", "", "Error"]) | json_values
label_maps = (
    st.dictionaries(
        texts | st.sampled_from(["host", "service", "app.kubernetes.io/name", "1bad"]),
        texts | json_values,
        max_size=6,
    )
    | json_values
)
standard_events = st.fixed_dictionaries(
    {},
    optional={
        "title_rule": texts | json_values,
        "title": texts,
        "event_status": statuses,
        "alert_key": texts | st.sampled_from(["k1", "k2"]) | json_values,
        "description": texts | json_values,
        "labels": label_maps,
        "images": st.lists(
            st.fixed_dictionaries(
                {}, optional={"src": st.text(max_size=30) | st.just("https://x/y.png"), "alt": st.text(max_size=10)}
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)
# Nearly valid events reach the database, where most trouble hides; chaotic ones exercise the refusals.
nearly_valid_events = st.fixed_dictionaries(
    {"title_rule": texts, "event_status": st.sampled_from(["Critical", "Warning", "Info"])},
    optional={
        "alert_key": texts,
        "description": texts,
        "labels": st.dictionaries(st.sampled_from(["host", "service", "region"]), texts, max_size=3),
    },
)
bodies = st.one_of(
    nearly_valid_events.map(json.dumps),
    standard_events.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=200),
)


def snapshot() -> tuple[int, ...]:
    return (
        Alert.objects.count(),
        Incident.objects.count(),
        TimelineEntry.objects.count(),
        IncidentEvent.objects.count(),
        sum(Alert.objects.values_list("event_count", flat=True)),
    )


@pytest.fixture
def key():
    return make_integration(channel=make_channel(), rate_limit_per_second=10**6, rate_limit_per_minute=10**6)[1]


def assert_processed_cleanly() -> None:
    failing = list(EventBatch.objects.values_list("error", flat=True))
    assert not failing, f"an accepted push failed in the worker: {failing}"


@FUZZ
@given(body=bodies)
def test_the_standard_endpoint_never_fails_and_never_half_writes(client, key, body):
    before = snapshot()
    response = push(client, key, body)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.json()["error"]["code"]
        assert snapshot() == before, "a refused push wrote something"
    else:
        assert_processed_cleanly()
        payload = json.loads(body)
        alert_key = response.json()["data"]["alert_key"]
        if payload.get("event_status") != "Ok":
            assert Alert.objects.filter(alert_key=alert_key, progress="Triggered").exists()


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def samples(folder: str) -> list:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted((FIXTURES / folder).glob("*.json"))]


def paths_of(document, prefix=()) -> list[tuple]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths_of(value, (*prefix, index))
    return found


@st.composite
def mutated(draw, folder: str):
    """A real sample of `folder` with a few of its values replaced or removed."""
    document = copy.deepcopy(draw(st.sampled_from(samples(folder))))
    for path in draw(st.lists(st.sampled_from(paths_of(document)), max_size=4)):
        if not path:
            document = draw(json_values)
            break
        parent = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values | nasty)
        except (KeyError, IndexError, TypeError):
            continue
    return document


def fuzz_format(client, url: str, document) -> None:
    before = snapshot()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url, data=json.dumps(document), content_type="application/json")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert snapshot() == before, "a refused push wrote something"
    else:
        assert_processed_cleanly()


@FUZZ
@given(document=mutated("prometheus"))
def test_the_alertmanager_endpoint_never_fails_and_never_half_writes(client, key, document):
    fuzz_format(client, f"/event/push/alert/prometheus?integration_key={key}", document)


@FUZZ
@given(document=mutated("grafana"))
def test_the_grafana_endpoint_never_fails_and_never_half_writes(client, key, document):
    fuzz_format(client, f"/event/push/alert/grafana?integration_key={key}", document)


@FUZZ
@given(document=mutated("pagerduty"))
def test_the_pagerduty_endpoints_never_fail_and_never_half_write(client, key, document):
    fuzz_format(client, f"/event/push/alert/pagerduty?integration_key={key}", document)
    if isinstance(document, dict):
        document = {**document, "routing_key": key}
    fuzz_format(client, "/v2/enqueue", document)
