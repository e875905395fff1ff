"""PagerDuty-compatible ingest: `POST /event/push/alert/pagerduty[?integration_key=K]` and `POST /v2/enqueue`.

A monitor configured for PagerDuty's Events API (v2, or the v1 generic events API) works by changing only the host,
so these endpoints answer in PagerDuty's shapes, not in the Flashduty envelope:

- v2 success: 202 `{"status": "success", "message": "Event processed", "dedup_key": "…"}`, also for an
  acknowledge or resolve of an alert that is not open (PagerDuty drops those silently too; nothing is written).
- v1 success: 200 `{"status": "success", "message": "Event processed", "incident_key": "…"}`.
- Any refusal: 400 `{"status": "invalid event", "message": "Event object is invalid", "errors": ["…"]}`, each error
  naming its field. That covers a bad event, a body that is not JSON, not `application/json` or over the size
  limit (PagerDuty answers 400 to bodies over 512 KB), a missing, unknown or disabled integration key (PagerDuty
  answers "Invalid routing key" with 400, not 401/403; the error names the field the key came from:
  `integration_key` from the query, else `routing_key` (v2) or `service_key` (v1)), and a trigger that matches no
  routing rule of an integration without a default route (acknowledge and resolve are never refused for that).
- The database unavailable (down, restarting, out of connections): 503 `{"status": "unavailable", "message": …,
  "errors": ["…"]}` with `Retry-After`, for v1 and v2 alike: the event was not stored, and every PagerDuty client
  retries a 5xx.
- Over the integration's rate limit: PagerDuty's throttle body `{"status": "throttle exceeded", "message": …}` with
  `Retry-After` and, as an addition, `errors` naming the limit. The status is 429 for v2 events, as PagerDuty's
  Events API v2 answers; for v1 events it is 403, which is what the v1 API answered and what v1 clients retry on
  (Alertmanager's notify/pagerduty/pagerduty.go retries 403 for v1 and 429 for v2; PagerDuty's pdagent retries
  403 and drops an event answered with any other 4xx).

The key comes from `?integration_key=` when given (Flashduty's push URL), else from the body: `routing_key` (v2) or
`service_key` (v1). `/v2/enqueue` reads the body only, as PagerDuty does. Both accept v1 and v2 bodies. An accepted
event is stored as one batch (`events_accept`) and processed by the worker in arrival order with the
integration's other pushes, like every format; a refusal writes nothing.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from oncall.api import envelope
from oncall.api.errors import DATABASE_RETRY_AFTER_SECONDS
from oncall.api.ingest import IngestError, check_rate_limit, read_json_body, resolve_integration
from oncall.errors import ApplicationError
from oncall.lib import clock
from oncall.services.ingest import events_accept
from oncall.sources import pagerduty
from oncall.sources.base import SourceError

logger = logging.getLogger(__name__)

PROCESSED = "Event processed"
INVALID_STATUS = "invalid event"
INVALID_MESSAGE = "Event object is invalid"
THROTTLE_STATUS = "throttle exceeded"
THROTTLE_MESSAGE = "Requests for this service are arriving too quickly. Please retry later."
UNAVAILABLE_STATUS = "unavailable"
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable. Please retry later."


def _answer(name: str, **fields) -> serializers.Serializer:
    return inline_serializer(name, {"status": serializers.CharField(), "message": serializers.CharField(), **fields})


_EVENT_V2 = inline_serializer(
    "PagerDutyEventV2",
    {
        "routing_key": serializers.CharField(required=False, help_text="The integration key (also ?integration_key=)."),
        "event_action": serializers.ChoiceField(choices=pagerduty.ACTIONS),
        "dedup_key": serializers.CharField(required=False, max_length=pagerduty.DEDUP_KEY_MAX),
        "payload": inline_serializer(
            "PagerDutyPayload",
            {
                "summary": serializers.CharField(max_length=pagerduty.SUMMARY_MAX),
                "source": serializers.CharField(),
                # A plain string in the schema: a "severity" enum would clash with the platform's own Severity.
                "severity": serializers.CharField(help_text=" | ".join(pagerduty.SEVERITIES)),
                "timestamp": serializers.DateTimeField(required=False),
                "component": serializers.CharField(required=False),
                "group": serializers.CharField(required=False),
                "class": serializers.CharField(required=False),
                "custom_details": serializers.DictField(required=False),
            },
            required=False,
        ),
        "images": serializers.ListField(child=serializers.DictField(), required=False),
        "links": serializers.ListField(child=serializers.DictField(), required=False),
        "client": serializers.CharField(required=False),
        "client_url": serializers.URLField(required=False),
    },
)
_THROTTLED = _answer("PagerDutyThrottled", errors=serializers.ListField(child=serializers.CharField()))
_RESPONSES = {
    202: OpenApiResponse(_answer("PagerDutyAccepted", dedup_key=serializers.CharField()), "A v2 event was processed."),
    200: OpenApiResponse(
        _answer("PagerDutyAcceptedV1", incident_key=serializers.CharField()), "A v1 event was processed."
    ),
    400: OpenApiResponse(
        _answer("PagerDutyInvalid", errors=serializers.ListField(child=serializers.CharField())),
        "invalid event: each error names its field (also an unknown or disabled key). Nothing stored.",
    ),
    403: OpenApiResponse(_THROTTLED, "A v1 event over the integration's rate limit; see Retry-After."),
    429: OpenApiResponse(_THROTTLED, "A v2 event over the integration's rate limit; see Retry-After."),
    503: OpenApiResponse(
        _answer("PagerDutyUnavailable", errors=serializers.ListField(child=serializers.CharField())),
        "The database is unavailable: nothing stored; retry after Retry-After.",
    ),
}


class PagerDutyRefusal(Exception):
    def __init__(self, status: int, body: dict, headers: dict | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status, self.body, self.headers = status, body, headers or {}


def _invalid(*errors: str) -> PagerDutyRefusal:
    return PagerDutyRefusal(400, {"status": INVALID_STATUS, "message": INVALID_MESSAGE, "errors": list(errors)})


def _respond(request, status: int, body: dict, headers: dict | None = None) -> Response:
    rid = envelope.request_id(request)
    return Response(body, status=status, headers={"X-Request-Id": rid, **(headers or {})})


class PagerDutyEventApi(APIView):
    """Receives one PagerDuty Events API event (v2 or v1) and answers as PagerDuty would."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    key_from_query = True

    @extend_schema(
        operation_id="alert_push_pagerduty",
        summary="Push a PagerDuty Events API event (v2 or v1)",
        tags=["ingest"],
        auth=[],
        parameters=[
            OpenApiParameter(
                "integration_key", str, OpenApiParameter.QUERY, description="Else the body's routing_key/service_key."
            )
        ],
        request={"application/json": _EVENT_V2},
        responses=_RESPONSES,
    )
    def post(self, request):
        try:
            payload, integration, api_version = self._admit(request)
            now = clock.now()
            try:
                events = pagerduty.parse(payload, now=now)
            except pagerduty.InvalidEvent as exc:
                raise _invalid(*exc.errors) from None
            except SourceError as exc:
                raise _invalid(f"'{exc.field}' {exc.message}") from None
            try:
                events_accept(integration=integration, events=events, now=now)
            except ApplicationError as exc:
                field = f"'{exc.field}' " if exc.field else ""
                raise _invalid(f"{field}{exc.message}") from None
        except PagerDutyRefusal as refusal:
            return _respond(request, refusal.status, refusal.body, refusal.headers)
        key = events[0].alert_key
        if api_version == 1:
            return _respond(request, 200, {"status": "success", "message": PROCESSED, "incident_key": key})
        return _respond(request, 202, {"status": "success", "message": PROCESSED, "dedup_key": key})

    def handle_exception(self, exc):
        if isinstance(exc, (OperationalError, InterfaceError)):
            # The transaction that stores the event rolled back: a retryable failure, in PagerDuty's shape.
            logger.warning("Database unavailable: %s", exc)
            body = {"status": UNAVAILABLE_STATUS, "message": UNAVAILABLE_MESSAGE, "errors": [UNAVAILABLE_MESSAGE]}
            return _respond(self.request, 503, body, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
        return super().handle_exception(exc)

    def _admit(self, request):
        """The body, the integration it is for and its API version, or a PagerDutyRefusal."""
        try:
            payload = read_json_body(request)
        except IngestError as exc:
            raise _invalid(exc.message) from None  # each names what it is about: the body or its Content-Type
        api_version = pagerduty.version(payload)
        query_key = request.query_params.get("integration_key", "").strip() if self.key_from_query else ""
        if query_key:
            key, field = query_key, "integration_key"
        else:
            field = pagerduty.key_field(payload)
            try:
                key = pagerduty.routing_key(payload)
            except pagerduty.InvalidEvent as exc:
                raise _invalid(*exc.errors) from None
        try:
            integration = resolve_integration(key)
        except IngestError as exc:
            raise _invalid(_key_error(field, exc.code, given=bool(key))) from None
        try:
            check_rate_limit(integration)
        except IngestError as exc:
            body = {"status": THROTTLE_STATUS, "message": THROTTLE_MESSAGE, "errors": [exc.message]}
            raise PagerDutyRefusal(403 if api_version == 1 else 429, body, exc.headers) from None
        return payload, integration, api_version


def _key_error(field: str, code: str, *, given: bool) -> str:
    if not given:
        return _("'%(field)s' is missing or blank") % {"field": field}
    if code == envelope.ACCESS_DENIED:
        return _("'%(field)s' names a disabled integration") % {"field": field}
    return _("'%(field)s' is invalid: no integration has this key") % {"field": field}


class PagerDutyEnqueueApi(PagerDutyEventApi):
    """PagerDuty's own path, `/v2/enqueue`: the integration key is the body's `routing_key`, as at PagerDuty."""

    key_from_query = False

    @extend_schema(
        operation_id="pagerduty_enqueue",
        summary="PagerDuty's Events API v2 path",
        tags=["ingest"],
        auth=[],
        request={"application/json": _EVENT_V2},
        responses=_RESPONSES,
    )
    def post(self, request):
        return super().post(request)
