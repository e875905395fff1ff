"""Concurrent pushes of the same alert: one open alert, one incident, one page, every event counted."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from channels_app.models import Delivery
from oncall.models import Alert, Incident
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_identical_events_open_one_alert_and_page_once(mailoutbox):
    channel = make_channel()
    make_rule(channel, [{"people": [make_user("alice")]}])
    _, key = make_integration(channel=channel)
    event = {"title_rule": "API 5xx rate high", "event_status": "Critical", "alert_key": "api-5xx"}
    threads, statuses, barrier = [], [], threading.Barrier(8)

    def send() -> None:
        try:
            barrier.wait()
            statuses.append(push(Client(), key, event).status_code)
        finally:
            connection.close()

    for _ in range(8):
        threads.append(threading.Thread(target=send))
        threads[-1].start()
    for thread in threads:
        thread.join(60)

    assert statuses == [200] * 8
    alert = Alert.objects.get()
    assert alert.event_count == 8
    assert Incident.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert len(mailoutbox) == 1
