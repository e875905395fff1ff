"""Shift reminders: a schedule may tell each person N minutes before their shift starts, once per shift.

The ticker plans a reminder row a little ahead of its due time (the unique key (schedule, person, shift start)
makes a second ticker's plan a no-op), claims due rows like timers and deliveries, and hands them to the worker,
which takes each row by compare-and-set before sending: any number of tickers and workers send it once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.utils.translation import gettext as _

from channels_app.services import method_address
from escalation import rotation
from escalation.models import Role, Schedule, ShiftReminder
from escalation.schedules import schedule_data, schedules_load, schedules_load_readable
from oncall.lib import claims, queue

logger = logging.getLogger(__name__)

SEND_TASK = "escalation.tasks.shift_reminder_send"
# Rows are written this long before they are due, so every tick need not plan far ahead.
PLAN_AHEAD = timedelta(minutes=2)
MAX_ATTEMPTS = 4
REOPEN_BATCH = 200
RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5))
Status = ShiftReminder.Status


def shift_reminders_plan(*, now: datetime) -> int:
    """Write a reminder row for every shift start whose reminder is due within PLAN_AHEAD (or overdue while the
    shift has not started yet); rows that exist already are left alone, except cancelled ones, which are due
    again. Returns how many were planned."""
    # One cheap query a tick when no schedule reminds anyone.
    ids = list(Schedule.objects.filter(enabled=True, reminder_minutes__gt=0).values_list("pk", flat=True))
    # A row no one can read (written around the forms) must not stop the other schedules' reminders.
    schedules, _unreadable = schedules_load_readable(ids=ids, since=now)
    rows = []
    for schedule in schedules.values():
        lead = timedelta(minutes=schedule.reminder_minutes)
        try:
            found = rotation.shifts(schedule_data(schedule), now, now + lead + PLAN_AHEAD)
        except Exception:
            # One broken schedule (say, a time zone written around the form) must not stop the others' reminders.
            logger.exception("Schedule %s: cannot plan shift reminders", schedule.pk)
            continue
        for stretch in rotation.person_stretches(found):
            due = stretch.start - lead
            # A stretch starting at `now` is already on (or cut by the range): too late to remind.
            if stretch.start <= now or due > now + PLAN_AHEAD:
                continue
            rows.append(
                ShiftReminder(
                    schedule=schedule,
                    person_id=stretch.person_id,
                    role=stretch.role,
                    shift_start=stretch.start,
                    shift_end=stretch.end,  # as far as planning looked; the sender finds the real end
                    due_at=due,
                    next_attempt_at=due,
                    created_at=now,
                )
            )
    ShiftReminder.objects.bulk_create(rows, ignore_conflicts=True)
    _reopen_cancelled(rows)
    return len(rows)


def _reopen_cancelled(rows: list[ShiftReminder]) -> None:
    """Give a cancelled reminder back its shift when the schedule has it again (an override called off, a
    schedule disabled for a moment): the unique row stood in the way of planning it anew.

    Only cancelled rows reopen, each by compare-and-set from cancelled to pending: a cancelled reminder was never
    sent, and of racing planners one reopens it; the sender still takes it by its own compare-and-set and asks
    the schedule again before sending."""
    planned = {(row.schedule_id, row.person_id, row.shift_start): row for row in rows}
    keys = list(planned)
    found = []
    for offset in range(0, len(keys), REOPEN_BATCH):  # keeps the query under the databases' parameter limits
        match = Q()
        for schedule_id, person_id, shift_start in keys[offset : offset + REOPEN_BATCH]:
            match |= Q(schedule_id=schedule_id, person_id=person_id, shift_start=shift_start)
        cancelled = ShiftReminder.objects.filter(match, status=Status.CANCELLED)
        found.extend(cancelled.values_list("pk", "schedule_id", "person_id", "shift_start"))
    for pk, schedule_id, person_id, shift_start in found:
        row = planned[(schedule_id, person_id, shift_start)]
        ShiftReminder.objects.filter(pk=pk, status=Status.CANCELLED).update(
            status=Status.PENDING,
            role=row.role,
            shift_end=row.shift_end,
            due_at=row.due_at,
            next_attempt_at=row.next_attempt_at,
            attempts=0,
            lease_until=None,
            address="",
            error="",
        )


def shift_reminders_enqueue_due(*, now: datetime, limit: int = 500) -> int:
    """Hand due reminders to the worker (the ticker calls this every second)."""
    # A send whose worker vanished: the message may have gone out, and a reminder must never arrive twice, so it
    # is given up rather than tried again (unlike a page, whose loss is worse than a double).
    ShiftReminder.objects.filter(status=Status.SENDING, lease_until__lt=now).update(
        status=Status.FAILED, lease_until=None, error=_("The sending worker was interrupted; not tried again.")
    )
    due = ShiftReminder.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    lease = timedelta(seconds=settings.TIMER_LEASE_SECONDS)
    ids = claims.claim_due(due, now=now, lease=lease, limit=limit, order=("next_attempt_at", "pk"))  # oldest due first
    for reminder_id in ids:
        queue.enqueue(SEND_TASK, reminder_id, group="reminder")
    return len(ids)


def shift_reminders_tick(*, now: datetime) -> int:
    """Plan what is coming, hand out what is due; returns how many reminders were handed out."""
    shift_reminders_plan(now=now)
    return shift_reminders_enqueue_due(now=now)


LOOK_AHEAD = timedelta(days=32)  # how far the end of a shift is looked for, for the reminder's text


def _stretch(reminder: ShiftReminder) -> rotation.Shift | None:
    """The person's stretch on call starting at the reminder's shift start, as the schedule is now; None when they
    no longer go on call then (the schedule changed, was disabled, or stopped reminding)."""
    schedule = reminder.schedule
    if not schedule.enabled or schedule.reminder_minutes == 0 or not reminder.person.is_active:
        return None
    before = reminder.shift_start - timedelta(seconds=1)
    loaded = schedules_load(ids=[schedule.pk], since=before)
    found = rotation.shifts(schedule_data(loaded[0]), before, reminder.shift_start + LOOK_AHEAD)
    return next(
        (
            stretch
            for stretch in rotation.person_stretches(found)
            if stretch.person_id == reminder.person_id and stretch.start == reminder.shift_start
        ),
        None,
    )


def _message(reminder: ShiftReminder) -> tuple[str, str]:
    person = reminder.person
    tz = ZoneInfo(person.time_zone)
    start, end = reminder.shift_start.astimezone(tz), reminder.shift_end.astimezone(tz)
    role = Role(reminder.role).label if reminder.role in Role.values else reminder.role
    values = {
        "name": person.display_name,
        "schedule": reminder.schedule.name,
        "role": str(role).lower(),
        "start": start.strftime("%a %Y-%m-%d %H:%M %Z"),
        "end": end.strftime("%a %Y-%m-%d %H:%M %Z"),
    }
    subject = _("On-call shift in %(schedule)s starts %(start)s") % values
    body = (
        _(
            "Hello %(name)s,\n\nyour on-call shift in schedule %(schedule)s (%(role)s) starts %(start)s and runs until "
            "%(end)s, or until someone else takes over.\n\n-- On-call\n"
        )
        % values
    )
    return subject, body


def shift_reminder_send(*, reminder_id: int, now: datetime) -> str:
    """Send one reminder, if it is due and no other worker holds it. Returns "sent", "retry", "failed",
    "cancelled" or "skipped" (not ours to send)."""
    lease = timedelta(seconds=settings.DELIVERY_SEND_LEASE_SECONDS)
    claimed = ShiftReminder.objects.filter(pk=reminder_id, status=Status.PENDING, next_attempt_at__lte=now).update(
        status=Status.SENDING, lease_until=now + lease, attempts=F("attempts") + 1
    )
    if not claimed:
        return "skipped"
    reminder = ShiftReminder.objects.select_related("schedule", "person").get(pk=reminder_id)

    def finish(status: str, **fields) -> str:
        ShiftReminder.objects.filter(pk=reminder.pk, status=Status.SENDING).update(
            status=status, lease_until=None, **fields
        )
        return status

    if now >= reminder.shift_start:
        # The ticker or worker was down past the start: "your shift starts at 10:00" told at 11:20 is wrong, and
        # the planner gives no reminder for a shift already on either.
        return finish(Status.CANCELLED, error=_("Too late: the shift has started."))
    stretch = _stretch(reminder)
    if stretch is None:
        return finish(Status.CANCELLED, error=_("No longer starting a shift then."))
    reminder.shift_end = stretch.end
    # Email for now: people choose how they are reminded (their preferences by method) in a later issue.
    address = method_address(person=reminder.person, method="email")
    if not address:
        return finish(Status.FAILED, shift_end=stretch.end, error=_("No email address."))
    subject, body = _message(reminder)
    try:
        send_mail(subject, body, None, [address])
    except Exception as exc:
        logger.warning("Shift reminder %s: sending failed: %s", reminder.pk, exc)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if reminder.attempts >= MAX_ATTEMPTS:
            return finish(Status.FAILED, shift_end=stretch.end, address=address, error=error)
        wait = RETRY_BACKOFF[min(reminder.attempts, len(RETRY_BACKOFF)) - 1]
        finish(Status.PENDING, shift_end=stretch.end, address=address, error=error, next_attempt_at=now + wait)
        return "retry"
    return finish(Status.SENT, shift_end=stretch.end, address=address, sent_at=now, error="")
