"""Incident pages for engineers: the list (refreshing itself) and the detail page with every action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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


@dataclass(frozen=True)
class Action:
    """One button of the incident page: the form it reads (if any), the service it calls, what it says."""

    run: Callable[..., object]  # run(incident, request, data, now)
    success: str
    form: Callable[..., forms.Form] | None = None  # form(data, incident)


def _people(data) -> list:
    return list(data["people"])


ACTIONS: dict[str, Action] = {
    "acknowledge": Action(
        lambda i, r, d, now: lifecycle.incident_acknowledge(incident=i, by=r.user, source=Source.WEB, now=now),
        gettext_lazy("Acknowledged."),
    ),
    "unacknowledge": Action(
        lambda i, r, d, now: lifecycle.incident_unacknowledge(incident=i, by=r.user, source=Source.WEB, now=now),
        gettext_lazy("Your acknowledgement is withdrawn."),
    ),
    "close": Action(
        lambda i, r, d, now: lifecycle.incident_resolve(
            incident=i, by=r.user, source=Source.WEB, now=now, reason=d["reason"]
        ),
        gettext_lazy("Closed."),
        lambda data, incident: ReasonForm(data),
    ),
    "reopen": Action(
        lambda i, r, d, now: lifecycle.incident_reopen(
            incident=i, by=r.user, reason=d["reason"], source=Source.WEB, now=now
        ),
        gettext_lazy("Reopened; people are notified again."),
        lambda data, incident: ReasonForm(data),
    ),
    "snooze": Action(
        lambda i, r, d, now: lifecycle.incident_snooze(
            incident=i, by=r.user, minutes=d["minutes"], source=Source.WEB, now=now
        ),
        gettext_lazy("Snoozed."),
        lambda data, incident: SnoozeForm(data),
    ),
    "wake": Action(
        lambda i, r, d, now: lifecycle.incident_wake(incident=i, by=r.user, source=Source.WEB, now=now),
        gettext_lazy("Woken; people are notified again."),
    ),
    "escalate": Action(
        lambda i, r, d, now: lifecycle.incident_escalate(
            incident=i, by=r.user, level=d["level"] - 1, source=Source.WEB, now=now
        ),
        gettext_lazy("Escalated; that level is notified now."),
        lambda data, incident: EscalateForm(data, levels=escalation_level_count(incident)),
    ),
    "reassign": Action(
        lambda i, r, d, now: (
            lifecycle.incident_add_responders if r.POST.get("mode") == "add" else lifecycle.incident_reassign
        )(incident=i, by=r.user, people=_people(d), source=Source.WEB, now=now),
        gettext_lazy("Done; the people are notified."),
        lambda data, incident: PeopleForm(data, people_queryset=_assignable_people()),
    ),
    "comment": Action(
        lambda i, r, d, now: lifecycle.incident_comment(
            incident=i, by=r.user, text=d["text"], source=Source.WEB, now=now
        ),
        gettext_lazy("Comment added."),
        lambda data, incident: CommentForm(data),
    ),
}


@login_required
@require_POST
def incident_action(request: HttpRequest, incident_id: int, action: str) -> HttpResponse:
    """Every button of the incident page: check who may see it, read the form, call the service, say how it went."""
    incident = _incident_or_404(request, incident_id)
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404(_("No such action."))
    data: dict = {}
    if spec.form is not None:
        form = spec.form(request.POST, incident)
        if not form.is_valid():
            for field, errors in form.errors.items():
                label = form.fields[field].label if field in form.fields else ""
                for error in errors:
                    messages.error(request, f"{label}: {error}" if label else error)
            return redirect("web:incident-detail", incident_id=incident.pk)
        data = form.cleaned_data
    try:
        spec.run(incident, request, data, clock.now())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, spec.success)
    return redirect("web:incident-detail", incident_id=incident.pk)
