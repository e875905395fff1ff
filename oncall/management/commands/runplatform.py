"""`manage.py runplatform`: the embedded platform in one command (web, worker and ticker; Ctrl-C stops all)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from honcho.manager import Manager

from oncall.management.commands.load_demo import DEMO_ADMIN, DEMO_INTEGRATION_KEY


class PlatformManager(Manager):
    """honcho's process manager, except that the worker's stop signal goes to its main process only.

    honcho signals each process's whole group; django-q2's cluster stops its own worker processes (letting the
    tasks in hand finish) when its main process is told to, and hangs when they are signalled alongside it, until
    honcho's SIGKILL. A SIGKILL still goes to the whole group.
    """

    MAIN_PROCESS_ONLY = ("worker",)

    def _killall(self, force: bool = False) -> None:
        if force:
            super()._killall(force=True)
            return
        for name, process in self._processes.items():
            if "returncode" in process:
                continue
            self._system_print(f"sending SIGTERM to {name} (pid {process['pid']})\n")
            if name in self.MAIN_PROCESS_ONLY:
                with contextlib.suppress(ProcessLookupError):  # exited already, as honcho's own terminate allows
                    os.kill(process["pid"], signal.SIGTERM)
            else:
                self._procmgr.terminate(process["pid"])


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
        manager = PlatformManager()
        manager.add_process("web", f"{python} {manage} runserver {host}:{port} --noreload", env=env)
        # exec: the pid honcho knows is the cluster's main process, not a shell around it.
        manager.add_process("worker", f"exec {python} {manage} qcluster", env=env)
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
