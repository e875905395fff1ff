"""Every endpoint of the project, read from the URL resolver, refuses a caller without credentials — except the
reviewed public ones below, each of which is checked for what protects it instead.

A URL added later is in ROUTES automatically: without authentication it fails `test_..._refuses_anonymous`, until
it is protected or added to PUBLIC with its reason (and a check of what guards it).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.test import Client

from channels_app.models import Bot, DailyUsage, MappingTable
from escalation.models import Layer, Schedule, ShiftReminder
from oncall import sources
from oncall.models import ApiToken, Device, EventBatch, Incident, VerificationCode
from oncall.services.contacts import contact_code_create
from tests.factories import make_bot, make_mapping_table, make_schedule, make_user
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


# Reviewed: admin pages any staff member may open, whatever their permissions, and why that is safe.
STAFF_PAGES: dict[str, str] = {
    "admin:index": "lists only the models the person has permissions on (none here)",
    "admin:password_change": "a staff member's own password",
    "admin:password_change_done": "a static page",
    "admin:jsi18n": "the admin's JavaScript translations",
    "admin:view_on_site": "a redirect to an object's public page, which asks for its own permission",
    "admin:autocomplete": "answers only for fields of models the person may view",
    "admin:app_list": "404 for an app the person has no permission in",
    "admin/(?P<url>.*)$": "404 for an address the admin does not have",
}


# Models of other apps whose admin is theirs, not ours: their object pages are checked without an object (a staff
# member is sent to the admin index, which tells no more than that no such object exists).
FOREIGN_ADMIN_APPS = ("auth", "django_q")
_ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


def an_object_for(route: Route, world) -> object | None:
    """An existing object of the model an admin object page is about (made when the world has none)."""
    app_label, model_name = _ADMIN_MODEL.match(route.pattern).group("app", "model")
    model = apps.get_model(app_label, model_name)
    ann, now = world.ann.user, world.ann.incident.start_time
    makers = {
        Bot: lambda: make_bot("webhook", "https://hooks.example.com/x"),
        MappingTable: lambda: make_mapping_table("feishu", {"ann@example.com": "ou_ann"}),
        DailyUsage: lambda: DailyUsage.objects.create(person=ann, method="sms", day=now.date(), count=1),
        Schedule: lambda: make_schedule(layers=[{"start": now, "groups": [[ann]]}]),
        Layer: lambda: make_schedule(layers=[{"start": now, "groups": [[ann]]}]).layers.get(),
        ShiftReminder: lambda: ShiftReminder.objects.create(
            schedule=make_schedule(),
            person=ann,
            shift_start=now,
            shift_end=now,
            due_at=now,
            next_attempt_at=now,
            created_at=now,
        ),
        EventBatch: lambda: EventBatch.objects.create(integration=world.ann.integration, events=[], received_at=now),
        VerificationCode: lambda: contact_code_create(person=ann, contact="email", target="", now=now)[0],
        AccessAttempt: lambda: AccessAttempt.objects.create(
            username=ann.username, ip_address="198.51.100.7", user_agent="", failures_since_start=3
        ),
    }
    found = model.objects.first()
    if found is None and model in makers:
        found = makers[model]()
    if found is None and app_label not in FOREIGN_ADMIN_APPS:
        raise AssertionError(f"{route.key}: make an object of {model.__name__} here, so its page is checked")
    return found


@pytest.mark.parametrize(
    "route", routes(lambda r: is_admin(r) and not is_public(r) and r.key not in STAFF_PAGES), ids=str
)
def test_every_admin_page_refuses_staff_without_its_permission(route, db, request):
    """Admin access is by Django's model permissions, custom admin views included: a staff account given no
    permissions opens nothing, even of objects that exist."""
    client = signed_in(make_user("clerk", is_staff=True))
    values = {}
    if "object_id" in route.params:
        found = an_object_for(route, request.getfixturevalue("world"))  # the world only where objects are needed
        values = {"object_id": found.pk} if found is not None else {}
    for method in ("get", "post"):
        response = call(client, method, route.path(**values))
        if route.pattern.endswith("<path:object_id>/"):  # Django's old address of a change page: sent on to it
            assert response.status_code == 302 and response["Location"].endswith("/change/"), route.key
            continue
        if "object_id" in route.params and not values and response.status_code == 302:
            assert urlsplit(response["Location"]).path == "/admin/", route.key  # no such object
            continue
        assert response.status_code == 403, (route.key, method, response.status_code)
