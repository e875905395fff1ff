"""REST API for the requester's own profile and personal API tokens. Only ever the requester's own data."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from oncall.api import envelope
from oncall.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    ProfileSerializer,
    envelope_of,
    errors,
    items_data,
    items_of,
)
from oncall.lib import clock
from oncall.models import ApiToken, User
from oncall.models.people import validate_time_zone
from oncall.services.people import user_profile_update
from oncall.services.tokens import api_token_create, api_token_revoke

TAGS = ["me"]

PROFILE_ENVELOPE = envelope_of("ProfileEnvelope", ProfileSerializer())
TOKEN_LIST_ENVELOPE = envelope_of("ApiTokenListEnvelope", items_of("ApiTokenList", ApiTokenSerializer))
TOKEN_ENVELOPE = envelope_of("ApiTokenEnvelope", ApiTokenSerializer())
TOKEN_CREATED_ENVELOPE = envelope_of("ApiTokenCreatedEnvelope", ApiTokenCreatedSerializer())


@transaction.atomic
def profile_data(user: User) -> dict:
    return ProfileSerializer(User.objects.prefetch_related("teams").get(pk=user.pk)).data


class MeDetailApi(APIView):
    @extend_schema(
        operation_id="me_detail",
        summary="Get my profile",
        tags=TAGS,
        responses={200: PROFILE_ENVELOPE, **errors()},
    )
    def get(self, request):
        """Your own profile and the teams you are in."""
        return envelope.ok(request, profile_data(request.user))


class MeUpdateApi(APIView):
    class InputSerializer(serializers.Serializer):
        first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
        last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
        time_zone = serializers.CharField(
            required=False,
            max_length=64,
            validators=[validate_time_zone],
            help_text="An IANA time zone, for example Europe/Berlin.",
        )

        class Meta:
            ref_name = "ProfileEdit"

    @extend_schema(
        operation_id="me_edit",
        summary="Edit my profile",
        tags=TAGS,
        request=InputSerializer,
        responses={200: PROFILE_ENVELOPE, **errors(400)},
    )
    def patch(self, request):
        """Change your name or time zone. Username and email are read-only here; other fields are ignored."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_profile_update(user=request.user, **serializer.validated_data)
        return envelope.ok(request, profile_data(user))


class MeDetailUpdateApi(MeDetailApi, MeUpdateApi):
    """/me/: GET reads, PATCH edits."""


class ApiTokenListApi(APIView):
    @extend_schema(
        operation_id="api_token_list",
        summary="List my API tokens",
        tags=TAGS,
        responses={200: TOKEN_LIST_ENVELOPE, **errors()},
    )
    def get(self, request):
        """Your tokens, newest first, revoked ones included. The secret value is never shown again."""
        tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")
        return envelope.ok(request, items_data(tokens, ApiTokenSerializer))


class ApiTokenCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, help_text="So you recognise it later, e.g. 'phone'.")

        class Meta:
            ref_name = "ApiTokenCreate"

    @extend_schema(
        operation_id="api_token_create",
        summary="Create an API token",
        tags=TAGS,
        request=InputSerializer,
        responses={201: TOKEN_CREATED_ENVELOPE, **errors(400)},
    )
    def post(self, request):
        """Create a token that acts as you. Its secret value is in this answer only: store it now.
        At most 5 tokens may be active at once."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, value = api_token_create(user=request.user, name=serializer.validated_data["name"], now=clock.now())
        return envelope.ok(request, {**ApiTokenSerializer(token).data, "token": value}, status=201)


class ApiTokenListCreateApi(ApiTokenListApi, ApiTokenCreateApi):
    """/me/tokens/: GET lists, POST creates."""


class ApiTokenRevokeApi(APIView):
    @extend_schema(
        operation_id="api_token_revoke",
        summary="Revoke an API token",
        tags=TAGS,
        parameters=[OpenApiParameter("token_id", int, OpenApiParameter.PATH)],
        responses={200: TOKEN_ENVELOPE, **errors(404)},
    )
    def delete(self, request, token_id: int):
        """Revoke one of your tokens: it stops working at once. Answers with the revoked token."""
        token = ApiToken.objects.filter(user=request.user, pk=token_id).first()
        if token is None:
            raise NotFound(_("You have no API token with the id %(id)s.") % {"id": token_id})
        token = api_token_revoke(token=token, now=clock.now())
        return envelope.ok(request, ApiTokenSerializer(token).data)
