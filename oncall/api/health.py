"""Operations endpoints: liveness, readiness and Prometheus metrics.

- `/healthz`: the web process answers (no dependencies checked) — for a process supervisor.
- `/readyz`: the database and the cache answer — for a load balancer; 503 with what failed otherwise.
- `/metrics`: Prometheus text. The figures are read from the database at scrape time, so they are the same
  whichever web process answers and need no shared in-memory state. With METRICS_TOKEN set, the scraper must send
  `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Min, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_q.brokers import get_broker
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from channels_app.models import Delivery
from escalation.models import Timer
from oncall.lib import clock
from oncall.models import Alert, EventBatch, Incident


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # the point is to report any failure, whatever it is
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        cache.set("oncall:readyz", "1", 5)
        checks["cache"] = "ok" if cache.get("oncall:readyz") == "1" else "error: value not kept"
    except Exception as exc:
        checks["cache"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


class DatabaseCollector:
    """Metrics computed from the platform's own rows at scrape time."""

    def collect(self):
        now = clock.now()
        incidents = GaugeMetricFamily(
            "oncall_incidents", "Incidents by progress and severity.", labels=["progress", "severity"]
        )
        for row in Incident.objects.values("progress", "severity").annotate(n=Count("id")):
            incidents.add_metric([row["progress"], row["severity"]], row["n"])
        yield incidents

        events = GaugeMetricFamily(
            "oncall_alert_events",
            "Events merged into the alerts stored (all time), by integration kind; an event routed to several "
            "channels counts once in each, as it makes an alert in each.",
            labels=["kind"],
        )
        for row in Alert.objects.values("integration__kind").annotate(n=Sum("event_count")):
            events.add_metric([row["integration__kind"]], row["n"] or 0)
        yield events

        deliveries = GaugeMetricFamily(
            "oncall_deliveries", "Deliveries by method and status.", labels=["method", "status"]
        )
        for row in Delivery.objects.values("method", "status").annotate(n=Count("id")):
            deliveries.add_metric([row["method"], row["status"]], row["n"])
        yield deliveries

        queues = GaugeMetricFamily("oncall_queue_depth", "Work waiting, by queue.", labels=["queue"])
        # Tasks waiting for a worker, on whichever broker is configured (the database or Redis).
        queues.add_metric(["tasks"], get_broker().queue_size())
        queues.add_metric(["event_batches"], EventBatch.objects.filter(failed_at__isnull=True).count())
        queues.add_metric(["timers_due"], Timer.objects.filter(done_at__isnull=True, due_at__lte=now).count())
        queues.add_metric(
            ["deliveries_due"],
            Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).count(),
        )
        yield queues

        oldest = Timer.objects.filter(done_at__isnull=True, due_at__lte=now).aggregate(oldest=Min("due_at"))["oldest"]
        lateness = GaugeMetricFamily(
            "oncall_timer_lateness_seconds", "How long the most overdue escalation timer has been waiting (0: none)."
        )
        lateness.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield lateness

        failed = GaugeMetricFamily(
            "oncall_event_batches_failed",
            "Stored batches the worker gave up on (kept for a look; a push of over 100 events is several).",
        )
        failed.add_metric([], EventBatch.objects.filter(failed_at__isnull=False).count())
        yield failed


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse(
                "metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401, content_type="text/plain"
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
