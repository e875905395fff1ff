"""The installable web app: its manifest and its service worker (served at the root, so it controls every page)."""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control


@cache_control(max_age=3600)
def manifest(request: HttpRequest) -> JsonResponse:
    data = {
        "name": _("On-call"),
        "short_name": _("On-call"),
        "description": _("Incidents and pages of your on-call platform."),
        "start_url": reverse("web:incident-list"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1f3a5f",
        "icons": [
            {"src": static("web/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static("web/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any maskable"},
        ],
    }
    return JsonResponse(data, content_type="application/manifest+json")


@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> FileResponse:
    path = finders.find("web/sw.js")
    if path is None:
        raise Http404("service worker missing")
    response = FileResponse(open(path, "rb"), content_type="text/javascript")  # noqa: SIM115 (FileResponse closes it)
    response["Service-Worker-Allowed"] = "/"
    return response
