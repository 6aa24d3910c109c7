"""Start or stop the client-library tests' cluster: preloaded crm_dashboard
with its HTTP server, a random JWT secret, small fixture tables in schema
ingestion, a few runs in the history, and one dashboard user per role with random
passwords.

  cluster.py start   prints KEY=VALUE lines (URL, credentials, libpq settings)
  cluster.py stop
"""
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

PORT = suite_port(24590)
HTTP_PORT = suite_port(24591)

# Rows chosen for the filters the tests use: NULLs for is., commas and
# parentheses for in., mixed case for ilike., numbers for order and ranges.
FIXTURE_SQL = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA IF NOT EXISTS ingestion;
CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY, email text, note text,
                                        updated_at timestamptz DEFAULT now());
CREATE TABLE ingestion.hubspot_deal (id bigint PRIMARY KEY, name text, amount numeric);
CREATE TABLE ingestion.genius_lead (id bigint PRIMARY KEY, name text);
CREATE TABLE ingestion.callrail_call (id bigint PRIMARY KEY, caller text);
INSERT INTO ingestion.hubspot_contact (id, email, note)
    SELECT g, 'c' || g || '@Example.com',
           CASE g WHEN 1 THEN 'has, comma' WHEN 2 THEN 'has "quote"' WHEN 3 THEN NULL ELSE 'plain' END
      FROM generate_series(1, 120) g;
INSERT INTO ingestion.hubspot_deal SELECT g, 'deal ' || g, g * 10 FROM generate_series(1, 20) g;
INSERT INTO ingestion.genius_lead SELECT g, 'lead ' || g FROM generate_series(1, 5) g;
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_deal, ingestion.genius_lead, ingestion.callrail_call;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, start_time, end_time, status,
                                        records_processed, error_message)
VALUES ('hubspot', 'contact', now() - interval '3 hours', now() - interval '179 minutes', 'success', 120, NULL),
       ('hubspot', 'deal', now() - interval '2 hours', now() - interval '119 minutes', 'failed', 3, 'api said no'),
       ('genius', 'lead', now() - interval '1 hour', now() - interval '59 minutes', 'partial', 5, 'one bad row'),
       ('callrail', 'call', now() - interval '30 minutes', now() - interval '29 minutes', 'failed', 0,
        'timeout, retried (twice)');
"""

USERS = (("admin", "admin"), ("operator", "operator"), ("viewer", "viewer"))


def settings():
    """The server settings: preloaded, HTTP on, a fresh secret each start."""
    return {
        "shared_preload_libraries": "'crm_dashboard'",
        "crm_dashboard.database_name": "'postgres'",
        "crm_dashboard.http_port": str(HTTP_PORT),
        "crm_dashboard.http_workers": "2",
        "crm_dashboard.jwt_secret": "'%s'" % secrets.token_hex(24),
        "max_connections": "50",
    }


def cluster():
    """The cluster object."""
    return Cluster("clients", PORT, settings())


def wait_http(url, timeout=30):
    """Wait until the HTTP server answers (any status: the API needs a token)."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/api/crm_sources", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, OSError, socket.timeout):
            pass
        if time.time() > deadline:
            raise SystemExit("the HTTP server did not answer on %s" % url)
        time.sleep(0.2)


def start():
    """Create and start the cluster, add fixtures and users; print the settings."""
    c = cluster().init().start()
    c.sql(FIXTURE_SQL)
    creds = {}
    for user, role in USERS:
        password = secrets.token_hex(10)
        c.sql("SELECT crm_api.create_user(%s, %s, %s)", (user, password, role))
        creds[user] = password
    url = "http://127.0.0.1:%d" % HTTP_PORT
    wait_http(url)
    print("CRM_URL=%s" % url)
    for user, _ in USERS:
        print("CRM_%s_USER=%s" % (user.upper(), user))
        print("CRM_%s_PASSWORD=%s" % (user.upper(), creds[user]))
    print("PGHOST=%s" % c.sockdir)
    print("PGPORT=%d" % PORT)
    print("PGUSER=postgres")
    print("PGDATABASE=postgres")
    print("CRM_SERVER_LOG=%s" % c.logfile)


def stop():
    """Stop the cluster if it runs."""
    cluster().stop("fast", check=False)


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1]]()
