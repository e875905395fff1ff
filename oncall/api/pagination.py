"""Flashduty-style pages: `p` (1-based) and `limit` (1 to 100, default 20) in; items, total and has_next_page out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# Far past any list's end, and small enough that the offset it makes stays a number the database takes.
P_MAX = 10**9


class PageInputSerializer(serializers.Serializer):
    """The page a list request asks for; lists' filter serializers extend it."""

    p = serializers.IntegerField(min_value=1, max_value=P_MAX, default=1, help_text="Page number, from 1.")
    limit = serializers.IntegerField(
        min_value=1, max_value=LIMIT_MAX, default=LIMIT_DEFAULT, help_text="Items per page, 1 to 100."
    )


@dataclass(frozen=True)
class Page:
    items: list
    total: int
    p: int
    limit: int

    @property
    def has_next_page(self) -> bool:
        return self.p * self.limit < self.total


def paginate(queryset: QuerySet, *, p: int, limit: int, decorate: Callable[[QuerySet], QuerySet] | None = None) -> Page:
    """One page of an ordered queryset. `decorate` adds what only the page's rows need (annotations, prefetches),
    so the count stays a plain count."""
    total = queryset.count()
    rows = decorate(queryset) if decorate else queryset
    offset = (p - 1) * limit
    return Page(items=list(rows[offset : offset + limit]), total=total, p=p, limit=limit)


def page_data(page: Page, item_serializer: type[serializers.Serializer]) -> dict:
    return {
        "items": item_serializer(page.items, many=True).data,
        "total": page.total,
        "p": page.p,
        "limit": page.limit,
        "has_next_page": page.has_next_page,
    }


_page_serializers: dict[str, serializers.Serializer] = {}


def page_serializer(name: str, item_serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of a page of `item_serializer` items (documentation only); one component per name."""
    if name not in _page_serializers:
        _page_serializers[name] = inline_serializer(
            name=name,
            fields={
                "items": item_serializer(many=True),
                "total": serializers.IntegerField(help_text="Items matching, on all pages."),
                "p": serializers.IntegerField(),
                "limit": serializers.IntegerField(),
                "has_next_page": serializers.BooleanField(),
            },
        )
    return _page_serializers[name]
