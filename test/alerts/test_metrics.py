"""GET /metrics in the Prometheus text format, checked with prometheus_client's
parser: runs, running and queued, seconds since the last success, freshness,
open alerts, deliveries, HTTP requests by route and status with a duration
histogram, event streams; who may read it.  And the bell's live feed: alert
changes are events of the stream."""
import http.client
import json
import socket
import time

import pytest
from conftest import METRICS_PORT, METRICS_TOKEN, PASSWORDS, WEB_PORT
from http_client import Http
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture(scope="module")
def web(cluster):
    h = Http(WEB_PORT, PASSWORDS)
    deadline = time.time() + 30
    while True:
        try:
            h.get("/api/crm_sources", user="vera")
            return h
        except (OSError, AssertionError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fam, **labels):
    return [s for s in fam.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def scrape(web, token=METRICS_TOKEN):
    r = Http(METRICS_PORT, PASSWORDS).get("/metrics", token=token)
    assert r.status == 200, r
    assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    return families(r.body.decode())


def test_metrics_parse_and_count_what_happened(web, cluster, alerts):
    model = alerts.model()
    cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time) VALUES "
                "('hubspot', %s, 'success', now() - interval '10 minutes', now() - interval '9 minutes'), "
                "('hubspot', %s, 'failed', now() - interval '5 minutes', now() - interval '4 minutes'), "
                "('hubspot', %s, 'queued', now(), NULL)", (model, model, model))
    alerts.rule(model, [])
    alerts.run(model)
    web.get("/api/crm_sources", user="vera")
    web.get("/api/no_such_view", user="vera")
    fams = scrape(web)
    runs = fams["crm_dashboard_runs"]  # the parser drops _total from counters
    assert runs.type == "counter"
    assert samples(runs, crm="hubspot", model=model, status="success")[0].value == 1
    assert samples(runs, crm="hubspot", model=model, status="failed")[0].value == 2
    assert samples(fams["crm_dashboard_runs_queued"], crm="hubspot")[0].value >= 1
    since = samples(fams["crm_dashboard_seconds_since_last_success"], crm="hubspot", model=model)[0].value
    assert 530 < since < 600
    open_alerts = sum(s.value for s in samples(fams["crm_dashboard_alerts_open"], status="open"))
    assert open_alerts >= 1
    assert fams["crm_dashboard_delivery_failures"].type == "counter"
    reqs = fams["crm_dashboard_http_requests"]
    assert samples(reqs, route="api_read", status="200")[0].value >= 1
    assert samples(reqs, route="api_read", status="404")[0].value >= 1
    hist = fams["crm_dashboard_http_request_duration_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in samples(hist, route="api_read") if s.name.endswith("_bucket")]
    values = [s.value for s in buckets]
    assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
    count = samples(hist, route="api_read")[-1]
    assert count.name.endswith("_count") and count.value == values[-1]
    assert fams["crm_dashboard_sse_clients"].type == "gauge"


def test_who_may_read_metrics(web):
    metrics = Http(METRICS_PORT, PASSWORDS)
    assert metrics.get("/metrics").status == 401
    assert metrics.get("/metrics", token="not-the-metrics-token-000000").status == 401
    r = metrics.get("/metrics", token=web.token("vera"))
    assert r.status == 403 and r.json()["code"] == "42501"
    assert metrics.get("/metrics", token=web.token("otto")).status == 403
    assert metrics.get("/metrics", token=web.token("ada")).status == 200
    assert metrics.post("/metrics", {}, token=METRICS_TOKEN).status == 405


def test_metrics_have_a_port_of_their_own(web):
    # with crm_dashboard.metrics_port set, the public port does not serve them
    r = web.get("/metrics", token=METRICS_TOKEN)
    assert r.status == 404 and "metrics_port" in r.json()["details"]
    # and the metrics port serves nothing else
    r = Http(METRICS_PORT, PASSWORDS).get("/api/crm_sources", token=web.token("ada"))
    assert r.status == 404 and r.json()["details"] == "This port serves GET /metrics only."
    assert Http(METRICS_PORT, PASSWORDS).get("/", token=METRICS_TOKEN).status == 404


def test_event_streams_are_counted_and_carry_alert_changes(web, cluster, alerts):
    token = web.token("vera")
    s = socket.create_connection(("127.0.0.1", WEB_PORT), timeout=10)
    try:
        s.sendall(f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  "Accept: text/event-stream\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        assert b" 200 " in buf.split(b"\r\n")[0]
        fams = scrape(web)
        assert fams["crm_dashboard_sse_clients"].samples[0].value >= 1
        model = alerts.model()
        alerts.rule(model, [])
        alerts.run(model)
        deadline = time.time() + 10
        while b"event: alert" not in buf and time.time() < deadline:
            buf += s.recv(65536)
        text = buf.decode(errors="replace")
        block = text[text.index("event: alert"):].split("\n\n")[0]
        data = json.loads(block.split("data: ", 1)[1])
        assert data["action"] == "opened" and data["model"] == model and data["status"] == "open"
        assert "event: sync" in text
    finally:
        s.close()
    # the worker learns of the hang-up when a write fails (heartbeats every 15 s: the second one)
    deadline = time.time() + 45
    while scrape(web)["crm_dashboard_sse_clients"].samples[0].value != 0:
        assert time.time() < deadline, "the closed stream is still counted"
        time.sleep(0.5)
