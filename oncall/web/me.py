"""The personal center: what a person sees and changes about themselves, and nobody else's.

Every view here reads and writes `request.user` only; no view takes a person's id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import qrcode
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from qrcode.image.svg import SvgPathImage

from channels_app import registry
from channels_app.base import Outcome
from channels_app.preferences import person_preferences, person_preferences_set
from channels_app.testing import method_test_send
from channels_app.verification import contact_verification_send
from escalation.feeds import calendar_feed_create, calendar_feed_revoke, calendar_feed_url
from escalation.schedules import LOOK_BACK, ShiftRow, person_shift_rows
from oncall.errors import ApplicationError
from oncall.lib import clock
from oncall.models import ApiToken, Contact, Device, Severity
from oncall.models.people import validate_time_zone
from oncall.services.contacts import contact_phone_remove, contact_verify, contacts_state
from oncall.services.devices import device_link_token_create, device_link_uri, device_unlink
from oncall.services.people import user_profile_update
from oncall.services.tokens import api_token_create, api_token_revoke

SHIFT_DAYS = 28


class PhoneForm(forms.Form):
    phone = forms.CharField(
        max_length=40,
        label=gettext_lazy("Phone number"),
        help_text=gettext_lazy("With its country code, e.g. +49 151 2345678. A code is sent to it by SMS."),
    )


class CodeForm(forms.Form):
    contact = forms.ChoiceField(choices=Contact.choices)
    code = forms.CharField(max_length=12, label=gettext_lazy("Code"))


class PreferencesForm(forms.Form):
    """One row of checkboxes per severity."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for severity in Severity.values:
            self.fields[severity] = forms.MultipleChoiceField(
                choices=registry.method_choices(),
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=Severity(severity).label,
            )


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False, label=gettext_lazy("First name"))
    last_name = forms.CharField(max_length=150, required=False, label=gettext_lazy("Last name"))
    language = forms.ChoiceField(
        choices=[("", gettext_lazy("Platform default")), *settings.LANGUAGES],
        required=False,
        label=gettext_lazy("Language"),
    )
    time_zone = forms.CharField(
        max_length=64,
        validators=[validate_time_zone],
        label=gettext_lazy("Time zone"),
        help_text=gettext_lazy("For example Europe/Berlin or Asia/Shanghai; times are shown in it."),
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=gettext_lazy("Name"), help_text=gettext_lazy("What it is for."))


def _my_shifts(*, person, now: datetime) -> list[ShiftRow]:
    """The shift running now, with its real start (as GET /api/v1/me/shifts/ gives it), and those to come."""
    rows = person_shift_rows(person=person, start=now - LOOK_BACK, end=now + timedelta(days=SHIFT_DAYS))
    return [row for row in rows if row.end > now]


def _me_context(request: HttpRequest, **extra) -> dict:
    now = clock.now()
    preferences = person_preferences(person=request.user)
    return {
        "contacts": contacts_state(person=request.user, now=now),
        "phone_form": extra.pop("phone_form", None) or PhoneForm(),
        "preferences_form": extra.pop("preferences_form", None) or PreferencesForm(initial=preferences),
        "methods": registry.method_choices(),
        "devices": Device.objects.filter(person=request.user)
        .annotate(app_signed_in=Exists(ApiToken.objects.active().filter(device=OuterRef("pk"))))
        .order_by("-created_at", "-id"),
        "profile_form": extra.pop("profile_form", None)
        or ProfileForm(
            initial={
                "first_name": request.user.first_name,
                "last_name": request.user.last_name,
                "time_zone": request.user.time_zone,
                "language": request.user.language,
            }
        ),
        "token_form": extra.pop("token_form", None) or TokenForm(),
        "tokens": ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at"),
        "shifts": _my_shifts(person=request.user, now=now),
        "shift_days": SHIFT_DAYS,
        **extra,
    }


@login_required
def me_page(request: HttpRequest) -> HttpResponse:
    return render(request, "web/me/index.html", _me_context(request))


@login_required
@require_POST
def me_profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Your profile was not saved; see the errors below."))
        return render(request, "web/me/index.html", _me_context(request, profile_form=form), status=400)
    user_profile_update(user=request.user, **form.cleaned_data)
    messages.success(request, _("Profile saved."))
    return redirect("web:me")


@login_required
@require_POST
def me_token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, value = api_token_create(user=request.user, name=form.cleaned_data["name"], now=clock.now())
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            # Rendered, not redirected: the secret is shown on this response only and stored nowhere.
            return render(request, "web/me/index.html", _me_context(request, new_token=value, new_token_obj=token))
    return render(request, "web/me/index.html", _me_context(request, token_form=form), status=400)


