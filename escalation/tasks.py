"""Worker tasks of escalation: thin, by id, idempotent."""

from escalation import reminders, services
from oncall.lib import clock


def timer_fire(timer_id: int) -> None:
    services.timer_fire(timer_id=timer_id, now=clock.now())


def shift_reminder_send(reminder_id: int) -> None:
    reminders.shift_reminder_send(reminder_id=reminder_id, now=clock.now())
