"""Engineer pages: incidents and the personal center."""

from django.urls import path

from oncall.web import incidents, me, pwa

app_name = "web"

urlpatterns = [
    path("incidents/", incidents.incident_list_page, name="incident-list"),
    path("incidents/<int:incident_id>/", incidents.incident_detail_page, name="incident-detail"),
    path("incidents/<int:incident_id>/<slug:action>/", incidents.incident_action, name="incident-action"),
    path("me/", me.me_page, name="me"),
    path("me/profile/", me.me_profile, name="me-profile"),
    path("me/tokens/", me.me_token_create, name="me-token-create"),
    path("me/tokens/<int:token_id>/revoke/", me.me_token_revoke, name="me-token-revoke"),
    path("me/calendar-feed/", me.me_calendar_feed, name="me-calendar-feed"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service-worker"),
]
