"""iCalendar feeds: a secret URL per schedule and per person that calendar apps subscribe to.

A feed token is a secret like an API token: made with a CSPRNG, shown once (when created or regenerated), stored
only as a SHA-256 hash plus its last characters, and revocable. Regenerating revokes the previous URL.
"""

from __future__ import annotations

import secrets as pysecrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from escalation.models import CalendarFeed, Schedule
from escalation.schedules import ShiftRow, person_shift_rows, schedule_shift_rows
from oncall.lib import secrets
from oncall.models import User

PAST = timedelta(days=7)
FUTURE = timedelta(days=60)
# A shift that began before the window still shows with its real start unless it is longer (then it shows from
# this far back, and keeps its UID by its end: see _uid).
LOOK_BACK = timedelta(days=32)
URL_NAMES = {CalendarFeed.Kind.SCHEDULE: "calendar-schedule", CalendarFeed.Kind.PERSON: "calendar-person"}


def calendar_feed_url(*, kind: str, token: str) -> str:
    """The address calendar apps subscribe to (on the platform's public URL)."""
    return f"{settings.PUBLIC_URL}{reverse(URL_NAMES[kind], args=[token])}"


@transaction.atomic
def calendar_feed_create(
    *, schedule: Schedule | None = None, person: User | None = None, now: datetime
) -> tuple[CalendarFeed, str]:
    """Give a schedule or a person a new feed URL, revoking the one they had; return the feed and its secret
    token, which is not stored and not shown again."""
    if (schedule is None) == (person is None):
        raise ValueError("a feed belongs to exactly one schedule or one person")
    # Lock the owner's row so that two concurrent regenerations end with one active feed, not an error.
    if schedule is not None:
        Schedule.objects.select_for_update().filter(pk=schedule.pk).first()
    else:
        User.objects.select_for_update().filter(pk=person.pk).first()
    calendar_feed_revoke(schedule=schedule, person=person, now=now)
    token = pysecrets.token_urlsafe(32)
    feed = CalendarFeed.objects.create(
        kind=CalendarFeed.Kind.SCHEDULE if schedule is not None else CalendarFeed.Kind.PERSON,
        schedule=schedule,
        person=person,
        token_hash=secrets.key_hash(token),
        token_hint=token[-4:],
        created_at=now,
    )
    return feed, token


def calendar_feed_revoke(*, schedule: Schedule | None = None, person: User | None = None, now: datetime) -> int:
    """Revoke the active feed of a schedule or a person: its URL stops working at once. Returns how many were."""
    feeds = CalendarFeed.objects.active()
    feeds = feeds.filter(schedule=schedule) if schedule is not None else feeds.filter(person=person)
    return feeds.update(revoked_at=now)


def calendar_feed_get(*, kind: str, token: str) -> CalendarFeed | None:
    """The active feed of `kind` with this secret token; None for anything else, and for a person's feed once the
    person is deactivated (as their API tokens are)."""
    if not token or len(token) > 100:
        return None
    return (
        CalendarFeed.objects.active()
        .select_related("schedule", "person")
        .filter(kind=kind, token_hash=secrets.key_hash(token))
        .filter(Q(person__isnull=True) | Q(person__is_active=True))
        .first()
    )


def _uid(row: ShiftRow, cut: datetime, horizon: datetime) -> str:
    """Stable across fetches, so calendar apps update a shift instead of duplicating it: a shift is known by its
    start, or, when it began before `cut` (and so is listed from there), by its end, or, when it also runs past
    `horizon`, as the one that spans them (a person holds a role in one stretch at a time)."""
    key = f"shift-{row.schedule.pk}-{row.person.pk}-{row.role}"
    if row.start > cut:
        return f"{key}-{int(row.start.timestamp())}@oncall"
    if row.end < horizon:
        return f"{key}-until-{int(row.end.timestamp())}@oncall"
    return f"{key}-ongoing@oncall"


def _event(row: ShiftRow, summary: str, now: datetime, uid: str) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", now)
    event.add("dtstart", row.start)
    event.add("dtend", row.end)
    event.add("summary", summary)
    event.add("description", _("On call in schedule %(schedule)s as %(role)s.") % _names(row))
    event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
    return event


def _names(row: ShiftRow) -> dict:
    return {"schedule": row.schedule.name, "role": str(row.role_label).lower(), "person": row.person.display_name}


def _calendar(name: str, time_zone: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", "-//On-call//Schedules//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", time_zone)
    return calendar


def calendar_feed_ics(*, feed: CalendarFeed, now: datetime) -> bytes:
    """The feed's calendar: the shifts of the past 7 and the next 60 days, times in UTC."""
    start, end = now - PAST, now + FUTURE
    if feed.kind == CalendarFeed.Kind.SCHEDULE:
        schedule = feed.schedule
        calendar = _calendar(_("On call: %(schedule)s") % {"schedule": schedule.name}, schedule.time_zone)
        rows = schedule_shift_rows(schedule=schedule, start=start - LOOK_BACK, end=end)
        summary = _("%(person)s on call (%(role)s)")
    else:
        person = feed.person
        calendar = _calendar(_("My on-call shifts (%(person)s)") % {"person": person.display_name}, person.time_zone)
        rows = person_shift_rows(person=person, start=start - LOOK_BACK, end=end)
        summary = _("On call: %(schedule)s (%(role)s)")
    for row in rows:
        if row.end > start:
            uid = _uid(row, start - LOOK_BACK, end)
            calendar.add_component(_event(row, summary % _names(row), now, uid))
    return calendar.to_ical()
