"""REST API for incidents: list and search, create, detail, edit, alerts, timeline and the lifecycle actions.

An incident the requester may not see answers 404, exactly like one that does not exist, for reads and actions
alike: the API never reveals that an incident of another team exists. Ids named in a request body that do not
resolve (a channel, people, a merge target) are a 400 naming the field.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from escalation.services import escalation_level_count
from oncall.api import envelope
from oncall.api.fields import IdField
from oncall.api.pagination import PageInputSerializer, page_data, page_serializer, paginate
from oncall.api.serializers import (
    AlertSerializer,
    IncidentSerializer,
    TimelineEntrySerializer,
    envelope_of,
    errors,
    items_data,
    items_of,
)
from oncall.errors import ApplicationError
from oncall.lib import clock
from oncall.models import (
    Alert,
    ApiToken,
    Incident,
    Progress,
    Severity,
    Source,
    TimelineEntry,
    User,
)
from oncall.selectors import channel_list_visible, incident_get_visible, incident_list, incident_list_with_details
from oncall.services import lifecycle

TAGS = ["incidents"]
PERSON_IDS_MAX = 100
DESCRIPTION_MAX = 10_000

INCIDENT_ENVELOPE = envelope_of("IncidentEnvelope", IncidentSerializer())
INCIDENT_PAGE_ENVELOPE = envelope_of("IncidentPageEnvelope", page_serializer("IncidentPage", IncidentSerializer))
ALERT_PAGE_ENVELOPE = envelope_of("AlertPageEnvelope", page_serializer("AlertPage", AlertSerializer))
TIMELINE_ENVELOPE = envelope_of("TimelineEnvelope", items_of("Timeline", TimelineEntrySerializer))
TIMELINE_ENTRY_ENVELOPE = envelope_of("TimelineEntryEnvelope", TimelineEntrySerializer())
INCIDENT_ID = OpenApiParameter("incident_id", int, OpenApiParameter.PATH, description="The incident's id (number).")


def action_source(request) -> str:
    """Where an action came from, as the timeline tells it: the phone app (its token was issued by a QR code, even
    while its push token is being renewed and it has no device), a script with a token, or a browser session."""
    if isinstance(request.auth, ApiToken):
        return Source.APP if request.auth.for_app else Source.API
    return Source.WEB


def incident_get_or_404(request, incident_id: int) -> Incident:
    incident = incident_get_visible(user=request.user, incident_id=incident_id)
    if incident is None:
        raise NotFound(_("Incident #%(n)s does not exist or you may not see it.") % {"n": incident_id})
    return incident


def incident_data(incident_id: int) -> dict:
    return IncidentSerializer(incident_list_with_details(Incident.objects.filter(pk=incident_id)).get()).data


def people_get(ids: list[int], *, field: str) -> list[User]:
    """The active people `ids` name, in order, or a 400 naming `field` and the ids that name nobody."""
    found = {person.pk: person for person in User.objects.filter(pk__in=ids, is_active=True)}
    unknown = [str(pk) for pk in ids if pk not in found]
    if unknown:
        raise ApplicationError(
            _("No active person has the id %(ids)s.") % {"ids": ", ".join(unknown)},
            field=field,
        )
    return [found[pk] for pk in dict.fromkeys(ids)]


class MultipleChoiceQueryField(serializers.ListField):
    """A filter that takes several values, repeated (`?progress=Triggered&progress=Processing`) or comma-separated
    (`?progress=Triggered,Processing`)."""

    def __init__(self, *, choices, **kwargs) -> None:
        self.allowed = [value for value, _label in choices]
        super().__init__(child=serializers.ChoiceField(choices=choices), **kwargs)

    def to_internal_value(self, data) -> list[str]:
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            self.fail("not_a_list", input_type=type(data).__name__)
        values = [value.strip() for item in data for value in item.split(",") if value.strip()]
        unknown = [value for value in values if value not in self.allowed]
        if unknown:
            raise serializers.ValidationError(
                _("%(value)r is not one of %(allowed)s.") % {"value": unknown[0], "allowed": ", ".join(self.allowed)}
            )
        return list(dict.fromkeys(values))


def person_ids_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=IdField(), min_length=1, max_length=PERSON_IDS_MAX, **kwargs)


# -- collection: list and create ---------------------------------------------------------------------------------


class IncidentListApi(APIView):
    class FilterSerializer(PageInputSerializer):
        progress = MultipleChoiceQueryField(
            choices=Progress.choices, required=False, help_text="Repeat it or separate values with commas."
        )
        severity = MultipleChoiceQueryField(
            choices=Severity.choices, required=False, help_text="Repeat it or separate values with commas."
        )
        channel = IdField(required=False, help_text="A channel id.")
        mine = serializers.BooleanField(default=False, help_text="Only incidents I am a responder of.")
        since = serializers.DateTimeField(required=False, help_text="Started at or after (ISO-8601).")
        until = serializers.DateTimeField(required=False, help_text="Started before (ISO-8601).")
        q = serializers.CharField(
            required=False, allow_blank=True, max_length=200, help_text="Text in the title or description."
        )

        def validate(self, attrs):
            if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
                raise serializers.ValidationError({"until": _("until must be later than since.")})
            return attrs

    @extend_schema(
        operation_id="incident_list",
        summary="List and search incidents",
        tags=TAGS,
        parameters=[FilterSerializer],
        responses={200: INCIDENT_PAGE_ENVELOPE, **errors(400)},
    )
    def get(self, request):
        """Incidents you may see (your teams' channels' and those you respond to; staff see all), newest first."""
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        incidents = incident_list(
            user=request.user,
            progress=f.get("progress"),
            severity=f.get("severity"),
            channel_id=f.get("channel"),
            mine=f["mine"],
            since=f.get("since"),
            until=f.get("until"),
            text=f.get("q", ""),
        )
        page = paginate(
            incidents.order_by("-start_time", "-id"), p=f["p"], limit=f["limit"], decorate=incident_list_with_details
        )
        return envelope.ok(request, page_data(page, IncidentSerializer))


class IncidentCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        channel_id = IdField(help_text="A channel of one of your teams.")
        title = serializers.CharField(max_length=lifecycle.TITLE_MAX)
        severity = serializers.ChoiceField(choices=Severity.choices)
        description = serializers.CharField(required=False, allow_blank=True, default="", max_length=DESCRIPTION_MAX)
        assign_to = serializers.ListField(
            child=IdField(),
            required=False,
            default=list,
            max_length=PERSON_IDS_MAX,
            help_text="Person ids to assign it to directly; empty: the channel's escalation rules decide.",
        )

        class Meta:
            ref_name = "IncidentCreate"

    @extend_schema(
        operation_id="incident_create",
        summary="Create an incident by hand",
        tags=TAGS,
        request=InputSerializer,
        responses={201: INCIDENT_ENVELOPE, **errors(400)},
    )
    def post(self, request):
        """Open an incident without an alert, in a channel you work in."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = channel_list_visible(request.user).filter(pk=data["channel_id"]).first()
        if channel is None:
            raise ApplicationError(
                _("Channel %(id)s does not exist or is not one of your teams'.") % {"id": data["channel_id"]},
                field="channel_id",
            )
        incident = lifecycle.incident_create(
            channel=channel,
            title=data["title"],
            severity=data["severity"],
            description=data["description"],
            assign_to=people_get(data["assign_to"], field="assign_to"),
            by=request.user,
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, incident_data(incident.pk), status=201)


