"""Read-side helpers of the core app."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Prefetch, Q, QuerySet

from oncall.lib import routing, secrets
from oncall.lib.filters import Subject, parse_saved_filters
from oncall.models import Alert, AlertProgress, Channel, Incident, Integration, Responder, RoutingRule

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


def _route_cache_key(integration_id: int) -> str:
    return f"oncall:route-cases:{integration_id}"


def route_table_load(integration: Integration) -> routing.RouteTable:
    """The integration's routing rules as saved now, read from the database, and its default route."""
    rules = (
        RoutingRule.objects.filter(integration_id=integration.pk)
        .prefetch_related("channels")
        .order_by("position", "id")
    )
    cases = []
    for rule in rules:
        filters = parse_saved_filters(rule.filters, rule=f"Routing rule {rule.pk} of integration {integration.pk}")
        if filters is None:
            continue
        cases.append(
            routing.RouteCase(
                filters=filters,
                mode=rule.mode,
                channel_ids=tuple(channel.pk for channel in rule.channels.all()),
                name_mapping_label=rule.name_mapping_label,
                fallthrough=rule.fallthrough,
                enabled=rule.enabled,
                name=str(rule),
            )
        )
    return routing.RouteTable(cases=tuple(cases), default_channel_id=integration.channel_id)


def route_table_get(integration: Integration) -> routing.RouteTable:
    """The route table a push is routed by, cached like key lookups (an integration without rules too), so a
    push costs no database work for it; the admin clears it when rules or the integration change."""
    key = _route_cache_key(integration.pk)
    cases = cache.get(key)
    if cases is None:
        cases = route_table_load(integration).cases
        cache.set(key, cases, settings.INTEGRATION_KEY_CACHE_SECONDS)
    # The default route comes with the integration itself (also cached), so the two never disagree.
    return routing.RouteTable(cases=cases, default_channel_id=integration.channel_id)


def route_cache_clear(*integration_ids: int) -> None:
    cache.delete_many([_route_cache_key(pk) for pk in integration_ids if pk])


def _channel_name_cache_key(name: str) -> str:
    # Hashed: a name may hold characters or a length some cache backends refuse in keys.
    return f"oncall:channel-name:{hashlib.sha256(name.encode('utf-8')).hexdigest()}"


def channel_ids_by_name(names: Iterable[str]) -> dict[str, int]:
    """Ids of the channels with these names (name-mapping routing), cached briefly, names of no channel too."""
    names = set(names)
    if not names:
        return {}
    keys = {_channel_name_cache_key(name): name for name in names}
    cached = cache.get_many(keys)
    found = {keys[key]: value for key, value in cached.items() if value != _MISS}
    missing = names - {keys[key] for key in cached}
    if missing:
        loaded = dict(Channel.objects.filter(name__in=missing).values_list("name", "pk"))
        cache.set_many(
            {_channel_name_cache_key(name): loaded.get(name, _MISS) for name in missing},
            settings.INTEGRATION_KEY_CACHE_SECONDS,
        )
        found.update(loaded)
    return found


def channel_name_cache_clear(*names: str) -> None:
    cache.delete_many([_channel_name_cache_key(name) for name in names if name])


@dataclass(frozen=True)
class RoutingPreview:
    """Where one of an integration's recent alerts would go under its routing rules as saved now."""

    alert: Alert
    channel_names: tuple[str, ...]  # empty: refused, no route
    by_default: bool
    rule_names: tuple[str, ...]


def integration_routing_preview(*, integration: Integration, limit: int = 20) -> list[RoutingPreview]:
    """Run the integration's saved routing rules against its last `limit` alerts (title, description, severity,
    labels), newest first."""
    table = route_table_load(integration)
    alerts = list(
        Alert.objects.filter(integration=integration).select_related("channel").order_by("-start_time", "-id")[:limit]
    )
    subjects = [
        Subject(
            severity=alert.severity,
            title=alert.title,
            description=alert.description,
            integration_id=integration.pk,
            integration_name=integration.name,
            labels=alert.labels,
        )
        for alert in alerts
    ]
    mapped = set().union(*(table.mapped_names(subject) for subject in subjects))
    by_name = dict(Channel.objects.filter(name__in=mapped).values_list("name", "pk")) if mapped else {}
    decisions = [
        (routing.matched_cases(table, subject, by_name), routing.route(table, subject, by_name)) for subject in subjects
    ]
    channel_ids = {channel_id for _matches, ids in decisions for channel_id in ids}
    names = dict(Channel.objects.filter(pk__in=channel_ids).values_list("pk", "name")) if channel_ids else {}
    return [
        RoutingPreview(
            alert=alert,
            channel_names=tuple(names.get(channel_id, f"#{channel_id}") for channel_id in ids),
            by_default=bool(ids) and not matches,
            rule_names=tuple(match.case.name for match in matches),
        )
        for alert, (matches, ids) in zip(alerts, decisions, strict=True)
    ]


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
    queries whatever the number of incidents. How many alerts each holds is kept on the incident (alert_count)."""
    responders = Responder.objects.select_related("person").order_by("assigned_at", "id")
    return (
        queryset.select_related("channel", "created_by", "closed_by")
        .prefetch_related(Prefetch("responder_set", queryset=responders))
        .annotate(active_alert_count=Count("alerts", filter=Q(alerts__progress=AlertProgress.TRIGGERED)))
    )


def channel_list_visible(user) -> QuerySet[Channel]:
    """Channels `user` works in: staff see all; others those of their teams."""
    if user.is_staff:
        return Channel.objects.all()
    return Channel.objects.filter(team__members=user).distinct()
