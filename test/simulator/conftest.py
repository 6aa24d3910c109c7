"""Tests of the demo database and the CRM sync simulator against a throwaway cluster.

The session loads the full demo once (demo/load.sh, timed); simulator tests
run the installed crm_sync_simulator against it with PG* variables.
"""
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOAD = os.path.join(ROOT, "demo", "load.sh")
# The installed program; CRM_SYNC_SIMULATOR may point at a freshly built one.
SIMULATOR = os.environ.get("CRM_SYNC_SIMULATOR") or os.path.join(ROOT, "demo", "crm_sync_simulator")


def as_postgres(argv):
    return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv


class Demo:
    """The cluster with the demo loaded, plus helpers to run the simulator."""

    def __init__(self, cluster):
        self.c = cluster
        self.load_seconds = None
        self.load_output = ""

    def env(self, **extra):
        env = dict(os.environ)
        for key in ("CRM_SIM_FAULT", "CRM_SIM_RATE", "CRM_DASHBOARD_SYNC_ID"):
            env.pop(key, None)
        env.update(PGHOST=self.c.sockdir, PGPORT=str(self.c.port), PGUSER="postgres",
                   PGDATABASE="postgres")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def load(self):
        start = time.monotonic()
        proc = subprocess.run(as_postgres(["env", f"PGHOST={self.c.sockdir}", f"PGPORT={self.c.port}",
                                           LOAD, "postgres"]),
                              capture_output=True, text=True, timeout=300)
        self.load_seconds = time.monotonic() - start
        assert proc.returncode == 0, proc.stderr
        self.load_output = proc.stdout + proc.stderr
        return proc

    def one(self, query, params=None):
        return self.c.sql(query, params)[0][0]

    def count(self, table):
        return self.one(f"SELECT count(*) FROM ingestion.{table}")

    def run(self, *args, env=None, timeout=60):
        """Run the simulator to completion; return (returncode, stdout, stderr, events)."""
        proc = subprocess.run([SIMULATOR, *args], env=self.env(**(env or {})),
                              capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr, events(proc.stdout)

    def start(self, *args, env=None):
        return subprocess.Popen([SIMULATOR, *args], env=self.env(**(env or {})),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until_progress(proc, deadline=15):
    """Read stdout lines until the first progress event; return the lines read."""
    lines = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = proc.stdout.readline()
        assert line, "simulator ended before any progress"
        lines.append(line)
        if line.startswith("{") and json.loads(line)["event"] == "progress":
            return lines
    raise AssertionError("no progress")


def events(stdout):
    """The JSON events among the output lines (other lines are log text)."""
    out = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@pytest.fixture(scope="session")
def demo():
    assert os.access(SIMULATOR, os.X_OK), f"{SIMULATOR} is not installed: run make -C demo install"
    # Not preloaded: the demo and the simulator need no background workers.
    cluster = Cluster("simulator", suite_port(24412)).init().start()
    try:
        cluster.sql("CREATE EXTENSION crm_dashboard")
        d = Demo(cluster)
        d.load()
        yield d
    finally:
        cluster.stop("immediate", check=False)
