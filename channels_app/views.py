"""Pages reached from notifications: the signed acknowledge link."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from channels_app.acklinks import AckLinkExpired, AckLinkInvalid, ack_token_check
from channels_app.messages import incident_detail_url
from oncall.errors import IllegalTransition
from oncall.lib import clock
from oncall.models import Incident, Progress, Source
from oncall.services.lifecycle import incident_acknowledge

TEMPLATE = "channels_app/ack_link.html"


@login_required
@require_http_methods(["GET", "POST"])
def incident_ack_link(request: HttpRequest, incident_id: int, token: str) -> HttpResponse:
    """GET asks for confirmation (a link preview or a mail scanner must not acknowledge); POST acknowledges the
    incident as the signed-in person, from a bot link."""
    try:
        ack_token_check(incident_id, token)
    except AckLinkExpired:
        return render(request, TEMPLATE, {"state": "expired"}, status=400)
    except AckLinkInvalid:
        return render(request, TEMPLATE, {"state": "invalid"}, status=400)
    incident = get_object_or_404(Incident.objects.select_related("channel"), pk=incident_id)
    context = {"incident": incident, "detail_url": incident_detail_url(incident.pk)}
    if incident.progress == Progress.CLOSED:
        status = 409 if request.method == "POST" else 200
        return render(request, TEMPLATE, {**context, "state": "closed"}, status=status)
    if request.method == "GET":
        acknowledged_by = [
            responder.person.display_name
            for responder in incident.responder_set.filter(acknowledged_at__isnull=False).select_related("person")
        ]
        return render(request, TEMPLATE, {**context, "state": "confirm", "acknowledged_by": acknowledged_by})
    try:
        incident = incident_acknowledge(incident=incident, by=request.user, source=Source.BOT, now=clock.now())
    except IllegalTransition:
        return render(request, TEMPLATE, {**context, "state": "closed"}, status=409)
    return render(request, TEMPLATE, {**context, "incident": incident, "state": "done"})
