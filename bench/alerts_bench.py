"""Alerts benchmark: the time from a failed run's commit to its webhook's
receipt (p50/p95 over BENCH_RUNS alerts) beside the time to a LISTEN of the
same commit, then the same with a second channel on the rule that never
answers: the healthy channel's p95 must stay within 2x of the figure without
it.  Each alert is a new one (a model of its own), so each is notified.
"""
import json
import os
import select
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "100"))
PG_PORT = suite_port(24510)
HOOK_PORT = suite_port(24511)
arrivals = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.time()
        doc = json.loads(body)
        if self.path == "/hang":
            time.sleep(120)
            return
        if doc.get("type") == "alert.firing":
            with lock:
                arrivals[doc["alert"]["model"]] = now
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def measure(c, label, prefix):
    """Fire RUNS alerts one after another; return webhook and LISTEN latencies (ms) from each commit."""
    listener = c.connect()
    listener.cursor().execute("LISTEN crm_dashboard_alert")
    conn = c.connect()
    cur = conn.cursor()
    hook, listen = [], []
    for i in range(RUNS):
        model = f"{prefix}{i}"
        cur.execute("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, "
                    "error_message) VALUES ('hubspot', %s, 'failed', now(), now(), 'bench')", (model,))
        committed = time.time()  # autocommit: the INSERT's commit has returned
        got = None
        deadline = committed + 10
        while got is None and time.time() < deadline:
            if select.select([listener], [], [], 0.5)[0]:
                listener.poll()
                while listener.notifies:
                    n = listener.notifies.pop(0)
                    if json.loads(n.payload).get("model") == model and got is None:
                        got = time.time()
        listen.append((got - committed) * 1000)
        while time.time() < deadline:
            with lock:
                if model in arrivals:
                    break
            time.sleep(0.0005)
        with lock:
            hook.append((arrivals[model] - committed) * 1000)
    listener.close()
    conn.close()
    print(f"{label}: commit to webhook p50 {pct(hook, 50):.1f} ms, p95 {pct(hook, 95):.1f} ms, max {max(hook):.1f} ms; "
          f"commit to LISTEN p50 {pct(listen, 50):.1f} ms, p95 {pct(listen, 95):.1f} ms")
    return hook, listen


def main():
    server = ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    c = Cluster("bench_alerts", PG_PORT, {
        "shared_preload_libraries": "'crm_dashboard'",
        "crm_dashboard.database_name": "'postgres'",
        "crm_dashboard.delivery_allowed_hosts": "'127.0.0.1'",
        "crm_dashboard.delivery_timeout": "60",
    }).init().start()
    try:
        c.sql("CREATE EXTENSION crm_dashboard")
        c.sql("SELECT crm_api.create_alert_channel('ok', 'webhook', %s)", (f"http://127.0.0.1:{HOOK_PORT}/ok",))
        c.sql("SELECT crm_api.create_alert_channel('hang', 'webhook', %s)", (f"http://127.0.0.1:{HOOK_PORT}/hang",))
        c.sql("SELECT crm_api.create_alert_rule('bench', 'run_failed', crm => 'hubspot', channels => '{ok}')")
        print(f"{RUNS} alerts, each a new alert of its own model, one at a time")
        hook, _ = measure(c, "one channel", "solo")
        c.sql("SELECT crm_api.update_alert_rule(id, channels => '{ok,hang}') FROM crm_api.alert_rules")
        hung, _ = measure(c, "beside a channel that never answers", "hung")
        in_flight = c.sql("SELECT count(*) FROM crm_api.alert_notifications WHERE channel = 'hang' AND sending")[0][0]
        ratio = pct(hung, 95) / max(pct(hook, 95), 0.001)
        print(f"hanging channel: {in_flight} notifications in flight (crm_dashboard.delivery_per_channel); "
              f"healthy channel's p95 {ratio:.2f}x the figure without it "
              f"({'within' if ratio <= 2 else 'NOT within'} 2x); p95 {'<=' if pct(hook, 95) <= 1000 else '>'} 1 s")
    finally:
        c.stop("immediate", check=False)
        server.shutdown()


if __name__ == "__main__":
    main()
