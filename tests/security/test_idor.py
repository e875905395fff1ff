"""One engineer cannot read or change another's data, nor incidents of channels they may not see.

Ann and Ben are in different teams. Every route whose path names an object by id (read from the URL resolver) is
called as Ann — by the REST API with her token and by her browser session — for every method, with Ben's object in
the path and a body that would pass validation; each must answer as if the object did not exist and leave every row
of Ben's as it was. The same route with Ann's own object must then work, so a test that refuses everything for
another reason cannot pass by accident.

A route added later with an id in its path fails `test_every_route_with_an_id_has_a_reviewed_owner` until someone
says below how to build another person's object for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from channels_app.acklinks import ack_token
from oncall.models import (
    ApiToken,
    Device,
    Incident,
    NotificationPreference,
    Responder,
    TimelineEntry,
    User,
)
from oncall.web.incidents import ACTIONS
from tests.security.conftest import Person, World, signed_in
from tests.security.routes import HTTP_METHODS, Route, is_admin, routes

pytestmark = pytest.mark.django_db

# Reviewed: for every id a path can carry, the object of a given person it names. The admin's ids are left out:
# the admin refuses engineers altogether (test_authentication.py), and staff may see every object by design.
OWNED: dict[str, Callable[[Person], int]] = {
    "incident_id": lambda person: person.incident.pk,
    "token_id": lambda person: person.token.pk,
    "device_id": lambda person: person.device.pk,
}
# Path parameters that name no object of anybody's.
NOT_IDS = {"action", "method", "source", "token"}


def is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def with_ids(route: Route) -> bool:
    return not is_admin(route) and any(is_id(name) for name in route.params)


def body(world: World) -> dict:
    """A body every write of the API or the pages would accept from Ann for her own objects."""
    return {
        "title": "Taken over",
        "description": "Taken over",
        "severity": "Info",
        "reason": "Taken over",
        "minutes": 30,
        "level": 1,
        "person_ids": [world.ann.user.pk],
        "people": [world.ann.user.pk],
        "mode": "add",
        "text": "Taken over",
        "target_id": world.ann.incident.pk,
    }


def state_of(person: Person) -> dict:
    """Every row of `person`'s that a request of somebody else's could change."""
    user = User.objects.get(pk=person.user.pk)
    incident = Incident.objects.get(pk=person.incident.pk)
    return {
        "user": model_to_dict(user, exclude=["last_login", "password", "groups", "user_permissions"]),
        "incident": model_to_dict(incident),
        "responders": list(Responder.objects.filter(incident=incident).values()),
        "timeline": TimelineEntry.objects.filter(incident=incident).count(),
        "tokens": list(ApiToken.objects.filter(user=user).values("pk", "name", "revoked_at")),
        "devices": list(Device.objects.filter(person=user).values()),
        "preferences": list(NotificationPreference.objects.filter(person=user).values()),
    }


def clients(world: World, route: Route) -> dict[str, Client]:
    """Ann's ways in: her API token (API routes only) and her browser session."""
    found = {"session": signed_in(world.ann.user)}
    if route.is_drf:
        found["token"] = Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    return found


def paths(world: World, route: Route, owner: Person) -> list[str]:
    """Concrete paths to `route` naming `owner`'s objects (every incident action; an ack link signed for Ann's)."""
    values = {name: OWNED[name](owner) for name in route.params if name in OWNED}
    if "token" in route.params:  # the ack link: the token Ann was sent, for her incident
        values["token"] = ack_token(world.ann.incident.pk)
    if "action" in route.params:
        return [route.path(**values, action=action) for action in ACTIONS]
    return [route.path(**values)]


def methods(route: Route) -> tuple[str, ...]:
    return route.drf_methods() if route.is_drf else HTTP_METHODS


def send(client: Client, method: str, path: str, data: dict):
    if method == "get":
        return client.get(path)
    if method == "post" and not path.startswith("/api/"):
        return client.post(path, data=data)  # a form, as the pages post
    return getattr(client, method)(path, data=json.dumps(data), content_type="application/json")


ID_ROUTES = routes(with_ids)


def test_every_route_with_an_id_has_a_reviewed_owner():
    assert len(ID_ROUTES) >= 20
    for route in ID_ROUTES:
        unknown = [name for name in route.params if name not in OWNED and name not in NOT_IDS]
        assert not unknown, f"{route.key}: say in OWNED how to build another person's object for {unknown}"


