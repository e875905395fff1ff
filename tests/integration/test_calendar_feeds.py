"""iCalendar feeds: a secret URL per schedule and per person that lists the right shifts, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from rest_framework.test import APIClient

from escalation.feeds import calendar_feed_create, calendar_feed_revoke
from escalation.models import CalendarFeed, Override
from oncall.lib import secrets
from tests.factories import make_schedule, make_user

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start, a Monday


@pytest.fixture
def people(clock):
    return {name: make_user(name, first_name=name.title()) for name in ("ann", "ben", "cy")}


@pytest.fixture
def weekly(people):
    """ann and ben take turns weekly from Monday 2026-02-16 09:00 Berlin time (08:00 UTC); cy overrides a night."""
    schedule = make_schedule(
        "Payments",
        time_zone="Europe/Berlin",
        layers=[{"start": datetime(2026, 2, 16, 8, 0, tzinfo=UTC), "groups": [[people["ann"]], [people["ben"]]]}],
    )
    Override.objects.create(
        schedule=schedule,
        person=people["cy"],
        role="",
        start=datetime(2026, 3, 4, 20, 0, tzinfo=UTC),
        end=datetime(2026, 3, 5, 6, 0, tzinfo=UTC),
    )
    return schedule


def events(response) -> list[tuple[str, datetime, datetime]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    return sorted(
        (str(event["summary"]), event.decoded("dtstart"), event.decoded("dtend")) for event in calendar.walk("VEVENT")
    )


def url_path(url: str) -> str:
    return url.removeprefix("https://oncall.example.test")


def test_a_schedule_feed_lists_its_shifts_of_the_past_week_and_next_60_days(client, clock, weekly):
    feed, token = calendar_feed_create(schedule=weekly, now=clock.current)
    listed = events(client.get(f"/calendar/schedule/{token}.ics"))
    utc = lambda *parts: datetime(*parts, tzinfo=UTC)  # noqa: E731
    assert listed[:5] == [
        ("Ann on call (primary)", utc(2026, 3, 2, 8), utc(2026, 3, 4, 20)),
        ("Ann on call (primary)", utc(2026, 3, 5, 6), utc(2026, 3, 9, 8)),  # after Cy's night
        ("Ann on call (primary)", utc(2026, 3, 16, 8), utc(2026, 3, 23, 8)),
        ("Ann on call (primary)", utc(2026, 3, 30, 7), utc(2026, 4, 6, 7)),  # summer time: still 09:00 in Berlin
        ("Ann on call (primary)", utc(2026, 4, 13, 7), utc(2026, 4, 20, 7)),
    ]
    assert ("Cy on call (primary)", utc(2026, 3, 4, 20), utc(2026, 3, 5, 6)) in listed
    # Began before the window, still on in it: listed whole, so its UID stays the same from day to day.
    assert ("Ben on call (primary)", utc(2026, 2, 23, 8), utc(2026, 3, 2, 8)) in listed
    assert len([summary for summary, _s, _e in listed if summary.startswith("Ben")]) == 5
    assert max(end for _summary, _start, end in listed) <= START + timedelta(days=60)
    assert min(end for _summary, _start, end in listed) > START - timedelta(days=7)
    assert token not in (feed.token_hash, feed.token_hint) and feed.token_hash == secrets.key_hash(token)


def test_a_deactivated_persons_feed_stops_working(client, clock):
    person = make_user("leaver")
    _feed, token = calendar_feed_create(person=person, now=clock.current)
    assert client.get(f"/calendar/person/{token}.ics").status_code == 200
    person.is_active = False
    person.save(update_fields=["is_active"])
    assert client.get(f"/calendar/person/{token}.ics").status_code == 404, "as their API tokens stop working"


def test_a_wrong_token_is_404_and_a_regenerated_or_revoked_one_stops_working(client, clock, weekly, people):
    _feed, old = calendar_feed_create(schedule=weekly, now=clock.current)
    assert client.get(f"/calendar/schedule/{old}.ics").status_code == 200
    assert client.get(f"/calendar/schedule/{old[:-1]}x.ics").status_code == 404
    assert client.get(f"/calendar/person/{old}.ics").status_code == 404  # a schedule's token is no person's
    assert client.get("/calendar/schedule/short.ics").status_code == 404
    _feed, new = calendar_feed_create(schedule=weekly, now=clock.current)
    assert client.get(f"/calendar/schedule/{old}.ics").status_code == 404
    assert client.get(f"/calendar/schedule/{new}.ics").status_code == 200
    assert CalendarFeed.objects.active().count() == 1
    calendar_feed_revoke(schedule=weekly, now=clock.current)
    assert client.get(f"/calendar/schedule/{new}.ics").status_code == 404


def test_a_person_feed_from_the_api_lists_only_their_shifts_across_schedules(clock, weekly, people):
    make_schedule("Databases", layers=[{"start": START, "unit": "day", "groups": [[people["ben"]], [people["cy"]]]}])
    api = APIClient()
    api.force_login(people["ben"])
    created = api.post("/api/v1/me/calendar-feed/")
    assert created.status_code == 201
    url = created.json()["data"]["url"]
    assert url.startswith("https://oncall.example.test/calendar/person/") and url.endswith(".ics")
    listed = events(APIClient().get(url_path(url)))
    summaries = {summary for summary, _start, _end in listed}
    assert summaries == {"On call: Payments (primary)", "On call: Databases (primary)"}
    database = [(s, e) for summary, s, e in listed if "Databases" in summary]
    assert database[:2] == [(START, START + timedelta(days=1)), (START + timedelta(days=2), START + timedelta(days=3))]

    again = api.post("/api/v1/me/calendar-feed/").json()["data"]["url"]
    assert APIClient().get(url_path(url)).status_code == 404
    assert APIClient().get(url_path(again)).status_code == 200
    assert api.delete("/api/v1/me/calendar-feed/").status_code == 200
    assert APIClient().get(url_path(again)).status_code == 404


def test_a_shift_longer_than_the_look_back_keeps_its_uid_from_day_to_day(client, clock, people):
    """A shift that began more than 7 + 32 days ago is listed from then on; its UID must not follow that cut, or
    calendar apps would replace the event every day."""
    began = START - timedelta(days=60)
    three_monthly = make_schedule(
        "Solo", layers=[{"start": began, "unit": "month", "count": 3, "groups": [[people["ann"]], [people["ben"]]]}]
    )
    forever = make_schedule("Desk", layers=[{"start": began, "groups": [[people["cy"]]]}])

    def fetch(schedule) -> list[tuple[str, datetime, datetime]]:
        _feed, token = calendar_feed_create(schedule=schedule, now=clock.current)
        response = client.get(f"/calendar/schedule/{token}.ics")
        assert response.status_code == 200
        calendar = Calendar.from_ical(response.content)
        return sorted((e.decoded("dtstart"), e.decoded("dtend"), str(e["uid"])) for e in calendar.walk("VEVENT"))

    first = fetch(three_monthly), fetch(forever)
    clock.advance(days=1)
    second = fetch(three_monthly), fetch(forever)
    assert first[0][0][0] == START - timedelta(days=39) and first[0][0][1] == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    assert [uid for *_times, uid in first[0]] == [uid for *_times, uid in second[0]]
    assert len(first[1]) == 1 and first[1][0][2] == second[1][0][2]