class IncidentListCreateApi(IncidentListApi, IncidentCreateApi):
    """/incidents/: GET lists, POST creates."""


# -- one incident: detail, edit, alerts, timeline ----------------------------------------------------------------


class IncidentDetailApi(APIView):
    @extend_schema(
        operation_id="incident_detail",
        summary="Get an incident",
        tags=TAGS,
        parameters=[INCIDENT_ID],
        responses={200: INCIDENT_ENVELOPE, **errors(404)},
    )
    def get(self, request, incident_id: int):
        """One incident with its responders and alert counts."""
        incident = incident_get_or_404(request, incident_id)
        return envelope.ok(request, incident_data(incident.pk))


class IncidentUpdateApi(APIView):
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(required=False, max_length=lifecycle.TITLE_MAX)
        description = serializers.CharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX)
        severity = serializers.ChoiceField(required=False, choices=Severity.choices)

        class Meta:
            ref_name = "IncidentEdit"

    @extend_schema(
        operation_id="incident_edit",
        summary="Edit title, description or severity",
        tags=TAGS,
        parameters=[INCIDENT_ID],
        request=InputSerializer,
        responses={200: INCIDENT_ENVELOPE, **errors(400, 404)},
    )
    def patch(self, request, incident_id: int):
        """Edited fields stick: later alerts no longer change them."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.incident_edit(
            incident=incident,
            by=request.user,
            source=action_source(request),
            now=clock.now(),
            **serializer.validated_data,
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentDetailUpdateApi(IncidentDetailApi, IncidentUpdateApi):
    """/incidents/{id}/: GET reads, PATCH edits."""


class IncidentAlertListApi(APIView):
    @extend_schema(
        operation_id="incident_alerts",
        summary="List an incident's alerts",
        tags=TAGS,
        parameters=[INCIDENT_ID, PageInputSerializer],
        responses={200: ALERT_PAGE_ENVELOPE, **errors(400, 404)},
    )
    def get(self, request, incident_id: int):
        """The alerts grouped into the incident, newest first."""
        incident = incident_get_or_404(request, incident_id)
        page_input = PageInputSerializer(data=request.query_params)
        page_input.is_valid(raise_exception=True)
        alerts = Alert.objects.filter(incident=incident).select_related("integration").order_by("-start_time", "-id")
        page = paginate(alerts, **page_input.validated_data)
        return envelope.ok(request, page_data(page, AlertSerializer))


class IncidentTimelineApi(APIView):
    @extend_schema(
        operation_id="incident_timeline",
        summary="Read an incident's timeline",
        tags=TAGS,
        parameters=[INCIDENT_ID],
        responses={200: TIMELINE_ENVELOPE, **errors(404)},
    )
    def get(self, request, incident_id: int):
        """Every entry of the incident's history, oldest first."""
        incident = incident_get_or_404(request, incident_id)
        entries = TimelineEntry.objects.filter(incident=incident).select_related("actor").order_by("at", "id")
        return envelope.ok(request, items_data(entries, TimelineEntrySerializer))


