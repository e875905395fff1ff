"""/api/v1/me/ and /api/v1/me/tokens/: your own profile and personal API tokens, never anyone else's."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from oncall.models import ApiToken, User
from oncall.services.tokens import api_token_create
from tests.factories import make_team, make_user

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
TOKENS = "/api/v1/me/tokens/"


def bearer(value: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return api


def session(user: User) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"request_id", "error"}, body
    return body["error"]


@pytest.fixture
def alice(clock):
    alice = make_user("alice", first_name="Alice", last_name="Ng")
    make_team("Ops", [alice])
    return alice


@pytest.fixture
def bob(clock):
    return make_user("bob")


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", ME), ("patch", ME), ("get", TOKENS), ("post", TOKENS), ("delete", f"{TOKENS}1/")],
)
def test_me_endpoints_answer_401_without_credentials(alice, method, url):
    response = getattr(APIClient(), method)(url, {"name": "x"}, format="json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "Unauthorized"


# -- profile -------------------------------------------------------------------------------------------------------


def test_me_shows_my_own_profile_by_session_or_token(alice, bob, clock):
    _, value = api_token_create(user=alice, name="laptop", now=clock.current)
    for api in (session(alice), bearer(value)):
        response = api.get(ME)
        assert response.status_code == 200
        assert response.json()["data"] == {
            "id": alice.pk,
            "username": "alice",
            "first_name": "Alice",
            "last_name": "Ng",
            "email": "alice@example.com",
            "time_zone": "UTC",
            "teams": [{"id": alice.teams.get().pk, "name": "Ops"}],
        }
    assert session(bob).get(ME).json()["data"]["username"] == "bob"


def test_patch_changes_my_time_zone_and_name(alice):
    response = session(alice).patch(ME, {"time_zone": "Asia/Shanghai", "first_name": "Ali"}, format="json")
    assert response.status_code == 200
    assert (response.json()["data"]["time_zone"], response.json()["data"]["first_name"]) == ("Asia/Shanghai", "Ali")
    alice.refresh_from_db()
    assert (alice.time_zone, alice.first_name, alice.last_name) == ("Asia/Shanghai", "Ali", "Ng")


@pytest.mark.parametrize("time_zone", ["Mars/Olympus_Mons", "", "utc+8", None])
def test_an_invalid_time_zone_is_400_naming_time_zone(alice, time_zone):
    response = session(alice).patch(ME, {"time_zone": time_zone, "first_name": "Changed"}, format="json")
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["field"]) == ("InvalidParameter", "time_zone")
    alice.refresh_from_db()
    assert (alice.time_zone, alice.first_name) == ("UTC", "Alice"), "nothing changes"


def test_username_and_email_cannot_be_changed_here(alice, bob):
    response = session(alice).patch(
        ME, {"username": "bob", "email": "boss@example.com", "last_name": "Ng-Smith"}, format="json"
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["username"], data["email"], data["last_name"]) == ("alice", "alice@example.com", "Ng-Smith")
    alice.refresh_from_db()
    assert (alice.username, alice.email) == ("alice", "alice@example.com")
    bob.refresh_from_db()
    assert (bob.username, bob.last_name) == ("bob", "")


# -- API tokens ----------------------------------------------------------------------------------------------------


def test_a_new_token_shows_its_secret_once_and_the_list_never_does(alice):
    api = session(alice)
    response = api.post(TOKENS, {"name": "phone"}, format="json")
    assert response.status_code == 201
    created = response.json()["data"]
    secret = created["token"]
    assert secret.startswith("oncall_") and len(secret) > 30
    assert (created["name"], created["token_hint"], created["revoked_at"]) == ("phone", secret[:11], None)
    listed = api.get(TOKENS)
    assert listed.status_code == 200
    assert [{k: t[k] for k in ("id", "name", "token_hint")} for t in listed.json()["data"]["items"]] == [
        {"id": created["id"], "name": "phone", "token_hint": secret[:11]}
    ]
    assert "token" not in listed.json()["data"]["items"][0]
    assert secret not in listed.content.decode()
    assert secret not in ApiToken.objects.values_list("token_hash", flat=True)


def test_a_new_token_authenticates_as_me_and_records_its_last_use(alice, clock):
    secret = session(alice).post(TOKENS, {"name": "script"}, format="json").json()["data"]["token"]
    clock.advance(minutes=5)
    assert bearer(secret).get(ME).json()["data"]["username"] == "alice"
    listed = bearer(secret).get(TOKENS).json()["data"]["items"][0]
    assert (listed["created_at"] is not None, listed["last_used_at"]) == (True, "2026-03-02T09:05:00Z")


def test_a_sixth_active_token_is_refused_until_one_is_revoked(alice):
    api = session(alice)
    ids = [api.post(TOKENS, {"name": f"t{n}"}, format="json").json()["data"]["id"] for n in range(5)]
    refused = api.post(TOKENS, {"name": "t6"}, format="json")
    assert refused.status_code == 400
    assert (error_of(refused)["code"], error_of(refused)["field"]) == ("InvalidParameter", "name")
    assert "5" in error_of(refused)["message"]
    assert ApiToken.objects.filter(user=alice).count() == 5
    assert api.delete(f"{TOKENS}{ids[0]}/").status_code == 200
    assert api.post(TOKENS, {"name": "t6"}, format="json").status_code == 201
    assert len(api.get(TOKENS).json()["data"]["items"]) == 6, "revoked tokens stay listed"


@pytest.mark.parametrize(("body", "field"), [({}, "name"), ({"name": "  "}, "name"), ({"name": "x" * 101}, "name")])
def test_a_token_needs_a_name(alice, body, field):
    response = session(alice).post(TOKENS, body, format="json")
    assert (response.status_code, error_of(response)["field"]) == (400, field)
    assert not ApiToken.objects.exists()


def test_revoking_a_token_stops_it_at_once(alice, clock):
    api = session(alice)
    created = api.post(TOKENS, {"name": "old"}, format="json").json()["data"]
    assert bearer(created["token"]).get(ME).status_code == 200
    clock.advance(minutes=1)
    response = api.delete(f"{TOKENS}{created['id']}/")
    assert response.status_code == 200
    assert (response.json()["data"]["id"], response.json()["data"]["revoked_at"]) == (
        created["id"],
        "2026-03-02T09:01:00Z",
    )
    rejected = bearer(created["token"]).get(ME)
    assert (rejected.status_code, error_of(rejected)["code"]) == (401, "Unauthorized")
    assert api.delete(f"{TOKENS}{created['id']}/").status_code == 200, "revoking twice is harmless"


def test_a_token_authenticated_request_may_create_and_revoke_tokens(alice, clock):
    _, first = api_token_create(user=alice, name="bootstrap", now=clock.current)
    created = bearer(first).post(TOKENS, {"name": "ci"}, format="json")
    assert created.status_code == 201
    second = created.json()["data"]["token"]
    assert bearer(second).delete(f"{TOKENS}{created.json()['data']['id']}/").status_code == 200
    assert bearer(second).get(ME).status_code == 401
    assert bearer(first).get(ME).status_code == 200


def test_nobody_can_list_or_revoke_someone_elses_token(alice, bob, clock):
    bobs_token, bobs_secret = api_token_create(user=bob, name="bob's", now=clock.current)
    api = session(alice)
    response = api.delete(f"{TOKENS}{bobs_token.pk}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "ResourceNotFound"
    assert api.delete(f"{TOKENS}999999/").json()["error"]["message"].replace("999999", "N") == error_of(response)[
        "message"
    ].replace(str(bobs_token.pk), "N")
    assert api.get(TOKENS).json()["data"]["items"] == []
    assert bearer(bobs_secret).get(ME).status_code == 200, "bob's token still works"
    bobs_token.refresh_from_db()
    assert bobs_token.revoked_at is None
