"""People in the admin while incidents are being paged: deactivating or deleting someone must not leave an escalation
level, or an open incident, reaching nobody without a word."""

from __future__ import annotations

import pytest
from django.urls import reverse

from oncall.models import Incident, Responder, Source, User
from oncall.services import lifecycle
from tests.factories import make_channel, make_integration, make_rule, make_team, make_user, push
from tests.integration.test_admin_live_changes import DB_DOWN, later, paged, refused, rule_naming

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def post_person(staff, person, **changes):
    """Post the person's admin form as it is shown, with `changes` made (`is_active=False` unticks "active")."""
    url = reverse("admin:oncall_user_change", args=[person.pk])
    form = staff.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.pop("date_joined", None)
    data.update(date_joined_0="2026-01-01", date_joined_1="00:00:00")
    for prefix in ("devices", "notification_preferences"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)  # an unticked checkbox is not posted
        else:
            data[name] = value
    return staff.post(url, data)


# Deactivating the last active members of a team that a level names.


def test_the_last_active_member_of_a_team_a_level_notifies_cannot_be_deactivated_in_the_admin(staff):
    """Deactivated, they would be skipped: the level would reach nobody through the team."""
    ben = make_user("ben")
    night = make_team("Night", members=[ben, make_user("gone", is_active=False)])
    rule_naming(teams=[night])
    response = post_person(staff, ben, is_active=False)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Escalation rule Databases, Level 2</a>: notifies Night." in text
    assert "add someone to the team first, or remove the team from the level" in text
    assert User.objects.get(pk=ben.pk).is_active


def test_the_team_a_level_notifies_is_still_paged_after_staff_tried_to_deactivate_its_last_member(
    staff, client, clock, mailoutbox
):
    ben = make_user("ben")
    channel = make_channel()
    make_rule(channel, [{"people": [make_user("ann")], "after": 5}, {"after": 5}]).levels.get(position=1).teams.set(
        [make_team("Night", members=[ben])]
    )
    post_person(staff, ben, is_active=False)
    push(client, make_integration(channel=channel)[1], DB_DOWN)
    later(clock, minutes=6)
    assert paged(mailoutbox) == ["ann", "ben"]


def test_a_person_whose_named_teams_keep_an_active_member_can_be_deactivated_in_the_admin(staff):
    cy, dee, eve = make_user("cy"), make_user("dee"), make_user("eve")
    rule_naming(teams=[make_team("Day", members=[cy, dee])])
    make_team("Lunch", members=[eve])  # no level names it
    for person in (cy, eve):
        assert post_person(staff, person, is_active=False).status_code == 302
        assert not User.objects.get(pk=person.pk).is_active
    assert post_person(staff, dee, first_name="Dee").status_code == 302, "saving without deactivating is not refused"


def test_deleting_the_last_active_member_of_a_named_team_is_not_advised_to_deactivate_them_instead(staff):
    """Deactivating them would empty the team just the same."""
    ben = make_user("ben")
    rule_naming(teams=[make_team("Night", members=[ben])])
    line = (
        "Escalation rule Databases, Level 2</a>: notifies Night. It would have no active member left: add someone to "
        "the team first, or remove the team from the level."
    )
    refused(staff, ben, line)
    page = staff.get(reverse("admin:oncall_user_delete", args=[ben.pk])).content.decode()
    assert "deactivate" not in page.lower()


def post_team(staff, team, members):
    url = reverse("admin:oncall_team_change", args=[team.pk])
    return staff.post(url, {"name": team.name, "description": team.description, "members": [m.pk for m in members]})


def test_a_team_a_level_notifies_cannot_be_left_without_an_active_member_on_its_admin_page(staff):
    """Removing its last active members (keeping only deactivated ones) would leave the level reaching nobody."""
    ben, gone = make_user("ben"), make_user("gone", is_active=False)
    night = make_team("Night", members=[ben, gone])
    rule_naming(teams=[night])
    for members in ([], [gone]):
        response = post_team(staff, night, members)
        assert response.status_code == 200
        text = response.content.decode()
        assert "This would leave the team with no active member" in text
        assert "Escalation rule Databases, Level 2</a>: notifies Night. Add an active member, or remove" in text
        assert set(night.members.all()) == {ben, gone}


