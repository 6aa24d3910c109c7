"""Process tests of the sync launcher against a throwaway preloaded cluster."""
import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, suite_port  # noqa: E402
from launcher_helper import Launcher  # noqa: E402

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


class FakeLauncher(Launcher):
    """The launcher helper with this suite's fake command."""

    def fake(self, crm, mode, *args, model=None, **kw):
        self.register(crm, [FAKE, mode, *args, "{crm}", "{model}"], model=model, **kw)


@pytest.fixture(scope="session")
def cluster():
    c = Cluster("launcher", suite_port(24431), SETTINGS).init().start()
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
    lz = FakeLauncher(cluster)
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
    lz.sql("DELETE FROM crm_dashboard.sync_skip")
    lz.sql("DELETE FROM crm_dashboard.run_pause")
    lz.sql("DELETE FROM crm_dashboard.run_policy")
    lz.sql("DELETE FROM crm_dashboard.freshness_sla")
    lz.sql("ALTER SYSTEM RESET crm_dashboard.max_running_syncs")
    lz.sql("ALTER SYSTEM RESET crm_dashboard.priority_aging")
    lz.sql("SELECT pg_reload_conf()")
    return lz