# -- lifecycle actions: each answers with the incident as it is now ----------------------------------------------


def action_schema(operation_id: str, summary: str, *, request=None, statuses=(404, 409), response=INCIDENT_ENVELOPE):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        tags=TAGS,
        parameters=[INCIDENT_ID],
        request=request,
        responses={201 if response is TIMELINE_ENTRY_ENVELOPE else 200: response, **errors(*statuses)},
    )


class IncidentAcknowledgeApi(APIView):
    @action_schema("incident_acknowledge", "Acknowledge")
    def post(self, request, incident_id: int):
        """Take the incident: it moves to Processing and its escalation stops. You become a responder."""
        incident = incident_get_or_404(request, incident_id)
        lifecycle.incident_acknowledge(
            incident=incident, by=request.user, source=action_source(request), now=clock.now()
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentUnacknowledgeApi(APIView):
    @action_schema("incident_unacknowledge", "Unacknowledge")
    def post(self, request, incident_id: int):
        """Give your acknowledgement back; when nobody acknowledges any more it is Triggered again."""
        incident = incident_get_or_404(request, incident_id)
        lifecycle.incident_unacknowledge(
            incident=incident, by=request.user, source=action_source(request), now=clock.now()
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentCloseApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=lifecycle.REASON_MAX)

        class Meta:
            ref_name = "IncidentClose"

    @action_schema("incident_close", "Close", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Close the incident and its open alerts; a still-firing monitor then opens a new alert."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.incident_resolve(
            incident=incident,
            by=request.user,
            reason=serializer.validated_data["reason"],
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentReopenApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=lifecycle.REASON_MAX)

        class Meta:
            ref_name = "IncidentReopen"

    @action_schema("incident_reopen", "Reopen", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Bring a closed incident back to Triggered; people are notified again. A reason is required."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.incident_reopen(
            incident=incident,
            by=request.user,
            reason=serializer.validated_data["reason"],
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentSnoozeApi(APIView):
    class InputSerializer(serializers.Serializer):
        minutes = serializers.IntegerField(
            min_value=lifecycle.SNOOZE_MIN_MINUTES, max_value=lifecycle.SNOOZE_MAX_MINUTES
        )

        class Meta:
            ref_name = "IncidentSnooze"

    @action_schema("incident_snooze", "Snooze", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Pause an acknowledged incident for 1 to 1440 minutes; then it is Triggered again."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.incident_snooze(
            incident=incident,
            by=request.user,
            minutes=serializer.validated_data["minutes"],
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentWakeApi(APIView):
    @action_schema("incident_wake", "Wake")
    def post(self, request, incident_id: int):
        """End a snooze now: the incident is Triggered again and people are notified."""
        incident = incident_get_or_404(request, incident_id)
        lifecycle.incident_wake(incident=incident, by=request.user, source=action_source(request), now=clock.now())
        return envelope.ok(request, incident_data(incident.pk))


class IncidentEscalateApi(APIView):
    class InputSerializer(serializers.Serializer):
        level = serializers.IntegerField(min_value=1, help_text="The level of the escalation rule, from 1.")

        class Meta:
            ref_name = "IncidentEscalate"

    @action_schema("incident_escalate", "Escalate to a level", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Notify a level of the incident's escalation rule now and go on escalating from there."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        level = serializer.validated_data["level"]
        levels = escalation_level_count(incident)
        if level > levels:
            raise ApplicationError(
                _("The incident's escalation rule has %(n)d level(s); there is no level %(level)d.")
                % {"n": levels, "level": level}
                if levels
                else _("No escalation rule applies to this incident; reassign it instead."),
                field="level",
            )
        lifecycle.incident_escalate(
            incident=incident, by=request.user, level=level - 1, source=action_source(request), now=clock.now()
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentReassignApi(APIView):
    class InputSerializer(serializers.Serializer):
        person_ids = person_ids_field(help_text="The new responders; they replace the current ones.")

        class Meta:
            ref_name = "IncidentReassign"

    @action_schema("incident_reassign", "Reassign", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Hand the incident to these people instead of its current responders; they are notified."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.incident_reassign(
            incident=incident,
            by=request.user,
            people=people_get(serializer.validated_data["person_ids"], field="person_ids"),
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentAddRespondersApi(APIView):
    class InputSerializer(serializers.Serializer):
        person_ids = person_ids_field(help_text="People to add; current responders stay.")

        class Meta:
            ref_name = "IncidentAddResponders"

    @action_schema("incident_add_responders", "Add responders", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Add people to the responders without removing anyone; the new ones are notified."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.incident_add_responders(
            incident=incident,
            by=request.user,
            people=people_get(serializer.validated_data["person_ids"], field="person_ids"),
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, incident_data(incident.pk))


class IncidentCommentApi(APIView):
    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=lifecycle.COMMENT_MAX)

        class Meta:
            ref_name = "IncidentComment"

    @action_schema(
        "incident_comment", "Comment", request=InputSerializer, statuses=(400, 404), response=TIMELINE_ENTRY_ENVELOPE
    )
    def post(self, request, incident_id: int):
        """Add a comment to the timeline; answers with the new timeline entry."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = lifecycle.incident_comment(
            incident=incident,
            by=request.user,
            text=serializer.validated_data["text"],
            source=action_source(request),
            now=clock.now(),
        )
        return envelope.ok(request, TimelineEntrySerializer(entry).data, status=201)


class IncidentMergeApi(APIView):
    class InputSerializer(serializers.Serializer):
        target_id = IdField(help_text="The incident to merge this one into.")

        class Meta:
            ref_name = "IncidentMerge"

    @action_schema("incident_merge", "Merge into another incident", request=InputSerializer, statuses=(400, 404, 409))
    def post(self, request, incident_id: int):
        """Move every alert of this incident into the target (any channel you may see) and close this one as
        merged; answers with this incident, whose `merged_into` names the target."""
        incident = incident_get_or_404(request, incident_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        target_id = serializer.validated_data["target_id"]
        target = incident_get_visible(user=request.user, incident_id=target_id)
        if target is None:
            raise ApplicationError(
                _("Incident #%(n)s does not exist or you may not see it.") % {"n": target_id}, field="target_id"
            )
        if target.pk == incident.pk:
            raise ApplicationError(_("An incident cannot be merged into itself."), field="target_id")
        lifecycle.incident_merge(
            incident=incident, into=target, by=request.user, source=action_source(request), now=clock.now()
        )
        return envelope.ok(request, incident_data(incident.pk))
