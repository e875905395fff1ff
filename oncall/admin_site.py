"""The admin site, with a dashboard on its front page: what needs an operator's eye right now."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count, F, Q
from django.utils.translation import gettext_lazy as _

from channels_app.models import Bot, Delivery
from escalation.models import Timer
from oncall.lib import clock
from oncall.models import EventBatch, Incident, Progress, Severity, User


def dashboard(now) -> dict:
    """Plain data for the admin front page."""
    open_incidents = (
        Incident.objects.exclude(progress=Progress.CLOSED)
        .values("channel__id", "channel__name", "severity")
        .annotate(count=Count("id"))
        .order_by("channel__name")
    )
    by_channel: dict[int, dict] = {}
    for row in open_incidents:
        entry = by_channel.setdefault(
            row["channel__id"], {"id": row["channel__id"], "name": row["channel__name"], "counts": {}, "total": 0}
        )
        entry["counts"][row["severity"]] = row["count"]
        entry["total"] += row["count"]
    hour_ago = now - timedelta(hours=1)
    failing = Delivery.objects.filter(status=Delivery.Status.FAILED, updated_at__gte=hour_ago)
    return {
        "severities": Severity.values,
        "open_by_channel": [
            {**entry, "cells": [entry["counts"].get(severity, 0) for severity in Severity.values]}
            for entry in by_channel.values()
        ],
        "failing_by_method": list(failing.values("method").annotate(count=Count("id")).order_by("-count")),
        "failing_recent": list(failing.select_related("incident", "recipient").order_by("-updated_at")[:10]),
        "retrying": Delivery.objects.filter(status=Delivery.Status.PENDING, attempts__gt=0).count(),
        "overdue_timers": Timer.objects.filter(done_at__isnull=True, due_at__lt=now - timedelta(minutes=1)).count(),
        "failed_batches": EventBatch.objects.filter(failed_at__isnull=False).count(),
        "flagged_contacts": list(
            User.objects.filter(is_active=True).exclude(phone_flagged="", email_flagged="").order_by("username")[:20]
        ),
        # A bot is in error when its last attempt failed: an error and no success since.
        "failing_bots": list(
            Bot.objects.filter(enabled=True, last_error_at__isnull=False)
            .filter(Q(last_success_at__isnull=True) | Q(last_success_at__lt=F("last_error_at")))
            .order_by("-last_error_at")[:20]
        ),
        "waiting_batches": EventBatch.objects.filter(failed_at__isnull=True).count(),
    }


class OncallAdminSite(admin.AdminSite):
    site_header = _("On-call administration")
    site_title = _("On-call admin")
    index_title = _("Dashboard and configuration")
    index_template = "admin/oncall_index.html"

    def index(self, request, extra_context=None):
        return super().index(request, {"dashboard": dashboard(clock.now()), **(extra_context or {})})
