"""REST API for the requester's own on-call shifts and their personal calendar feed. Only ever their own."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from escalation.feeds import calendar_feed_create, calendar_feed_revoke, calendar_feed_url
from escalation.models import CalendarFeed, Role
from escalation.schedules import LOOK_BACK, person_shift_rows
from oncall.api import envelope
from oncall.api.serializers import envelope_of, errors, items_data, items_of
from oncall.lib import clock

TAGS = ["me"]
DAYS_DEFAULT = 14
DAYS_MAX = 90


class ScheduleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    time_zone = serializers.CharField(help_text="The schedule's time zone: handoffs are at its wall-clock times.")


class ShiftSerializer(serializers.Serializer):
    schedule = ScheduleRefSerializer()
    role = serializers.ChoiceField(choices=Role.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Cut at the end of the asked range when the shift runs on.")


class CalendarFeedSerializer(serializers.Serializer):
    token_hint = serializers.CharField(help_text="The last characters of the secret in the URL, to recognise it.")
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class CalendarFeedCreatedSerializer(CalendarFeedSerializer):
    url = serializers.CharField(help_text="Subscribe to it in a calendar app. Shown this once: store it now.")


SHIFT_LIST_ENVELOPE = envelope_of("ShiftListEnvelope", items_of("ShiftList", ShiftSerializer))
FEED_ENVELOPE = envelope_of("CalendarFeedEnvelope", CalendarFeedSerializer())
FEED_CREATED_ENVELOPE = envelope_of("CalendarFeedCreatedEnvelope", CalendarFeedCreatedSerializer())


class MyShiftListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(
            min_value=1,
            max_value=DAYS_MAX,
            default=DAYS_DEFAULT,
            help_text="How far ahead, in days (1 to 90).",
        )

        class Meta:
            ref_name = "ShiftFilter"

    @extend_schema(
        operation_id="my_shift_list",
        summary="List my shifts",
        tags=TAGS,
        parameters=[FilterSerializer],
        responses={200: SHIFT_LIST_ENVELOPE, **errors(400)},
    )
    def get(self, request):
        """Your on-call shifts across every enabled schedule: the one running now, if any, and those starting in
        the next `days` days, by start. Overrides are included; a shift is one stretch in one role."""
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        now = clock.now()
        rows = person_shift_rows(
            person=request.user, start=now - LOOK_BACK, end=now + timedelta(days=filters.validated_data["days"])
        )
        return envelope.ok(request, items_data([row for row in rows if row.end > now], ShiftSerializer))


class MyCalendarFeedCreateApi(APIView):
    @extend_schema(
        operation_id="calendar_feed_create",
        summary="Create or regenerate my calendar feed",
        tags=TAGS,
        request=None,
        responses={201: FEED_CREATED_ENVELOPE, **errors()},
    )
    def post(self, request):
        """A secret iCalendar URL listing your shifts (the past 7 and the next 60 days) for your calendar app. It
        is in this answer only: store it now. Asking again gives a new URL and the previous one stops working."""
        feed, token = calendar_feed_create(person=request.user, now=clock.now())
        url = calendar_feed_url(kind=CalendarFeed.Kind.PERSON, token=token)
        return envelope.ok(request, {**CalendarFeedSerializer(feed).data, "url": url}, status=201)


class MyCalendarFeedRevokeApi(APIView):
    @extend_schema(
        operation_id="calendar_feed_revoke",
        summary="Revoke my calendar feed",
        tags=TAGS,
        responses={200: FEED_ENVELOPE, **errors(404)},
    )
    def delete(self, request):
        """Revoke your calendar feed: its URL stops working at once. Answers with the revoked feed."""
        feed = CalendarFeed.objects.active().filter(person=request.user).first()
        if feed is None:
            raise NotFound(_("You have no active calendar feed."))
        calendar_feed_revoke(person=request.user, now=clock.now())
        feed.refresh_from_db()
        return envelope.ok(request, CalendarFeedSerializer(feed).data)


class MyCalendarFeedApi(MyCalendarFeedCreateApi, MyCalendarFeedRevokeApi):
    """/me/calendar-feed/: POST creates or regenerates, DELETE revokes."""
