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
    assert run["error_message"] == LOST and run["error_class"] == "lost"
    assert _wait_gone(pid, sleeper)
    # a lost run is retried by policy, exactly once: stop the retry
    retries = pg.sql("SELECT id, attempt, status FROM crm_dashboard.sync_history WHERE first_attempt_id = %s",
                     (run_id,))
    assert len(retries) == 1 and retries[0][1] == 2
    pg.sql("SELECT crm_api.stop_sync(%s)", (retries[0][0],))
    pg.wait(retries[0][0])
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


def test_a_retry_due_while_the_launcher_is_down_starts_exactly_once(pg):
    """kill -9 of the launcher during a backoff: the retry is a queued row, so
    the restarted launcher finds it, starts it once, and never twice."""
    # a long backoff, so that the retry is surely still waiting when we move it
    pg.sql("SELECT crm_api.set_run_policy('hubspot', backoff_base => '1 hour', backoff_cap => '1 hour')")
    starts = os.path.join(pg.c.dir, "flaky-starts")
    if os.path.exists(starts):
        os.remove(starts)
    pg.fake("hubspot", "flaky", starts)
    first = pg.start("hubspot", "contact")
    assert pg.wait(first)["status"] == "failed"
    retry = pg.one("SELECT id FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (first,))
    # the backoff now ends in a second, while the launcher is down
    moved = pg.sql("UPDATE crm_dashboard.sync_history SET not_before = now() + interval '1 second' "
                   "WHERE id = %s AND status = 'queued' RETURNING id", (retry,))
    assert moved == [(retry,)]
    launcher = pg.launcher_pid()
    os.kill(launcher, signal.SIGKILL)
    killed_at = time.time()
    time.sleep(1.5)
    pg.wait_launcher(timeout=60)
    assert pg.launcher_pid() != launcher
    assert pg.wait(retry, timeout=60)["status"] == "success"
    started = pg.one("SELECT extract(epoch FROM start_time) FROM crm_dashboard.sync_history WHERE id = %s", (retry,))
    assert started > killed_at
    time.sleep(2)
    with open(starts) as f:
        assert f.read().splitlines() == [str(first), str(retry)]
    rows = pg.sql("SELECT id, attempt, status FROM crm_dashboard.sync_history "
                  "WHERE id = %s OR first_attempt_id = %s ORDER BY id", (first, first))
    assert rows == [(first, 1, "failed"), (retry, 2, "success")]
