"""The system checks refuse to start a platform whose provider registry names a class that is missing, of the
wrong kind or keyed differently, so a typo in the registry is found at startup, not at 3 a.m."""

from __future__ import annotations

import pytest

from channels_app import checks
from channels_app.registry import BOTS, METHODS


def ids(errors) -> list[str]:
    return sorted(error.id for error in errors)


def test_the_shipped_registries_pass() -> None:
    assert checks.check_method_registry(None) == []
    assert checks.check_bot_registry(None) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("channels_app.providers.missing.Method", "channels.E001"),
        ("channels_app.base.SendResult", "channels.E002"),
        ("channels_app.providers.sms.SmsMethod", "channels.E003"),
    ],
    ids=["cannot-import", "not-a-method", "key-differs"],
)
def test_a_bad_method_entry_is_an_error(monkeypatch, path, expected) -> None:
    monkeypatch.setitem(METHODS, "email", path)
    assert ids(checks.check_method_registry(None)) == [expected]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("channels_app.bots.missing.Bot", "channels.E007"),
        ("channels_app.providers.email.EmailMethod", "channels.E008"),
    ],
    ids=["cannot-import", "not-a-bot"],
)
def test_a_bad_bot_entry_is_an_error(monkeypatch, path, expected) -> None:
    monkeypatch.setitem(BOTS, next(iter(BOTS)), path)
    assert ids(checks.check_bot_registry(None)) == [expected]


def test_a_bot_keyed_differently_is_an_error(monkeypatch) -> None:
    first, second = list(BOTS)[:2]
    monkeypatch.setitem(BOTS, first, BOTS[second])
    assert ids(checks.check_bot_registry(None)) == ["channels.E009"]


def test_a_send_lease_shorter_than_a_provider_may_take_is_warned_about(settings) -> None:
    assert checks.check_send_lease(None) == []  # the defaults: 45 s lease, 15 s deadline
    settings.DELIVERY_SEND_LEASE_SECONDS, settings.HTTP_TOTAL_TIMEOUT = 15, 15.0
    assert ids(checks.check_send_lease(None)) == ["channels.W001"]


def test_an_acknowledge_link_too_long_for_an_sms_is_warned_about(settings) -> None:
    assert checks.check_sms_ack_link(None) == []
    settings.SMS_MAX_SEGMENTS = 1
    settings.PUBLIC_URL = "https://oncall.internal.operations.example-corporation.com/platform/tools/on-call/pager"
    assert ids(checks.check_sms_ack_link(None)) == ["channels.W002"]
    settings.SMS_MAX_SEGMENTS = 2
    assert checks.check_sms_ack_link(None) == []
