"""Large incidents: the cap on alerts per incident, the count of alerts that enforces it, and a grouped alert or a
recovery that costs the same however many alerts its incident already holds (a mass firing or recovery)."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection

from oncall import migrations
from oncall.models import Alert, Incident, Source
from oncall.services import ingest
from oncall.services.ingest import alert_ingest
from oncall.services.lifecycle import incident_create, incident_merge
from oncall.sources.base import NormalizedEvent
from tests.factories import make_channel, make_integration, make_user, push

# Not transactional: PostgreSQL's per-transaction statistics count the rows read in the test's own transaction.
pytestmark = pytest.mark.django_db


def event(key: str, status: str = "Warning", **labels) -> dict:
    return {"title_rule": f"{key} failing", "event_status": status, "alert_key": key, "labels": labels}


def _alert_rows_read() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = 'oncall_alert'"
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def _rows_read_for_one_more(clock, size: int, status: str) -> int:
    """Rows of oncall_alert read to group one more alert into (or recover one of) an incident of `size` alerts."""
    channel = make_channel(group_keys=["service"], group_window_minutes=1440)
    integration, _key = make_integration(channel=channel)
    now = clock()
    first = NormalizedEvent(
        status="Warning", alert_key="first", title="first", labels={"service": "api"}, channel_ids=(channel.pk,)
    )
    alert_ingest(integration=integration, events=[first], now=now)
    incident = Incident.objects.get(channel=channel)
    Alert.objects.bulk_create(
        Alert(
            integration=integration,
            channel=channel,
            incident=incident,
            alert_key=f"bulk-{i}",
            title="t",
            severity="Warning",
            status="Warning",
            labels={"service": "api"},
            start_time=now,
            last_time=now,
        )
        for i in range(size - 1)
    )
    Incident.objects.filter(pk=incident.pk).update(alert_count=size)
    if connection.vendor == "postgresql":
        # As autovacuum would after a mass firing: statistics gathered while the table was small (by an earlier test)
        # would have the planner scan the whole table, whatever the queries are.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE oncall_alert")
    before = _alert_rows_read()
    recovery = status == "Ok"
    one_more = NormalizedEvent(
        status=status,
        alert_key="bulk-0" if recovery else "new",
        title="new",
        labels={"service": "api"},
        channel_ids=() if recovery else (channel.pk,),
    )
    results = alert_ingest(integration=integration, events=[one_more], now=now + timedelta(seconds=1))
    assert results[0].incident_id == incident.pk
    return _alert_rows_read() - before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts the rows read with PostgreSQL's statistics")
@pytest.mark.parametrize("status", ["Warning", "Ok"], ids=["grouped", "recovered"])
def test_one_more_alert_reads_as_many_rows_in_an_incident_of_4000_as_in_one_of_10(clock, status):
    small = _rows_read_for_one_more(clock, 10, status)
    large = _rows_read_for_one_more(clock, 4000, status)
    assert large <= small + 20, f"rows of oncall_alert read: {small} in an incident of 10, {large} in one of 4,000"


def test_an_incident_holding_the_most_alerts_takes_no_more_and_the_next_opens_another(client, clock, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_ALERTS_PER_INCIDENT", 3)
    _, key = make_integration(channel=make_channel(group_keys=["service"], group_window_minutes=60))
    for alert_key in ("a", "b", "c", "d"):
        push(client, key, event(alert_key, service="api"))
    full = Incident.objects.get(alerts__alert_key="a")
    assert sorted(full.alerts.values_list("alert_key", flat=True)) == ["a", "b", "c"]
    assert full.alert_count == 3
    assert Incident.objects.get(alerts__alert_key="d").alert_count == 1


def test_recovered_alerts_still_count_toward_the_cap(client, clock, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_ALERTS_PER_INCIDENT", 2)
    channel = make_channel(group_keys=["service"], group_window_minutes=60, close_with_alerts=False)
    _, key = make_integration(channel=channel)
    push(client, key, event("a", service="api"))
    push(client, key, event("a", "Ok", service="api"))
    push(client, key, event("b", service="api"))
    push(client, key, event("c", service="api"))
    assert Incident.objects.get(alerts__alert_key="a").alert_count == 2
    assert Incident.objects.get(alerts__alert_key="c") != Incident.objects.get(alerts__alert_key="a")


def test_alerts_merged_in_count_toward_the_cap_and_leave_none_behind(client, clock, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_ALERTS_PER_INCIDENT", 3)
    _, key = make_integration(channel=make_channel(group_keys=["service"], group_window_minutes=60))
    push(client, key, event("a", service="api"))
    push(client, key, event("b", service="api"))
    push(client, key, event("c", service="db"))
    into, merged = Incident.objects.get(alerts__alert_key="a"), Incident.objects.get(alerts__alert_key="c")
    incident_merge(incident=merged, into=into, by=make_user(), source=Source.WEB, now=clock.current)
    into.refresh_from_db()
    merged.refresh_from_db()
    assert (into.alert_count, merged.alert_count) == (3, 0)
    push(client, key, event("d", service="api"))
    assert Alert.objects.get(alert_key="d").incident_id != into.pk, "the merge filled it up"


def test_the_migration_counts_the_alerts_of_every_incident_there_is(client, clock):
    _, key = make_integration(channel=make_channel(group_keys=["service"], group_window_minutes=60))
    for alert_key, service in (("a", "api"), ("b", "api"), ("c", "api"), ("d", "db")):
        push(client, key, event(alert_key, service=service))
    by_hand = incident_create(
        channel=make_channel(), title="Checkout down", severity="Critical", by=make_user(), now=clock.current
    )
    Incident.objects.update(alert_count=0)  # as the column's default leaves them when it is added

    # Found by its name, whatever number it is given.
    name = next(Path(migrations.__file__).parent.glob("*_incident_alert_count.py")).stem
    importlib.import_module(f"oncall.migrations.{name}").count_alerts(apps, None)

    counts = dict(Incident.objects.values_list("pk", "alert_count"))
    assert counts == {
        Incident.objects.get(alerts__alert_key="a").pk: 3,
        Incident.objects.get(alerts__alert_key="d").pk: 1,
        by_hand.pk: 0,
    }
