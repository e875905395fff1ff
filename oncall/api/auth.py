"""Authentication of the REST API by personal API token: `Authorization: Bearer oncall_...`."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from oncall.lib import clock
from oncall.services.tokens import api_token_authenticate


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """A token acts as its owner. The token is reachable as `request.auth`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        token = api_token_authenticate(value.strip(), now=clock.now())
        if token is None:
            raise exceptions.AuthenticationFailed(_("The API token is invalid or revoked."))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "oncall.api.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (oncall_...)."}
