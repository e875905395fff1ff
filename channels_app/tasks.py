"""Worker tasks of channels_app: thin, by id, idempotent (a task may run more than once)."""

from channels_app import services
from oncall.lib import clock


def delivery_send(delivery_id: int) -> None:
    services.delivery_send(delivery_id=delivery_id, now=clock.now())
