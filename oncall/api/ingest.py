"""Ingest endpoints: `POST /event/push/alert/<format>?integration_key=KEY`.

Monitors treat 2xx as stored, 4xx as "do not retry" and 5xx as "retry later", so every refusal is a 4xx with the
Flashduty error envelope and nothing written, and only a transient failure (database unavailable) is a 5xx.
The building blocks (key lookup, rate limit, body reading) are shared with the PagerDuty-compatible endpoints,
which answer in PagerDuty's own shapes.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from oncall import sources
from oncall.api import envelope
from oncall.api.serializers import AlertPushResultSerializer, StandardEventSerializer, envelope_of, error_doc
from oncall.lib import clock, ratelimit, text
from oncall.models import Integration
from oncall.selectors import integration_get_by_key
from oncall.services.ingest import events_accept
from oncall.sources.base import IntegrationInfo, SourceError


class IngestError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        extra: dict | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.extra = extra or {}
        self.headers = headers or {}


def resolve_integration(key: str) -> Integration:
    """The enabled integration `key` names, or an IngestError (401 missing or unknown, 403 disabled)."""
    if not key:
        raise IngestError(401, envelope.UNAUTHORIZED, _("integration_key is required."), "integration_key")
    integration = integration_get_by_key(key)
    if integration is None:
        raise IngestError(401, envelope.UNAUTHORIZED, _("integration_key is not a valid one."), "integration_key")
    if not integration.enabled:
        raise IngestError(403, envelope.ACCESS_DENIED, _("This integration is disabled."), "integration_key")
    return integration


def check_rate_limit(integration: Integration) -> None:
    """Count one push against the integration's limits; an IngestError (429) names the limit it exceeds."""
    limits = (
        ratelimit.Limit(integration.rate_limit_per_second or settings.INGEST_RATE_LIMIT_PER_SECOND, 1),
        ratelimit.Limit(integration.rate_limit_per_minute or settings.INGEST_RATE_LIMIT_PER_MINUTE, 60),
    )
    exceeded = ratelimit.hit(f"integration:{integration.pk}", limits, now=clock.now().timestamp())
    if exceeded is None:
        return
    described = exceeded.limit.describe()
    raise IngestError(
        429,
        envelope.REQUEST_TOO_FREQUENTLY,
        _("Integration %(name)s exceeded its limit of %(limit)s; retry in %(s)d s.")
        % {"name": integration.name, "limit": described, "s": exceeded.retry_after},
        extra={
            "limit": described,
            "limit_max": exceeded.limit.max,
            "limit_window_seconds": exceeded.limit.window_seconds,
            "integration": {"id": integration.pk, "name": integration.name},
            "retry_after": exceeded.retry_after,
        },
        headers={"Retry-After": str(exceeded.retry_after)},
    )


def read_json_body(request) -> object:
    """The request body as JSON, within the size limit and with the right content type, or an IngestError."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise IngestError(
            400,
            envelope.INVALID_CONTENT_TYPE,
            _("Content-Type must be application/json, not %(type)r.") % {"type": content_type},
        )
    limit = settings.INGEST_MAX_BODY_BYTES
    too_large = IngestError(413, envelope.REQUEST_TOO_LARGE, _("The body exceeds %(kb)d KB.") % {"kb": limit // 1024})
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    try:
        body = request._request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    if not body.strip():
        raise IngestError(400, envelope.INVALID_PARAMETER, _("The body is empty; send a JSON object."), "body")
    # UTF-8, as JSON travels (RFC 8259): json.loads would also take UTF-16/32 and read surrogates written out as
    # UTF-8 bytes, both past the cheap test below. Such surrogates (some encoders write them) are read and then
    # replaced like escaped ones; any other byte that is not UTF-8 is refused.
    surrogates = False
    try:
        document = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            document, surrogates = body.decode("utf-8-sig", "surrogatepass"), True
        except UnicodeDecodeError as exc:
            raise IngestError(
                400, envelope.INVALID_PARAMETER, _("The body is not UTF-8 text: %(error)s") % {"error": exc}, "body"
            ) from None
    try:
        payload = json.loads(document)
    except ValueError as exc:
        raise IngestError(
            400, envelope.INVALID_PARAMETER, _("The body is not valid JSON: %(error)s") % {"error": exc}, "body"
        ) from None
    except RecursionError:
        raise IngestError(
            400, envelope.INVALID_PARAMETER, _("The body is nested too deeply to be read as JSON."), "body"
        ) from None
    # NULs and unpaired surrogates cannot be stored; drop them rather than refuse the monitor's alert.
    return text.clean(payload) if surrogates or text.json_needs_cleaning(document) else payload


def error_response(request, exc: IngestError):
    response = envelope.error(request, exc.status, exc.code, exc.message, field=exc.field, headers=exc.headers)
    if exc.extra:
        response.data["error"].update(exc.extra)
    return response


class AlertPushApi(APIView):
    """Receives one push from a monitor in one of the supported formats."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []

    @extend_schema(
        operation_id="alert_push",
        summary="Push an alert event",
        description="What a monitor sends. The body shown is the standard format; every other format takes the "
        "webhook payload its monitor sends. Authenticated by the integration key in the URL, not by an API token.",
        tags=["ingest"],
        auth=[],
        parameters=[
            OpenApiParameter(
                "source", str, OpenApiParameter.PATH, enum=sorted(sources.PARSERS), description="The payload format."
            ),
            OpenApiParameter(
                "integration_key", str, OpenApiParameter.QUERY, required=True, description="The integration's key."
            ),
        ],
        request={"application/json": StandardEventSerializer},
        responses={
            200: envelope_of("AlertPushEnvelope", AlertPushResultSerializer()),
            400: error_doc(
                "InvalidParameter or InvalidContentType (`field` names what is wrong), or NoRoute (no event of the "
                "push matches a routing rule and the integration has no default route; the message names the first). "
                "Nothing stored. A push in which only some alerts have no route is stored without them (200, "
                "`not_routed`)."
            ),
            401: error_doc("Unauthorized: integration_key is missing or unknown."),
            403: error_doc("AccessDenied: the integration is disabled."),
            404: error_doc("RouteNotFound: unknown format."),
            413: error_doc("RequestTooLarge: the body exceeds the size limit."),
            429: error_doc("RequestTooFrequently: the integration's rate limit; see Retry-After."),
        },
    )
    def post(self, request, source: str):
        try:
            parser = sources.PARSERS.get(source)
            if parser is None:
                raise IngestError(404, envelope.ROUTE_NOT_FOUND, _("Unknown alert format %(f)r.") % {"f": source})
            integration = resolve_integration(request.query_params.get("integration_key", ""))
            check_rate_limit(integration)
            payload = read_json_body(request)
            now = clock.now()
            try:
                events = parser(payload, now=now, integration=IntegrationInfo(integration.name, integration.kind))
            except SourceError as exc:
                raise IngestError(400, envelope.INVALID_PARAMETER, f"{exc.field}: {exc.message}", exc.field) from None
        except IngestError as exc:
            return error_response(request, exc)
        accepted = events_accept(integration=integration, events=events, now=now)
        if source == "standard" and len(events) == 1:
            return envelope.ok(request, {"alert_key": events[0].alert_key})
        data = {"alert_keys": [event.alert_key for event in events]}
        if accepted.not_routed:
            data["not_routed"] = [{"alert_key": event.alert_key, "message": why} for event, why in accepted.not_routed]
        return envelope.ok(request, data)
