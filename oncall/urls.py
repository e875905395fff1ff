from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from escalation.views import FEED_PATH, person_feed, schedule_feed
from oncall.api import health
from oncall.api.ingest import AlertPushApi
from oncall.api.pagerduty import PagerDutyEnqueueApi, PagerDutyEventApi

urlpatterns = [
    path("", RedirectView.as_view(url="/incidents/", permanent=False)),
    path("accounts/", include("oncall.web.accounts")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("api/", include("oncall.api.urls")),
    path("event/push/alert/pagerduty", PagerDutyEventApi.as_view(), name="alert-push-pagerduty"),
    path("v2/enqueue", PagerDutyEnqueueApi.as_view(), name="pagerduty-enqueue"),
    path("event/push/alert/<str:source>", AlertPushApi.as_view(), name="alert-push"),
    path("", include("channels_app.urls")),
    path("", include("oncall.web.urls")),
    re_path(rf"^calendar/schedule/{FEED_PATH}$", schedule_feed, name="calendar-schedule"),
    re_path(rf"^calendar/person/{FEED_PATH}$", person_feed, name="calendar-person"),
]
