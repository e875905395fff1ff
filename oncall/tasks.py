"""Worker tasks of the core app: thin, by id, idempotent."""

from oncall.lib import clock, queue
from oncall.lib.logs import log_context
from oncall.services import ingest


def batches_process(integration_id: int) -> None:
    with queue.worker_task(), log_context(integration_id=integration_id):
        ingest.batches_process(integration_id=integration_id, now=clock.now())
