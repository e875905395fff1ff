"""Worker tasks of escalation: thin, by id, idempotent."""

from escalation import reminders, services
from oncall.lib import clock, queue
from oncall.lib.logs import log_context


def timer_fire(timer_id: int) -> None:
    with queue.worker_task(), log_context(timer_id=timer_id):
        services.timer_fire(timer_id=timer_id, now=clock.now())


def shift_reminder_send(reminder_id: int) -> None:
    with queue.worker_task(), log_context(reminder_id=reminder_id):
        reminders.shift_reminder_send(reminder_id=reminder_id, now=clock.now())
