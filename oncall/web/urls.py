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
    path("me/contacts/code/", me.me_contact_code, name="me-contact-code"),
    path("me/contacts/verify/", me.me_contact_verify, name="me-contact-verify"),
    path("me/contacts/phone/remove/", me.me_phone_remove, name="me-phone-remove"),
    path("me/preferences/", me.me_preferences, name="me-preferences"),
    path("me/devices/link-code/", me.me_device_link_code, name="me-device-link-code"),
    path("me/devices/<int:device_id>/unlink/", me.me_device_unlink, name="me-device-unlink"),
    path("me/test/<slug:method>/", me.me_method_test, name="me-method-test"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service-worker"),
]
