"""The personal center: what a person sees and changes about themselves, and nobody else's.

Every view here reads and writes `request.user` only; no view takes a person's id.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from escalation.feeds import calendar_feed_create, calendar_feed_revoke, calendar_feed_url
from escalation.schedules import person_shift_rows
from oncall.errors import ApplicationError
from oncall.lib import clock
from oncall.models import ApiToken
from oncall.models.people import validate_time_zone
from oncall.services.people import user_profile_update
from oncall.services.tokens import api_token_create, api_token_revoke

SHIFT_DAYS = 28


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False, label=gettext_lazy("First name"))
    last_name = forms.CharField(max_length=150, required=False, label=gettext_lazy("Last name"))
    time_zone = forms.CharField(
        max_length=64,
        validators=[validate_time_zone],
        label=gettext_lazy("Time zone"),
        help_text=gettext_lazy("For example Europe/Berlin or Asia/Shanghai; times are shown in it."),
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=gettext_lazy("Name"), help_text=gettext_lazy("What it is for."))


def _me_context(request: HttpRequest, **extra) -> dict:
    now = clock.now()
    return {
        "profile_form": extra.pop("profile_form", None)
        or ProfileForm(
            initial={
                "first_name": request.user.first_name,
                "last_name": request.user.last_name,
                "time_zone": request.user.time_zone,
            }
        ),
        "token_form": extra.pop("token_form", None) or TokenForm(),
        "tokens": ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at"),
        "shifts": person_shift_rows(person=request.user, start=now, end=now + timedelta(days=SHIFT_DAYS)),
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
