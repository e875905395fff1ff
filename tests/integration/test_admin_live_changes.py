"""The admin while incidents are being paged: what staff can change or delete there must not lose, double or
misdirect a page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from channels_app.models import Bot, Delivery, MappingTable
from escalation import engine
from escalation.models import EscalationLevel, EscalationRule, EscalationState, Override, Timer
from escalation.schedules import schedule_targets_on_call
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from oncall.models import Alert, Incident, IncidentEvent, Source, Team, User
from oncall.services import lifecycle
from tests.factories import (
    make_bot,
    make_channel,
    make_integration,
    make_mapping_table,
    make_rule,
    make_schedule,
    make_team,
    make_user,
    push,
)

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


@pytest.mark.parametrize("model", [EscalationState, Timer, IncidentEvent, Delivery, Alert], ids=lambda m: m.__name__)
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
    assert [m.objects.count() for m in (EscalationState, Timer, IncidentEvent, Delivery, Alert)] == [0, 0, 0, 0, 0]


@pytest.mark.parametrize("model", [Incident, Alert], ids=lambda m: m.__name__)
def test_an_incident_or_alert_page_saved_in_the_admin_does_not_undo_an_acknowledgement_made_meanwhile(
    staff, client, clock, model
):
    """The admin shows incidents and alerts without editing them: saving the page wrote the whole row back as it
    was read, so an acknowledgement (or a close) made while the page was open was undone, the escalation stopped."""
    two_levels(client)
    row = model.objects.get()
    opts = model._meta
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    page = staff.get(change)
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split('id="content"')[1]
    lifecycle.incident_acknowledge(
        incident=Incident.objects.get(), by=User.objects.get(username="ann"), source=Source.WEB, now=clock.current
    )
    assert staff.post(change, {"title": "edited", "_save": "Save"}).status_code == 403
    assert Incident.objects.get().progress == "Processing"


def test_responders_are_shown_on_the_incident_page_not_edited(staff, client, clock):
    """Changing a responder's person there moved their acknowledgement to someone who never gave it, without a
    page; reassigning goes through the incident's page or API."""
    two_levels(client)
    incident = Incident.objects.get()
    lifecycle.incident_acknowledge(
        incident=incident, by=User.objects.get(username="ann"), source=Source.WEB, now=clock.current
    )
    page = staff.get(reverse("admin:oncall_incident_change", args=[incident.pk])).content.decode()
    assert "ann" in page and 'name="responder_set-0-person"' not in page and "responder_set-0-DELETE" not in page


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


# Teams, bots and people an escalation level names.


def rule_naming(**targets) -> EscalationRule:
    """Rule "Databases": level 1 emails a person nobody deletes, level 2 names `targets` (people, teams, bots)."""
    rule = EscalationRule.objects.create(channel=make_channel(), name="Databases")
    EscalationLevel.objects.create(rule=rule, position=0, critical_methods=["email"]).people.set([make_user("kim")])
    level = EscalationLevel.objects.create(rule=rule, position=1, critical_methods=["email"])
    for field, objs in targets.items():
        getattr(level, field).set(objs)
    return rule


def refused(staff, obj, *lines: str) -> None:
    """The admin's delete page and its bulk action both refuse to delete `obj`, listing `lines` (what uses it and
    what to do instead)."""
    opts = obj._meta
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    bulk = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    for page in (staff.get(delete), staff.post(delete, {"post": "yes"}), staff.post(changelist, bulk)):
        text = page.content.decode()
        assert page.status_code == 200 and "Cannot delete" in text
        assert all(line in text for line in lines), text[text.index("protected") :][:1500]
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_team_that_a_level_notifies_cannot_be_deleted_in_the_admin(staff):
    night = make_team("Night", members=[make_user("ben")])
    rule_naming(teams=[night])
    refused(
        staff, night, "Escalation rule Databases, Level 2</a>: notifies Night. Remove the team from the level first."
    )


def test_a_bot_that_a_level_posts_to_cannot_be_deleted_in_the_admin(staff):
    ops = make_bot("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=x", name="Ops room")
    rule_naming(bots=[ops])
    refused(
        staff, ops, "Escalation rule Databases, Level 2</a>: notifies Ops room. Remove the bot from the level first."
    )


def test_a_mapping_table_a_bot_mentions_people_through_cannot_be_deleted_in_the_admin(staff):
    """Deleted, the table would silently leave the bot (SET_NULL), which would then mention nobody."""
    table = make_mapping_table("slack", {"ann@example.com": "U012AB3CD"}, name="Slack people")
    ops = make_bot("slack", "https://hooks.slack.com/services/T000/B000/XXXX", name="Ops room", mapping_table=table)
    make_bot("slack", "https://hooks.slack.com/services/T000/B000/YYYY", name="Quiet room")  # no table
    refused(staff, table, "Bot Ops room</a>: mentions people through Slack people. Choose another table on the bot")
    ops.refresh_from_db()
    assert ops.mapping_table_id == table.pk
    # Once the bot uses another table, the old one goes.
    Bot.objects.filter(pk=ops.pk).update(mapping_table=make_mapping_table("slack", {}, name="New"))
    response = staff.post(reverse("admin:channels_app_mappingtable_delete", args=[table.pk]), {"post": "yes"})
    assert response.status_code == 302 and not MappingTable.objects.filter(pk=table.pk).exists()


