"""Security tests: each reproduces one attack on a throwaway preloaded cluster
(launcher and HTTP server running) and checks that it fails.

The cluster, its users and fixture tables are made here; each test file adds
what its attack needs.  Ports shift with CRM_TEST_PORT_OFFSET.
"""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import TEST_DIR, Cluster, suite_port  # noqa: E402
from http_client import Http, sign_token  # noqa: E402
from launcher_helper import Launcher  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PG_PORT = suite_port(24421)
HTTP_PORT = suite_port(24425)
SECRET = "security-test-secret-0123456789abcdef-0123"
PASSWORDS = {"ada": "ada-password", "otto": "otto-password", "vera": "vera-password"}

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard,pg_cron'",
    "crm_dashboard.database_name": "'postgres'",
    "cron.database_name": "'postgres'",
    "crm_dashboard.http_port": str(HTTP_PORT),
    "crm_dashboard.http_workers": "2",
    "crm_dashboard.jwt_secret": f"'{SECRET}'",
    "crm_dashboard.stop_grace": "1",
    "max_connections": "60",
}

FIXTURE_SQL = """
CREATE EXTENSION pg_cron;
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA IF NOT EXISTS ingestion;
CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY, email text, note text,
                                        updated_at timestamptz DEFAULT now());
CREATE TABLE ingestion.hubspot_deal (id bigint PRIMARY KEY, name text, amount numeric);
INSERT INTO ingestion.hubspot_contact (id, email, note)
    SELECT g, 'c' || g || '@example.com', 'note ' || g FROM generate_series(1, 100) g;
INSERT INTO ingestion.hubspot_deal SELECT g, 'deal ' || g, g * 10 FROM generate_series(1, 20) g;
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_deal;
SELECT crm_api.create_user('ada', 'ada-password', 'admin');
SELECT crm_api.create_user('otto', 'otto-password', 'operator');
SELECT crm_api.create_user('vera', 'vera-password', 'viewer');
CREATE ROLE sec_operator LOGIN IN ROLE crm_dashboard_operator;
CREATE ROLE sec_viewer LOGIN IN ROLE crm_dashboard_viewer;
CREATE ROLE sec_admin LOGIN IN ROLE crm_dashboard_admin;
"""


def make_token(claims, secret=SECRET, alg="HS256"):
    """A JWT signed here (with the server's secret unless told otherwise)."""
    return sign_token(claims, secret, alg)


def wait_for_http(timeout=20):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the HTTP server did not start")


@pytest.fixture(scope="session")
def cluster():
    c = Cluster("security", PG_PORT, SETTINGS).init().start()
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute(FIXTURE_SQL)
    conn.close()
    wait_for_http()
    yield c
    c.stop("fast", check=False)


@pytest.fixture(scope="session")
def api(cluster):
    return Http(HTTP_PORT, PASSWORDS)


@pytest.fixture
def launcher(cluster):
    """The launcher helper with a clean registry and history."""
    lz = Launcher(cluster)
    lz.wait_launcher()
    lz.sql("DELETE FROM crm_dashboard.sync_command")
    lz.sql("UPDATE crm_dashboard.sync_history SET stop_requested = true WHERE status IN ('queued', 'running')")
    lz.sql("SELECT crm_dashboard.wake_launcher()")
    deadline = time.time() + 15
    while lz.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE status = 'running'") and time.time() < deadline:
        time.sleep(0.1)
    lz.sql("DELETE FROM crm_dashboard.sync_history")
    return lz


def process_ids(cluster):
    """The postmaster's pid and the workers' (launcher, HTTP): any change means a crash."""
    rows = cluster.sql("SELECT backend_type, pid FROM pg_stat_activity "
                       "WHERE backend_type IN ('crm_dashboard sync launcher', 'crm_dashboard http') "
                       "ORDER BY backend_type, pid")
    return cluster.postmaster_pid(), rows


def server_crashed(cluster):
    """Lines of the server log that show a process dying from a signal."""
    return [line for line in cluster.log().splitlines()
            if "terminated by signal" in line or "was terminated by" in line]
