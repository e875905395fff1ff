"""Shift reminders through the real ticker and worker code: N minutes before a shift starts, by email, once."""

from __future__ import annotations

import smtplib
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from escalation import reminders
from escalation.models import Override, Schedule, ShiftReminder
from escalation.ticker import tick
from oncall.lib import clock as clock_module
from tests.factories import (
    make_follow_the_sun_schedule,
    make_schedule,
    make_unreadable_schedule,
    make_user,
    needs_postgresql_past_9999,
)

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start
HANDOFF = START + timedelta(hours=1)  # 10:00 UTC, daily


def at(clock, moment: datetime) -> None:
    clock.current = moment
    tick(now=clock_module.now())


def reminded(mailoutbox) -> list[str]:
    return [mail.to[0].split("@")[0] for mail in mailoutbox]


@pytest.fixture
def people():
    return {name: make_user(name, time_zone="Europe/Berlin") for name in ("ann", "ben", "ed")}


@pytest.fixture
def daily(people):
    """Daily handoff at 10:00 UTC: ben takes over from ann on Monday, ann from ben on Tuesday; reminders 30 min."""
    return make_schedule(
        "Payments",
        reminder_minutes=30,
        layers=[{"start": HANDOFF - timedelta(days=1), "unit": "day", "groups": [[people["ann"]], [people["ben"]]]}],
    )


def test_each_person_is_reminded_n_minutes_before_their_shift_once(clock, people, daily, mailoutbox):
    make_schedule("Quiet", layers=[{"start": HANDOFF, "groups": [[people["ed"]]]}])  # reminders off
    for moment in (START, START + timedelta(minutes=28, seconds=30), HANDOFF - timedelta(minutes=30, seconds=1)):
        at(clock, moment)
    assert mailoutbox == []
    at(clock, HANDOFF - timedelta(minutes=30))
    assert reminded(mailoutbox) == ["ben"]
    mail = mailoutbox[0]
    assert mail.subject == "On-call shift in Payments starts Mon 2026-03-02 11:00 CET"
    assert "your on-call shift in schedule Payments (primary) starts Mon 2026-03-02 11:00 CET" in mail.body
    assert "until Tue 2026-03-03 11:00 CET" in mail.body
    for minutes in (1, 15, 30, 31, 60):
        at(clock, HANDOFF - timedelta(minutes=30) + timedelta(minutes=minutes))
    assert reminded(mailoutbox) == ["ben"]
    at(clock, HANDOFF + timedelta(days=1, minutes=-30))
    at(clock, HANDOFF + timedelta(days=1, minutes=-29))
    assert reminded(mailoutbox) == ["ben", "ann"]
    assert ShiftReminder.objects.filter(status="sent").count() == 2


