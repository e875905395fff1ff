"""Worker tasks of escalation: thin, by id, idempotent."""

from escalation import services
from oncall.lib import clock


def timer_fire(timer_id: int) -> None:
    services.timer_fire(timer_id=timer_id, now=clock.now())
