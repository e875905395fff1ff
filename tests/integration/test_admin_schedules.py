"""The admin of schedules: every page opens, times are the schedule's, the next 4 weeks read as a table, levels
target schedules, and calendar feed URLs are shown once."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.urls import reverse

from escalation.feeds import calendar_feed_create
from escalation.models import (
    CalendarFeed,
    EscalationRule,
    Layer,
    LayerMember,
    LevelSchedule,
    Override,
    Schedule,
    ShiftReminder,
)
from escalation.ticker import tick
from tests.factories import make_channel, make_rule, make_schedule, make_team, make_user, needs_postgresql_past_9999

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start, a Monday
SCHEDULE_MODELS = {Schedule, Layer, CalendarFeed, ShiftReminder}


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def people(clock):
    return {name: make_user(name, first_name=name.title()) for name in ("ann", "ben", "cy")}


@pytest.fixture
def payments(people):
    """Berlin time: ann and ben take turns weekly from Monday 2026-02-23 09:00, ben as primary with cy as backup."""
    schedule = make_schedule(
        "Payments",
        time_zone="Europe/Berlin",
        reminder_minutes=30,
        layers=[
            {
                "start": datetime(2026, 2, 23, 8, 0, tzinfo=UTC),
                "groups": [[people["ann"]], [people["ben"], (people["cy"], "backup")]],
            }
        ],
    )
    Override.objects.create(
        schedule=schedule,
        person=people["cy"],
        start=datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
        end=datetime(2026, 3, 11, 5, 0, tzinfo=UTC),
        note="swap",
    )
    return schedule


def test_every_schedule_page_opens_with_data_in_it(staff_client, clock, payments):
    calendar_feed_create(schedule=payments, now=clock.current)
    clock.current = datetime(2026, 3, 2, 7, 31, tzinfo=UTC)
    tick(now=clock.current)  # plans ben's reminder for 08:00 UTC
    assert ShiftReminder.objects.exists()
    registered = {model: model_admin for model, model_admin in admin.site._registry.items() if model in SCHEDULE_MODELS}
    assert set(registered) == SCHEDULE_MODELS
    for model, model_admin in registered.items():
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        changelist = staff_client.get(reverse(f"{name}_changelist"))
        assert changelist.status_code == 200, name
        add = staff_client.get(reverse(f"{name}_add"))
        assert add.status_code == (200 if model_admin.has_add_permission(changelist.wsgi_request) else 403), name
        change = staff_client.get(reverse(f"{name}_change", args=[model._default_manager.first().pk]))
        assert change.status_code == 200, name


def test_the_schedule_page_shows_the_next_four_weeks_in_its_time_zone(staff_client, payments):
    page = staff_client.get(reverse("admin:escalation_schedule_change", args=[payments.pk])).content.decode()
    assert "Shifts in the next 28 days (Europe/Berlin)" in page
    section = page[page.index('class="module shift-table"') :]
    table = section[section.index("<tbody>") : section.index("</tbody>")]
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in table.split("</tr>")[:-1]]
    assert rows[:7] == [
        "Ben Primary Mon 2026-03-02 09:00 Mon 2026-03-09 09:00",  # running now: from its real start
        "Cy Backup Mon 2026-03-02 09:00 Mon 2026-03-09 09:00",
        "Ann Primary Mon 2026-03-09 09:00 Tue 2026-03-10 18:00",
        "Cy Primary Tue 2026-03-10 18:00 Wed 2026-03-11 06:00",  # the override takes the role Ann has
        "Ann Primary Wed 2026-03-11 06:00 Mon 2026-03-16 09:00",
        "Ben Primary Mon 2026-03-16 09:00 Mon 2026-03-23 09:00",
        "Cy Backup Mon 2026-03-16 09:00 Mon 2026-03-23 09:00",
    ]
    assert "Mon 2026-03-30 09:00" in page  # after the change to summer time, still 09:00 local
    assert 'class="on-call-now"' in table and "On call now: Ben (Primary); Cy (Backup)." in re.sub(r"\s+", " ", page)


def schedule_form(team, time_zone: str, **fields) -> dict:
    """The schedule page's form: one layer, no override (add one with `overrides-0-...` and TOTAL_FORMS)."""
    return {
        "name": "Checkout",
        "team": team.pk,
        "description": "",
        "time_zone": time_zone,
        "enabled": "on",
        "reminder_minutes": 0,
        "layers-TOTAL_FORMS": 1,
        "layers-INITIAL_FORMS": 0,
        "layers-0-position": 1,
        "layers-0-name": "Weekdays",
        "layers-0-rotation_unit": "day",
        "layers-0-rotation_count": 1,
        "layers-0-start_0": "2026-03-02",
        "layers-0-start_1": "09:00:00",
        "layers-0-restriction_kind": "none",
        "layers-0-restriction_windows": "[]",
        "overrides-TOTAL_FORMS": 0,
        "overrides-INITIAL_FORMS": 0,
        **fields,
    }


