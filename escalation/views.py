"""iCalendar feed views: thin; the secret token in the URL is the only credential, so an unknown one is a 404."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from escalation.feeds import calendar_feed_get, calendar_feed_ics
from escalation.models import CalendarFeed
from oncall.lib import clock

# What a feed token looks like in a URL (token_urlsafe); anything else never reaches the database.
FEED_PATH = r"(?P<token>[A-Za-z0-9_-]{20,100})\.ics"


def _feed(kind: str, token: str) -> HttpResponse:
    feed = calendar_feed_get(kind=kind, token=token)
    if feed is None:
        raise Http404("No such calendar.")
    response = HttpResponse(calendar_feed_ics(feed=feed, now=clock.now()), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="oncall.ics"'
    # The URL is a secret: shared caches must not keep it; calendar apps poll anyway.
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def schedule_feed(request, token: str) -> HttpResponse:
    """The shifts of one schedule."""
    return _feed(CalendarFeed.Kind.SCHEDULE, token)


@require_GET
def person_feed(request, token: str) -> HttpResponse:
    """One person's shifts across their schedules."""
    return _feed(CalendarFeed.Kind.PERSON, token)
