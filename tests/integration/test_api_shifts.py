"""/api/v1/me/shifts/ and /api/v1/me/calendar-feed/: your own shifts and feed, never anyone else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from escalation.models import CalendarFeed, Override
from oncall.services.tokens import api_token_create
from tests.factories import make_schedule, make_user

pytestmark = pytest.mark.django_db

SHIFTS = "/api/v1/me/shifts/"
FEED = "/api/v1/me/calendar-feed/"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def people(clock):
    return {name: make_user(name) for name in ("ann", "ben", "cy")}


@pytest.fixture
def schedules(people):
    """Payments: ann and ben alternate daily at 10:00 UTC (ann from Sunday); Databases: ann primary, cy backup."""
    payments = make_schedule(
        "Payments",
        layers=[{"start": START - timedelta(hours=23), "unit": "day", "groups": [[people["ann"]], [people["ben"]]]}],
    )
    databases = make_schedule(
        "Databases",
        layers=[{"start": START + timedelta(days=2), "groups": [[people["ann"], (people["cy"], "backup")]]}],
    )
    make_schedule("Retired", enabled=False, layers=[{"start": START, "groups": [[people["ann"]]]}])
    return payments, databases


def as_user(user) -> APIClient:
    api = APIClient()
    _token, value = api_token_create(user=user, name="test", now=START)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return api


def test_my_shifts_are_mine_only_running_now_first_within_the_asked_days(people, schedules):
    payments, _databases = schedules
    Override.objects.create(
        schedule=payments, person=people["cy"], start=START + timedelta(days=2), end=START + timedelta(days=2, hours=3)
    )
    body = as_user(people["ann"]).get(SHIFTS, {"days": 4}).json()
    items = body["data"]["items"]
    day = timedelta(days=1)
    assert [(i["schedule"]["name"], i["role"], i["start"], i["end"]) for i in items] == [
        ("Payments", "primary", iso(START - timedelta(hours=23)), iso(START + timedelta(hours=1))),  # running now
        ("Payments", "primary", iso(START + day + timedelta(hours=1)), iso(START + 2 * day)),  # until cy takes over
        ("Databases", "primary", iso(START + 2 * day), iso(START + 4 * day)),  # cut at the 4 days asked for
        ("Payments", "primary", iso(START + 3 * day + timedelta(hours=1)), iso(START + 4 * day)),
    ]
    assert items[0]["schedule"] == {"id": payments.pk, "name": "Payments", "time_zone": "UTC"}

    cy = as_user(people["cy"]).get(SHIFTS).json()["data"]["items"]
    assert [(i["schedule"]["name"], i["role"]) for i in cy] == [("Databases", "backup"), ("Payments", "primary")]
    assert as_user(make_user("dora")).get(SHIFTS).json()["data"]["items"] == []


@pytest.mark.parametrize("days", ["0", "91", "soon"])
def test_a_wrong_number_of_days_is_a_400_naming_it(people, days):
    response = as_user(people["ann"]).get(SHIFTS, {"days": days})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "days"


def test_shifts_and_the_feed_need_credentials(people):
    for method, url in (("get", SHIFTS), ("post", FEED), ("delete", FEED)):
        assert getattr(APIClient(), method)(url).status_code == 401


def test_my_calendar_feed_is_shown_once_regenerated_and_revoked(people, schedules):
    api = as_user(people["ben"])
    first = api.post(FEED)
    assert first.status_code == 201
    data = first.json()["data"]
    assert set(data) == {"url", "token_hint", "created_at", "revoked_at"}
    token = data["url"].rsplit("/", 1)[1].removesuffix(".ics")
    assert data["token_hint"] == token[-4:] and len(token) >= 40
    assert CalendarFeed.objects.get(person=people["ben"]).token_hash != token

    second = api.post(FEED).json()["data"]
    assert second["url"] != data["url"]
    assert CalendarFeed.objects.filter(person=people["ben"]).active().count() == 1
    revoked = api.delete(FEED)
    assert revoked.status_code == 200 and revoked.json()["data"]["revoked_at"] is not None
    assert api.delete(FEED).status_code == 404
    assert as_user(people["ann"]).delete(FEED).status_code == 404  # ben's feed is not ann's to revoke
