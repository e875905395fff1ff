"""Read-side helpers of the core app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Prefetch, Q, QuerySet

from oncall.lib import secrets
from oncall.models import AlertProgress, Channel, Incident, Integration, Responder

_MISS = "miss"


def _cache_key(key_hash: str) -> str:
    return f"oncall:integration-key:{key_hash}"


def integration_get_by_key(key: str) -> Integration | None:
    """The integration a push URL's key names, or None. Hits and misses are cached briefly, so a monitor
    hammering with a wrong key costs no database work."""
    if not key or len(key) > 128:
        return None
    key_hash = secrets.key_hash(key)
    cached = cache.get(_cache_key(key_hash))
    if cached == _MISS:
        return None
    if cached is not None:
        return cached
    integration = Integration.objects.filter(key_hash=key_hash).select_related("channel").first()
    cache.set(_cache_key(key_hash), integration or _MISS, settings.INTEGRATION_KEY_CACHE_SECONDS)
    return integration


def integration_key_cache_clear(*key_hashes: str) -> None:
    cache.delete_many([_cache_key(h) for h in key_hashes if h])


def incident_list_visible(user) -> QuerySet[Incident]:
    """Incidents `user` may see: staff see all; others those of their teams' channels and those they respond to."""
    incidents = Incident.objects.select_related("channel")
    if user.is_staff:
        return incidents
    visible_ids = Incident.objects.filter(Q(channel__team__members=user) | Q(responder_set__person=user)).values("pk")
    return incidents.filter(pk__in=visible_ids)


def incident_get_visible(*, user, incident_id: int) -> Incident | None:
    """The incident, if `user` may see it."""
    return incident_list_visible(user).filter(pk=incident_id).first()


def incident_list(
    *,
    user,
    progress: Sequence[str] | None = None,
    severity: Sequence[str] | None = None,
    channel_id: int | None = None,
    mine: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str = "",
) -> QuerySet[Incident]:
    """Incidents `user` may see, filtered, newest first: what the API list and the incident pages show."""
    incidents = incident_list_visible(user)
    if progress:
        incidents = incidents.filter(progress__in=progress)
    if severity:
        incidents = incidents.filter(severity__in=severity)
    if channel_id:
        incidents = incidents.filter(channel_id=channel_id)
    if mine:
        incidents = incidents.filter(pk__in=Responder.objects.filter(person=user).values("incident_id"))
    if since:
        incidents = incidents.filter(start_time__gte=since)
    if until:
        incidents = incidents.filter(start_time__lt=until)
    if text.strip():
        incidents = incidents.filter(Q(title__icontains=text.strip()) | Q(description__icontains=text.strip()))
    return incidents.order_by("-start_time", "-id")


def incident_list_with_details(queryset: QuerySet[Incident]) -> QuerySet[Incident]:
    """Incidents with what a listing shows (channel, people, responders, alert counts), in a fixed number of
    queries whatever the number of incidents."""
    responders = Responder.objects.select_related("person").order_by("assigned_at", "id")
    return (
        queryset.select_related("channel", "created_by", "closed_by")
        .prefetch_related(Prefetch("responder_set", queryset=responders))
        .annotate(
            alert_count=Count("alerts"),
            active_alert_count=Count("alerts", filter=Q(alerts__progress=AlertProgress.TRIGGERED)),
        )
    )


def channel_list_visible(user) -> QuerySet[Channel]:
    """Channels `user` works in: staff see all; others those of their teams."""
    if user.is_staff:
        return Channel.objects.all()
    return Channel.objects.filter(team__members=user).distinct()
