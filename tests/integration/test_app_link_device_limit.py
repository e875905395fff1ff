"""The phone app renewing its push token when its person has as many devices linked as allowed."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from oncall.models import Device
from oncall.services.devices import MAX_PER_PERSON, device_link, device_link_token_create
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_app_renewing_its_push_token_at_the_device_limit_keeps_getting_pushes(clock):
    # Alice has the app on her phone and 19 browser subscriptions (web push endpoints pile up: a browser that
    # re-subscribes gets a new endpoint, the old one stays until a push reports it gone). The app's push service
    # renews its push token; the app reports it with its own token, which replaces the app's old device. The
    # person's device count does not grow, so the renewal must not be refused: refused, the old push token is
    # dead and the new one is not linked, and the phone gets no page.
    alice = make_user("alice")
    _row, link_token = device_link_token_create(person=alice, now=clock.current)
    answer = APIClient().post(
        "/api/v1/devices/link/",
        {"link_token": link_token, "platform": "android", "token": "fcm-before-renewal", "name": "Pixel"},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    app_token = answer.json()["data"]["api_token"]
    for n in range(MAX_PER_PERSON - 1):
        device_link(
            person=alice,
            platform="web",
            subscription={
                "endpoint": f"https://push.example.test/send/{n}",
                "keys": {"p256dh": "BNcR", "auth": "tBHI"},
            },
            now=clock.current,
        )
    assert Device.objects.filter(person=alice).count() == MAX_PER_PERSON

    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {app_token}")
    renewed = app.post("/api/v1/me/devices/", {"platform": "android", "token": "fcm-after-renewal"}, format="json")

    assert renewed.status_code == 201, renewed.json()
    assert Device.objects.filter(person=alice, token="fcm-after-renewal").exists()
    assert not Device.objects.filter(token="fcm-before-renewal").exists()
