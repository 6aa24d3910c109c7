"""Process tests of the sync launcher against a throwaway preloaded cluster."""
import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
COMMANDS = os.path.join(HERE, "commands")
FAKE = os.path.join(COMMANDS, "fake_sync.py")

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard,pg_cron'",
    "cron.database_name": "'postgres'",
    "cron.use_background_workers": "on",
    "max_worker_processes": "32",
    "crm_dashboard.stop_grace": "2",
}

FIXTURE_SQL = """
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA IF NOT EXISTS ingestion;
CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY, email text);
CREATE TABLE ingestion.hubspot_deal (id bigint PRIMARY KEY, name text);
CREATE TABLE ingestion.hubspot_company (id bigint PRIMARY KEY, name text);
INSERT INTO ingestion.hubspot_contact SELECT g, 'c' || g FROM generate_series(1, 3000) g;
INSERT INTO ingestion.hubspot_deal SELECT g, 'd' || g FROM generate_series(1, 10) g;
INSERT INTO ingestion.hubspot_company SELECT g, 'co' || g FROM generate_series(1, 500) g;
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_deal, ingestion.hubspot_company;
CREATE TABLE ingestion.callrail_call (id bigint PRIMARY KEY);
CREATE ROLE tester_operator LOGIN IN ROLE crm_dashboard_operator;
CREATE ROLE tester_viewer LOGIN IN ROLE crm_dashboard_viewer;
"""


class Launcher:
    """The cluster plus helpers for registering commands and waiting for runs."""

    def __init__(self, cluster):
        self.c = cluster

    def sql(self, q, params=None, user="postgres"):
        return self.c.sql(q, params, user=user)

    def one(self, q, params=None, user="postgres"):
        return self.c.sql(q, params, user=user)[0][0]

    def register(self, crm, argv, model=None, timeout=None, env=None, workdir=None):
        self.sql("INSERT INTO crm_dashboard.sync_command (crm, model, argv, timeout, environment, working_directory) "
                 "VALUES (%s, %s, %s, %s, %s, %s)",
                 (crm, model, argv, timeout, json.dumps(env or {}), workdir))

    def fake(self, crm, mode, *args, model=None, **kw):
        self.register(crm, [FAKE, mode, *args, "{crm}", "{model}"], model=model, **kw)

    def start(self, crm, model, options=None, user="postgres"):
        return self.one("SELECT crm_api.start_sync(%s, %s, %s)", (crm, model, json.dumps(options or {})), user=user)

    def run(self, run_id):
        return self.one("SELECT crm_api.sync_status(%s)", (run_id,))

    def log(self, run_id):
        return self.one("SELECT crm_api.sync_log(%s)", (run_id,))

    def wait(self, run_id, statuses=("success", "failed", "partial", "cancelled"), timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self.run(run_id)
            if run["status"] in statuses:
                return run
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} still {self.run(run_id)['status']} after {timeout}s")

    def launcher_pid(self):
        rows = self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'crm_dashboard sync launcher'")
        return rows[0][0] if rows else None

    def wait_launcher(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                pid = self.launcher_pid()
                if pid:
                    return pid
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError("the launcher did not start")


@pytest.fixture(scope="session")
def cluster():
    c = Cluster("launcher", 54431, SETTINGS).init().start()
    path = os.path.join(c.dir, "fixture.sql")
    with open(path, "w") as f:
        f.write(FIXTURE_SQL)
    os.chmod(path, 0o644)
    c.psql_file(path)
    yield c
    c.stop("fast", check=False)


@pytest.fixture
def pg(cluster):
    """A clean registry and history for each test, with the launcher up."""
    lz = Launcher(cluster)
    lz.wait_launcher()
    lz.sql("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'crm_dashboard:%'")
    lz.sql("DELETE FROM crm_dashboard.sync_schedule")
    lz.sql("DELETE FROM crm_dashboard.sync_command")
    lz.sql("UPDATE crm_dashboard.sync_history SET stop_requested = true WHERE status IN ('queued', 'running')")
    lz.sql("SELECT crm_dashboard.wake_launcher()")
    deadline = time.time() + 15
    while lz.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE status = 'running'") and time.time() < deadline:
        time.sleep(0.1)
    lz.sql("DELETE FROM crm_dashboard.sync_history")
    lz.sql("ALTER SYSTEM RESET crm_dashboard.max_running_syncs")
    lz.sql("SELECT pg_reload_conf()")
    return lz
