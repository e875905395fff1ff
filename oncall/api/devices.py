"""REST API for the requester's own push devices, the Web Push key and the vCard of the caller IDs."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import negotiation, renderers, serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from channels_app.providers.voice import vcard
from channels_app.providers.webpush import vapid_public_key
from oncall.api import envelope
from oncall.api.serializers import envelope_of, errors, items_data, items_of
from oncall.lib import clock
from oncall.models import ApiToken, Device
from oncall.services.devices import device_link, device_link_redeem, device_unlink

TAGS = ["me"]


class DeviceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    name = serializers.CharField()
    app_version = serializers.CharField()
    token_hint = serializers.CharField(help_text="The last characters of the token, to recognise the device.")
    created_at = serializers.DateTimeField()
    last_pushed_at = serializers.DateTimeField(allow_null=True)


class WebPushKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(
        help_text="The VAPID public key (base64url) for pushManager.subscribe; empty when Web Push is off."
    )


DEVICE_ENVELOPE = envelope_of("DeviceEnvelope", DeviceSerializer())
DEVICE_LIST_ENVELOPE = envelope_of("DeviceListEnvelope", items_of("DeviceList", DeviceSerializer))
WEB_PUSH_KEY_ENVELOPE = envelope_of("WebPushKeyEnvelope", WebPushKeySerializer())


class DeviceListApi(APIView):
    @extend_schema(
        operation_id="device_list",
        summary="List my devices",
        tags=TAGS,
        responses={200: DEVICE_LIST_ENVELOPE, **errors()},
    )
    def get(self, request):
        """The apps and browsers linked to you for push notifications, newest first."""
        devices = Device.objects.filter(person=request.user).order_by("-created_at", "-id")
        return envelope.ok(request, items_data(devices, DeviceSerializer))


class DeviceLinkApi(APIView):
    class InputSerializer(serializers.Serializer):
        platform = serializers.ChoiceField(choices=Device.Platform.choices)
        token = serializers.CharField(
            required=False, max_length=4096, help_text="ios: the APNs device token (hex); android: the FCM token."
        )
        subscription = serializers.JSONField(
            required=False,
            help_text='web: the browser\'s PushSubscription JSON {"endpoint", "keys": {"p256dh", "auth"}}.',
        )
        name = serializers.CharField(required=False, allow_blank=True, max_length=100)
        app_version = serializers.CharField(required=False, allow_blank=True, max_length=50)

        class Meta:
            ref_name = "DeviceLink"

    @extend_schema(
        operation_id="device_link",
        summary="Link a device",
        tags=TAGS,
        request=InputSerializer,
        responses={201: DEVICE_ENVELOPE, **errors(400)},
    )
    def post(self, request):
        """Link an app or a browser to you for push notifications; linking a known token again updates it (and
        moves it to you if another account had it). A device whose push service reports its token gone is
        unlinked by itself; the app on it stays signed in. At most 20 devices. The phone app calls this with its own
        token (the one its QR code gave it) whenever its push service gives it a new push token: its token then
        belongs to the new device and the old one, if still linked, is unlinked. A token made for scripts links a
        device and changes no token."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_token = request.auth if isinstance(request.auth, ApiToken) else None
        device = device_link(person=request.user, now=clock.now(), api_token=api_token, **serializer.validated_data)
        return envelope.ok(request, DeviceSerializer(device).data, status=201)


class DeviceListLinkApi(DeviceListApi, DeviceLinkApi):
    """/me/devices/: GET lists, POST links."""


class DeviceUnlinkApi(APIView):
    @extend_schema(
        operation_id="device_unlink",
        summary="Unlink a device",
        tags=TAGS,
        parameters=[OpenApiParameter("device_id", int, OpenApiParameter.PATH)],
        responses={200: DEVICE_ENVELOPE, **errors(404)},
    )
    def delete(self, request, device_id: int):
        """Stop pushing to one of your devices and sign out the app on it (the API token its QR code gave it stops
        working). Answers with the device as it was."""
        device = Device.objects.filter(person=request.user, pk=device_id).first()
        if device is None:
            raise NotFound(_("You have no device with the id %(id)s.") % {"id": device_id})
        data = DeviceSerializer(device).data
        device_unlink(device=device, now=clock.now())
        return envelope.ok(request, data)


class WebPushKeyApi(APIView):
    @extend_schema(
        operation_id="web_push_key",
        summary="Get the Web Push public key",
        tags=TAGS,
        responses={200: WEB_PUSH_KEY_ENVELOPE, **errors()},
    )
    def get(self, request):
        """The key a browser subscribes with before linking itself as a web device."""
        return envelope.ok(request, {"public_key": vapid_public_key()})


class _AnyAccept(negotiation.BaseContentNegotiation):
    """The card is a plain response whatever the client accepts (phones ask for text/vcard or anything); errors
    are the JSON envelope."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class VoiceNumbersVCardApi(APIView):
    renderer_classes = [renderers.JSONRenderer]
    content_negotiation_class = _AnyAccept

    @extend_schema(
        operation_id="voice_numbers_vcard",
        summary="Download the caller IDs as a vCard",
        tags=TAGS,
        responses={
            (200, "text/vcard"): OpenApiResponse(OpenApiTypes.STR, description="A vCard 3.0 with every caller ID."),
            **errors(),
        },
    )
    def get(self, request):
        """The numbers voice calls come from, as one contact card: save it on your phone and let it through
        Do Not Disturb, so a page at night rings."""
        body = vcard(settings.TWILIO_VOICE_FROM, name=_("On-call alerts"))
        response = HttpResponse(body, content_type="text/vcard; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="oncall-voice-numbers.vcf"'
        return response


class DeviceLinkRedeemedSerializer(serializers.Serializer):
    device = DeviceSerializer()
    api_token = serializers.CharField(help_text="A personal API token for the app, shown only in this answer.")
    person = serializers.DictField(help_text="Who the app now acts as: id, username, name.")


class DeviceLinkRedeemApi(APIView):
    """The phone app's side of the QR code: no session or API token, the one-time link code authenticates."""

    authentication_classes: list = []
    permission_classes: list = []

    class InputSerializer(DeviceLinkApi.InputSerializer):
        link_token = serializers.CharField(
            max_length=200, help_text="The token from the QR code (oncall://link?token=…)."
        )

        class Meta:
            ref_name = "DeviceLinkRedeem"

    @extend_schema(
        operation_id="device_link_redeem",
        summary="Link the app by its QR code",
        tags=["devices"],
        auth=[],
        request=InputSerializer,
        responses={201: envelope_of("DeviceLinkRedeemedEnvelope", DeviceLinkRedeemedSerializer()), **errors(400)},
    )
    def post(self, request):
        """The app scanned the QR code of a person's settings page: link its device to that person and give it an
        API token to act as them. The code works once, for 10 minutes."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        link_token = data.pop("link_token")
        device, api_token = device_link_redeem(
            token=link_token, now=clock.now(), push_token=data.pop("token", ""), **data
        )
        person = device.person
        return envelope.ok(
            request,
            {
                "device": DeviceSerializer(device).data,
                "api_token": api_token,
                "person": {"id": person.pk, "username": person.username, "name": person.display_name},
            },
            status=201,
        )