@login_required
@require_POST
def me_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = ApiToken.objects.filter(user=request.user, pk=token_id).first()
    if token is None:
        raise Http404(_("No such token of yours."))
    api_token_revoke(token=token, now=clock.now())
    messages.success(request, _("Token %(name)s revoked; it stops working at once.") % {"name": token.name})
    return redirect("web:me")


@login_required
@require_POST
def me_calendar_feed(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    if request.POST.get("revoke"):
        calendar_feed_revoke(person=request.user, now=now)
        messages.success(request, _("Your calendar feed is revoked."))
        return redirect("web:me")
    _feed, token = calendar_feed_create(person=request.user, now=now)
    url = calendar_feed_url(kind="person", token=token)
    return render(request, "web/me/index.html", _me_context(request, new_feed_url=url))


def _error_text(exc: ApplicationError) -> str:
    return exc.message


@login_required
@require_POST
def me_contact_code(request: HttpRequest) -> HttpResponse:
    """Send a verification code: by SMS to a new phone number, or by email to the person's address."""
    contact = request.POST.get("contact")
    target = ""
    if contact == Contact.PHONE:
        form = PhoneForm(request.POST)
        if not form.is_valid():
            return render(request, "web/me/index.html", _me_context(request, phone_form=form), status=400)
        target = form.cleaned_data["phone"]
    elif contact != Contact.EMAIL:
        raise Http404
    try:
        code = contact_verification_send(person=request.user, contact=contact, target=target, now=clock.now())
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("A code was sent to %(target)s. Enter it below.") % {"target": code.target})
    return redirect(f"{reverse('web:me')}#contacts")


@login_required
@require_POST
def me_contact_verify(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter the code you received."))
        return redirect(f"{reverse('web:me')}#contacts")
    try:
        contact_verify(
            person=request.user, contact=form.cleaned_data["contact"], code=form.cleaned_data["code"], now=clock.now()
        )
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("Verified: notifications may use it now."))
    return redirect(f"{reverse('web:me')}#contacts")


@login_required
@require_POST
def me_phone_remove(request: HttpRequest) -> HttpResponse:
    contact_phone_remove(person=request.user)
    messages.success(request, _("Phone number removed: no more calls or SMS."))
    return redirect(f"{reverse('web:me')}#contacts")


@login_required
@require_POST
def me_preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        return render(request, "web/me/index.html", _me_context(request, preferences_form=form), status=400)
    person_preferences_set(person=request.user, preferences=form.cleaned_data)
    messages.success(request, _("Notification preferences saved."))
    return redirect(f"{reverse('web:me')}#preferences")


@login_required
@require_POST
def me_device_unlink(request: HttpRequest, device_id: int) -> HttpResponse:
    device = Device.objects.filter(person=request.user, pk=device_id).first()
    if device is None:
        raise Http404(_("No such device of yours."))
    if device_unlink(device=device, now=clock.now()):
        messages.success(request, _("Device unlinked: no more push notifications to it, and its app is signed out."))
    else:
        messages.success(request, _("Device unlinked: no more push notifications to it."))
    return redirect(f"{reverse('web:me')}#devices")


@login_required
@require_POST
def me_device_link_code(request: HttpRequest) -> HttpResponse:
    """Show a QR code the phone app scans to link itself (a one-time code, valid 10 minutes, shown only now)."""
    row, token = device_link_token_create(person=request.user, now=clock.now())
    uri = device_link_uri(token)
    svg = qrcode.make(uri, image_factory=SvgPathImage, box_size=12).to_string(encoding="unicode")
    qr = mark_safe(svg)  # noqa: S308 (an SVG we generated from our own URI, not user input)
    context = _me_context(request, link_qr=qr, link_token=token, link_expires=row.expires_at)
    return render(request, "web/me/index.html", context)


@login_required
@require_POST
def me_method_test(request: HttpRequest, method: str) -> HttpResponse:
    if method not in registry.METHODS:
        raise Http404
    result = method_test_send(person=request.user, method=method, now=clock.now())
    label = registry.method(method).label
    if result.outcome == Outcome.SENT:
        messages.success(request, _("Test sent by %(method)s. Did it arrive?") % {"method": label})
    else:
        messages.error(
            request, _("The %(method)s test was not sent: %(error)s") % {"method": label, "error": result.error}
        )
    return redirect(f"{reverse('web:me')}#preferences")
