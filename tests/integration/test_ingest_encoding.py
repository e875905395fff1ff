"""Bodies in other encodings than the monitor meant: what cannot be stored is cleaned, not a lost or failed push."""

from __future__ import annotations

import json

import pytest
from django.test import TestCase

from oncall.models import Alert, EventBatch
from tests.factories import make_channel, make_integration

pytestmark = pytest.mark.django_db(transaction=True)

SURROGATE = b"\xed\xa0\x80"  # a lone UTF-16 surrogate (U+D800) written out as UTF-8 bytes, as some encoders do


@pytest.fixture
def key():
    return make_integration(channel=make_channel())[1]


def post_raw(client, key, data: bytes, source="standard"):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            f"/event/push/alert/{source}?integration_key={key}", data=data, content_type="application/json"
        )


def test_a_surrogate_written_out_as_bytes_becomes_a_question_mark(client, key):
    body = b'{"title_rule": "disk ' + SURROGATE + b' full", "event_status": "Critical", "alert_key": "s1"}'
    response = post_raw(client, key, body)
    assert response.status_code == 200, response.content
    assert not EventBatch.objects.exists(), EventBatch.objects.values_list("error", flat=True).first()
    assert Alert.objects.get(alert_key="s1").title == "disk ? full"


def test_one_alert_with_such_a_surrogate_does_not_cost_the_others_of_its_push_their_page(client, key):
    good = b'{"status": "firing", "fingerprint": "good", "labels": {"alertname": "CPU"}}'
    bad = b'{"status": "firing", "fingerprint": "bad", "labels": {"alertname": "x"}, "annotations": {"summary": "a'
    body = b'{"version": "4", "status": "firing", "alerts": [' + good + b", " + bad + SURROGATE + b'"}}]}'
    response = post_raw(client, key, body, source="prometheus")
    assert response.status_code == 200, response.content
    assert sorted(Alert.objects.values_list("alert_key", flat=True)) == ["bad", "good"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32"])
def test_a_body_that_is_not_utf8_is_refused(client, key, encoding):
    text = json.dumps({"title_rule": "db\u0000 down", "event_status": "Critical", "alert_key": "n1"})
    response = post_raw(client, key, text.encode(encoding))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "body"
    assert not EventBatch.objects.exists()
    assert not Alert.objects.exists()
