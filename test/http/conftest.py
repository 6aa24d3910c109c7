"""HTTP tests of the bundled server against a throwaway preloaded cluster.

The cluster preloads crm_dashboard with the HTTP server on, a JWT secret and
tight limits; the fixture schema (ingestion tables, sync history, users of
each role, a small sync command that prints progress) is made here, so the
suite relies on nothing but the extension.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import TEST_DIR, Cluster, suite_port  # noqa: E402
from http_client import Http, Response, b64url, sign_token  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
PG_PORT = suite_port(24441)
HTTP_PORT = suite_port(24480)
SECRET = "http-test-secret-0123456789abcdef-0123456789"
PASSWORDS = {"ada": "ada-password", "otto": "otto-password", "vera": "vera-password"}

UI_DIR = os.path.join(TEST_DIR, "http-ui")
UI_FILES = {
    "index.html": b"<!doctype html><title>crm</title><script src=\"/ui/js/app.js\"></script>\n",
    "js/app.js": b"console.log('app');\n",
    "css/app.css": b"body { color: #123; }\n",
    "favicon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
    "img/logo.png": bytes(range(256)) * 4,
}

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard'",
    "crm_dashboard.database_name": "'postgres'",
    "crm_dashboard.http_port": str(HTTP_PORT),
    "crm_dashboard.http_workers": "2",
    "crm_dashboard.jwt_secret": f"'{SECRET}'",
    "crm_dashboard.http_request_timeout": "3",
    "crm_dashboard.http_max_body": "65536",
    "crm_dashboard.http_max_connections": "200",
    "max_connections": "50",
    "crm_dashboard.ui_directory": f"'{UI_DIR}'",
}

FIXTURE_SQL = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA IF NOT EXISTS ingestion;
CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY, email text, note text,
                                        updated_at timestamptz DEFAULT now());
CREATE TABLE ingestion.hubspot_deal (id bigint PRIMARY KEY, name text, amount numeric);
CREATE TABLE ingestion.genius_lead (id bigint PRIMARY KEY, name text);
INSERT INTO ingestion.hubspot_contact (id, email, note)
    SELECT g, 'c' || g || '@example.com', CASE g WHEN 1 THEN 'has, comma' WHEN 2 THEN 'has "quote"'
                                           WHEN 3 THEN NULL ELSE 'plain' END
      FROM generate_series(1, 300) g;
INSERT INTO ingestion.hubspot_deal SELECT g, 'deal ' || g, g * 10 FROM generate_series(1, 20) g;
INSERT INTO ingestion.genius_lead SELECT g, 'lead ' || g FROM generate_series(1, 5) g;
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_deal, ingestion.genius_lead;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, start_time, end_time, status,
                                        records_processed, error_message)
VALUES ('hubspot', 'contact', now() - interval '2 hours', now() - interval '119 minutes', 'success', 300, NULL),
       ('hubspot', 'deal', now() - interval '1 hour', now() - interval '59 minutes', 'failed', 3, 'api said no'),
       ('genius', 'lead', now() - interval '30 minutes', now() - interval '29 minutes', 'partial', 5, 'one bad row');
SELECT crm_api.create_user('ada', 'ada-password', 'admin');
SELECT crm_api.create_user('otto', 'otto-password', 'operator');
SELECT crm_api.create_user('vera', 'vera-password', 'viewer');
"""


def make_token(claims, secret=SECRET, alg="HS256"):
    """A JWT signed here (with the server's secret unless told otherwise)."""
    return sign_token(claims, secret, alg)


def make_ui_dir():
    """A small UI of known files, plus a symlink that points outside it."""
    import shutil
    shutil.rmtree(UI_DIR, ignore_errors=True)
    for name, data in UI_FILES.items():
        path = os.path.join(UI_DIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.symlink("/etc/passwd", os.path.join(UI_DIR, "escape.txt"))
    for root, dirs, files in os.walk(UI_DIR):
        os.chmod(root, 0o755)


@pytest.fixture(scope="session")
def cluster():
    make_ui_dir()
    c = Cluster("http", PG_PORT, SETTINGS).init().start()
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute(FIXTURE_SQL)
    conn.close()
    wait_for_http()
    yield c
    c.stop("fast", check=False)


def wait_for_http(timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the HTTP server did not start")


@pytest.fixture(scope="session")
def api(cluster):
    return Http(HTTP_PORT, PASSWORDS)


def http_worker_pids(cluster):
    rows = cluster.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'crm_dashboard http' ORDER BY pid")
    return [r[0] for r in rows]
