"""/api/v1/incidents/: authentication, who sees what, list filters and pages, and every lifecycle action."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from oncall.models import Incident, Responder, User
from oncall.services import lifecycle
from oncall.services.devices import device_link_token_create, devices_remove
from oncall.services.tokens import api_token_create, api_token_revoke
from tests.factories import make_channel, make_integration, make_team, make_user, push

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents/"
LINK = "/api/v1/devices/link/"


def token_client(user: User, clock) -> APIClient:
    _, value = api_token_create(user=user, name="script", now=clock.current)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return api


def session_client(user: User) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def fire(client, key: str, alert_key: str, title: str, *, severity: str = "Critical", **fields) -> Incident:
    response = push(client, key, {"title_rule": title, "event_status": severity, "alert_key": alert_key, **fields})
    assert response.status_code == 200, response.content
    return Incident.objects.get(alerts__alert_key=alert_key, progress__in=["Triggered", "Processing"])


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"request_id", "error"}, body
    return body["error"]


def timeline(api: APIClient, incident: Incident) -> list[dict]:
    return api.get(f"{URL}{incident.pk}/timeline/").json()["data"]["items"]


@pytest.fixture
def world(client, clock):
    alice = make_user("alice", first_name="Alice", last_name="Ng")
    carol = make_user("carol")
    bob = make_user("bob")
    root = make_user("root", is_staff=True)
    production = make_channel("Production", team=make_team("Ops", [alice, carol]))
    billing = make_channel("Billing", team=make_team("Payments", [bob]))
    _, prod_key = make_integration(channel=production)
    _, bill_key = make_integration(channel=billing)
    return SimpleNamespace(
        alice=alice,
        carol=carol,
        bob=bob,
        root=root,
        production=production,
        billing=billing,
        prod_key=prod_key,
        bill_key=bill_key,
        db_down=fire(client, prod_key, "db", "Database down", description="primary unreachable"),
        card_errors=fire(client, bill_key, "cards", "Card payments failing", severity="Warning"),
    )


@pytest.fixture
def alice_api(world, clock) -> APIClient:
    return token_client(world.alice, clock)


# -- authentication ------------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", ""),
    ("post", ""),
    ("get", "{id}/"),
    ("patch", "{id}/"),
    ("get", "{id}/alerts/"),
    ("get", "{id}/timeline/"),
    *[
        ("post", f"{{id}}/{action}/")
        for action in (
            "acknowledge",
            "unacknowledge",
            "close",
            "reopen",
            "snooze",
            "wake",
            "reassign",
            "responders",
            "comment",
            "merge",
        )
    ],
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_incident_endpoint_answers_401_without_credentials(world, method, path):
    response = getattr(APIClient(), method)(URL + path.format(id=world.db_down.pk), {}, format="json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "Unauthorized"
    assert response["WWW-Authenticate"] == "Bearer", "the 401 says how to authenticate"


def test_an_unknown_or_revoked_token_is_401(world, clock):
    token, value = api_token_create(user=world.alice, name="old", now=clock.current)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    assert api.get(URL).status_code == 200
    api_token_revoke(token=token, now=clock.current)
    response = api.get(URL)
    assert response.status_code == 401
    assert error_of(response)["code"] == "Unauthorized"
    api.credentials(HTTP_AUTHORIZATION="Bearer oncall_not-a-real-token")
    assert api.get(URL).status_code == 401


def test_token_actions_are_recorded_as_api_and_session_actions_as_web(world, clock):
    by_token = token_client(world.alice, clock).post(f"{URL}{world.db_down.pk}/acknowledge/")
    by_session = session_client(world.carol).post(f"{URL}{world.db_down.pk}/acknowledge/")
    assert (by_token.status_code, by_session.status_code) == (200, 200)
    entries = timeline(session_client(world.alice), world.db_down)
    acks = [(e["actor"]["name"], e["source"]) for e in entries if e["kind"] == "acknowledged"]
    assert acks == [("Alice Ng", "api"), ("carol", "web")]


def test_actions_from_the_phone_app_are_recorded_as_the_mobile_app(world, clock):
    # The app's token came from the QR code it scanned, so it is Alice's phone app: not a script's action. It stays
    # the app's while its push service has forgotten its push token and it has no device until it links a new one.
    _row, link_token = device_link_token_create(person=world.alice, now=clock.current)
    body = {"link_token": link_token, "platform": "android", "token": "fcm-alices-pixel", "name": "Pixel"}
    app = APIClient()
    linked = app.post(LINK, body, format="json").json()["data"]
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {linked['api_token']}")
    assert app.post(f"{URL}{world.db_down.pk}/acknowledge/").status_code == 200
    devices_remove(device_ids=[linked["device"]["id"]])
    assert app.post(f"{URL}{world.db_down.pk}/comment/", {"text": "on it"}, format="json").status_code == 201
    entries = timeline(session_client(world.carol), world.db_down)
    sources = [(e["kind"], e["source"]) for e in entries if e["kind"] in ("acknowledged", "comment")]
    assert sources == [("acknowledged", "app"), ("comment", "app")]


def test_an_unsupported_method_is_405_in_the_envelope(world, alice_api):
    response = alice_api.delete(f"{URL}{world.db_down.pk}/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "MethodNotAllowed"
    assert alice_api.get(f"{URL}{world.db_down.pk}/acknowledge/").status_code == 405


# -- who sees what -------------------------------------------------------------------------------------------------


def listed_titles(api: APIClient, query: str = "") -> list[str]:
    response = api.get(URL + query)
    assert response.status_code == 200, response.content
    return [item["title"] for item in response.json()["data"]["items"]]


def test_an_engineer_lists_only_incidents_of_their_teams_channels(world, alice_api, clock):
    assert listed_titles(alice_api) == ["Database down"]
    assert listed_titles(token_client(world.bob, clock)) == ["Card payments failing"]


def test_staff_see_every_incident(world, clock):
    assert listed_titles(token_client(world.root, clock)) == ["Card payments failing", "Database down"]
    assert token_client(world.root, clock).get(f"{URL}{world.card_errors.pk}/").status_code == 200


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e[1]])
def test_an_incident_of_another_team_is_404_for_every_read_and_action(world, alice_api, method, path):
    before = world.card_errors.timeline.count()
    bodies = {"snooze/": {"minutes": 5}, "reopen/": {"reason": "x"}, "comment/": {"text": "hi"}, "merge/": {}}
    body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})
    if path.endswith(("reassign/", "responders/")):
        body = {"person_ids": [world.alice.pk]}
    if path.endswith("merge/"):
        body = {"target_id": world.db_down.pk}
    response = getattr(alice_api, method)(URL + path.format(id=world.card_errors.pk), body, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "ResourceNotFound"
    missing = getattr(alice_api, method)(URL + path.format(id=999999), body, format="json")
    assert (missing.status_code, error_of(missing)["message"].replace("999999", "N")) == (
        404,
        error_of(response)["message"].replace(str(world.card_errors.pk), "N"),
    ), "a hidden incident and a missing one look the same"
    incident = Incident.objects.get(pk=world.card_errors.pk)
    assert (incident.progress, incident.title, incident.timeline.count()) == (
        "Triggered",
        "Card payments failing",
        before,
    )
    assert not Responder.objects.filter(incident=incident, person=world.alice).exists()


def test_a_responder_sees_and_handles_an_incident_of_another_teams_channel(world, clock, alice_api):
    lifecycle.incident_add_responders(
        incident=world.card_errors, by=world.bob, people=[world.alice], source="web", now=clock.current
    )
    assert listed_titles(alice_api) == ["Card payments failing", "Database down"]
    assert alice_api.get(f"{URL}{world.card_errors.pk}/").status_code == 200
    assert alice_api.get(f"{URL}{world.card_errors.pk}/timeline/").status_code == 200
    response = alice_api.post(f"{URL}{world.card_errors.pk}/acknowledge/")
    assert response.status_code == 200
    assert response.json()["data"]["progress"] == "Processing"


def test_merging_into_an_incident_you_may_not_see_is_refused(world, alice_api):
    response = alice_api.post(f"{URL}{world.db_down.pk}/merge/", {"target_id": world.card_errors.pk}, format="json")
    assert response.status_code == 400
    assert error_of(response)["field"] == "target_id"
    assert Incident.objects.get(pk=world.db_down.pk).merged_into is None


# -- list: filters, search, pages ----------------------------------------------------------------------------------


@pytest.fixture
def many(world, client, clock):
    """Incidents of the Production channel, one minute apart (alice sees these and Database down)."""
    clock.advance(minutes=1)
    cache = fire(client, world.prod_key, "cache", "Cache hit rate low", severity="Info")
    clock.advance(minutes=1)
    disk = fire(
        client, world.prod_key, "disk", "Disk almost full", severity="Warning", description="Database volume at 95%"
    )
    clock.advance(minutes=1)
    latency = fire(client, world.prod_key, "latency", "API latency high", severity="Warning")
    lifecycle.incident_acknowledge(incident=disk, by=world.carol, source="web", now=clock.current)
    lifecycle.incident_resolve(incident=cache, by=world.carol, source="web", now=clock.current)
    lifecycle.incident_add_responders(
        incident=latency, by=world.carol, people=[world.alice], source="web", now=clock.current
    )
    return SimpleNamespace(cache=cache, disk=disk, latency=latency)


def test_list_is_newest_first(world, many, alice_api):
    assert listed_titles(alice_api) == ["API latency high", "Disk almost full", "Cache hit rate low", "Database down"]


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("?progress=Triggered", ["API latency high", "Database down"]),
        ("?progress=Triggered,Processing", ["API latency high", "Disk almost full", "Database down"]),
        ("?progress=Closed&progress=Processing", ["Disk almost full", "Cache hit rate low"]),
        ("?severity=Warning", ["API latency high", "Disk almost full"]),
        ("?severity=Critical,Info", ["Cache hit rate low", "Database down"]),
        ("?severity=Warning&progress=Processing", ["Disk almost full"]),
        ("?mine=true", ["API latency high"]),
        ("?mine=false", ["API latency high", "Disk almost full", "Cache hit rate low", "Database down"]),
        ("?since=2026-03-02T09:01:00Z", ["API latency high", "Disk almost full", "Cache hit rate low"]),
        ("?since=2026-03-02T09:01:00Z&until=2026-03-02T09:03:00Z", ["Disk almost full", "Cache hit rate low"]),
        ("?until=2026-03-02T10:01:00%2B01:00", ["Database down"]),
        ("?q=database", ["Disk almost full", "Database down"]),
        ("?q=LATENCY", ["API latency high"]),
        ("?q=nothing-like-this", []),
    ],
)
def test_list_filters(world, many, alice_api, query, titles):
    assert listed_titles(alice_api, query) == titles


def test_channel_filter_keeps_the_visibility_rule(world, many, alice_api, clock):
    assert listed_titles(alice_api, f"?channel={world.production.pk}&severity=Critical") == ["Database down"]
    assert listed_titles(alice_api, f"?channel={world.billing.pk}") == [], "filtering does not widen what you see"
    assert listed_titles(token_client(world.root, clock), f"?channel={world.billing.pk}") == ["Card payments failing"]


def test_pages_report_total_and_whether_another_page_follows(world, many, alice_api):
    first = alice_api.get(URL + "?limit=3").json()["data"]
    assert (
        [i["title"] for i in first["items"]],
        first["total"],
        first["p"],
        first["limit"],
        first["has_next_page"],
    ) == (
        ["API latency high", "Disk almost full", "Cache hit rate low"],
        4,
        1,
        3,
        True,
    )
    second = alice_api.get(URL + "?limit=3&p=2").json()["data"]
    assert ([i["title"] for i in second["items"]], second["total"], second["has_next_page"]) == (
        ["Database down"],
        4,
        False,
    )
    beyond = alice_api.get(URL + "?limit=3&p=9").json()["data"]
    assert (beyond["items"], beyond["total"], beyond["has_next_page"]) == ([], 4, False)
    default = alice_api.get(URL).json()["data"]
    assert (default["p"], default["limit"]) == (1, 20)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("progress=Open", "progress"),
        ("progress=Triggered,closed", "progress"),
        ("severity=High", "severity"),
        ("channel=abc", "channel"),
        ("mine=maybe", "mine"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-03-02T10:00:00Z&until=2026-03-02T09:00:00Z", "until"),
        ("p=0", "p"),
        ("p=x", "p"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        (f"q={'x' * 201}", "q"),
    ],
)
def test_a_bad_filter_value_is_400_naming_the_field(world, alice_api, query, field):
    response = alice_api.get(f"{URL}?{query}")
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == ("InvalidParameter", field)
    assert error["message"].startswith(f"{field}: ")


# -- detail, alerts, timeline --------------------------------------------------------------------------------------


def test_detail_shows_the_incident_its_responders_and_alert_counts(world, alice_api, clock):
    clock.advance(minutes=2)
    lifecycle.incident_acknowledge(incident=world.db_down, by=world.carol, source="web", now=clock.current)
    response = alice_api.get(f"{URL}{world.db_down.pk}/")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == data["number"] == world.db_down.pk
    assert (data["title"], data["description"], data["severity"], data["status"], data["progress"]) == (
        "Database down",
        "primary unreachable",
        "Critical",
        "Critical",
        "Processing",
    )
    assert data["channel"] == {"id": world.production.pk, "name": "Production"}
    assert (data["start_time"], data["ack_time"]) == ("2026-03-02T09:00:00Z", "2026-03-02T09:02:00Z")
    assert (data["close_time"], data["end_time"], data["snoozed_until"], data["closed_by"]) == (None, None, None, None)
    assert data["created_by"] is None, "a monitor opened it"
    assert data["responders"] == [
        {
            "person_id": world.carol.pk,
            "name": "carol",
            "email": "carol@example.com",
            "assigned_at": "2026-03-02T09:02:00Z",
            "acknowledged_at": "2026-03-02T09:02:00Z",
        }
    ]
    assert (data["alert_count"], data["active_alert_count"], data["labels"], data["manual_overrides"]) == (1, 1, {}, [])
    assert data["merged_into"] is None
    assert data["detail_url"].endswith(f"/incidents/{world.db_down.pk}/")


def test_alerts_of_an_incident_are_paged_newest_first(world, client, clock):
    channel = make_channel("Grouped", team=world.production.team, group_keys=["service"])
    _, key = make_integration(channel=channel, name="Prometheus")
    for minute, name in enumerate(["cpu", "memory", "disk"]):
        clock.advance(minutes=minute)
        fire(client, key, name, f"{name} high", labels={"service": "api"}, severity="Warning")
    push(client, key, {"title_rule": "cpu high", "event_status": "Ok", "alert_key": "cpu"})
    incident = Incident.objects.get(channel=channel)
    api = token_client(world.alice, clock)
    page = api.get(f"{URL}{incident.pk}/alerts/?limit=2").json()["data"]
    assert ([a["alert_key"] for a in page["items"]], page["total"], page["has_next_page"]) == (
        ["disk", "memory"],
        3,
        True,
    )
    last = api.get(f"{URL}{incident.pk}/alerts/?limit=2&p=2").json()["data"]["items"]
    assert [(a["alert_key"], a["status"], a["progress"]) for a in last] == [("cpu", "Ok", "Closed")]
    assert last[0]["labels"] == {"service": "api"}
    assert last[0]["integration"] == {"id": incident.alerts.first().integration_id, "name": "Prometheus"}
    detail = api.get(f"{URL}{incident.pk}/").json()["data"]
    assert (detail["alert_count"], detail["active_alert_count"]) == (3, 2)
    assert api.get(f"{URL}{incident.pk}/alerts/?limit=500").status_code == 400


def test_timeline_lists_every_entry_oldest_first(world, alice_api, clock):
    clock.advance(minutes=1)
    alice_api.post(f"{URL}{world.db_down.pk}/comment/", {"text": "looking"}, format="json")
    clock.advance(minutes=1)
    alice_api.post(f"{URL}{world.db_down.pk}/acknowledge/")
    entries = timeline(alice_api, world.db_down)
    assert [e["id"] for e in entries] == list(world.db_down.timeline.order_by("at", "id").values_list("id", flat=True))
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries), "oldest first"
    assert (entries[0]["at"], entries[0]["kind"], entries[0]["source"], entries[0]["actor"]) == (
        "2026-03-02T09:00:00Z",
        "opened",
        "monitor",
        None,
    )
    by_people = [(e["at"], e["kind"], e["source"], e["actor"]) for e in entries if e["actor"]]
    alice = {"id": world.alice.pk, "name": "Alice Ng"}
    assert by_people == [
        ("2026-03-02T09:01:00Z", "comment", "api", alice),
        ("2026-03-02T09:02:00Z", "acknowledged", "api", alice),
    ]
    comment = next(e for e in entries if e["kind"] == "comment")
    assert (comment["message"], comment["detail"]) == ("looking", {"text": "looking"})


# -- create and edit -----------------------------------------------------------------------------------------------


def test_create_opens_an_incident_by_hand_assigned_to_people(world, alice_api):
    response = alice_api.post(
        URL,
        {
            "channel_id": world.production.pk,
            "title": "  Checkout slow  ",
            "severity": "Warning",
            "description": "customers report it",
            "assign_to": [world.carol.pk, world.bob.pk],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert (data["title"], data["severity"], data["progress"], data["description"]) == (
        "Checkout slow",
        "Warning",
        "Triggered",
        "customers report it",
    )
    assert data["created_by"] == {"id": world.alice.pk, "name": "Alice Ng"}
    assert [r["person_id"] for r in data["responders"]] == [world.carol.pk, world.bob.pk]
    assert (data["labels"], data["alert_count"]) == ({}, 0)
    opened = timeline(alice_api, Incident.objects.get(pk=data["id"]))[0]
    assert (opened["kind"], opened["source"], opened["actor"]["id"]) == ("opened", "api", world.alice.pk)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel_id": "billing"}, "channel_id"),
        ({"channel_id": None}, "channel_id"),
        ({"title": ""}, "title"),
        ({"title": "x" * 513}, "title"),
        ({"severity": "critical"}, "severity"),
        ({"assign_to": [999999]}, "assign_to"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(world, alice_api, change, field):
    body = {"channel_id": world.production.pk, "title": "Checkout slow", "severity": "Warning", **change}
    response = alice_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["field"]) == ("InvalidParameter", field)
    assert Incident.objects.count() == 2


def test_create_in_a_channel_of_another_team_is_refused(world, alice_api):
    body = {"channel_id": world.billing.pk, "title": "Checkout slow", "severity": "Warning"}
    response = alice_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert error_of(response)["field"] == "channel_id"
    assert Incident.objects.count() == 2


def test_a_body_that_is_not_an_object_is_400_naming_the_body(world, alice_api):
    response = alice_api.post(URL, ["not", "an", "object"], format="json")
    assert response.status_code == 400
    assert error_of(response)["field"] == "body"
    broken = alice_api.post(URL, data="{broken", content_type="application/json")
    assert (broken.status_code, error_of(broken)["field"]) == (400, "body")


def test_edits_stick_when_more_events_arrive(world, client, alice_api):
    response = alice_api.patch(
        f"{URL}{world.db_down.pk}/", {"title": "Primary DB down", "severity": "Warning"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["data"]["title"], response.json()["data"]["severity"]) == ("Primary DB down", "Warning")
    assert response.json()["data"]["manual_overrides"] == ["severity", "title"]
    push(client, world.prod_key, {"title_rule": "Database down!", "event_status": "Critical", "alert_key": "db"})
    data = alice_api.get(f"{URL}{world.db_down.pk}/").json()["data"]
    assert (data["title"], data["severity"]) == ("Primary DB down", "Warning")
    edited = [e for e in timeline(alice_api, world.db_down) if e["kind"] == "edited"]
    assert [(e["source"], e["detail"]["severity"]) for e in edited] == [("api", {"from": "Critical", "to": "Warning"})]


def test_edit_refuses_an_empty_title_or_unknown_severity(world, alice_api):
    assert error_of(alice_api.patch(f"{URL}{world.db_down.pk}/", {"title": ""}, format="json"))["field"] == "title"
    response = alice_api.patch(f"{URL}{world.db_down.pk}/", {"severity": "Major"}, format="json")
    assert (response.status_code, error_of(response)["field"]) == (400, "severity")
    assert Incident.objects.get(pk=world.db_down.pk).severity == "Critical"


# -- lifecycle actions ---------------------------------------------------------------------------------------------


def act(api: APIClient, incident: Incident, action: str, body: dict | None = None):
    return api.post(f"{URL}{incident.pk}/{action}/", body or {}, format="json")


def test_every_lifecycle_action_end_to_end_with_api_timeline_entries(world, alice_api, clock):
    incident = world.db_down
    steps = [
        ("acknowledge", None, "Processing"),
        ("snooze", {"minutes": 30}, "Processing"),
        ("wake", None, "Triggered"),
        ("acknowledge", None, "Processing"),
        ("unacknowledge", None, "Triggered"),
        ("reassign", {"person_ids": [world.carol.pk]}, "Triggered"),
        ("responders", {"person_ids": [world.alice.pk, world.bob.pk]}, "Triggered"),
        ("close", {"reason": "fixed the disk"}, "Closed"),
        ("reopen", {"reason": "it is back"}, "Triggered"),
    ]
    for action, body, progress in steps:
        clock.advance(minutes=1)
        response = act(alice_api, incident, action, body)
        assert response.status_code == 200, (action, response.content)
        assert response.json()["data"]["progress"] == progress, action
    kinds = [(e["kind"], e["source"]) for e in timeline(alice_api, incident) if e["source"] == "api"]
    assert kinds == [
        ("acknowledged", "api"),
        ("snoozed", "api"),
        ("woken", "api"),
        ("acknowledged", "api"),
        ("unacknowledged", "api"),
        ("reassigned", "api"),
        ("responders_added", "api"),
        ("closed", "api"),
        ("reopened", "api"),
    ]
    assert all(e["actor"]["id"] == world.alice.pk for e in timeline(alice_api, incident) if e["source"] == "api")


def test_acknowledge_makes_you_a_responder_and_unacknowledge_gives_it_back(world, alice_api, clock):
    data = act(alice_api, world.db_down, "acknowledge").json()["data"]
    assert data["ack_time"] == "2026-03-02T09:00:00Z"
    assert [(r["person_id"], r["acknowledged_at"]) for r in data["responders"]] == [
        (world.alice.pk, "2026-03-02T09:00:00Z")
    ]
    data = act(alice_api, world.db_down, "unacknowledge").json()["data"]
    assert data["progress"] == "Triggered"
    assert [r["acknowledged_at"] for r in data["responders"]] == [None]
    response = act(alice_api, world.db_down, "unacknowledge")
    assert (response.status_code, error_of(response)["code"]) == (409, "IllegalTransition")


def test_snoozing_a_triggered_incident_is_an_illegal_transition(world, alice_api):
    response = act(alice_api, world.db_down, "snooze", {"minutes": 30})
    assert response.status_code == 409
    assert error_of(response)["code"] == "IllegalTransition"
    assert "acknowledged" in error_of(response)["message"]
    assert Incident.objects.get(pk=world.db_down.pk).snoozed_until is None


@pytest.mark.parametrize("minutes", [0, 1441, -5, "soon", None, 2.5])
def test_snooze_minutes_must_be_1_to_1440(world, alice_api, minutes):
    act(alice_api, world.db_down, "acknowledge")
    response = act(alice_api, world.db_down, "snooze", {"minutes": minutes})
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["field"]) == ("InvalidParameter", "minutes")
    assert Incident.objects.get(pk=world.db_down.pk).snoozed_until is None


def test_snooze_and_wake(world, alice_api):
    act(alice_api, world.db_down, "acknowledge")
    data = act(alice_api, world.db_down, "snooze", {"minutes": 1440}).json()["data"]
    assert data["snoozed_until"] == "2026-03-03T09:00:00Z"
    data = act(alice_api, world.db_down, "wake").json()["data"]
    assert (data["snoozed_until"], data["progress"]) == (None, "Triggered")
    response = act(alice_api, world.db_down, "wake")
    assert (response.status_code, error_of(response)["code"]) == (409, "IllegalTransition")


def test_acknowledging_a_closed_incident_is_an_illegal_transition(world, alice_api):
    act(alice_api, world.db_down, "close")
    response = act(alice_api, world.db_down, "acknowledge")
    assert response.status_code == 409
    assert error_of(response)["code"] == "IllegalTransition"
    assert act(alice_api, world.db_down, "close").status_code == 409, "closing twice is refused too"


def test_close_records_who_and_why(world, alice_api):
    data = act(alice_api, world.db_down, "close", {"reason": "false alarm"}).json()["data"]
    assert (data["progress"], data["closed_by"], data["close_time"]) == (
        "Closed",
        {"id": world.alice.pk, "name": "Alice Ng"},
        "2026-03-02T09:00:00Z",
    )
    assert data["active_alert_count"] == 0, "its alerts close with it"
    closed = timeline(alice_api, world.db_down)[-1]
    assert (closed["kind"], closed["source"]) == ("closed", "api")
    assert "false alarm" in closed["message"]


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_reopen_needs_a_reason(world, alice_api, body):
    act(alice_api, world.db_down, "close")
    response = act(alice_api, world.db_down, "reopen", body)
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["field"]) == ("InvalidParameter", "reason")
    assert Incident.objects.get(pk=world.db_down.pk).progress == "Closed"


def test_reopening_an_open_incident_is_an_illegal_transition(world, alice_api):
    response = act(alice_api, world.db_down, "reopen", {"reason": "again"})
    assert (response.status_code, error_of(response)["code"]) == (409, "IllegalTransition")


def test_reassign_replaces_the_responders(world, alice_api):
    act(alice_api, world.db_down, "acknowledge")
    data = act(alice_api, world.db_down, "reassign", {"person_ids": [world.carol.pk, world.bob.pk]}).json()["data"]
    assert [r["person_id"] for r in data["responders"]] == [world.carol.pk, world.bob.pk]
    assert data["progress"] == "Triggered", "none of the new responders had acknowledged it"


def test_add_responders_keeps_the_current_ones(world, alice_api):
    act(alice_api, world.db_down, "acknowledge")
    data = act(alice_api, world.db_down, "responders", {"person_ids": [world.carol.pk]}).json()["data"]
    assert sorted(r["person_id"] for r in data["responders"]) == sorted([world.alice.pk, world.carol.pk])
    assert data["progress"] == "Processing"


@pytest.mark.parametrize("action", ["reassign", "responders"])
@pytest.mark.parametrize("person_ids", [[999999], [], "alice", None, ["x"]])
def test_people_must_be_known_person_ids(world, alice_api, action, person_ids):
    response = act(alice_api, world.db_down, action, {"person_ids": person_ids})
    assert response.status_code == 400
    assert error_of(response)["field"].split(".")[0] == "person_ids"
    assert not Responder.objects.filter(incident=world.db_down).exists()


def test_unknown_person_ids_are_named_in_the_message(world, alice_api):
    response = act(alice_api, world.db_down, "reassign", {"person_ids": [world.carol.pk, 999999]})
    assert error_of(response) == {
        "code": "InvalidParameter",
        "message": "No active person has the id 999999.",
        "field": "person_ids",
    }


def test_comment_answers_with_the_new_timeline_entry(world, alice_api):
    response = act(alice_api, world.db_down, "comment", {"text": "  rebooting the primary  "})
    assert response.status_code == 201
    entry = response.json()["data"]
    assert (entry["kind"], entry["message"], entry["source"], entry["actor"]) == (
        "comment",
        "rebooting the primary",
        "api",
        {"id": world.alice.pk, "name": "Alice Ng"},
    )
    assert timeline(alice_api, world.db_down)[-1]["id"] == entry["id"]
    for text in ("", "x" * 2001):
        assert error_of(act(alice_api, world.db_down, "comment", {"text": text}))["field"] == "text"


def test_merge_moves_the_alerts_and_closes_the_merged_incident(world, client, alice_api, clock):
    clock.advance(minutes=1)
    replica = fire(client, world.prod_key, "replica", "Replica down")
    response = act(alice_api, replica, "merge", {"target_id": world.db_down.pk})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["id"], data["progress"], data["merged_into"], data["alert_count"]) == (
        replica.pk,
        "Closed",
        world.db_down.pk,
        0,
    )
    target = alice_api.get(f"{URL}{world.db_down.pk}/").json()["data"]
    assert (target["alert_count"], target["active_alert_count"]) == (2, 2)
    assert [e["kind"] for e in timeline(alice_api, world.db_down)][-1] == "merged"
    again = act(alice_api, replica, "merge", {"target_id": world.db_down.pk})
    assert (again.status_code, error_of(again)["code"]) == (409, "IllegalTransition")


def test_reopening_a_merged_incident_is_an_illegal_transition_that_names_the_target(world, client, alice_api, clock):
    replica = fire(client, world.prod_key, "replica", "Replica down")
    act(alice_api, replica, "merge", {"target_id": world.db_down.pk})
    response = act(alice_api, replica, "reopen", {"reason": "is it fixed?"})
    assert (response.status_code, error_of(response)["code"]) == (409, "IllegalTransition")
    assert error_of(response)["message"] == (
        f"Incident #{replica.pk} was merged into #{world.db_down.pk}; reopen or handle #{world.db_down.pk} instead."
    )
    data = alice_api.get(f"{URL}{replica.pk}/").json()["data"]
    assert (data["progress"], data["merged_into"]) == ("Closed", world.db_down.pk)


@pytest.mark.parametrize("target", ["self", 999999, None, "abc"])
def test_merge_needs_another_incident_you_may_see(world, alice_api, target):
    target_id = world.db_down.pk if target == "self" else target
    response = act(alice_api, world.db_down, "merge", {"target_id": target_id})
    assert response.status_code == 400
    assert error_of(response)["field"] == "target_id"
    assert Incident.objects.get(pk=world.db_down.pk).progress == "Triggered"


def test_a_page_costs_the_same_number_of_queries_however_many_incidents_it_holds(world, client, alice_api, clock):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice_api.get(URL).status_code == 200
        return len(captured)

    queries_for_list()  # the token's first use records it
    few = queries_for_list()
    for n in range(5):
        incident = fire(client, world.prod_key, f"k{n}", f"Incident {n}")
        lifecycle.incident_acknowledge(incident=incident, by=world.carol, source="web", now=clock.current)
    assert queries_for_list() == few


# -- numbers and bodies past what the database or Python's JSON reader take: a 400 naming the input, not a 500 --


@pytest.fixture
def alice_and_incident(client, clock):
    alice = make_user("alice")
    _, key = make_integration(channel=make_channel(team=make_team(members=[alice])))
    fire(client, key, "a", "disk full")
    return session_client(alice), Incident.objects.get()


@pytest.mark.parametrize("query", ["p=100000000000000000000", "channel=100000000000000000000"])
def test_a_list_query_number_too_large_is_a_400(alice_and_incident, query):
    api, _incident = alice_and_incident
    response = api.get(f"/api/v1/incidents/?{query}")
    assert response.status_code == 400, (response.status_code, response.content)
    assert response.json()["error"]["field"] == query.split("=")[0]


def test_an_alert_page_too_large_is_a_400(alice_and_incident):
    api, incident = alice_and_incident
    response = api.get(f"/api/v1/incidents/{incident.pk}/alerts/?p=100000000000000000000")
    assert response.status_code == 400, (response.status_code, response.content)


@pytest.mark.parametrize("action", ["reassign", "responders"])
def test_a_person_id_too_large_is_a_400(alice_and_incident, action):
    api, incident = alice_and_incident
    response = api.post(f"/api/v1/incidents/{incident.pk}/{action}/", {"person_ids": [10**20]}, format="json")
    assert response.status_code == 400, (response.status_code, response.content)


def test_a_body_nested_too_deeply_is_a_400(alice_and_incident):
    api, incident = alice_and_incident
    deep = "[" * 100_000 + "]" * 100_000
    response = api.post(f"/api/v1/incidents/{incident.pk}/comment/", data=deep, content_type="application/json")
    assert response.status_code == 400, (response.status_code, response.content[:200])
