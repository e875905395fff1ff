"""Read-side helpers of the core app."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet

from oncall.lib import secrets
from oncall.models import Channel, Incident, Integration

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


def channel_list_visible(user) -> QuerySet[Channel]:
    """Channels `user` works in: staff see all; others those of their teams."""
    if user.is_staff:
        return Channel.objects.all()
    return Channel.objects.filter(team__members=user).distinct()
