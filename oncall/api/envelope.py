"""Flashduty's response envelope: `{"request_id", "data"}` on success, `{"request_id", "error": {code, message}}`."""

from __future__ import annotations

import uuid

from rest_framework.response import Response

# Flashduty's codes, plus a few of ours for conditions its table does not name.
INVALID_PARAMETER = "InvalidParameter"
INVALID_CONTENT_TYPE = "InvalidContentType"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
UNAUTHORIZED = "Unauthorized"
ACCESS_DENIED = "AccessDenied"
ROUTE_NOT_FOUND = "RouteNotFound"
RESOURCE_NOT_FOUND = "ResourceNotFound"
REQUEST_TOO_LARGE = "RequestTooLarge"
REQUEST_TOO_FREQUENTLY = "RequestTooFrequently"
INTERNAL_ERROR = "InternalError"
SERVICE_UNAVAILABLE = "ServiceUnavailable"


def request_id(request) -> str:
    """The id of this request, made on first use; it is returned in the body and the X-Request-Id header."""
    django_request = getattr(request, "_request", request)
    rid = getattr(django_request, "request_id", None)
    if rid is None:
        rid = uuid.uuid4().hex
        django_request.request_id = rid
    return rid


def ok(request, data: dict, status: int = 200) -> Response:
    rid = request_id(request)
    return Response({"request_id": rid, "data": data}, status=status, headers={"X-Request-Id": rid})


def error(
    request, status: int, code: str, message: str, *, field: str | None = None, headers: dict | None = None
) -> Response:
    rid = request_id(request)
    body: dict = {"code": code, "message": message}
    if field:
        body["field"] = field
    return Response({"request_id": rid, "error": body}, status=status, headers={"X-Request-Id": rid, **(headers or {})})
