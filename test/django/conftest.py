"""The Django suite: a preloaded cluster whose HubSpot contacts are synced by a
real Django project (test/django/project, Django and psycopg2 from Debian)
through crm_dashboard's launcher and its installed Python helper."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, suite_port  # noqa: E402
from launcher_helper import Launcher  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.join(HERE, "project")
SHAREDIR = subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True, check=True).stdout.strip()
# the helper as make install put it, not the source tree's copy
HELPER_DIR = os.path.join(SHAREDIR, "extension", "crm_dashboard_python")

FIXTURE_SQL = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (
    id bigint PRIMARY KEY, email text, firstname text, lastname text, lastmodifieddate timestamptz);
CREATE INDEX ON ingestion.hubspot_contact (lastmodifieddate);
"""


@pytest.fixture(scope="session")
def cluster():
    c = Cluster("django", suite_port(24437), {"shared_preload_libraries": "'crm_dashboard'",
                                              "crm_dashboard.stop_grace": "2"}).init().start()
    for statement in FIXTURE_SQL.split(";\n"):
        if statement.strip():
            c.sql(statement)
    yield c
    c.stop("fast", check=False)


def environment(**extra):
    env = {"PYTHONPATH": HELPER_DIR, "DJANGO_SETTINGS_MODULE": "ingest.settings", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def django(cluster):
    """The launcher helper with the Django project registered for HubSpot; history and contacts emptied."""
    lz = Launcher(cluster)
    lz.wait_launcher()
    lz.sql("UPDATE crm_dashboard.sync_history SET stop_requested = true WHERE status IN ('queued', 'running')")
    lz.sql("SELECT crm_dashboard.wake_launcher()")
    cluster.wait_for("SELECT count(*) = 0 FROM crm_dashboard.sync_history WHERE status = 'running'")
    for table in ("crm_dashboard.sync_history", "crm_dashboard.sync_command", "crm_dashboard.run_policy",
                  "crm_dashboard.run_pause", "ingestion.hubspot_contact"):
        lz.sql(f"DELETE FROM {table}")
    lz.sql("INSERT INTO crm_dashboard.sync_command (crm, argv, working_directory, environment) "
           "VALUES ('hubspot', %s, %s, %s)",
           (["/usr/bin/python3", "manage.py", "sync_{crm}_{model}s"], PROJECT, json.dumps(environment())))

    def configure(**extra):
        lz.sql("UPDATE crm_dashboard.sync_command SET environment = %s", (json.dumps(environment(**extra)),))

    lz.configure = configure
    return lz
