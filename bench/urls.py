from django.urls import path

from bench.views import CeilingApi
from oncall.urls import urlpatterns as platform_urlpatterns

urlpatterns = [path("bench/ceiling", CeilingApi.as_view()), *platform_urlpatterns]
