"""The signed acknowledge link: sign in, confirm, acknowledged; tampered, expired and closed are said plainly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing

from channels_app.acklinks import ack_token, ack_url
from oncall.models import Incident, Progress
from oncall.services.incidents import incident_close, incident_open
from tests.factories import make_channel, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(clock):
    return incident_open(
        channel=make_channel("Production"),
        title="Disk full on db-1",
        description="",
        severity="Critical",
        labels={},
        now=clock.current,
    )


@pytest.fixture
def alice():
    return make_user("alice", first_name="Alice", last_name="Chen")


def path(incident: Incident, token: str | None = None) -> str:
    return f"/incidents/{incident.pk}/ack/{token or ack_token(incident.pk)}/"


def test_the_link_is_built_on_the_public_url(incident):
    assert ack_url(incident.pk) == f"https://oncall.example.test{path(incident)}"


def test_the_link_needs_a_signed_in_person(client, incident):
    response = client.get(path(incident))
    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next=/incidents/{incident.pk}/ack/")
    assert client.post(path(incident)).status_code == 302
    incident.refresh_from_db()
    assert incident.progress == Progress.TRIGGERED


def test_opening_the_link_asks_first_and_posting_acknowledges(client, incident, alice):
    client.force_login(alice)
    page = client.get(path(incident))
    assert page.status_code == 200
    assert b"Acknowledge this incident as Alice Chen?" in page.content
    incident.refresh_from_db()
    assert incident.progress == Progress.TRIGGERED, "a GET (a link preview) must not acknowledge"

    done = client.post(path(incident))
    assert done.status_code == 200
    assert b"Acknowledged by Alice Chen" in done.content
    incident.refresh_from_db()
    assert incident.progress == Progress.PROCESSING
    entry = incident.timeline.get(kind="acknowledged")
    assert (entry.actor, entry.source) == (alice, "bot")
    assert incident.responder_set.get(person=alice).acknowledged_at is not None


@pytest.mark.parametrize(
    "token",
    [
        "1tTnQV:forged-signature",
        "not-a-token",
        ack_token(999_999),  # a genuine token, for another incident
    ],
)
def test_a_tampered_link_is_refused_plainly(client, incident, alice, token):
    client.force_login(alice)
    for response in (client.get(path(incident, token)), client.post(path(incident, token))):
        assert response.status_code == 400
        assert b"This acknowledge link is not valid" in response.content
        assert incident.title.encode() not in response.content
    incident.refresh_from_db()
    assert incident.progress == Progress.TRIGGERED


def test_an_expired_link_is_refused_plainly(client, incident, alice, settings, monkeypatch):
    settings.ACK_LINK_MAX_AGE = 3600
    real_time = signing.time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 3601)
    old = ack_token(incident.pk)
    monkeypatch.setattr(signing.time, "time", real_time)
    client.force_login(alice)
    response = client.post(path(incident, old))
    assert response.status_code == 400
    assert b"This acknowledge link has expired" in response.content
    incident.refresh_from_db()
    assert incident.progress == Progress.TRIGGERED
    assert client.get(path(incident)).status_code == 200  # a fresh one works


def test_a_closed_incident_says_so_and_is_not_acknowledged(client, incident, alice, clock):
    incident_close(incident=incident, now=clock.current + timedelta(minutes=1))
    client.force_login(alice)
    page = client.get(path(incident))
    assert page.status_code == 200
    assert b"This incident is closed; there is nothing left to acknowledge." in page.content
    assert b"<form" not in page.content
    assert client.post(path(incident)).status_code == 409
    incident.refresh_from_db()
    assert (incident.progress, incident.ack_time) == (Progress.CLOSED, None)
