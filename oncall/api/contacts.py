"""REST API for the requester's own contacts (phone, email and their verification) and notification preferences.

Only ever the requester's own: no endpoint here takes a person's id.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.http import QueryDict
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.utils import html
from rest_framework.views import APIView

from channels_app import registry
from channels_app.preferences import person_preferences, person_preferences_set
from channels_app.verification import contact_verification_send
from oncall.api import envelope
from oncall.api.serializers import envelope_of, error_doc, errors
from oncall.lib import clock
from oncall.lib.filters import canonical_severity
from oncall.models import Contact, Severity
from oncall.services.contacts import contact_phone_remove, contact_verify, contacts_state

TAGS = ["me"]
ERROR_409 = error_doc("Conflict: the phone number or address belongs to another person.")
ERROR_429 = error_doc(
    "RequestTooFrequently: too many codes for you or for this number or address in the last hour; "
    "`Retry-After` says when to ask again."
)
ERROR_503 = error_doc("ServiceUnavailable: the code could not be sent just now; try again later.")


class PendingCodeSerializer(serializers.Serializer):
    target = serializers.CharField(help_text="Where the code was sent; becomes your contact once verified.")
    expires_at = serializers.DateTimeField()


class ContactSerializer(serializers.Serializer):
    value = serializers.CharField(help_text="Your phone number (E.164) or email address; empty when none.")
    verified = serializers.BooleanField()
    verified_at = serializers.DateTimeField(allow_null=True)
    flagged = serializers.CharField(
        help_text="Why notifications stopped (a provider said it cannot be reached); verify again to clear it."
    )
    reachable = serializers.BooleanField(help_text="Whether notifications use it now: verified and not flagged.")
    pending = PendingCodeSerializer(allow_null=True, help_text="A code waiting to be entered, if any.")


class ContactsSerializer(serializers.Serializer):
    phone = ContactSerializer()
    email = ContactSerializer()


def _methods_field(severity: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=list(registry.METHODS)),
        required=False,
        help_text=f"Methods for {severity} incidents, any of {', '.join(registry.METHODS)}; empty: none.",
    )


def _by_severity(data: Mapping) -> Mapping:
    """`data` with each key read as the severity it names in any case ("critical" is Critical, as Flashduty's API
    spells it). Any other key is refused: dropping it would answer 200 and leave the person paged by methods they
    meant to turn off."""
    form = html.is_html_input(data)
    named = QueryDict(mutable=True) if form else {}
    for key in data:
        if form and key == "csrfmiddlewaretoken":
            continue  # the browsable API's form sends it along
        # Form input may index a list as `Critical[0]`; JSON names the severity alone.
        name, bracket, index = str(key).partition("[") if form else (str(key), "", "")
        severity = canonical_severity(name)
        if severity is None:
            raise serializers.ValidationError(
                {str(key): _("Unknown severity; use %(values)s.") % {"values": ", ".join(Severity.values)}}
            )
        canonical = severity + bracket + index
        if canonical in named:
            raise serializers.ValidationError({str(key): _("%(s)s is given twice.") % {"s": severity}})
        if form:
            named.setlist(canonical, data.getlist(key))
        else:
            named[canonical] = data[key]
    return named


class PreferencesSerializer(serializers.Serializer):
    Critical = _methods_field(Severity.CRITICAL)
    Warning = _methods_field(Severity.WARNING)
    Info = _methods_field(Severity.INFO)

    class Meta:
        ref_name = "NotificationPreferences"

    def to_internal_value(self, data):
        return super().to_internal_value(_by_severity(data) if isinstance(data, Mapping) else data)


CONTACTS_ENVELOPE = envelope_of("ContactsEnvelope", ContactsSerializer())
PREFERENCES_ENVELOPE = envelope_of("PreferencesEnvelope", PreferencesSerializer())


def contacts_data(person) -> dict:
    return ContactsSerializer(contacts_state(person=person, now=clock.now())).data


class ContactListApi(APIView):
    @extend_schema(
        operation_id="contact_list",
        summary="Get my contacts",
        tags=TAGS,
        responses={200: CONTACTS_ENVELOPE, **errors()},
    )
    def get(self, request):
        """Your phone number and email address, whether each is verified, flagged, and a code waiting to be
        entered. Notifications use a contact only while it is verified and not flagged."""
        return envelope.ok(request, contacts_data(request.user))


class PhoneBindApi(APIView):
    class InputSerializer(serializers.Serializer):
        phone = serializers.CharField(
            max_length=40, help_text="With its country code, e.g. +14155550100 (or in PHONE_DEFAULT_REGION)."
        )

        class Meta:
            ref_name = "PhoneBind"

    @extend_schema(
        operation_id="contact_phone_bind",
        summary="Bind a phone number (sends a code by SMS)",
        tags=TAGS,
        request=InputSerializer,
        responses={200: CONTACTS_ENVELOPE, **errors(400), 409: ERROR_409, 429: ERROR_429, 503: ERROR_503},
    )
    def post(self, request):
        """Send a verification code by SMS to the number. It becomes your phone once you enter the code (your
        current number keeps working until then). Codes expire after 10 minutes; at most 5 codes per hour for
        you and 3 per hour per number."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact_verification_send(
            person=request.user, contact=Contact.PHONE, target=serializer.validated_data["phone"], now=clock.now()
        )
        return envelope.ok(request, contacts_data(request.user))

    @extend_schema(
        operation_id="contact_phone_remove",
        summary="Remove my phone number",
        tags=TAGS,
        responses={200: CONTACTS_ENVELOPE, **errors()},
    )
    def delete(self, request):
        """Forget your phone number: no more calls or SMS until you bind one again."""
        contact_phone_remove(person=request.user)
        return envelope.ok(request, contacts_data(request.user))