def override_fields(person, start: tuple[str, str], end: tuple[str, str], role: str = "") -> dict:
    return {
        "overrides-TOTAL_FORMS": 1,
        "overrides-0-person": person.pk,
        "overrides-0-role": role,
        "overrides-0-start_0": start[0],
        "overrides-0-start_1": start[1],
        "overrides-0-end_0": end[0],
        "overrides-0-end_1": end[1],
    }


def test_a_schedule_is_created_with_a_layer_whose_times_are_the_schedules(staff_client, people):
    team = make_team("Payments team")
    data = schedule_form(
        team,
        "America/New_York",
        **{
            "layers-0-restriction_kind": "daily",
            "layers-0-restriction_windows": '[{"start": "09:00", "end": "17:00"}]',
        },
        **override_fields(people["cy"], ("2026-03-03", "20:00:00"), ("2026-03-04", "08:00:00"), role="backup"),
    )
    response = staff_client.post(reverse("admin:escalation_schedule_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    layer = Layer.objects.get(name="Weekdays")
    assert layer.start == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York (EST)
    assert Override.objects.get().start == datetime(2026, 3, 4, 1, 0, tzinfo=UTC)

    bad = {**data, "name": "Broken", "layers-0-restriction_windows": '[{"start": "9am", "end": "17:00"}]'}
    page = staff_client.post(reverse("admin:escalation_schedule_add"), bad).content.decode()
    assert "window 1: start must be a time such as 09:00" in page
    assert not Schedule.objects.filter(name="Broken").exists()

    members = {
        "schedule": layer.schedule_id,
        "position": 1,
        "name": "Weekdays",
        "rotation_unit": "day",
        "rotation_count": 1,
        "start_0": "2026-03-02",
        "start_1": "09:00:00",
        "restriction_kind": "daily",
        "restriction_windows": '[{"start": "09:00", "end": "17:00"}]',
        "members-TOTAL_FORMS": 3,
        "members-INITIAL_FORMS": 0,
        "members-0-group": 1,
        "members-0-person": people["ann"].pk,
        "members-0-role": "primary",
        "members-1-group": 1,
        "members-1-person": people["cy"].pk,
        "members-1-role": "backup",
        "members-2-group": 2,
        "members-2-person": people["ben"].pk,
        "members-2-role": "primary",
    }
    response = staff_client.post(reverse("admin:escalation_layer_change", args=[layer.pk]), members)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(LayerMember.objects.filter(layer=layer).values_list("group", "person__username", "role")) == [
        (1, "ann", "primary"),
        (1, "cy", "backup"),
        (2, "ben", "primary"),
    ]
    layer.refresh_from_db()
    assert layer.start == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    schedule_page = staff_client.get(reverse("admin:escalation_schedule_change", args=[layer.schedule_id]))
    assert "1: ann (Primary), cy (Backup) → 2: ben (Primary)" in schedule_page.content.decode()


def test_an_escalation_level_targets_schedules_and_roles_in_the_rule_admin(staff_client, payments):
    rule = make_rule(make_channel("Production"), [{"people": []}])
    level = rule.levels.get()
    url = reverse("admin:escalation_escalationrule_change", args=[rule.pk])
    page = staff_client.get(url).content.decode()
    assert "Payments: anyone on call" in page and "Payments: Backup" in page
    data = {
        "channel": rule.channel_id,
        "name": rule.name,
        "priority": 100,
        "enabled": "on",
        "description": "",
        "delay_seconds": 0,
        "time_windows": "[]",
        "filters": "[]",
        "levels-TOTAL_FORMS": 1,
        "levels-INITIAL_FORMS": 1,
        "levels-0-id": level.pk,
        "levels-0-rule": rule.pk,
        "levels-0-position": 0,
        "levels-0-schedule_targets": [f"{payments.pk}:primary", f"{payments.pk}:"],
        "levels-0-critical_methods": ["email"],
        "levels-0-escalate_after_minutes": 30,
        "levels-0-emails": "[]",
        "levels-0-repeat_times": 0,
        "levels-0-repeat_every_minutes": 10,
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert sorted(LevelSchedule.objects.values_list("schedule__name", "role")) == [
        ("Payments", ""),
        ("Payments", "primary"),
    ]
    response = staff_client.post(url, {**data, "levels-0-schedule_targets": [f"{payments.pk}:backup"]})
    assert response.status_code == 302
    assert list(LevelSchedule.objects.values_list("role", flat=True)) == ["backup"]
    assert list(EscalationRule.objects.get().levels.get().schedules.all()) == [payments]


def test_a_schedule_feed_url_is_shown_once_and_can_be_revoked(staff_client, client, payments):
    changelist = reverse("admin:escalation_schedule_changelist")
    response = staff_client.post(changelist, {"action": "regenerate_feeds", "_selected_action": [payments.pk]})
    page = response.content.decode()
    url = re.search(
        r'<code class="feed-url">(https://oncall\.example\.test(/calendar/schedule/[^<]+\.ics))</code>', page
    )
    assert url is not None, page[:3000]
    assert client.get(url.group(2)).status_code == 200
    feed = CalendarFeed.objects.get()
    change = staff_client.get(reverse("admin:escalation_schedule_change", args=[payments.pk])).content.decode()
    assert url.group(1) not in change and f"URL ends with ••••••••{feed.token_hint}" in change
    staff_client.post(changelist, {"action": "revoke_feeds", "_selected_action": [payments.pk]})
    assert client.get(url.group(2)).status_code == 404


def test_the_schedule_list_says_who_is_on_call_now(staff_client, payments, clock):
    listing = staff_client.get(reverse("admin:escalation_schedule_changelist")).content.decode()
    assert '<td class="field-on_call">Ben (Primary); Cy (Backup)</td>' in listing
    clock.current = START + timedelta(days=8, hours=9)  # during cy's override
    listing = staff_client.get(reverse("admin:escalation_schedule_changelist")).content.decode()
    assert '<td class="field-on_call">Cy (Primary)</td>' in listing


def test_the_schedule_pages_leave_out_a_deactivated_person(staff_client, payments, people):
    people["ben"].is_active = False
    people["ben"].save()
    listing = staff_client.get(reverse("admin:escalation_schedule_changelist")).content.decode()
    assert '<td class="field-on_call">Cy (Backup)</td>' in listing
    page = staff_client.get(reverse("admin:escalation_schedule_change", args=[payments.pk])).content.decode()
    assert "Ann" in page and "Ben" not in page


OUT_OF_RANGE = "Choose a time between the years 1970 and 9998 (in UTC)."


@pytest.mark.parametrize(
    ("time_zone", "fields"),
    [
        # "Until 9999-12-31 23:00" (forever) in New York is 10000-01-01 04:00 in UTC.
        ("America/New_York", {"override": (("2026-03-01", "00:00:00"), ("9999-12-31", "23:00:00"))}),
        ("America/New_York", {"layers-0-end_0": "9999-12-31", "layers-0-end_1": "23:00:00"}),
        ("America/New_York", {"override": (("2026-03-01", "00:00:00"), ("9998-12-31", "20:00:00"))}),  # 9999 in UTC
        # Year 1 in Tokyo is year 0 in UTC.
        ("Asia/Tokyo", {"layers-0-start_0": "0001-01-01", "layers-0-start_1": "00:00:00"}),
        ("UTC", {"override": (("1969-12-31", "23:00:00"), ("2026-03-01", "00:00:00"))}),
    ],
)
def test_a_schedule_time_outside_the_years_1970_to_9998_in_utc_is_refused_with_its_error(
    staff_client, people, time_zone, fields
):
    fields = dict(fields)
    if "override" in fields:
        fields.update(override_fields(people["ben"], *fields.pop("override")))
    response = staff_client.post(
        reverse("admin:escalation_schedule_add"), schedule_form(make_team("T"), time_zone, **fields)
    )
    assert response.status_code == 200
    assert OUT_OF_RANGE in response.content.decode()
    assert not Schedule.objects.exists()


def test_a_schedule_time_at_the_end_of_9998_in_utc_is_kept(staff_client, people):
    # 18:59 in New York is 23:59 in UTC, the last minute of 9998.
    fields = override_fields(people["ben"], ("2026-03-01", "00:00:00"), ("9998-12-31", "18:59:00"))
    response = staff_client.post(
        reverse("admin:escalation_schedule_add"), schedule_form(make_team("T"), "America/New_York", **fields)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Override.objects.get().end == datetime(9998, 12, 31, 23, 59, tzinfo=UTC)
    page = staff_client.get(reverse("admin:escalation_schedule_change", args=[Schedule.objects.get().pk]))
    assert page.status_code == 200


def test_the_layer_page_refuses_a_start_before_1970_in_utc(staff_client):
    schedule = make_schedule("Payments", time_zone="Asia/Tokyo")
    data = {
        "schedule": schedule.pk,
        "position": 1,
        "name": "Weekdays",
        "rotation_unit": "day",
        "rotation_count": 1,
        "start_0": "0001-01-01",
        "start_1": "00:00:00",
        "restriction_kind": "none",
        "restriction_windows": "[]",
        "members-TOTAL_FORMS": 0,
        "members-INITIAL_FORMS": 0,
    }
    response = staff_client.post(reverse("admin:escalation_layer_add"), data)
    assert response.status_code == 200
    assert OUT_OF_RANGE in response.content.decode()
    assert not Layer.objects.exists()


def _override_past_9999(schedule, person) -> Override:
    """What the schedule page saved on PostgreSQL before it refused it: no process can read this row back."""
    new_york = ZoneInfo("America/New_York")
    return Override.objects.create(
        schedule=schedule,
        person=person,
        start=datetime(2026, 3, 1, tzinfo=new_york),
        end=datetime(9999, 12, 31, 23, 0, tzinfo=new_york),
    )


@needs_postgresql_past_9999
def test_a_schedule_that_cannot_be_read_leaves_the_schedule_list_up_and_says_so(staff_client, payments, people):
    broken = make_schedule("Checkout", time_zone="America/New_York")
    _override_past_9999(broken, people["ann"])
    listing = staff_client.get(reverse("admin:escalation_schedule_changelist")).content.decode()
    assert '<td class="field-on_call">cannot be read: see the server log</td>' in listing
    assert '<td class="field-on_call">Ben (Primary); Cy (Backup)</td>' in listing  # the other schedules still answer


@needs_postgresql_past_9999
def test_schedule_times_saved_past_year_9999_in_utc_are_brought_back_into_range_by_the_upgrade(
    staff_client, payments, people
):
    migration = importlib.import_module("escalation.migrations.0009_schedule_times_in_range")
    broken = make_schedule(
        "Checkout",
        time_zone="America/New_York",
        layers=[{"start": datetime(2026, 3, 1, tzinfo=UTC), "groups": [[people["ann"]]]}],
    )
    override = _override_past_9999(broken, people["ben"])
    Layer.objects.filter(schedule=broken).update(end=datetime(9999, 12, 31, 23, 0, tzinfo=ZoneInfo("America/New_York")))
    year_zero = Override.objects.create(  # year 1 in Tokyo: year 0 in UTC
        schedule=broken,
        person=people["cy"],
        start=datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
        end=datetime(2026, 3, 2, tzinfo=UTC),
    )
    kept = Override.objects.filter(schedule=payments).values_list("pk", "start", "end").get()

    migration.bring_unreadable_times_into_range(django_apps, None)
    last = datetime(9998, 12, 31, 23, 59, tzinfo=UTC)
    assert Override.objects.get(pk=override.pk).end == last
    assert Layer.objects.get(schedule=broken).end == last
    assert Override.objects.values_list("start", "end").get(pk=year_zero.pk) == (
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert Override.objects.filter(schedule=payments).values_list("pk", "start", "end").get() == kept
    page = staff_client.get(reverse("admin:escalation_schedule_change", args=[broken.pk]))
    assert page.status_code == 200
