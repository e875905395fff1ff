"""`manage.py runplatform`: the embedded platform in one command (web, worker and ticker; Ctrl-C stops all)."""

from __future__ import annotations

import os
import shlex
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from honcho.manager import Manager

from oncall.management.commands.load_demo import DEMO_ADMIN, DEMO_INTEGRATION_KEY


class Command(BaseCommand):
    help = "Migrate, load the demo data and run web, worker and ticker together until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data.")

    def handle(self, *args, host: str, port: int, no_demo: bool, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        if not no_demo:
            call_command("load_demo", verbosity=0)
        base = f"http://{host}:{port}"
        python = shlex.quote(sys.executable)
        manage = shlex.quote(str(settings.BASE_DIR / "manage.py"))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Links in notifications point at this server unless the operator said otherwise.
        env.setdefault("PUBLIC_URL", base)
        manager = Manager()
        manager.add_process("web", f"{python} {manage} runserver {host}:{port} --noreload", env=env)
        manager.add_process("worker", f"{python} {manage} qcluster", env=env)
        manager.add_process("ticker", f"{python} {manage} ticker", env=env)
        self.stdout.write(self._banner(base, no_demo))
        self.stdout.flush()
        manager.loop()
        sys.exit(manager.returncode)

    def _banner(self, base: str, no_demo: bool) -> str:
        lines = [
            "",
            "On-call platform starting: web, worker and ticker (Ctrl-C stops all three).",
            f"  Admin:      {base}/admin/",
            f"  Engineers:  {base}/  (incidents and the personal center)",
        ]
        if not no_demo:
            user, password = DEMO_ADMIN
            payload = (
                '{"title_rule": "CPU above 90% on db-1", "event_status": "Critical", '
                '"alert_key": "cpu-db-1", "labels": {"host": "db-1", "service": "billing"}}'
            )
            lines += [
                f"  Demo login: {user} / {password}  (engineers alice / alice and bob / bob)",
                "",
                "  Push an alert (paste into another terminal):",
                f"    curl -sS -X POST '{base}/event/push/alert/standard?integration_key={DEMO_INTEGRATION_KEY}' \\",
                "      -H 'Content-Type: application/json' \\",
                f"      -d '{payload}'",
                "",
                "  Then: the incident is under Incidents in the admin, and the email to Alice is printed",
                "  below by the worker.",
                '  Recover it by sending the same curl with "event_status": "Ok".',
            ]
        return "\n".join(lines) + "\n"
