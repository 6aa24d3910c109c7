"""No process started by a run outlives the run.

A sync command can leave processes behind that try to escape its process
group and its supervision: one that starts a new session (setsid), one that
double-forks so that its parent is gone, and one that also clears its
environment (env -i setsid), so that neither its process group nor its
CRM_DASHBOARD_SYNC_ID tells where it came from.  Whatever ends the run
(stop_sync, its timeout, a normal exit, a kill -9 of the launcher, a server
restart), none of them may survive it, and the run's history says why it
ended.  A second run that is still running keeps all of its processes.

Each process left behind is a `sleep 600 <marker>` (sleep adds up its
arguments, so the marker is a small number unique to the test) and is found
by its command line in /proc.  The commands are shell scripts written for
the test into a directory the server's user can read.
"""
import os
import random
import shutil
import signal
import stat
import tempfile
import time

import pytest
from cluster import TEST_DIR, Cluster, suite_port
from launcher_helper import Launcher

LOST = "launcher restarted; the command's process was lost (server restart or crash)"
KINDS = ("setsid", "double fork", "env -i setsid")

# Leaves one process of each kind behind, says so, then ends as $1 says:
# "exit" when the file $5 appears, anything else never (until stopped).
ESCAPER = """#!/bin/sh
setsid sleep 600 "$2" &
( ( sleep 600 "$3" & ) & )
env -i setsid sleep 600 "$4" &
echo "left behind: $2 $3 $4"
if [ "$1" = exit ]; then
    while [ ! -e "$5" ]; do sleep 0.05; done
    exit 0
fi
sleep 600
"""

# The crash tests restart the server: they get a cluster of their own, so
# that the crash lines in its log do not disturb the other security tests.
CRASH_PG_PORT = suite_port(24423)
CRASH_SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard'",
    "crm_dashboard.database_name": "'postgres'",
    "crm_dashboard.stop_grace": "1",
}
CRASH_FIXTURE_SQL = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY);
"""


def marker_pids(marker):
    """Live processes whose command line has the marker as an argument."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in args:
            found.append(int(p))
    return found


