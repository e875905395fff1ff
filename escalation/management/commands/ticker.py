"""`manage.py ticker`: wake every second, claim due timers and deliveries, and hand them to the worker."""

from __future__ import annotations

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from escalation.ticker import tick
from oncall.lib import clock

logger = logging.getLogger("oncall.ticker")


class Command(BaseCommand):
    help = (
        "Run the ticker: every second, hand due escalation timers, delivery retries and shift reminders to the worker."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Run one tick and exit.")
        parser.add_argument("--interval", type=float, default=None, help="Seconds between ticks (default 1).")

    def handle(self, *args, once: bool = False, interval: float | None = None, **options) -> None:
        interval = settings.TICKER_INTERVAL if interval is None else interval
        if interval <= 0:
            raise CommandError("--interval must be above 0 seconds.")
        self.running = True

        def stop(signum, frame) -> None:
            self.running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        logger.info("Ticker started (every %.1f s)", interval)
        while self.running:
            started = time.monotonic()
            close_old_connections()
            try:
                report = tick(now=clock.now())
                handed = (report.events, report.timers, report.deliveries, report.reminders)
                if any((*handed, report.woken, report.auto_resolved)):
                    logger.info(
                        "Handed out %d timer(s), %d delivery(ies), %d late event(s), %d shift reminder(s); "
                        "woke %d, auto-resolved %d",
                        report.timers,
                        report.deliveries,
                        report.events,
                        report.reminders,
                        report.woken,
                        report.auto_resolved,
                    )
            except Exception:
                # The database may be restarting; the next tick tries again and nothing due is lost.
                logger.exception("Tick failed")
            if once:
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        logger.info("Ticker stopped")
