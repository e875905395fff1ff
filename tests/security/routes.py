"""Every URL pattern of the project, read from the URL resolver, and a concrete path for each.

The security tests iterate over `ROUTES`, never over a hand-kept list, so an endpoint added later is tested (or
makes a test fail until someone says how it is protected). A route is named by its Django URL name
(`api:incident-detail`) when it has one, else by its pattern (`admin/(?P<url>.*)$`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
WRITE_METHODS = ("post", "put", "patch", "delete")

# A value for every path parameter any route takes; tests that need real objects pass their own.
SAMPLES: dict[str, str] = {
    "incident_id": "1",
    "token_id": "1",
    "device_id": "1",
    "object_id": "1",
    "content_type_id": "1",
    "id": "1",
    "code": "c" * 32,
    "token": "T" * 32,
    "uidb64": "MQ",
    "source": "standard",
    "action": "acknowledge",
    "method": "email",
    "url": "no-such-page/",
}

_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Route:
    key: str  # the URL name with its namespace, else the pattern
    pattern: str  # the whole pattern, prefixes joined
    pieces: tuple[object, ...]  # the pattern objects from the root to the view
    callback: Callable

    @property
    def params(self) -> tuple[str, ...]:
        names: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, RoutePattern):
                names += [m["name"] for m in _ROUTE_PARAM.finditer(str(piece))]
            elif isinstance(piece, RegexPattern):
                names += list(piece.regex.groupindex)
        return tuple(names)

    @property
    def view_class(self) -> type | None:
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)

    @property
    def is_drf(self) -> bool:
        from rest_framework.views import APIView

        cls = self.view_class
        return cls is not None and issubclass(cls, APIView)

    def drf_methods(self) -> tuple[str, ...]:
        """The HTTP methods a DRF view handles (OPTIONS and HEAD left out)."""
        return tuple(method for method in HTTP_METHODS if hasattr(self.view_class, method))

    def path(self, **values: object) -> str:
        """A concrete path to this route: `values` for its parameters, SAMPLES for the others."""
        given = {**SAMPLES, **{key: str(value) for key, value in values.items()}}
        path = "/" + "".join(_fill(piece, given) for piece in self.pieces)
        match = resolve(path)
        if match.func is not self.callback:
            raise AssertionError(f"{path} resolves to {match.view_name}, not to the route {self.key}")
        return path

    def __str__(self) -> str:
        return self.key


def _fill(piece, values: Mapping[str, str]) -> str:
    if isinstance(piece, RoutePattern):
        return _ROUTE_PARAM.sub(lambda m: values[m["name"]], str(piece))
    regex = str(piece)
    out, index = [], 0
    for match in re.finditer(r"\(\?P<(?P<name>\w+)>", regex):
        if match.start() < index:
            continue
        out.append(regex[index : match.start()])
        end = _group_end(regex, match.end())
        body = regex[match.end() : end]
        name = match["name"]
        if name in values:
            out.append(values[name])
        elif re.fullmatch(r"[\w|]+", body):  # an alternation of literals: take the first
            out.append(body.split("|")[0])
        else:
            raise KeyError(f"no sample value for the path parameter {name!r} of {regex!r}")
        index = end + 1
    out.append(regex[index:])
    text = "".join(out).removeprefix("^").removesuffix("$")
    return re.sub(r"\\(.)", r"\1", text)


def _group_end(regex: str, start: int) -> int:
    depth = 1
    position = start
    while depth:
        char = regex[position]
        if char == "\\":
            position += 2
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        position += 1
    return position - 1


def _walk(patterns, pieces: tuple, namespace: str):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if entry.namespace and namespace else entry.namespace or namespace
            yield from _walk(entry.url_patterns, (*pieces, entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            chain = (*pieces, entry.pattern)
            pattern = "".join(str(piece) for piece in chain)
            key = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or pattern or "/"
            yield Route(key=key, pattern=pattern, pieces=chain, callback=entry.callback)


def all_routes() -> list[Route]:
    routes = list(_walk(get_resolver().url_patterns, (), ""))
    keys = [route.key for route in routes]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        # Two patterns with one name (the admin's unnamed redirects): tell them apart by their pattern.
        routes = [
            Route(key=route.pattern, pattern=route.pattern, pieces=route.pieces, callback=route.callback)
            if route.key in duplicates
            else route
            for route in routes
        ]
    return routes


ROUTES: list[Route] = all_routes()


def routes(predicate: Callable[[Route], bool] = lambda route: True) -> list[Route]:
    return [route for route in ROUTES if predicate(route)]


def is_admin(route: Route) -> bool:
    return route.pattern.startswith("admin/")


def is_hook(route: Route) -> bool:
    return route.pattern.startswith("hooks/")
