"""Process tests of alert delivery: a preloaded cluster whose alerts worker
delivers to real receivers on this machine (an HTTP server that checks
signatures and fails on purpose, an SMTP server from aiosmtpd)."""
import hashlib
import hmac
import itertools
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

CLUSTER_PORT = suite_port(24500)
HTTP_PORT = suite_port(24501)
SMTP_PORT = suite_port(24502)
CLOSED_PORT = suite_port(24503)
WEB_PORT = suite_port(24504)
METRICS_PORT = suite_port(24506)
JWT_SECRET = "alerts-test-secret-0123456789abcdef-0123"
METRICS_TOKEN = "metrics-scraper-token-0123456789"
PASSWORDS = {"ada": "ada-password", "otto": "otto-password", "vera": "vera-password"}

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard'",
    "crm_dashboard.database_name": "'postgres'",
    "crm_dashboard.delivery_allowed_hosts": "'127.0.0.1'",
    "crm_dashboard.delivery_retry_base": "1",
    "crm_dashboard.delivery_retry_cap": "2",
    "crm_dashboard.delivery_max_attempts": "4",
    "crm_dashboard.delivery_timeout": "4",
    "crm_dashboard.delivery_connect_timeout": "2",
    "restart_after_crash": "on",
    "crm_dashboard.http_port": str(WEB_PORT),
    "crm_dashboard.http_workers": "2",
    "crm_dashboard.jwt_secret": f"'{JWT_SECRET}'",
    "crm_dashboard.metrics_token": f"'{METRICS_TOKEN}'",
    "crm_dashboard.metrics_port": str(METRICS_PORT),
}

FIXTURE_SQL = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA IF NOT EXISTS ingestion;
CREATE ROLE alerts_operator LOGIN IN ROLE crm_dashboard_operator;
CREATE ROLE alerts_viewer LOGIN IN ROLE crm_dashboard_viewer;
SELECT crm_api.create_user('ada', 'ada-password', 'admin');
SELECT crm_api.create_user('otto', 'otto-password', 'operator');
SELECT crm_api.create_user('vera', 'vera-password', 'viewer');
"""


def signature_ok(secret, header, body):
    """Whether an X-Crm-Dashboard-Signature header signs body with secret (as a receiver checks it)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300
    except (KeyError, ValueError, AttributeError):
        return False


class Receiver:
    """An HTTP receiver: every request is kept; a path's behaviour is set per test.

    behaviour[path] is a list of actions used in turn (the last one repeats):
    an HTTP status (int), ("hang", seconds) to wait before answering 200,
    or ("retry_after", seconds) for a 503 with Retry-After.
    """

    def __init__(self, port):
        self.requests = []
        self.behaviour = {}
        self.lock = threading.Lock()
        self.counts = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    n = receiver.counts.get(self.path, 0)
                    receiver.counts[self.path] = n + 1
                    actions = receiver.behaviour.get(self.path, [200])
                    action = actions[min(n, len(actions) - 1)]
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "at": time.time()})
                status = 200
                extra = {}
                if isinstance(action, tuple) and action[0] == "hang":
                    time.sleep(action[1])
                elif isinstance(action, tuple) and action[0] == "retry_after":
                    status, extra = 503, {"Retry-After": str(action[1])}
                else:
                    status = action
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait(self, path, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.received(path))} requests, expected {count}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def cluster():
    c = Cluster("alerts", CLUSTER_PORT, SETTINGS).init().start()
    path = os.path.join(c.dir, "fixture.sql")
    with open(path, "w") as f:
        f.write(FIXTURE_SQL)
    os.chmod(path, 0o644)
    c.psql_file(path)
    yield c
    c.stop("fast", check=False)


@pytest.fixture(scope="session")
def receiver():
    r = Receiver(HTTP_PORT)
    yield r
    r.close()


_names = itertools.count(1)


class Alerts:
    """Make models, channels and rules, and fire alerts, for one test."""

    def __init__(self, cluster):
        self.c = cluster

    def model(self):
        name = f"m{next(_names)}"
        self.c.sql(f"CREATE TABLE ingestion.hubspot_{name} (id integer PRIMARY KEY)")
        return name

    def webhook(self, path, secret="whsec_test_0123456789", port=HTTP_PORT, kind="webhook"):
        name = f"ch{next(_names)}"
        args = (name, kind, f"http://127.0.0.1:{port}{path}") + ((secret,) if kind == "webhook" else ())
        sql = "SELECT (crm_api.create_alert_channel(%s, %s, %s" + (", secret => %s" if kind == "webhook" else "") + ") ->> 'id')::bigint"
        channel_id = self.c.sql(sql, args)[0][0]
        return name, channel_id

    def rule(self, model, channels, watch="run_failed", params="{}"):
        name = f"rule {next(_names)}"
        return self.c.sql("SELECT (crm_api.create_alert_rule(%s, %s, crm => 'hubspot', model => %s, params => %s, "
                          "channels => %s) ->> 'id')::bigint", (name, watch, model, params, list(channels)))[0][0]

    def run(self, model, status="failed", error="HTTP 500 from HubSpot"):
        return self.c.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, "
                          "error_message) VALUES ('hubspot', %s, %s, now() - interval '1 minute', now(), %s) RETURNING id",
                          (model, status, error if status == "failed" else None))[0][0]

    def notifications(self, channel):
        return self.c.sql("SELECT uuid::text, event, status, attempts, last_status_code, last_error "
                          "FROM crm_api.alert_notifications WHERE channel = %s ORDER BY id", (channel,))

    def wait_status(self, channel, status, count=1, timeout=30):
        return self.c.wait_for("SELECT count(*) >= %s FROM crm_api.alert_notifications WHERE channel = %s AND status = %s",
                               (count, channel, status), timeout=timeout)


@pytest.fixture
def alerts(cluster):
    return Alerts(cluster)
