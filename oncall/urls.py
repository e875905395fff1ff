from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from oncall.api.ingest import AlertPushApi
from oncall.api.pagerduty import PagerDutyEnqueueApi, PagerDutyEventApi

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("oncall.api.urls")),
    path("event/push/alert/pagerduty", PagerDutyEventApi.as_view(), name="alert-push-pagerduty"),
    path("v2/enqueue", PagerDutyEnqueueApi.as_view(), name="pagerduty-enqueue"),
    path("event/push/alert/<str:source>", AlertPushApi.as_view(), name="alert-push"),
]
