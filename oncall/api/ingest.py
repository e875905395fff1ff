"""Ingest endpoints: `POST /event/push/alert/<format>?integration_key=KEY`.

Monitors treat 2xx as stored, 4xx as "do not retry" and 5xx as "retry later", so every refusal is a 4xx with the
Flashduty error envelope and nothing written, and only a transient failure (database unavailable) is a 5xx.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from rest_framework.views import APIView

from oncall import sources
from oncall.api import envelope
from oncall.lib import clock
from oncall.selectors import integration_get_by_key
from oncall.services.ingest import alert_ingest
from oncall.sources.base import SourceError


class IngestError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


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
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(
            400,
            envelope.INVALID_PARAMETER,
            _("The body is not valid JSON: %(error)s") % {"error": exc},
            "body",
        ) from None


class AlertPushApi(APIView):
    """Receives one push from a monitor in one of the supported formats."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []

    def post(self, request, source: str):
        try:
            parser = sources.PARSERS.get(source)
            if parser is None:
                raise IngestError(404, envelope.ROUTE_NOT_FOUND, _("Unknown alert format %(f)r.") % {"f": source})
            payload = read_json_body(request)
            key = request.query_params.get("integration_key", "")
            if not key:
                raise IngestError(401, envelope.UNAUTHORIZED, _("integration_key is required."), "integration_key")
            integration = integration_get_by_key(key)
            if integration is None:
                raise IngestError(
                    401, envelope.UNAUTHORIZED, _("integration_key is not a valid one."), "integration_key"
                )
            if not integration.enabled:
                raise IngestError(403, envelope.ACCESS_DENIED, _("This integration is disabled."), "integration_key")
            now = clock.now()
            try:
                events = parser(payload, now=now)
            except SourceError as exc:
                raise IngestError(400, envelope.INVALID_PARAMETER, f"{exc.field}: {exc.message}", exc.field) from None
        except IngestError as exc:
            return envelope.error(request, exc.status, exc.code, exc.message, field=exc.field)
        results = alert_ingest(integration=integration, events=events, now=now)
        if len(results) == 1:
            return envelope.ok(request, {"alert_key": results[0].alert_key})
        return envelope.ok(request, {"alert_keys": [result.alert_key for result in results]})
