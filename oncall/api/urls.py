"""REST API routes: v1 (incidents, me and API tokens), the OpenAPI schema and its browsable docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from oncall.api import contacts, devices, incidents, me, shifts

app_name = "api"

incident_patterns = [
    path("", incidents.IncidentListCreateApi.as_view(), name="incident-list"),
    path("<int:incident_id>/", incidents.IncidentDetailUpdateApi.as_view(), name="incident-detail"),
    path("<int:incident_id>/alerts/", incidents.IncidentAlertListApi.as_view(), name="incident-alerts"),
    path("<int:incident_id>/timeline/", incidents.IncidentTimelineApi.as_view(), name="incident-timeline"),
    path("<int:incident_id>/acknowledge/", incidents.IncidentAcknowledgeApi.as_view(), name="incident-acknowledge"),
    path(
        "<int:incident_id>/unacknowledge/",
        incidents.IncidentUnacknowledgeApi.as_view(),
        name="incident-unacknowledge",
    ),
    path("<int:incident_id>/close/", incidents.IncidentCloseApi.as_view(), name="incident-close"),
    path("<int:incident_id>/reopen/", incidents.IncidentReopenApi.as_view(), name="incident-reopen"),
    path("<int:incident_id>/snooze/", incidents.IncidentSnoozeApi.as_view(), name="incident-snooze"),
    path("<int:incident_id>/wake/", incidents.IncidentWakeApi.as_view(), name="incident-wake"),
    path("<int:incident_id>/escalate/", incidents.IncidentEscalateApi.as_view(), name="incident-escalate"),
    path("<int:incident_id>/reassign/", incidents.IncidentReassignApi.as_view(), name="incident-reassign"),
    path("<int:incident_id>/responders/", incidents.IncidentAddRespondersApi.as_view(), name="incident-responders"),
    path("<int:incident_id>/comment/", incidents.IncidentCommentApi.as_view(), name="incident-comment"),
    path("<int:incident_id>/merge/", incidents.IncidentMergeApi.as_view(), name="incident-merge"),
]

me_patterns = [
    path("", me.MeDetailUpdateApi.as_view(), name="me"),
    path("tokens/", me.ApiTokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", me.ApiTokenRevokeApi.as_view(), name="token-revoke"),
    path("shifts/", shifts.MyShiftListApi.as_view(), name="my-shifts"),
    path("calendar-feed/", shifts.MyCalendarFeedApi.as_view(), name="my-calendar-feed"),
    path("contacts/", contacts.ContactListApi.as_view(), name="contact-list"),
    path("contacts/phone/", contacts.PhoneBindApi.as_view(), name="contact-phone"),
    path("contacts/phone/verify/", contacts.PhoneVerifyApi.as_view(), name="contact-phone-verify"),
    path("contacts/email/", contacts.EmailBindApi.as_view(), name="contact-email"),
    path("contacts/email/verify/", contacts.EmailVerifyApi.as_view(), name="contact-email-verify"),
    path("preferences/", contacts.PreferencesApi.as_view(), name="preferences"),
    path("devices/", devices.DeviceListLinkApi.as_view(), name="device-list"),
    path("devices/web-push-key/", devices.WebPushKeyApi.as_view(), name="web-push-key"),
    path("devices/<int:device_id>/", devices.DeviceUnlinkApi.as_view(), name="device-unlink"),
    path("voice-numbers.vcf", devices.VoiceNumbersVCardApi.as_view(), name="voice-numbers"),
]

v1_patterns = [
    path("incidents/", include(incident_patterns)),
    path("me/", include(me_patterns)),
    path("devices/link/", devices.DeviceLinkRedeemApi.as_view(), name="device-link-redeem"),
]

urlpatterns = [
    path("v1/", include(v1_patterns)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