def test_a_person_that_a_level_notifies_cannot_be_deleted_in_the_admin(staff):
    ben = make_user("ben")
    rule_naming(people=[ben])
    refused(
        staff,
        ben,
        "Escalation rule Databases, Level 2</a>: notifies ben. Remove them from the level first, or deactivate",
    )


def test_the_last_active_member_of_a_team_a_level_notifies_cannot_be_deleted_in_the_admin(staff):
    """Deleted, the level would reach nobody through the team; another active member left keeps it reaching."""
    ben, cy = make_user("ben"), make_user("cy")
    night = make_team("Night", members=[ben, make_user("gone", is_active=False)])
    make_team("Day", members=[cy, make_user("dee")])
    rule_naming(teams=[night, Team.objects.get(name="Day")])
    refused(staff, ben, "Escalation rule Databases, Level 2</a>: notifies Night. It would have no active member left")
    response = staff.post(reverse("admin:oncall_user_delete", args=[cy.pk]), {"post": "yes"})
    assert response.status_code == 302 and not User.objects.filter(pk=cy.pk).exists()


def test_a_team_bot_or_person_no_level_names_is_deleted_as_before(staff):
    night, ops, ben = make_team("Night"), make_bot("dingtalk", "https://oapi.dingtalk.com/robot/send"), make_user("ben")
    rule_naming(teams=[make_team("Day")])
    for obj in (night, ops, ben):
        opts = obj._meta
        response = staff.post(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk]), {"post": "yes"}
        )
        assert response.status_code == 302
    assert not Team.objects.filter(pk=night.pk).exists()
    assert not Bot.objects.filter(pk=ops.pk).exists()
    assert not User.objects.filter(pk=ben.pk).exists()


def test_the_team_a_level_notifies_still_gets_paged_after_staff_tried_to_delete_it(staff, client, clock, mailoutbox):
    channel = make_channel()
    rule = EscalationRule.objects.create(channel=channel, name="Teams")
    for position, team in enumerate([make_team("DBA", members=[make_user("ann")]), make_team("Night")]):
        level = EscalationLevel.objects.create(
            rule=rule, position=position, critical_methods=["email"], escalate_after_minutes=5
        )
        level.teams.set([team])
    night = Team.objects.get(name="Night")
    night.members.set([make_user("ben")])
    push(client, make_integration(channel=channel)[1], DB_DOWN)
    changelist = reverse("admin:oncall_team_changelist")
    staff.post(changelist, {"action": "delete_selected", "_selected_action": [night.pk], "post": "yes"})
    later(clock, minutes=6)
    assert paged(mailoutbox) == ["ann", "ben"]


# Contacts retyped in the admin.


def save_person(staff, person, **changes) -> User:
    """Save the person's admin form as it is shown, with `changes` typed in; the person as saved."""
    url = reverse("admin:oncall_user_change", args=[person.pk])
    form = staff.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.pop("date_joined", None)
    data.update(date_joined_0="2026-01-01", date_joined_1="00:00:00", **changes)
    for prefix in ("devices", "notification_preferences"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    return User.objects.get(pk=person.pk)


def test_retyping_the_same_phone_number_in_the_admin_keeps_it_verified(staff, clock):
    val = save_person(staff, make_user("val", phone="+14155550123"), phone="+1 (415) 555-0123")
    assert (val.phone, val.reachable_phone) == ("+14155550123", "+14155550123")


def test_changing_only_the_case_of_an_email_in_the_admin_keeps_it_verified(staff, clock):
    val = save_person(staff, make_user("val"), email="Val@Example.COM")
    assert (val.email, val.reachable_email) == ("Val@example.com", "Val@example.com")  # Django lowers the domain
    val = save_person(staff, val, email="valerie@example.com")
    assert (val.email, val.reachable_email) == ("valerie@example.com", None), "a new address is verified anew"


# People in schedules.


def on_call_now(schedule, now) -> tuple[int, ...]:
    (answer,) = schedule_targets_on_call(targets=[engine.ScheduleTarget(schedule.pk, None, schedule.name)], now=now)
    return answer.people


def test_a_person_in_a_rotation_cannot_be_deleted_in_the_admin_so_the_others_turns_do_not_move(staff, clock):
    ann, ben, cy = make_user("ann"), make_user("ben"), make_user("cy")
    schedule = make_schedule(
        "Payments",
        layers=[{"start": datetime(2026, 2, 23, tzinfo=UTC), "unit": "week", "groups": [[ann], [ben], [cy]]}],
    )
    assert on_call_now(schedule, clock.current) == (ben.pk,)  # Monday 2026-03-02: the second week, ben's
    refused(staff, ann, "Schedule Payments, layer Layer 1</a>: ann is in group 1. Deactivate them instead")
    assert on_call_now(schedule, clock.current) == (ben.pk,)


def test_a_person_with_an_override_cannot_be_deleted_in_the_admin(staff, clock):
    dan = make_user("dan")
    schedule = make_schedule("Payments", time_zone="Europe/Berlin")
    start = datetime(2026, 3, 7, 8, tzinfo=UTC)
    Override.objects.create(schedule=schedule, person=dan, start=start, end=start.replace(hour=20))
    refused(
        staff,
        dan,
        "Schedule Payments, override</a>: dan from 2026-03-07 09:00 (CET) to 2026-03-07 21:00 (CET). Deactivate",
    )
