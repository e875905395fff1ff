from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from oncall.lib import clock as clock_module
from tests.fakes.provider_server import ProviderServer
from tests.fakes.smtp import free_port


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


class FakeClock:
    """A controlled "now" for everything that asks oncall.lib.clock (services, tasks, the ticker)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC))
    monkeypatch.setattr(clock_module, "now", fake)
    return fake


@pytest.fixture(scope="session")
def _provider_server():
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_providers(_provider_server):
    """The fake provider server (every provider's protocol on 127.0.0.1), reset for each test."""
    _provider_server.reset()
    yield _provider_server
    _provider_server.reset()


@pytest.fixture
def fakes(fake_providers, clock):
    """The fake providers, checking signature freshness and rate limits against the test's clock."""
    fake_providers.now = lambda: clock.current.timestamp()
    return fake_providers


@pytest.fixture
def smtp_port(settings):
    """A mail server that is down until the test starts a FakeSmtpServer on this port."""
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = 2
    settings.DEFAULT_FROM_EMAIL = "Pager <pager@oncall.example.test>"
    return port
