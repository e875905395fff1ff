"""Alert grouping per channel, close-with-alerts, auto-resolve and manual severity that sticks."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Alert, Channel, Incident, Source
from oncall.services.lifecycle import incident_create, incident_edit, incident_merge
from tests.factories import make_channel, make_integration, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)


def event(key: str, status: str = "Warning", **labels) -> dict:
    return {"title_rule": f"{key} failing", "event_status": status, "alert_key": key, "labels": labels}


def test_without_grouping_each_alert_is_its_own_incident(client, clock):
    _, key = make_integration(channel=make_channel())
    push(client, key, event("a", service="api"))
    push(client, key, event("b", service="api"))
    assert Incident.objects.count() == 2


def test_alerts_with_equal_grouping_labels_share_an_incident_within_the_window(client, clock):
    _, key = make_integration(channel=make_channel(group_keys=["service", "env"], group_window_minutes=30))
    push(client, key, event("a", service="api", env="prod", host="h1"))
    clock.advance(minutes=10)
    push(client, key, event("b", "Critical", service="api", env="prod", host="h2"))
    push(client, key, event("c", service="api", env="staging"))
    assert Incident.objects.count() == 2
    grouped = Incident.objects.get(alerts__alert_key="a")
    assert sorted(grouped.alerts.values_list("alert_key", flat=True)) == ["a", "b"]
    assert grouped.severity == "Critical", "the highest severity of its open alerts"
    assert grouped.title == "a failing", "the title stays the first alert's"
    assert grouped.timeline.filter(kind="alert_added").count() == 1

    clock.advance(minutes=21)
    push(client, key, event("d", service="api", env="prod"))
    assert Incident.objects.count() == 3, "after the window a new incident opens"


def test_the_grouping_window_ends_just_before_one_window_after_the_incident_started(client, clock):
    """Tumbling windows are half-open, [start, start + window): they never overlap."""
    _, key = make_integration(channel=make_channel(group_keys=["service"], group_window_minutes=60))
    push(client, key, event("a", service="api"))
    clock.advance(minutes=59, seconds=59)
    push(client, key, event("b", service="api"))
    clock.advance(seconds=1)
    push(client, key, event("c", service="api"))
    first = Alert.objects.get(alert_key="a").incident_id
    assert Alert.objects.get(alert_key="b").incident_id == first
    assert Alert.objects.get(alert_key="c").incident_id != first, "exactly 60 minutes after the start: a new one"


def test_alerts_lacking_a_grouping_label_group_together(client, clock):
    _, key = make_integration(channel=make_channel(group_keys=["service"]))
    push(client, key, event("a", host="x"))
    push(client, key, event("b", host="y"))
    assert Incident.objects.count() == 1


def test_grouping_keys_written_as_filter_keys_or_with_spaces_name_the_labels(client, clock):
    staff = Client()
    staff.force_login(make_user("root", is_staff=True, is_superuser=True))
    channel = make_channel("Production")
    url = reverse("admin:oncall_channel_change", args=[channel.pk])
    data = {
        "name": "Production",
        "description": "",
        "team": channel.team_id,
        "time_zone": "UTC",
        "group_keys": '["labels.service", " env "]',
        "group_window_minutes": 60,
        "close_with_alerts": "on",
        "auto_resolve_minutes": 0,
    }
    response = staff.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Channel.objects.get(pk=channel.pk).group_keys == ["service", "env"]

    _, key = make_integration(channel=channel)
    push(client, key, event("a", service="db", env="prod"))
    push(client, key, event("b", service="payments", env="prod"))
    push(client, key, event("c", service="db", env="prod"))
    assert Incident.objects.count() == 2, "one incident per service, not one for the whole channel"

    for keys, reason in (
        ('["labels."]', "Each entry must name a label"),
        ('[" "]', "Each entry must name a label"),
        ('["service", "labels.service"]', "Each label name may appear once"),
    ):
        page = staff.post(url, {**data, "group_keys": keys}).content.decode()
        assert reason in page, keys
    assert Channel.objects.get(pk=channel.pk).group_keys == ["service", "env"]


def test_a_grouped_incident_closes_when_its_last_alert_recovers(client, clock):
    _, key = make_integration(channel=make_channel(group_keys=["service"]))
    push(client, key, event("a", "Critical", service="api"))
    push(client, key, event("b", "Warning", service="api"))
    push(client, key, event("a", "Ok"))
    incident = Incident.objects.get()
    assert (incident.progress, incident.severity, incident.status) == ("Triggered", "Warning", "Warning")
    push(client, key, event("b", "Ok"))
    incident.refresh_from_db()
    assert (incident.progress, incident.status) == ("Closed", "Ok")


def test_with_close_with_alerts_off_a_recovered_incident_stays_open(client, clock):
    _, key = make_integration(channel=make_channel(close_with_alerts=False))
    push(client, key, event("a"))
    push(client, key, event("a", "Ok"))
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Triggered", "Ok")
    assert incident.end_time == clock.current


def test_auto_resolve_closes_an_incident_without_events_for_the_timeout(client, clock):
    _, key = make_integration(channel=make_channel(auto_resolve_minutes=60))
    push(client, key, event("a"))
    clock.advance(minutes=45)
    push(client, key, event("a"))
    clock.advance(minutes=59)
    tick(now=clock_module.now())
    assert Incident.objects.get().progress == "Triggered", "the second event restarted the clock"
    clock.advance(minutes=1)
    assert tick(now=clock_module.now()).auto_resolved == 1
    incident = Incident.objects.get()
    assert incident.progress == "Closed"
    assert "auto-resolve" in incident.timeline.get(kind="closed").message
    assert Alert.objects.get().progress == "Closed"


def test_auto_resolve_is_off_by_default(client, clock):
    _, key = make_integration(channel=make_channel())
    push(client, key, event("a"))
    clock.advance(days=30)
    tick(now=clock_module.now())
    assert Incident.objects.get().progress == "Triggered"


def test_a_severity_set_by_hand_sticks_when_alerts_change(client, clock):
    _, key = make_integration(channel=make_channel())
    push(client, key, event("a", "Warning"))
    incident = Incident.objects.get()
    incident_edit(incident=incident, by=make_user(), severity="Info", source=Source.WEB, now=clock.current)
    push(client, key, event("a", "Critical"))
    incident.refresh_from_db()
    assert incident.severity == "Info"
    assert incident.manual_overrides == ["severity"]
    assert Alert.objects.get().severity == "Critical"


def test_merging_a_warning_alert_into_a_critical_incident_created_by_hand_keeps_it_critical(client, clock):
    channel = make_channel()
    _, key = make_integration(channel=channel)
    person = make_user()
    by_hand = incident_create(channel=channel, title="Checkout down", severity="Critical", by=person, now=clock.current)
    assert by_hand.manual_overrides == ["severity", "title"], "chosen by a person, as if edited by hand"
    push(client, key, event("a", "Warning"))
    incident_merge(
        incident=Incident.objects.get(alerts__alert_key="a"),
        into=by_hand,
        by=person,
        source=Source.WEB,
        now=clock.current,
    )
    by_hand.refresh_from_db()
    assert (by_hand.severity, by_hand.status, by_hand.title) == ("Critical", "Critical", "Checkout down")
    assert not by_hand.timeline.filter(kind="severity_changed").exists()


def test_an_open_incident_whose_alerts_recovered_fires_again_when_a_firing_alert_joins(client, clock):
    _, key = make_integration(channel=make_channel(close_with_alerts=False, group_keys=["service"]))
    push(client, key, event("a", "Warning", service="api"))
    push(client, key, event("a", "Ok", service="api"))
    incident = Incident.objects.get()
    assert (incident.progress, incident.status) == ("Triggered", "Ok") and incident.end_time is not None
    clock.advance(minutes=5)
    push(client, key, event("b", "Critical", service="api"))
    incident.refresh_from_db()
    assert Incident.objects.count() == 1
    assert (incident.status, incident.severity, incident.end_time) == ("Critical", "Critical", None)


def test_merging_firing_alerts_into_an_incident_whose_alerts_recovered_makes_it_fire_again(client, clock):
    _, key = make_integration(channel=make_channel(close_with_alerts=False))
    push(client, key, event("a", "Warning"))
    push(client, key, event("a", "Ok"))
    push(client, key, event("b", "Critical"))
    target = Incident.objects.get(alerts__alert_key="a")
    merged = Incident.objects.get(alerts__alert_key="b")
    assert target.status == "Ok"
    incident_merge(incident=merged, into=target, by=make_user(), source=Source.WEB, now=clock.current)
    target.refresh_from_db()
    assert (target.status, target.severity, target.end_time) == ("Critical", "Critical", None)


def test_a_channel_saved_with_grouping_keys_written_as_filters_write_them_still_groups_by_the_label(client, clock):
    """Saved before keys were normalised on save: "labels.service" groups by the label service."""
    channel = make_channel()
    type(channel).objects.filter(pk=channel.pk).update(group_keys=["labels.service"])
    _, key = make_integration(channel=channel)
    push(client, key, event("a", service="db"))
    push(client, key, event("b", service="payments"))
    push(client, key, event("c", service="db"))
    assert Incident.objects.count() == 2


def test_auto_resolve_follows_the_channels_setting_as_it_is_now(client, clock):
    channel = make_channel(auto_resolve_minutes=60)
    _, key = make_integration(channel=channel)
    push(client, key, event("a"))
    push(client, key, event("b"))
    Channel.objects.filter(pk=channel.pk).update(auto_resolve_minutes=90)
    clock.advance(minutes=60)
    assert tick(now=clock_module.now()).auto_resolved == 0, "lengthened to 90 minutes"
    clock.advance(minutes=30)
    assert tick(now=clock_module.now()).auto_resolved == 2
    push(client, key, event("c"))
    Channel.objects.filter(pk=channel.pk).update(auto_resolve_minutes=0)
    clock.advance(days=1)
    assert tick(now=clock_module.now()).auto_resolved == 0, "turned off"
    assert Incident.objects.get(alerts__alert_key="c").progress == "Triggered"
    assert Incident.objects.get(alerts__alert_key="c").auto_resolve_at is None


def test_a_merged_incidents_alerts_keep_the_target_open_for_the_auto_resolve_time(client, clock):
    _, key = make_integration(channel=make_channel(auto_resolve_minutes=60))
    push(client, key, event("a"))
    clock.advance(minutes=50)
    push(client, key, event("b"))
    into, merged = Incident.objects.get(alerts__alert_key="a"), Incident.objects.get(alerts__alert_key="b")
    incident_merge(incident=merged, into=into, by=make_user(), source=Source.WEB, now=clock.current)
    clock.advance(minutes=15)
    assert tick(now=clock_module.now()).auto_resolved == 0, "alert b's event came 15 minutes ago"
    assert Incident.objects.get(pk=into.pk).progress == "Triggered"
    clock.advance(minutes=45)
    assert tick(now=clock_module.now()).auto_resolved == 1
    assert Incident.objects.get(pk=into.pk).progress == "Closed"
