"""Every form refuses a POST that does not carry the CSRF token of the browser's session.

Pages and the admin (every route not served by DRF, read from the URL resolver) are called by a signed-in browser
without the token: each answers Django's CSRF 403, unless it is a reviewed exemption below. The REST API, called with
the browser's session cookie, refuses writes without the token too (DRF's SessionAuthentication); called with a
personal API token in `Authorization` it needs none, by design: a browser never attaches that header by itself, so
a forged cross-site request cannot carry it. The ingest endpoints and provider callbacks are authenticated by a key
or a signature in the request itself (test_authentication.py, test_callback_signatures.py), not by cookies.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.security.conftest import Staff
from tests.security.routes import WRITE_METHODS, Route, is_admin, is_hook, routes
from tests.security.test_authentication import is_public

pytestmark = pytest.mark.django_db

# Reviewed: routes outside DRF that take a POST without a CSRF token, and why that is safe.
CSRF_EXEMPT: dict[str, str] = {}


def browser(people: Staff, route: Route) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.root if is_admin(route) else people.ann)
    return client


def csrf_refused(response) -> bool:
    return response.status_code == 403 and b"CSRF" in response.content


def with_token(client: Client) -> dict:
    """Headers that carry the session's CSRF token, as the page's form or script would."""
    client.get("/accounts/login/")
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


PAGES = routes(lambda r: not r.is_drf and not is_hook(r))


def test_the_exemptions_name_only_routes_that_exist():
    assert set(CSRF_EXEMPT) <= {route.key for route in PAGES}


@pytest.mark.parametrize("route", PAGES, ids=str)
def test_every_page_refuses_a_post_without_the_csrf_token(staff, route):
    client = browser(staff, route)
    path = route.path()  # the check comes before the view: no object is needed
    response = client.post(path, data={"title": "x"})
    if route.key in CSRF_EXEMPT:
        assert response.status_code == 405, (route.key, response.status_code)
        return
    assert csrf_refused(response), (route.key, response.status_code)
    # The control: the same POST with the session's token gets past the check.
    assert not csrf_refused(client.post(path, data={"title": "x"}, **with_token(client))), route.key


def test_the_pages_cover_the_admin_and_the_engineer_forms():
    keys = {route.key for route in PAGES}
    assert {"login", "logout", "web:me-profile", "web:incident-action", "incident-ack-link"} <= keys
    assert sum(1 for route in PAGES if is_admin(route)) >= 30


API_WRITES = routes(lambda r: r.is_drf and not is_public(r) and any(m in WRITE_METHODS for m in r.drf_methods()))


def test_the_api_refuses_a_write_by_session_without_the_csrf_token(world):
    assert len(API_WRITES) >= 20
    session = Client(enforce_csrf_checks=True)
    session.force_login(world.ann.user)
    token = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    for route in API_WRITES:
        path = route.path(incident_id=world.ann.incident.pk, token_id=0, device_id=0)
        for method in (m for m in route.drf_methods() if m in WRITE_METHODS):
            response = getattr(session, method)(path, data="{}", content_type="application/json")
            assert response.status_code == 403, (route.key, method, response.status_code)
            assert "CSRF" in json.dumps(response.json()), (route.key, method)
            # Token-authenticated calls are exempt by design (see the module's docstring).
            answer = getattr(token, method)(path, data="{}", content_type="application/json")
            assert answer.status_code != 403, (route.key, method, answer.status_code)
