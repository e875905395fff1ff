"""Every endpoint of the project, read from the URL resolver, refuses a caller without credentials — except the
reviewed public ones below, each of which is checked for what protects it instead.

A URL added later is in ROUTES automatically: without authentication it fails `test_..._refuses_anonymous`, until
it is protected or added to PUBLIC with its reason (and a check of what guards it).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.test import Client

from oncall import sources
from oncall.models import ApiToken, Device, EventBatch, Incident
from tests.security.conftest import signed_in
from tests.security.routes import HTTP_METHODS, ROUTES, Route, is_admin, is_hook, routes

pytestmark = pytest.mark.django_db

# Reviewed: what each public endpoint is, and what protects it instead of a sign-in.
PUBLIC: dict[str, str] = {
    "/": "redirects to the incident list, which asks for a sign-in",
    "login": "the sign-in form",
    "logout": "signing out",
    "password_reset": "asks for a reset email; says the same whether or not the address is known",
    "password_reset_done": "a static page",
    "password_reset_confirm": "the emailed link, signed for one person and their current password",
    "password_reset_complete": "a static page",
    "admin:login": "the admin's sign-in form",
    "admin:logout": "signing out",
    "healthz": "liveness: {'status': 'ok'} and nothing else",
    "readyz": "readiness: whether the database and the cache answer, nothing else",
    "metrics": "Prometheus figures; Authorization: Bearer METRICS_TOKEN when it is set",
    "api:schema": "the OpenAPI document: the API's shape, no data",
    "api:docs": "Swagger UI over the OpenAPI document, no data",
    "api:device-link-redeem": "the one-time link code of a QR code authenticates the phone app",
    "alert-push": "monitors: the integration key in the URL",
    "alert-push-pagerduty": "monitors: the integration key in the URL or the body",
    "pagerduty-enqueue": "monitors: the routing key in the body",
    "calendar-schedule": "calendar apps: the secret token in the URL",
    "calendar-person": "calendar apps: the secret token in the URL",
    "web:manifest": "the web app's manifest: static",
    "web:service-worker": "the web app's service worker: static",
}
# Provider callbacks (every route under /hooks/) verify the provider's signature instead of a sign-in:
# tests/security/test_callback_signatures.py enumerates them and fails for one it cannot sign.
INGEST = ("alert-push", "alert-push-pagerduty", "pagerduty-enqueue")
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


def is_public(route: Route) -> bool:
    return route.key in PUBLIC or is_hook(route)


def refused(response) -> bool:
    """401, 403, or a redirect to a sign-in page."""
    if response.status_code in (401, 403):
        return True
    if response.status_code in (301, 302):
        return urlsplit(response["Location"]).path in LOGIN_PAGES
    return False


def call(client: Client, method: str, path: str, **kwargs):
    return getattr(client, method)(path, **kwargs)


def test_the_public_list_names_only_routes_that_exist():
    keys = {route.key for route in ROUTES}
    assert not set(PUBLIC) - keys, "remove these from PUBLIC"


@pytest.mark.parametrize("route", routes(lambda r: not is_public(r)), ids=str)
def test_every_endpoint_refuses_anonymous_callers(route):
    client = Client()
    answers = {method: call(client, method, route.path()) for method in (*HTTP_METHODS, "options")}
    wrong = {
        method: (response.status_code, response.get("Location"))
        for method, response in answers.items()
        if response.status_code != 405 and not refused(response)
    }
    assert not wrong, f"{route.key} answers anonymous callers: {wrong}"
    assert any(refused(r) for r in answers.values())


@pytest.mark.parametrize("route", routes(lambda r: is_admin(r) and not is_public(r)), ids=str)
def test_every_admin_page_sends_an_engineer_to_the_admin_sign_in(route, staff):
    client = signed_in(staff.ann)
    for method in ("get", "post"):
        response = call(client, method, route.path())
        assert response.status_code == 302, (route.key, method, response.status_code)
        assert urlsplit(response["Location"]).path == "/admin/login/"


def test_the_api_refuses_a_wrong_or_revoked_token(world):
    protected = routes(lambda r: r.is_drf and not is_public(r))
    assert len(protected) > 25
    world.ann.token.revoked_at = world.ann.token.created_at
    world.ann.token.save()
    for value in ("Bearer oncall_not-a-real-token", f"Bearer {world.ann.token_value}", "Basic YW5uOnB3"):
        client = Client(HTTP_AUTHORIZATION=value)
        for route in protected:
            for method in route.drf_methods():
                response = call(client, method, route.path(incident_id=world.ann.incident.pk))
                assert response.status_code in (401, 403), (route.key, method, value, response.status_code)
                assert value.split()[1] not in response.content.decode()


# -- what guards each public endpoint ----------------------------------------------------------------------------


def _ingest_paths() -> list[tuple[str, str]]:
    """(path without key, how the key is given) for every ingest route and every format."""
    found = []
    for route in routes(lambda r: r.key in INGEST):
        if "source" in route.params:
            found += [(route.path(source=name), "query") for name in sorted(sources.PARSERS)]
        else:
            found.append((route.path(), "body" if route.key == "pagerduty-enqueue" else "query"))
    return found


@pytest.mark.parametrize(("path", "key_in"), _ingest_paths())
def test_ingest_refuses_a_missing_or_wrong_key_and_stores_nothing(world, path, key_in):
    client = Client()
    event = {"title_rule": "x", "event_status": "Critical", "routing_key": "", "event_action": "trigger"}
    event["payload"] = {"summary": "x", "source": "x", "severity": "critical"}
    wrong_key = world.ben.integration_key[:-4] + "0000"
    for key in ("", wrong_key, world.ben.integration_key.upper(), " "):
        url = path if key_in == "body" else f"{path}?integration_key={key}"
        body = {**event, "routing_key": key} if key_in == "body" else event
        before = (EventBatch.objects.count(), Incident.objects.count())
        response = client.post(url, data=json.dumps(body), content_type="application/json")
        assert response.status_code in (400, 401), (url, response.status_code)
        assert (EventBatch.objects.count(), Incident.objects.count()) == before
        if key.strip():
            assert key not in response.content.decode()


def test_every_ingest_route_is_covered_by_the_key_check():
    assert {route.key for route in routes(lambda r: r.key in INGEST)} == set(INGEST)
    assert {route.key for route in ROUTES if route.view_class and "ingest" in route.view_class.__module__} <= set(
        INGEST
    )


def test_metrics_need_the_token_when_one_is_set(settings, db):
    settings.METRICS_TOKEN = "metrics-token-1234"
    assert Client().get("/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="metrics-token-1234").get("/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer metrics-token-1234").get("/metrics").status_code == 200


def test_calendar_feeds_answer_only_their_own_secret_token(world):
    anonymous = Client()
    assert anonymous.get(f"/calendar/person/{world.ann.feed_token}.ics").status_code == 200
    assert anonymous.get(f"/calendar/schedule/{world.ann.feed_token}.ics").status_code == 404  # not a schedule's
    assert anonymous.get(f"/calendar/person/{world.ann.feed_token[:-2]}xx.ics").status_code == 404


def test_the_device_link_code_is_what_authenticates_the_app(world):
    body = {"platform": "android", "token": "fcm-new-" + "y" * 40, "link_token": "not-a-code"}
    before = (Device.objects.count(), ApiToken.objects.count())
    for data in (body, {**body, "link_token": ""}, {k: v for k, v in body.items() if k != "link_token"}):
        response = Client().post("/api/v1/devices/link/", data=data, content_type="application/json")
        assert response.status_code == 400
    assert (Device.objects.count(), ApiToken.objects.count()) == before


def test_public_pages_show_no_data(world):
    anonymous = Client()
    secrets = [
        world.ben.incident.title,
        world.ben.integration_key,
        world.ben.token_value,
        world.ben.user.email,
        world.ben.device.token,
    ]
    for route in routes(lambda r: r.key in PUBLIC and r.key not in INGEST):
        response = anonymous.get(route.path(), follow=False)
        content = b"".join(response) if response.streaming else response.content
        text = content.decode(errors="replace")
        for secret in secrets:
            assert secret not in text, (route.key, secret)


def test_the_password_reset_says_the_same_whether_or_not_the_address_is_known(world, mailoutbox):
    known = Client().post("/accounts/password_reset/", data={"email": world.ann.user.email})
    unknown = Client().post("/accounts/password_reset/", data={"email": "nobody-here@example.com"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [message.to for message in mailoutbox if "password" in message.subject.lower()] == [[world.ann.user.email]]
