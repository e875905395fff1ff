"""Output shapes the REST API shares between endpoints, and the envelope they travel in (for the OpenAPI schema).

Views parse their own input with nested Input serializers; what they send back is defined once here, so an
incident looks the same in a list, a detail and the answer to an action.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from channels_app.messages import incident_detail_url
from oncall.models import AlertProgress, EventStatus, Progress, Severity, Source, TimelineEntry


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")


class ChannelRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class IntegrationRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ResponderSerializer(serializers.Serializer):
    person_id = serializers.IntegerField()
    name = serializers.CharField(source="person.display_name")
    email = serializers.EmailField(source="person.email")
    assigned_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class IncidentSerializer(serializers.Serializer):
    """An incident as people handle it. Expects rows from `incidents_for_output` (counts and responders loaded)."""

    id = serializers.IntegerField()
    number = serializers.IntegerField(help_text="The short number people say.")
    title = serializers.CharField()
    description = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    status = serializers.ChoiceField(
        choices=EventStatus.choices, help_text="The severity while alerts fire; Ok once every alert has recovered."
    )
    progress = serializers.ChoiceField(choices=Progress.choices)
    channel = ChannelRefSerializer()
    labels = serializers.DictField(child=serializers.CharField())
    start_time = serializers.DateTimeField()
    last_time = serializers.DateTimeField()
    ack_time = serializers.DateTimeField(allow_null=True, help_text="First acknowledgement.")
    close_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(
        allow_null=True,
        help_text="When every alert had recovered; null while one fires, and once the incident is reopened.",
    )
    snoozed_until = serializers.DateTimeField(allow_null=True)
    created_by = PersonRefSerializer(allow_null=True, help_text="Null when a monitor opened it.")
    closed_by = PersonRefSerializer(allow_null=True, help_text="Null when open or closed by the system.")
    responders = ResponderSerializer(many=True, source="responder_set.all")
    alert_count = serializers.IntegerField()
    active_alert_count = serializers.IntegerField()
    manual_overrides = serializers.ListField(
        child=serializers.CharField(), help_text="Fields edited by hand; alerts no longer change them."
    )
    merged_into = serializers.IntegerField(source="merged_into_id", allow_null=True)
    detail_url = serializers.SerializerMethodField()

    def get_detail_url(self, incident) -> str:
        return incident_detail_url(incident.pk)


class ImageSerializer(serializers.Serializer):
    src = serializers.CharField()
    alt = serializers.CharField(required=False, allow_blank=True)
    href = serializers.CharField(required=False, allow_blank=True)


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    alert_key = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    status = serializers.ChoiceField(choices=EventStatus.choices)
    progress = serializers.ChoiceField(choices=AlertProgress.choices)
    labels = serializers.DictField(child=serializers.CharField())
    images = ImageSerializer(many=True)
    event_count = serializers.IntegerField()
    start_time = serializers.DateTimeField()
    last_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField(allow_null=True)
    close_time = serializers.DateTimeField(allow_null=True)
    integration = IntegrationRefSerializer()


class TimelineEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=TimelineEntry.Kind.choices)
    message = serializers.CharField()
    actor = PersonRefSerializer(allow_null=True, help_text="Null for the system or a monitor.")
    source = serializers.ChoiceField(choices=Source.choices)
    detail = serializers.DictField()


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    token_hint = serializers.CharField(help_text="The first characters of the token, to recognise it.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    for_app = serializers.BooleanField(
        help_text="Given to the phone app when it linked itself by QR code; false for a token made for scripts "
        "(at most 5 of those may be active)."
    )
    device_id = serializers.IntegerField(
        allow_null=True,
        help_text="The linked device the phone app holding this token pushes to (unlinking it revokes the token). "
        "Null for a token made for scripts, and for an app whose push service forgot its push token until the app "
        "links its new one.",
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The secret value. Shown this once: store it now.")


class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    time_zone = serializers.CharField()
    teams = TeamRefSerializer(many=True, source="teams.all")


class StandardEventSerializer(serializers.Serializer):
    """Flashduty's standard alert event (documentation of the push endpoint; the source adapter parses it)."""

    title_rule = serializers.CharField(
        help_text="The alert's title, up to 512 characters (longer is cut); `title` is accepted as an alias."
    )
    # Plain values: the wire format of a push is its own public interface, named apart from incident status.
    event_status = serializers.ChoiceField(
        choices=EventStatus.values, help_text="Critical, Warning or Info while firing; Ok when recovered."
    )
    alert_key = serializers.CharField(
        required=False,
        max_length=255,
        help_text="Events with the same key merge into one alert. Generated and returned when absent; required for Ok.",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, help_text="Up to 2048 characters (longer is cut)."
    )
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, help_text="Up to 50 pairs."
    )
    images = ImageSerializer(many=True, required=False)


class AlertPushResultSerializer(serializers.Serializer):
    alert_key = serializers.CharField(required=False, help_text="The standard format: the alert's key.")
    alert_keys = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Other formats: one key per alert in the push."
    )
    not_routed = serializers.ListField(
        child=inline_serializer(
            "NotRoutedEvent", {"alert_key": serializers.CharField(), "message": serializers.CharField()}
        ),
        required=False,
        help_text="Other formats: alerts left out because they match no routing rule (the rest were stored).",
    )


def items_data(rows, item_serializer: type[serializers.Serializer]) -> dict:
    """An unpaginated list: `{"items": [...]}`."""
    return {"items": item_serializer(rows, many=True).data}


# -- the envelope, for the schema ------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable: InvalidParameter, Unauthorized, ResourceNotFound, ...")
    message = serializers.CharField(help_text="For people; may change.")
    field = serializers.CharField(required=False, help_text="The request field the error is about.")


class ErrorEnvelopeSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    error = ErrorSerializer()


_envelopes: dict[str, serializers.Serializer] = {}


def envelope_of(name: str, data: serializers.Field) -> serializers.Serializer:
    """The schema of `{"request_id", "data": <data>}` (documentation only); one component per name."""
    if name not in _envelopes:
        _envelopes[name] = inline_serializer(name=name, fields={"request_id": serializers.CharField(), "data": data})
    return _envelopes[name]


_item_lists: dict[str, serializers.Serializer] = {}


def items_of(name: str, item_serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of `{"items": [...]}` (documentation only); one component per name."""
    if name not in _item_lists:
        _item_lists[name] = inline_serializer(name=name, fields={"items": item_serializer(many=True)})
    return _item_lists[name]


def error_doc(description: str) -> OpenApiResponse:
    """An error response of the schema: the error envelope, with what the status means here."""
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


ERROR_400 = error_doc("InvalidParameter: a value is missing or wrong; `field` names it.")
ERROR_401 = error_doc("Unauthorized: no credentials, or an invalid or revoked API token.")
ERROR_404 = error_doc("ResourceNotFound: it does not exist or you may not see it.")
ERROR_409 = error_doc("IllegalTransition: the incident is not in a state that allows this action.")


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for an operation; 401 applies to every authenticated endpoint."""
    table = {400: ERROR_400, 401: ERROR_401, 404: ERROR_404, 409: ERROR_409}
    return {status: table[status] for status in sorted({401, *statuses})}
