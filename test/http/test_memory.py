"""A worker's memory stays flat however many requests it serves."""
import http.client
import re
import time

from conftest import HTTP_PORT, http_worker_pids


def top_context_used(cluster, pid):
    """TopMemoryContext's bytes in use, from pg_log_backend_memory_contexts()."""
    mark = len(cluster.log())
    cluster.sql("SELECT pg_log_backend_memory_contexts(%s)", (pid,))
    pattern = re.compile(rf"\[{pid}\].*level: 0; TopMemoryContext: .* (\d+) used")
    deadline = time.time() + 10
    while time.time() < deadline:
        for line in cluster.log()[mark:].splitlines():
            m = pattern.search(line)
            if m:
                return int(m.group(1))
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} logged no memory contexts")


def serve(api, n, token):
    """n requests on one keep-alive connection (one worker): UI, API, errors."""
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        for i in range(n):
            path, headers = [("/ui/js/app.js", {}), ("/api/crm_sources?limit=1", auth),
                             ("/api/nope", auth), ("/api/crm_sources", {})][i % 4]
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
    finally:
        conn.close()


def test_requests_leave_no_memory_behind(api, cluster):
    token = api.token("vera")
    serve(api, 400, token)                      # warm the caches of both workers
    serve(api, 400, token)
    pids = http_worker_pids(cluster)
    before = {pid: top_context_used(cluster, pid) for pid in pids}
    serve(api, 2000, token)
    growth = {pid: top_context_used(cluster, pid) - before[pid] for pid in pids}
    # a leak of even 100 bytes a request would show as 200 kB
    assert max(growth.values()) < 100_000, growth
