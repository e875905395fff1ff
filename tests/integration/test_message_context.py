"""A message counts its incident's alerts right, whether or not they all fit in what it lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels_app.messages import message_context
from channels_app.templating.context import ALERTS_IN_CONTEXT
from oncall.models import Alert, AlertProgress, Incident
from tests.factories import make_channel, make_integration

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def incident_with_alerts(total: int, closed: int) -> Incident:
    channel = make_channel()
    integration, _key = make_integration(channel=channel)
    incident = Incident.objects.create(
        title="disk full", severity="Critical", channel=channel, start_time=START, last_time=START
    )
    Alert.objects.bulk_create(
        Alert(
            integration=integration,
            channel=channel,
            incident=incident,
            alert_key=f"disk-{n}",
            title=f"disk {n}",
            severity="Critical",
            status="Critical",
            progress=AlertProgress.CLOSED if n < closed else AlertProgress.TRIGGERED,
            start_time=START + timedelta(seconds=n),
            last_time=START + timedelta(seconds=n),
        )
        for n in range(total)
    )
    return incident


@pytest.mark.parametrize(
    ("total", "closed"),
    [(3, 1), (ALERTS_IN_CONTEXT - 1, 5), (ALERTS_IN_CONTEXT, 0), (ALERTS_IN_CONTEXT + 7, 10)],
    ids=["few", "one-under-the-list", "exactly-the-list", "more-than-the-list"],
)
def test_the_counts_cover_every_alert(total, closed):
    incident = incident_with_alerts(total, closed)
    context = message_context(incident=incident, event="triggered", now=START + timedelta(minutes=5))
    assert (context["incident"]["alert_count"], context["incident"]["active_alert_count"]) == (
        total,
        total - closed,
    )
    shown = min(total, ALERTS_IN_CONTEXT)
    assert (len(context["incident"]["alerts"]), context["incident"]["alerts_omitted"]) == (shown, total - shown)
