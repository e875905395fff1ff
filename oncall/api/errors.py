"""The one exception handler: every API error is the JSON envelope with a stable code and a message."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings

from oncall.api import envelope
from oncall.errors import ApplicationError, RateLimited

logger = logging.getLogger(__name__)

# How long a client should wait before retrying a request the database could not serve (down or restarting).
DATABASE_RETRY_AFTER_SECONDS = 5

_DRF_CODES = {
    exceptions.ParseError: envelope.INVALID_PARAMETER,
    exceptions.UnsupportedMediaType: envelope.INVALID_CONTENT_TYPE,
    exceptions.MethodNotAllowed: envelope.METHOD_NOT_ALLOWED,
    exceptions.NotAuthenticated: envelope.UNAUTHORIZED,
    exceptions.AuthenticationFailed: envelope.UNAUTHORIZED,
    exceptions.PermissionDenied: envelope.ACCESS_DENIED,
    exceptions.NotFound: envelope.RESOURCE_NOT_FOUND,
    exceptions.Throttled: envelope.REQUEST_TOO_FREQUENTLY,
    exceptions.ValidationError: envelope.INVALID_PARAMETER,
}


def _first_field_error(detail, prefix: str = "") -> tuple[str | None, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if not prefix else f"{prefix}.{key}"
            field, message = _first_field_error(value, name)
            return (field or name), message
    if isinstance(detail, list) and detail:
        return _first_field_error(detail[0], prefix)
    return (prefix or None), str(detail)


def _field_of(field: str | None) -> str:
    """The request field an error is about; an error about the request as a whole is about its body."""
    if not field or field == api_settings.NON_FIELD_ERRORS_KEY:
        return "body"
    return field


def exception_handler(exc, context) -> Response | None:
    request = context.get("request")
    if isinstance(exc, ApplicationError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return envelope.error(request, exc.status, exc.code, exc.message, field=exc.field, headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), envelope.INVALID_PARAMETER)
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            # DRF sets it on 401s (from the authentication class): tells clients how to authenticate.
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.ValidationError):
            field, message = _first_field_error(exc.detail)
            field = _field_of(field)
            message = message if field == "body" else f"{field}: {message}"
            return envelope.error(request, exc.status_code, code, message, field=field, headers=headers)
        if isinstance(exc, exceptions.ParseError):
            return envelope.error(request, exc.status_code, code, str(exc.detail), field="body", headers=headers)
        return envelope.error(request, exc.status_code, code, str(exc.detail), headers=headers)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable or overloaded: a retryable failure, and monitors retry on 5xx.
        logger.warning("Database unavailable: %s", exc)
        return envelope.error(
            request,
            503,
            envelope.SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; retry later.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    logger.exception("Unhandled error in %s", getattr(request, "path", "?"))
    return envelope.error(request, 500, envelope.INTERNAL_ERROR, "Internal error; retry later.")