def two_tickers_at_once() -> list:
    """Run two tickers' ticks at the same moment, each on its own database connection; their reports."""
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(tick(now=clock_module.now()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


def test_two_tickers_racing_remind_everyone_once(clock, people, mailoutbox):
    crew = [make_user(f"p{n}") for n in range(6)]
    for n, person in enumerate(crew):
        make_schedule(
            f"Team {n}",
            reminder_minutes=30,
            layers=[{"start": HANDOFF - timedelta(days=1), "unit": "day", "groups": [[people["ann"]], [person]]}],
        )
    clock.current = HANDOFF - timedelta(minutes=30)
    results = two_tickers_at_once()
    at(clock, HANDOFF - timedelta(minutes=29))
    assert Counter(reminded(mailoutbox)) == {f"p{n}": 1 for n in range(6)}
    assert sum(report.reminders for report in results) == 6
    assert ShiftReminder.objects.count() == 6


def test_a_failed_send_is_retried_and_the_reminder_still_arrives_once(clock, people, daily, mailoutbox, monkeypatch):
    real_send, calls = reminders.send_mail, []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(reminders, "send_mail", flaky)
    at(clock, HANDOFF - timedelta(minutes=31))
    at(clock, HANDOFF - timedelta(minutes=30))
    reminder = ShiftReminder.objects.get()
    assert (reminder.status, reminder.attempts, mailoutbox) == ("pending", 1, [])
    assert "connection lost" in reminder.error
    at(clock, HANDOFF - timedelta(minutes=29, seconds=31))
    assert mailoutbox == []
    at(clock, HANDOFF - timedelta(minutes=29, seconds=30))
    at(clock, HANDOFF - timedelta(minutes=20))
    assert reminded(mailoutbox) == ["ben"]
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts) == ("sent", 2)


def test_a_changed_schedule_cancels_the_old_reminder_and_reminds_the_new_person(clock, people, daily, mailoutbox):
    at(clock, HANDOFF - timedelta(minutes=31))
    assert ShiftReminder.objects.get().person == people["ben"]
    # Ed takes the first hours of Ben's shift, from 09:50: Ben's shift now starts at 12:00.
    Override.objects.create(
        schedule=daily, person=people["ed"], start=HANDOFF - timedelta(minutes=10), end=HANDOFF + timedelta(hours=2)
    )
    at(clock, HANDOFF - timedelta(minutes=30))
    assert reminded(mailoutbox) == ["ed"]  # due at 09:20, late but before the shift: sent at once
    assert ShiftReminder.objects.get(person=people["ben"], shift_start=HANDOFF).status == "cancelled"
    at(clock, HANDOFF + timedelta(hours=1, minutes=30))
    assert reminded(mailoutbox) == ["ed", "ben"]


def test_a_reminder_not_sent_by_the_start_of_its_shift_is_dropped(clock, people, daily, mailoutbox):
    """Planned at 09:29 for Ben's 10:00 shift, then the ticker is down until 11:20: Ben is not told then that his
    shift "starts" at 10:00, and the admin's list says why."""
    at(clock, HANDOFF - timedelta(minutes=31))
    assert ShiftReminder.objects.get().status == "pending"
    at(clock, HANDOFF + timedelta(hours=1, minutes=20))
    assert mailoutbox == []
    reminder = ShiftReminder.objects.get()
    assert (reminder.status, reminder.error) == ("cancelled", "Too late: the shift has started.")


def test_a_failed_reminder_is_not_retried_once_its_shift_has_started(clock, people, daily, mailoutbox, monkeypatch):
    real_send, mail_down = reminders.send_mail, [True]

    def flaky(*args, **kwargs):
        if mail_down[0]:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(reminders, "send_mail", flaky)
    at(clock, HANDOFF - timedelta(minutes=31))
    at(clock, HANDOFF - timedelta(seconds=10))  # overdue since 09:30; fails, to be tried again at 10:00:20
    assert ShiftReminder.objects.get().status == "pending"
    mail_down[0] = False
    at(clock, HANDOFF + timedelta(seconds=20))
    assert mailoutbox == []
    reminder = ShiftReminder.objects.get()
    assert (reminder.status, reminder.attempts, reminder.error) == ("cancelled", 2, "Too late: the shift has started.")


def test_a_send_interrupted_mid_way_is_not_tried_again(clock, people, daily, mailoutbox):
    at(clock, HANDOFF - timedelta(minutes=31))
    ShiftReminder.objects.update(status="sending", attempts=1, lease_until=HANDOFF - timedelta(minutes=30))
    at(clock, HANDOFF - timedelta(minutes=29))
    reminder = ShiftReminder.objects.get()
    assert reminder.status == "failed" and "interrupted" in reminder.error
    at(clock, HANDOFF - timedelta(minutes=20))
    assert mailoutbox == []


def test_a_deactivated_person_is_not_planned_a_reminder(clock, people, daily, mailoutbox):
    people["ben"].is_active = False
    people["ben"].save()
    for minutes in (31, 30, 29):
        at(clock, HANDOFF - timedelta(minutes=minutes))
    assert mailoutbox == []
    assert not ShiftReminder.objects.exists()  # not even a cancelled row in the admin's list


def test_a_shift_given_back_after_its_reminder_was_cancelled_is_reminded(clock, people, daily, mailoutbox):
    at(clock, HANDOFF - timedelta(minutes=31))  # ben's 10:00 reminder is planned
    swap = Override.objects.create(schedule=daily, person=people["ed"], start=HANDOFF, end=HANDOFF + timedelta(hours=2))
    at(clock, HANDOFF - timedelta(minutes=30))  # ben no longer starts at 10:00: cancelled; ed is reminded
    assert reminded(mailoutbox) == ["ed"]
    swap.delete()  # the swap is called off: ben starts at 10:00 again
    at(clock, HANDOFF - timedelta(minutes=25))
    assert reminded(mailoutbox) == ["ed", "ben"]  # overdue since 09:30: sent at once
    reminder = ShiftReminder.objects.get(person=people["ben"])
    assert (reminder.status, reminder.attempts, reminder.error) == ("sent", 1, "")
    for minutes in (24, 10, 1):
        at(clock, HANDOFF - timedelta(minutes=minutes))
    assert reminded(mailoutbox) == ["ed", "ben"]


def test_a_schedule_disabled_for_a_moment_at_reminder_time_still_reminds(clock, people, daily, mailoutbox):
    at(clock, HANDOFF - timedelta(minutes=31))
    Schedule.objects.filter(pk=daily.pk).update(enabled=False)
    at(clock, HANDOFF - timedelta(minutes=30))  # due now, but a disabled schedule has nobody on call: cancelled
    assert ShiftReminder.objects.get().status == "cancelled"
    Schedule.objects.filter(pk=daily.pk).update(enabled=True)
    for minutes in (29, 28, 1):
        at(clock, HANDOFF - timedelta(minutes=minutes))
    assert reminded(mailoutbox) == ["ben"]


def test_a_reminder_cancelled_for_a_person_deactivated_at_reminder_time_stays_cancelled(
    clock, people, daily, mailoutbox
):
    at(clock, HANDOFF - timedelta(minutes=31))
    people["ben"].is_active = False
    people["ben"].save()
    for minutes in (30, 29, 28):
        at(clock, HANDOFF - timedelta(minutes=minutes))
    assert mailoutbox == []
    reminders.shift_reminders_plan(now=HANDOFF - timedelta(minutes=1))  # not reopened, to be cancelled again
    reminder = ShiftReminder.objects.get()
    assert (reminder.status, reminder.attempts) == ("cancelled", 1)


def test_two_tickers_racing_reopen_a_given_back_reminder_and_send_it_once(clock, people, daily, mailoutbox):
    at(clock, HANDOFF - timedelta(minutes=31))
    swap = Override.objects.create(schedule=daily, person=people["ed"], start=HANDOFF, end=HANDOFF + timedelta(hours=2))
    at(clock, HANDOFF - timedelta(minutes=30))
    swap.delete()
    clock.current = HANDOFF - timedelta(minutes=25)
    two_tickers_at_once()
    at(clock, HANDOFF - timedelta(minutes=24))
    assert reminded(mailoutbox) == ["ed", "ben"]
    assert ShiftReminder.objects.get(person=people["ben"]).status == "sent"


def test_no_shift_reminder_for_the_repeated_half_hour_of_the_autumn_night(clock, mailoutbox):
    """Follow the sun in Berlin time: America 14:30-02:30, Europe 02:30-14:30. America's night ends at the first
    02:30; it is not told at 02:30 CEST that a shift starts at 02:00 CET, after the clocks went back."""
    europe = make_user("europe", time_zone="Europe/Berlin")
    america = make_user("america", time_zone="Europe/Berlin")
    make_follow_the_sun_schedule(europe=europe, america=america, reminder_minutes=30)
    moment = datetime(2026, 10, 24, 23, 55, tzinfo=UTC)  # 01:55 CEST
    while moment <= datetime(2026, 10, 25, 1, 30, tzinfo=UTC):  # the second 02:30
        at(clock, moment)
        moment += timedelta(minutes=1)
    assert [(mail.to[0], mail.subject) for mail in mailoutbox] == [
        ("europe@example.com", "On-call shift in Follow the sun starts Sun 2026-10-25 02:30 CEST")
    ]


@needs_postgresql_past_9999
def test_a_schedule_that_cannot_be_read_does_not_stop_the_other_schedules_reminders(clock, people, daily, mailoutbox):
    make_unreadable_schedule("Checkout", person=people["ed"], reminder_minutes=30)
    for minutes in (31, 30, 1):
        at(clock, HANDOFF - timedelta(minutes=minutes))
    assert reminded(mailoutbox) == ["ben"]
