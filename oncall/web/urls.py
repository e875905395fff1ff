"""Engineer pages: incidents and the personal center."""

from django.urls import path

from oncall.web import incidents, me, pwa

app_name = "web"

urlpatterns = [
    path("incidents/", incidents.incident_list_page, name="incident-list"),
    path("incidents/<int:incident_id>/", incidents.incident_detail_page, name="incident-detail"),
    path("incidents/<int:incident_id>/acknowledge/", incidents.incident_acknowledge, name="incident-acknowledge"),
    path("incidents/<int:incident_id>/unacknowledge/", incidents.incident_unacknowledge, name="incident-unacknowledge"),
    path("incidents/<int:incident_id>/close/", incidents.incident_close, name="incident-close"),
    path("incidents/<int:incident_id>/reopen/", incidents.incident_reopen, name="incident-reopen"),
    path("incidents/<int:incident_id>/snooze/", incidents.incident_snooze, name="incident-snooze"),
    path("incidents/<int:incident_id>/wake/", incidents.incident_wake, name="incident-wake"),
    path("incidents/<int:incident_id>/escalate/", incidents.incident_escalate, name="incident-escalate"),
    path("incidents/<int:incident_id>/reassign/", incidents.incident_reassign, name="incident-reassign"),
    path("incidents/<int:incident_id>/comment/", incidents.incident_comment, name="incident-comment"),
    path("me/", me.me_page, name="me"),
    path("me/profile/", me.me_profile, name="me-profile"),
    path("me/tokens/", me.me_token_create, name="me-token-create"),
    path("me/tokens/<int:token_id>/revoke/", me.me_token_revoke, name="me-token-revoke"),
    path("me/calendar-feed/", me.me_calendar_feed, name="me-calendar-feed"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service-worker"),
]
