from django.urls import path

from channels_app import views

urlpatterns = [
    path("incidents/<int:incident_id>/ack/<str:token>/", views.incident_ack_link, name="incident-ack-link"),
]
