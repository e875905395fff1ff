"""Incident pages for engineers: the list (refreshing itself) and the detail page with every action."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from escalation.services import escalation_level_count
from oncall.errors import ApplicationError
from oncall.lib import clock
from oncall.models import Incident, Source, User
from oncall.selectors import channel_list_visible, incident_get_visible, incident_list, incident_list_with_details
from oncall.services import lifecycle
from oncall.web.forms import CommentForm, EscalateForm, IncidentFilterForm, PeopleForm, ReasonForm, SnoozeForm

PAGE_SIZE = 25


@login_required
def incident_list_page(request: HttpRequest) -> HttpResponse:
    channels = list(channel_list_visible(request.user).order_by("name"))
    form = IncidentFilterForm(request.GET or None, channels=channels)
    filters = form.cleaned_data if form.is_valid() else {}
    scope = filters.get("scope") or "channels"
    incidents = incident_list(
        user=request.user,
        progress=filters.get("progress") or None,
        severity=filters.get("severity") or None,
        channel_id=filters.get("channel"),
        mine=scope == "mine",
        text=filters.get("q", ""),
    )
    if scope == "channels" and not request.user.is_staff:
        incidents = incidents.filter(Q(channel__team__members=request.user)).distinct()
    page = Paginator(incident_list_with_details(incidents), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "scope": scope, "query": request.GET.urlencode()}
    if request.GET.get("fragment"):
        return render(request, "web/incidents/_rows.html", context)
    return render(request, "web/incidents/list.html", context)


def _incident_or_404(request: HttpRequest, incident_id: int) -> Incident:
    incident = incident_get_visible(user=request.user, incident_id=incident_id)
    if incident is None:
        raise Http404(_("This incident does not exist or you may not see it."))
    return incident


def _assignable_people():
    return User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")


@login_required
def incident_detail_page(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    incident = incident_list_with_details(Incident.objects.filter(pk=incident.pk)).get()
    levels = escalation_level_count(incident)
    context = {
        "incident": incident,
        "alerts": incident.alerts.order_by("-last_time")[:100],
        "timeline": incident.timeline.select_related("actor").order_by("-at", "-id"),
        "responders": incident.responder_set.select_related("person").order_by("assigned_at"),
        "acknowledged_by_me": incident.responder_set.filter(
            person=request.user, acknowledged_at__isnull=False
        ).exists(),
        "snooze_form": SnoozeForm(),
        "reason_form": ReasonForm(),
        "comment_form": CommentForm(),
        "people_form": PeopleForm(people_queryset=_assignable_people()),
        "escalate_form": EscalateForm(levels=levels) if levels else None,
    }
    return render(request, "web/incidents/detail.html", context)


def _act(request: HttpRequest, incident: Incident, action, success: str) -> HttpResponse:
    try:
        action(incident, clock.now())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect("web:incident-detail", incident_id=incident.pk)


def _invalid(request: HttpRequest, incident: Incident, form) -> HttpResponse:
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"{form.fields[field].label or field}: {error}" if field != "__all__" else error)
    return redirect("web:incident-detail", incident_id=incident.pk)


@login_required
@require_POST
def incident_acknowledge(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_acknowledge(incident=i, by=request.user, source=Source.WEB, now=now),
        _("Acknowledged."),
    )


@login_required
@require_POST
def incident_unacknowledge(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_unacknowledge(incident=i, by=request.user, source=Source.WEB, now=now),
        _("Your acknowledgement is withdrawn."),
    )


@login_required
@require_POST
def incident_close(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _invalid(request, incident, form)
    reason = form.cleaned_data["reason"]
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_resolve(
            incident=i, by=request.user, source=Source.WEB, now=now, reason=reason
        ),
        _("Closed."),
    )


@login_required
@require_POST
def incident_reopen(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _invalid(request, incident, form)
    reason = form.cleaned_data["reason"]
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_reopen(
            incident=i, by=request.user, reason=reason, source=Source.WEB, now=now
        ),
        _("Reopened; people are notified again."),
    )


@login_required
@require_POST
def incident_snooze(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        return _invalid(request, incident, form)
    minutes = form.cleaned_data["minutes"]
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_snooze(
            incident=i, by=request.user, minutes=minutes, source=Source.WEB, now=now
        ),
        _("Snoozed."),
    )


@login_required
@require_POST
def incident_wake(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_wake(incident=i, by=request.user, source=Source.WEB, now=now),
        _("Woken; people are notified again."),
    )


@login_required
@require_POST
def incident_escalate(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    form = EscalateForm(request.POST, levels=escalation_level_count(incident))
    if not form.is_valid():
        return _invalid(request, incident, form)
    level = form.cleaned_data["level"]
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_escalate(
            incident=i, by=request.user, level=level - 1, source=Source.WEB, now=now
        ),
        _("Escalated to level %(n)d.") % {"n": level},
    )


@login_required
@require_POST
def incident_reassign(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    form = PeopleForm(request.POST, people_queryset=_assignable_people())
    if not form.is_valid():
        return _invalid(request, incident, form)
    people = list(form.cleaned_data["people"])
    if request.POST.get("mode") == "add":
        action, done = lifecycle.incident_add_responders, _("Responders added; they are notified.")
    else:
        action, done = lifecycle.incident_reassign, _("Reassigned; the new responders are notified.")
    return _act(
        request,
        incident,
        lambda i, now: action(incident=i, by=request.user, people=people, source=Source.WEB, now=now),
        done,
    )


@login_required
@require_POST
def incident_comment(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _incident_or_404(request, incident_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _invalid(request, incident, form)
    text = form.cleaned_data["text"]
    return _act(
        request,
        incident,
        lambda i, now: lifecycle.incident_comment(incident=i, by=request.user, text=text, source=Source.WEB, now=now),
        _("Comment added."),
    )
