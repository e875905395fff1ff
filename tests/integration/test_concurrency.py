"""Concurrent pushes of the same alert: one open alert, one incident, one page, every event counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client

from channels_app.models import Delivery
from oncall.errors import RateLimited
from oncall.models import Alert, Contact, Incident, VerificationCode
from oncall.services.contacts import contact_code_create
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


def test_people_asking_codes_for_one_number_at_once_keep_its_hourly_limit(settings):
    """Eight people asking at the same moment to verify the same number: the number's hourly limit holds (a lock on
    the number, not only on each person), so a number cannot be flooded by many accounts at once."""
    settings.VERIFICATION_PER_TARGET_PER_HOUR = 3
    people = [make_user(f"p{n}") for n in range(8)]
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    outcomes, barrier = [], threading.Barrier(len(people))

    def ask(person) -> None:
        try:
            barrier.wait()
            contact_code_create(person=person, contact=Contact.PHONE, target="+14155550100", now=now)
            outcomes.append("sent")
        except RateLimited:
            outcomes.append("limited")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["limited"] * 5 + ["sent"] * 3
    assert VerificationCode.objects.filter(target="+14155550100").count() == 3