def test_a_team_keeps_changing_members_on_its_admin_page_while_one_stays_active(staff):
    ann, ben, cy = make_user("ann"), make_user("ben"), make_user("cy")
    night = make_team("Night", members=[ann, ben])
    empty = make_team("Empty", members=[make_user("gone", is_active=False)])
    rule_naming(teams=[night, empty])
    assert post_team(staff, night, [cy]).status_code == 302
    assert set(night.members.all()) == {cy}
    lunch = make_team("Lunch", members=[ann])  # no level names it
    assert post_team(staff, lunch, []).status_code == 302
    assert not lunch.members.exists()
    assert post_team(staff, empty, []).status_code == 302, "a team that already had no active member is not refused"


# Deleting a responder of an incident that is not closed.


def incident_of(client, clock, *people: User) -> Incident:
    """A new open incident (level 1 pages kim), reassigned to `people`."""
    channel = make_channel()
    make_rule(channel, [{"people": [User.objects.get_or_create(username="kim")[0]], "after": 5}])
    push(client, make_integration(channel=channel)[1], DB_DOWN)
    incident = Incident.objects.order_by("-pk").first()
    kim = User.objects.get(username="kim")
    return lifecycle.incident_reassign(incident=incident, by=kim, people=people, source=Source.WEB, now=clock.current)


def test_a_responder_of_an_open_incident_cannot_be_deleted_in_the_admin(staff, client, clock):
    """Deleted, their responder row goes with them: the incident would be assigned to nobody."""
    ann = make_user("ann")
    triggered, acknowledged = incident_of(client, clock, ann), incident_of(client, clock, ann)
    lifecycle.incident_acknowledge(incident=acknowledged, by=ann, source=Source.WEB, now=clock.current)
    lines = [
        f'<a href="{reverse("admin:oncall_incident_change", args=[incident.pk])}">Incident #{incident.pk} db down</a>'
        ": ann is a responder and it is not closed. Deactivate them instead, or reassign or close the incident first."
        for incident in (triggered, acknowledged)
    ]
    refused(staff, ann, *lines)
    assert Responder.objects.filter(person=ann).count() == 2


def test_deleting_two_responders_of_one_open_incident_lists_the_incident_once(staff, client, clock):
    ann, ben = make_user("ann"), make_user("ben")
    incident = incident_of(client, clock, ann, ben)
    changelist = reverse("admin:oncall_user_changelist")
    bulk = {"action": "delete_selected", "_selected_action": [ann.pk, ben.pk], "post": "yes"}
    text = staff.post(changelist, bulk).content.decode()
    assert "Cannot delete" in text
    assert text.count(f"Incident #{incident.pk} db down</a>: ann, ben are responders and it is not closed.") == 1
    assert User.objects.filter(pk__in=[ann.pk, ben.pk]).count() == 2


def test_responders_only_of_closed_incidents_are_deleted_in_the_admin(staff, client, clock):
    ann, ben, cy = make_user("ann"), make_user("ben"), make_user("cy")
    incident = incident_of(client, clock, ann, ben, cy)
    lifecycle.incident_resolve(incident=incident, by=ann, source=Source.WEB, now=clock.current)
    delete = reverse("admin:oncall_user_delete", args=[ann.pk])
    assert "Are you sure" in staff.get(delete).content.decode()
    assert staff.post(delete, {"post": "yes"}).status_code == 302
    changelist = reverse("admin:oncall_user_changelist")
    staff.post(changelist, {"action": "delete_selected", "_selected_action": [ben.pk, cy.pk], "post": "yes"})
    assert not User.objects.filter(username__in=["ann", "ben", "cy"]).exists()
    assert not Responder.objects.filter(incident=incident).exists()
