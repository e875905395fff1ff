"""The admin while incidents are being paged: what staff can change or delete there must not lose, double or
misdirect a page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_app.models import Delivery
from escalation.models import EscalationState, Timer
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Incident, IncidentEvent, Source
from oncall.services import lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_user, push

pytestmark = pytest.mark.django_db(transaction=True)

DB_DOWN = {"title_rule": "db down", "event_status": "Critical", "alert_key": "db"}


@pytest.fixture
def staff(client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def paged(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


def later(clock, **delta) -> None:
    clock.advance(**delta)
    tick(now=clock_module.now())


def two_levels(client) -> None:
    """ann at level 1, ben at level 2 five minutes later; an incident is open and ann was paged."""
    channel = make_channel()
    make_rule(channel, [{"people": [make_user("ann")], "after": 5}, {"people": [make_user("ben")], "after": 5}])
    push(client, make_integration(channel=channel)[1], DB_DOWN)


def admin_delete(staff, model, pk) -> list[int]:
    """Try both ways the admin deletes a row (its delete page and the list's bulk action); the status codes."""
    opts = model._meta
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[pk])
    answers = [staff.get(delete).status_code, staff.post(delete, {"post": "yes"}).status_code]
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    staff.post(changelist, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})
    return answers


# Runtime rows: an escalation's state and timers, incident events, deliveries.


@pytest.mark.parametrize("model", [EscalationState, Timer, IncidentEvent, Delivery], ids=lambda m: m.__name__)
def test_the_rows_of_a_running_escalation_cannot_be_deleted_in_the_admin(staff, client, clock, mailoutbox, model):
    two_levels(client)
    row = model.objects.order_by("pk").first()
    assert admin_delete(staff, model, row.pk) == [403, 403]
    assert model.objects.filter(pk=row.pk).exists()
    opts = model._meta
    page = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).content.decode()
    assert 'value="delete_selected"' not in page


def test_level_2_is_paged_after_staff_tried_to_delete_the_pending_timer(staff, client, clock, mailoutbox):
    two_levels(client)
    assert paged(mailoutbox) == ["ann"]
    admin_delete(staff, Timer, Timer.objects.get(done_at__isnull=True).pk)
    later(clock, minutes=6)
    assert paged(mailoutbox) == ["ann", "ben"]


def test_level_2_is_paged_after_staff_tried_to_delete_the_escalation_state(staff, client, clock, mailoutbox):
    two_levels(client)
    admin_delete(staff, EscalationState, EscalationState.objects.get().pk)
    later(clock, minutes=6)
    assert paged(mailoutbox) == ["ann", "ben"]


def test_deleting_an_incident_in_the_admin_still_takes_its_escalation_events_and_deliveries(staff, client, clock):
    two_levels(client)
    incident = Incident.objects.get()
    delete = reverse("admin:oncall_incident_delete", args=[incident.pk])
    assert "Are you sure" in staff.get(delete).content.decode()
    assert staff.post(delete, {"post": "yes"}).status_code == 302
    assert not Incident.objects.exists()
    assert [m.objects.count() for m in (EscalationState, Timer, IncidentEvent, Delivery)] == [0, 0, 0, 0]


def test_an_escalation_whose_state_was_lost_pages_again_when_it_starts_again(client, clock, mailoutbox):
    """A state gone (deleted by hand in the database, or in the admin before it refused) is written anew when the
    incident is triggered again: its run counts on from the deliveries already sent, so its pages are not taken for
    the first run's and dropped while the timeline says they went."""
    ann = make_user("ann")
    channel = make_channel()
    make_rule(channel, [{"people": [ann], "after": 5}])
    push(client, make_integration(channel=channel)[1], DB_DOWN)
    assert paged(mailoutbox) == ["ann"]
    EscalationState.objects.all().delete()
    lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=Source.WEB, now=clock.current)
    later(clock, minutes=1)
    lifecycle.incident_unacknowledge(incident=Incident.objects.get(), by=ann, source=Source.WEB, now=clock.current)
    later(clock, seconds=5)
    assert paged(mailoutbox) == ["ann", "ann"]
    assert EscalationState.objects.get().run == 2
    assert sorted(Delivery.objects.values_list("escalation_run", "status")) == [(1, "sent"), (2, "sent")]
