"""Crashes and restarts never leave a run running (these tests restart the server, so they run last)."""
import os
import signal
import time

import pytest

from conftest import COMMANDS

LOST = "launcher restarted; the command's process was lost (server restart or crash)"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def _start_hang(pg):
    pg.register("hubspot", [os.path.join(COMMANDS, "hang.sh")])
    run_id = pg.start("hubspot", "contact")
    pid = pg.wait(run_id, ("running",))["pid"]
    # the shell's own child, a grandchild of the launcher
    pg.c.wait_for("SELECT crm_api.sync_log(%s) LIKE '%%hang: pid%%'", (run_id,))
    deadline = time.time() + 5
    sleeper = None
    while sleeper is None and time.time() < deadline:
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open(f"/proc/{p}/stat") as f:
                        fields = f.read().split(") ")[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    sleeper = int(p)
        time.sleep(0.05)
    assert sleeper
    return run_id, pid, sleeper


def _wait_gone(*pids, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _after_restart(pg, run_id, pid, sleeper):
    pg.wait_launcher(timeout=60)
    run = pg.wait(run_id, ("failed",), timeout=30)
    assert run["error_message"] == LOST
    assert _wait_gone(pid, sleeper)
    pg.fake("hubspot", "success", model="contact")
    assert pg.wait(pg.start("hubspot", "contact"))["status"] == "success"


def test_kill_9_of_the_launcher(pg):
    run_id, pid, sleeper = _start_hang(pg)
    launcher = pg.launcher_pid()
    os.kill(launcher, signal.SIGKILL)  # the postmaster then restarts every process
    time.sleep(1)
    _after_restart(pg, run_id, pid, sleeper)
    assert pg.launcher_pid() != launcher


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restart(pg, mode):
    run_id, pid, sleeper = _start_hang(pg)
    pg.c.restart(mode)
    _after_restart(pg, run_id, pid, sleeper)


def test_queued_runs_survive_a_restart(pg):
    pg.sql("ALTER SYSTEM SET crm_dashboard.max_running_syncs = 1")
    pg.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    pg.fake("hubspot", "sleep", "30")
    pg.fake("hubspot", "success", model="deal")
    first = pg.start("hubspot", "contact")
    pg.wait(first, ("running",))
    second = pg.start("hubspot", "deal")
    assert pg.run(second)["status"] == "queued"
    pg.c.restart("fast")
    pg.wait_launcher(timeout=60)
    assert pg.wait(first)["status"] == "failed"
    assert pg.wait(second)["status"] == "success"
