"""Worker tasks of channels_app: thin, by id, idempotent (a task may run more than once)."""

from channels_app import services
from oncall.lib import clock, queue
from oncall.lib.logs import log_context


def delivery_send(delivery_id: int) -> None:
    with queue.worker_task(), log_context(delivery_id=delivery_id):
        services.delivery_send(delivery_id=delivery_id, now=clock.now())
