"""Two engineers in two teams, each with an incident, a token, a device and a calendar feed; and an admin."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from escalation.feeds import calendar_feed_create
from oncall.models import ApiToken, Device, Incident, Integration, User
from oncall.services.devices import device_link
from oncall.services.tokens import api_token_create
from tests.factories import make_channel, make_integration, make_rule, make_team, make_user, push


@dataclass
class Person:
    user: User
    incident: Incident
    token: ApiToken
    token_value: str
    device: Device
    feed_token: str
    integration: Integration
    integration_key: str


@dataclass
class World:
    ann: Person
    ben: Person
    root: User


def _person(username: str, phone: str, clock) -> Person:
    user = make_user(username, first_name=username.title(), phone=phone)
    channel = make_channel(f"{username.title()}'s channel", team=make_team(f"{username.title()}'s team", [user]))
    make_rule(channel, [{"people": [user], "methods": ["email"]}])
    integration, key = make_integration(channel=channel, name=f"{username.title()}'s monitor")
    event = {"title_rule": f"{username.title()}'s database is down", "event_status": "Critical", "alert_key": "db"}
    assert push(Client(), key, event).status_code == 200
    token, value = api_token_create(user=user, name="laptop", now=clock.current)
    device = device_link(person=user, platform="android", token=f"fcm-{username}-" + "x" * 40, now=clock.current)
    _feed, feed_token = calendar_feed_create(person=user, now=clock.current)
    return Person(
        user=user,
        incident=Incident.objects.get(channel=channel),
        token=token,
        token_value=value,
        device=device,
        feed_token=feed_token,
        integration=integration,
        integration_key=key,
    )


@pytest.fixture
def world(db, clock, mailoutbox) -> World:
    return World(
        ann=_person("ann", "+14155550101", clock),
        ben=_person("ben", "+14155550102", clock),
        root=make_user("root", is_staff=True, is_superuser=True),
    )


@dataclass
class Staff:
    """Just the people, for tests that need nobody's data: cheaper than a world per parametrized route."""

    ann: User
    root: User


@pytest.fixture
def staff(db) -> Staff:
    return Staff(ann=make_user("ann"), root=make_user("root", is_staff=True, is_superuser=True))


def signed_in(user: User, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client
