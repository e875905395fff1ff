"""What the bot tests share: an alert that pages a level with bots, the ticker, the bot deliveries."""

from __future__ import annotations

from channels_app.models import Delivery
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from tests.factories import make_channel, make_integration, make_rule, push


def alert(key: str = "db", severity: str = "Critical", title: str | None = None) -> dict:
    return {
        "title_rule": title or f"{key} is down",
        "event_status": severity,
        "alert_key": key,
        "labels": {"service": key},
    }


def paging_setup(*, people=(), bots=(), methods=("email",), levels=None):
    """A channel whose rule's level 1 pages `people` by `methods` and posts to `bots`; returns the push key."""
    channel = make_channel()
    make_rule(channel, levels or [{"people": list(people), "methods": list(methods), "bots": list(bots)}])
    return make_integration(channel=channel)[1]


def fire(client, push_key: str, **fields):
    """Push an alert (see `alert` for the fields) with the integration key `push_key`."""
    return push(client, push_key, alert(**fields))


def later(clock, **delta) -> None:
    clock.advance(**delta)
    tick(now=clock_module.now())


def bot_deliveries(bot=None):
    queryset = Delivery.objects.filter(method="bot").order_by("id")
    return list(queryset.filter(bot=bot) if bot is not None else queryset)