class Escapers:
    """Scripts and markers of one test; kills what its runs left behind at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="escape-", dir=TEST_DIR)
        os.chmod(self.dir, 0o755)
        self.script = os.path.join(self.dir, "escaper.sh")
        with open(self.script, "w") as f:
            f.write(ESCAPER)
        os.chmod(self.script, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        self.markers = []

    def argv(self, mode):
        """The argv of a command leaving three processes behind; returns (argv, markers, go file)."""
        markers = {kind: "0.%015d" % random.randrange(10 ** 15) for kind in KINDS}
        self.markers.extend(markers.values())
        go = os.path.join(self.dir, f"go-{markers['setsid']}")
        return [self.script, mode, *markers.values(), go], markers, go

    def survivors(self, markers):
        """{kind: pids} of the marked processes still alive."""
        alive = {kind: marker_pids(m) for kind, m in markers.items()}
        return {kind: pids for kind, pids in alive.items() if pids}

    def wait_all_alive(self, markers, timeout=20):
        deadline = time.time() + timeout
        while len(self.survivors(markers)) < len(markers) and time.time() < deadline:
            time.sleep(0.05)
        assert len(self.survivors(markers)) == len(markers), \
            f"the command did not leave all of its processes behind: {self.survivors(markers)}"

    def wait_all_gone(self, markers, timeout=15):
        """{kind: pids} of what is still alive after waiting for everything to go."""
        deadline = time.time() + timeout
        while self.survivors(markers) and time.time() < deadline:
            time.sleep(0.1)
        return self.survivors(markers)

    def cleanup(self):
        for marker in self.markers:
            for pid in marker_pids(marker):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def escapers():
    e = Escapers()
    yield e
    e.cleanup()


def _start(lz, escapers, model, mode, options=None):
    argv, markers, go = escapers.argv(mode)
    lz.register("hubspot", argv, model=model)
    run_id = lz.start("hubspot", model, options)
    lz.wait(run_id, ("running",))
    escapers.wait_all_alive(markers)
    return run_id, markers, go


@pytest.mark.parametrize("end", ["stop_sync", "timeout", "normal exit"])
def test_no_process_outlives_its_run(launcher, escapers, end):
    # a second run, still running, whose processes must all survive the first one's end
    other, other_markers, _ = _start(launcher, escapers, "deal", "hold")
    other_pid = launcher.run(other)["pid"]

    options = {"timeout": 3} if end == "timeout" else None
    run_id, markers, go = _start(launcher, escapers, "contact", "exit" if end == "normal exit" else "hold",
                                 options)
    if end == "stop_sync":
        launcher.one("SELECT crm_api.stop_sync(%s)", (run_id,))
    elif end == "normal exit":
        open(go, "w").close()
    run = launcher.wait(run_id)
    expected = {"stop_sync": ("cancelled", "stopped on request"),
                "timeout": ("failed", "timed out after 3 s"),
                "normal exit": ("success", None)}[end]
    assert (run["status"], run["error_message"]) == expected
    left = escapers.wait_all_gone(markers)
    assert left == {}, f"processes outlived their run ({end}): {left}"

    # the other run was not touched
    assert launcher.run(other)["status"] == "running"
    assert os.path.exists(f"/proc/{other_pid}")
    assert sorted(escapers.survivors(other_markers)) == sorted(KINDS)
    launcher.one("SELECT crm_api.stop_sync(%s)", (other,))
    assert launcher.wait(other)["status"] == "cancelled"
    assert escapers.wait_all_gone(other_markers) == {}, "processes outlived the second run"


@pytest.fixture(scope="module")
def crash_cluster():
    c = Cluster("security_escape", CRASH_PG_PORT, CRASH_SETTINGS).init().start()
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute(CRASH_FIXTURE_SQL)
    conn.close()
    yield c
    c.stop("fast", check=False)


@pytest.mark.parametrize("how", ["kill -9 of the launcher", "immediate restart", "fast restart"])
def test_no_process_outlives_a_launcher_restart(crash_cluster, escapers, how):
    lz = Launcher(crash_cluster)
    old_launcher = lz.wait_launcher(timeout=60)
    lz.sql("DELETE FROM crm_dashboard.sync_command")
    # a run lost to a restart is retried by policy; here it is about processes, not retries
    lz.sql("SELECT crm_api.set_run_policy('hubspot', max_attempts => 1)")
    run_id, markers, _ = _start(lz, escapers, "contact", "hold")
    if how == "kill -9 of the launcher":
        os.kill(old_launcher, signal.SIGKILL)  # the postmaster then restarts every process
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if lz.launcher_pid() not in (None, old_launcher):
                    break
            except Exception:
                pass
            time.sleep(0.2)
    else:
        crash_cluster.restart(how.split()[0])
    assert lz.wait_launcher(timeout=60) != old_launcher
    run = lz.wait(run_id, ("failed",), timeout=60)
    assert run["error_message"] == LOST
    left = escapers.wait_all_gone(markers)
    assert left == {}, f"processes outlived their run ({how}): {left}"


def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _zombie_children(parent):
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == parent:
                found.append(int(p))
    return found


def test_nothing_outlives_a_run_whose_supervisor_was_killed(launcher, escapers):
    """The launcher itself sweeps when a run's supervisor dies without cleaning up."""
    other, other_markers, _ = _start(launcher, escapers, "deal", "hold")
    run_id, markers, _ = _start(launcher, escapers, "contact", "hold")
    command = launcher.run(run_id)["pid"]
    supervisor = _ppid(command)
    assert supervisor != launcher.launcher_pid()
    os.kill(supervisor, signal.SIGKILL)
    run = launcher.wait(run_id)
    assert run["status"] == "failed" and run["error_message"].startswith("terminated by signal 9")
    assert escapers.wait_all_gone(markers) == {}, "processes outlived their run"
    assert sorted(escapers.survivors(other_markers)) == sorted(KINDS)
    launcher_pid = launcher.launcher_pid()
    deadline = time.time() + 10
    while _zombie_children(launcher_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert _zombie_children(launcher_pid) == []
    launcher.one("SELECT crm_api.stop_sync(%s)", (other,))
    assert launcher.wait(other)["status"] == "cancelled"
    assert escapers.wait_all_gone(other_markers) == {}
