from django.urls import include, path

from channels_app import hooks, views
from channels_app.tracking import tracking_urlpatterns

twilio_patterns = [
    path("voice/<str:code>/twiml/", hooks.voice_twiml, name="twilio-voice-twiml"),
    path("voice/<str:code>/gather/", hooks.voice_gather, name="twilio-voice-gather"),
    path("voice/<str:code>/status/", hooks.voice_status, name="twilio-voice-status"),
    path("sms/<str:code>/status/", hooks.sms_status, name="twilio-sms-status"),
]

urlpatterns = [
    path("incidents/<int:incident_id>/ack/<str:token>/", views.incident_ack_link, name="incident-ack-link"),
    path("hooks/twilio/", include(twilio_patterns)),
    path("hooks/anymail/", include(tracking_urlpatterns())),
]