@pytest.mark.parametrize("route", ID_ROUTES, ids=str)
def test_nobody_reads_or_changes_an_object_of_somebody_else(world, route):
    before = state_of(world.ben)
    data = body(world)
    for way, client in clients(world, route).items():
        for path in paths(world, route, world.ben):
            answers = {method: send(client, method, path, data) for method in methods(route)}
            for method, response in answers.items():
                where = (route.key, way, method, path, response.status_code)
                # 404 like a missing object; the ack link checks its signature first (400).
                assert response.status_code in (400, 403, 404, 405), where
                assert world.ben.incident.title not in response.content.decode(errors="replace"), where
            assert any(response.status_code != 405 for response in answers.values()), (route.key, path)
    assert state_of(world.ben) == before
    # The control: with Ann's own object the route does answer, so the refusals above are about ownership.
    # Found and allowed means a success, or a refusal of the action itself (409: not acknowledged), never 403/404.
    own = paths(world, route, world.ann)[0]
    session = clients(world, route)["session"]
    statuses = {method: send(session, method, own, data).status_code for method in methods(route)}
    assert any(status in (200, 201, 204, 302, 400, 409) for status in statuses.values()), (route.key, statuses)


def test_an_ack_link_signed_for_one_incident_does_not_acknowledge_another(world):
    """An ack link is signed for one incident: a link Ann got cannot acknowledge Ben's (the id swapped)."""
    client = signed_in(world.ann.user)
    response = client.post(f"/incidents/{world.ben.incident.pk}/ack/{ack_token(world.ann.incident.pk)}/")
    assert response.status_code == 400
    assert Incident.objects.get(pk=world.ben.incident.pk).progress == world.ben.incident.progress


# -- ids in bodies and queries -------------------------------------------------------------------------------------


def test_no_listing_shows_anything_of_somebody_elses(world):
    secrets = [
        world.ben.incident.title,
        world.ben.user.email,
        world.ben.user.phone,
        world.ben.device.token,
        world.ben.token_value,
    ]
    query = f"?channel={world.ben.incident.channel_id}&channel_id={world.ben.incident.channel_id}&scope=all"
    listings = routes(lambda r: not with_ids(r) and not is_admin(r) and not r.pattern.startswith(("hooks/", "admin")))
    token_client = Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    checked = 0
    for route in listings:
        if route.params or (route.is_drf and "get" not in route.drf_methods()):
            continue
        for client in (signed_in(world.ann.user), token_client) if route.is_drf else (signed_in(world.ann.user),):
            response = client.get(route.path() + query)
            content = b"".join(response) if response.streaming else response.content
            text = content.decode(errors="replace")
            for secret in secrets:
                assert secret not in text, (route.key, secret)
            checked += 1
    assert checked >= 15


def test_an_incident_cannot_be_merged_into_or_opened_in_a_channel_one_may_not_see(world):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    before = (state_of(world.ann), state_of(world.ben), Incident.objects.count())
    merge = client.post(
        f"/api/v1/incidents/{world.ann.incident.pk}/merge/",
        data={"target_id": world.ben.incident.pk},
        content_type="application/json",
    )
    assert merge.status_code == 400
    assert "target_id" in merge.content.decode()
    create = client.post(
        "/api/v1/incidents/",
        data={"channel_id": world.ben.incident.channel_id, "title": "Planted", "severity": "Critical"},
        content_type="application/json",
    )
    assert create.status_code == 400
    assert (state_of(world.ann), state_of(world.ben), Incident.objects.count()) == before


def test_ids_of_somebody_else_in_a_body_change_only_ones_own_data(world):
    """Every write of one's own profile, contacts, preferences, tokens and devices, with Ben's ids slipped into the
    body, touches Ben's rows not at all."""
    ben = world.ben.user.pk
    smuggled = {
        **body(world),
        **dict.fromkeys(("id", "pk", "user", "user_id", "person", "person_id", "owner"), ben),
        "first_name": "Taken",
        "last_name": "Over",
        "name": "planted",
    }
    before = state_of(world.ben)
    own = routes(lambda r: not r.params and (r.pattern.startswith("api/v1/me/") or r.pattern.startswith("me/")))
    assert len(own) >= 15
    token_client = Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    for route in own:
        for client in (signed_in(world.ann.user), token_client) if route.is_drf else (signed_in(world.ann.user),):
            for method in methods(route):
                if method != "get":
                    send(client, method, route.path(), smuggled)
    assert state_of(world.ben) == before
