"""runplatform's process manager sends the worker's SIGTERM to its main process only; a worker that has exited
already (honcho has not read its stop message yet) must not keep the processes after it from being told to stop,
as honcho's own terminate() ignores a process that is gone."""

from __future__ import annotations

import subprocess

from honcho.manager import Manager

from oncall.management.commands.runplatform import PlatformManager


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _manager(cls):
    manager = cls(printer=None)
    manager._system_print = lambda data: None
    terminated = []
    manager._procmgr.terminate = lambda pid: terminated.append(pid)
    manager._processes = {
        "web": {"pid": 999_001},
        "worker": {"pid": _dead_pid()},  # exited; honcho has not read its stop message yet
        "ticker": {"pid": 999_003},
    }
    return manager, terminated


def test_honchos_manager_stops_the_others_when_one_is_already_gone():
    manager, terminated = _manager(Manager)
    manager._killall()
    assert 999_003 in terminated


def test_platform_manager_stops_the_ticker_when_the_worker_is_already_gone():
    manager, terminated = _manager(PlatformManager)
    manager._killall()
    assert 999_003 in terminated
