"""Rules and channels saved before today's stricter checks keep working: `severity NOTIN [Info, Ok]` ("anything but
Info") still routes and pages Critical events, and a grouping key stored as something other than text does not
stop the channel's incidents."""

from __future__ import annotations

import pytest

from escalation.models import EscalationRule
from oncall.models import Alert, Channel, Incident, RoutingRule
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)

NOT_INFO = [[{"key": "severity", "op": "NOTIN", "values": ["Info", "Ok"]}]]


def test_stored_routing_rule_with_severity_notin_still_routes_a_critical_alert(client, clock):
    db = make_channel("Databases")
    integration, key = make_integration(channel=None)  # no default route
    rule = RoutingRule.objects.create(integration=integration, position=0)
    rule.channels.set([db])
    # as stored before today's deploy (valid then)
    RoutingRule.objects.filter(pk=rule.pk).update(filters=NOT_INFO)
    response = push(client, key, {"title_rule": "db down", "event_status": "Critical", "alert_key": "db"})
    assert response.status_code == 200, response.content
    assert Alert.objects.get().channel_id == db.pk


def test_stored_escalation_rule_with_severity_notin_still_pages_on_critical(client, clock, mailoutbox):
    ann = make_user("ann")
    channel = make_channel()
    rule = make_rule(channel, [{"people": [ann]}], priority=1)
    EscalationRule.objects.filter(pk=rule.pk).update(filters=NOT_INFO)
    push(
        client, make_integration(channel=channel)[1], {"title_rule": "x", "event_status": "Critical", "alert_key": "a"}
    )
    assert [m.to[0] for m in mailoutbox] == ["ann@example.com"]


def test_a_channel_with_a_non_text_grouping_key_still_opens_incidents(client, clock):
    channel = make_channel()
    Channel.objects.filter(pk=channel.pk).update(group_keys=["service", None])
    _, key = make_integration(channel=channel)
    push(
        client,
        key,
        {"title_rule": "db down", "event_status": "Critical", "alert_key": "db", "labels": {"service": "db"}},
    )
    assert Incident.objects.count() == 1
