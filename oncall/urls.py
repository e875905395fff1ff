from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from oncall.api.ingest import AlertPushApi

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("oncall.api.urls")),
    path("event/push/alert/<str:source>", AlertPushApi.as_view(), name="alert-push"),
]