class EmailBindApi(APIView):
    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(
            required=False, max_length=254, help_text="A new address; leave out to verify your current one."
        )

        class Meta:
            ref_name = "EmailBind"

    @extend_schema(
        operation_id="contact_email_bind",
        summary="Verify my email address, or change it (sends a code by email)",
        tags=TAGS,
        request=InputSerializer,
        responses={200: CONTACTS_ENVELOPE, **errors(400), 409: ERROR_409, 429: ERROR_429, 503: ERROR_503},
    )
    def post(self, request):
        """Send a verification code to the address (your sign-in email is also where email notifications go).
        A new address replaces the current one once you enter the code."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact_verification_send(
            person=request.user,
            contact=Contact.EMAIL,
            target=serializer.validated_data.get("email") or request.user.email,
            now=clock.now(),
        )
        return envelope.ok(request, contacts_data(request.user))


class VerifyInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=20, help_text="The 6-digit code you received.")

    class Meta:
        ref_name = "ContactVerify"


def _verify(request, contact: str):
    serializer = VerifyInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    person = contact_verify(
        person=request.user, contact=contact, code=serializer.validated_data["code"], now=clock.now()
    )
    return envelope.ok(request, contacts_data(person))


VERIFY_DOC = (
    "Enter the code you received. A wrong code counts: after 5 the code is spent and you need a new one. "
    "Verifying also clears a flag the contact had."
)


class PhoneVerifyApi(APIView):
    @extend_schema(
        operation_id="contact_phone_verify",
        summary="Verify my phone number with the code",
        description=VERIFY_DOC,
        tags=TAGS,
        request=VerifyInputSerializer,
        responses={200: CONTACTS_ENVELOPE, **errors(400), 409: ERROR_409},
    )
    def post(self, request):
        return _verify(request, Contact.PHONE)


class EmailVerifyApi(APIView):
    @extend_schema(
        operation_id="contact_email_verify",
        summary="Verify my email address with the code",
        description=VERIFY_DOC,
        tags=TAGS,
        request=VerifyInputSerializer,
        responses={200: CONTACTS_ENVELOPE, **errors(400), 409: ERROR_409},
    )
    def post(self, request):
        return _verify(request, Contact.EMAIL)


class PreferencesApi(APIView):
    @extend_schema(
        operation_id="preference_list",
        summary="Get my notification preferences",
        tags=TAGS,
        responses={200: PREFERENCES_ENVELOPE, **errors()},
    )
    def get(self, request):
        """Per severity, the methods that reach you when you are notified directly (assigned, reassigned, added
        as a responder) or by an escalation level that follows personal preferences. Severities you never set
        show the defaults: Critical app, voice and email; Warning app and email; Info email."""
        return envelope.ok(request, person_preferences(person=request.user))

    @extend_schema(
        operation_id="preference_update",
        summary="Set my notification preferences",
        tags=TAGS,
        request=PreferencesSerializer,
        responses={200: PREFERENCES_ENVELOPE, **errors(400)},
    )
    def put(self, request):
        """Set the methods of the severities you name; those you leave out keep theirs. An empty list means you
        are not notified directly for that severity. Severity names are read in any case (`critical` is
        Critical); any other key is refused with 400 and nothing is changed. A method reaches you only through a
        verified contact (app: a linked device)."""
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return envelope.ok(
            request, person_preferences_set(person=request.user, preferences=dict(serializer.validated_data))
        )
