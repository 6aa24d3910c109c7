"""Launcher benchmark: start-to-exec latency, stop-to-gone latency, memory under 1 GB of
output, the claim step's decision time with 10,000 queued runs over 1,000,000 history
rows, and how late retries start against their due time.

Each figure is printed beside a baseline measured in the same run.  Arguments pick
sections (default: all): exec, stop, memory, decide, retries.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

FAKE = os.path.join(HERE, "..", "test", "launcher", "commands", "fake_sync.py")
RUNS = int(os.environ.get("BENCH_RUNS", "100"))


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_status(c, run_id, statuses=("success", "failed", "partial", "cancelled"), timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = c.sql("SELECT status FROM crm_dashboard.sync_history WHERE id = %s", (run_id,))[0][0]
        if status in statuses:
            return status
        time.sleep(0.002)
    raise RuntimeError(f"run {run_id} did not reach {statuses}")


def start_to_exec(c):
    """Time from calling start_sync to the command's first instruction (it prints the clock)."""
    c.sql("DELETE FROM crm_dashboard.sync_command")
    c.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', '{/bin/date,+%s.%N}')")
    conn = c.connect()
    cur = conn.cursor()
    ours, baseline = [], []
    for _ in range(RUNS):
        t0 = time.time()
        cur.execute("SELECT crm_api.start_sync('hubspot', 'contact')")
        run_id = cur.fetchone()[0]
        wait_status(c, run_id)
        log = c.sql("SELECT log FROM crm_dashboard.sync_history WHERE id = %s", (run_id,))[0][0]
        ours.append((float(log.strip()) - t0) * 1000)
    cur.execute("CREATE TEMP TABLE clock (t text)")
    for _ in range(RUNS):
        t0 = time.time()
        cur.execute("COPY clock FROM PROGRAM 'date +%s.%N'")
        cur.execute("SELECT t FROM clock")
        baseline.append((float(cur.fetchone()[0]) - t0) * 1000)
        cur.execute("TRUNCATE clock")
    conn.close()
    return ours, baseline


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def stop_to_gone(c, n=20):
    """Time from stop_sync to the command's process disappearing; baseline: kill(2) from here."""
    c.sql("DELETE FROM crm_dashboard.sync_command")
    c.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', '{/bin/sleep,600}')")
    ours, baseline = [], []
    for _ in range(n):
        run_id = c.sql("SELECT crm_api.start_sync('hubspot', 'contact')")[0][0]
        wait_status(c, run_id, ("running",))
        pid = c.sql("SELECT pid FROM crm_dashboard.sync_history WHERE id = %s", (run_id,))[0][0]
        t0 = time.time()
        c.sql("SELECT crm_api.stop_sync(%s)", (run_id,))
        while not gone(pid):
            time.sleep(0.0005)
        ours.append((time.time() - t0) * 1000)
        wait_status(c, run_id)
    for _ in range(n):
        p = subprocess.Popen(["/bin/sleep", "600"])
        t0 = time.time()
        p.terminate()
        p.wait()
        baseline.append((time.time() - t0) * 1000)
    return ours, baseline


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def memory_under_output(c, size):
    c.sql("DELETE FROM crm_dashboard.sync_command")
    c.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', %s)",
          ([FAKE, "flood", str(size)],))
    launcher = c.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'crm_dashboard sync launcher'")[0][0]
    idle = rss_kb(launcher)
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append(rss_kb(launcher))
            time.sleep(0.05)

    th = threading.Thread(target=sample)
    th.start()
    t0 = time.time()
    run_id = c.sql("SELECT crm_api.start_sync('hubspot', 'contact')")[0][0]
    status = wait_status(c, run_id, timeout=600)
    elapsed = time.time() - t0
    done.set()
    th.join()
    metrics = c.sql("SELECT performance_metrics FROM crm_dashboard.sync_history WHERE id = %s", (run_id,))[0][0]
    half = len(samples) // 2
    return idle, max(samples[:half] or samples), max(samples[half:]), elapsed, status, metrics


# 1,000,000 finished runs and a queue of queued_runs, in a database the launcher
# does not serve (so that nothing starts them): 10 CRMs x 1,000 models, a mix of
# people's starts, schedules and retries, some retries not due yet, some models
# paused, hubspot's pool full with its two running runs.
DECIDE_SQL = """
DROP DATABASE IF EXISTS decide_{n};
CREATE DATABASE decide_{n};
"""
DECIDE_FILL = """
CREATE EXTENSION crm_dashboard;
ALTER TABLE crm_dashboard.sync_history DISABLE TRIGGER sync_history_announce;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_processed,
                                        configuration, requested_via, queued_at, not_before)
SELECT c.name, 'm' || (g % 1000), (ARRAY['success', 'success', 'success', 'failed', 'partial'])[1 + g % 5],
       now() - (1000000 - g) * interval '20 seconds', now() - (1000000 - g) * interval '20 seconds' + interval '30 seconds',
       g % 5000, '{{"argv": ["/bin/true"]}}', 'sql',
       now() - (1000000 - g) * interval '20 seconds', now() - (1000000 - g) * interval '20 seconds'
  FROM generate_series(1, 1000000) g
  JOIN (SELECT name, row_number() OVER (ORDER BY name) - 1 AS i FROM crm_dashboard.crm_source) c ON c.i = g % 10;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, configuration, requested_via, queued_at,
                                        not_before, priority, attempt, max_attempts, first_attempt_id)
SELECT c.name, 'm' || (q / 10), 'queued', '{{"argv": ["/bin/true"]}}',
       CASE WHEN q % 3 = 1 THEN 'schedule' ELSE 'sql' END, now() - q * interval '1 second',
       CASE WHEN q % 20 = 7 THEN now() + interval '10 minutes' ELSE now() - q * interval '1 second' END,
       CASE WHEN q % 20 = 7 OR q % 7 = 3 THEN 2 WHEN q % 3 = 1 THEN 1 ELSE 0 END::smallint,
       CASE WHEN q % 20 = 7 OR q % 7 = 3 THEN 2 ELSE 1 END, 3,
       CASE WHEN q % 20 = 7 OR q % 7 = 3 THEN q + 1 END
  FROM generate_series(0, {n} - 1) q
  JOIN (SELECT name, row_number() OVER (ORDER BY name) - 1 AS i FROM crm_dashboard.crm_source) c ON c.i = q % 10;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, configuration, requested_via, start_time)
VALUES ('hubspot', 'running1', 'running', '{{"argv": ["/bin/true"]}}', 'sql', now()),
       ('hubspot', 'running2', 'running', '{{"argv": ["/bin/true"]}}', 'sql', now());
INSERT INTO crm_dashboard.run_policy (crm, max_running) VALUES ('hubspot', 2);
INSERT INTO crm_dashboard.run_pause (crm, model, reason, paused_by)
SELECT 'arrivy', 'm' || g, 'bench', 'bench' FROM generate_series(0, 99) g;
ANALYZE crm_dashboard.sync_history;
"""


def decision_times(c, queued, samples=200):
    """Time the claim step and the next wake-up, as the launcher runs them with 2 free slots."""
    db = f"decide_{queued}"
    for statement in DECIDE_SQL.format(n=queued).split(";\n"):
        if statement.strip():
            c.sql(statement)
    conn = c.connect(db)
    with conn.cursor() as cur:
        cur.execute(DECIDE_FILL.format(n=queued))
        cur.execute("SELECT count(*) FROM crm_dashboard.sync_history WHERE status = 'queued'")
        assert cur.fetchone()[0] == queued
    conn.autocommit = False
    times = []
    claimed = None
    with conn.cursor() as cur:
        for i in range(samples + 20):
            t0 = time.perf_counter()
            cur.execute("SELECT array_agg(id) FROM crm_dashboard.claim_runs(2) AS id")
            claimed = cur.fetchone()[0]
            cur.execute("SELECT crm_dashboard.next_due()")
            cur.fetchone()
            elapsed = (time.perf_counter() - t0) * 1000
            conn.rollback()
            if i >= 20:  # plans cached, as in the long-lived launcher
                times.append(elapsed)
    conn.close()
    return times, claimed


def retry_lateness(c, n=40):
    """How late retries start against their not-before time: n models fail with EX_TEMPFAIL
    at once and are retried once, after a backoff of up to 1 s; baseline: pg_sleep's own lateness."""
    c.sql("DELETE FROM crm_dashboard.sync_command")
    c.sql("DELETE FROM crm_dashboard.sync_history")
    for i in range(n):
        c.sql(f"CREATE TABLE IF NOT EXISTS ingestion.hubspot_r{i:02d} (id bigint PRIMARY KEY)")
    c.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', %s)", ([FAKE, "exit", "75"],))
    c.sql("INSERT INTO crm_dashboard.run_policy (crm, max_attempts, backoff_base, backoff_cap) "
          "VALUES ('hubspot', 2, '1 second', '1 second') ON CONFLICT ON CONSTRAINT run_policy_crm_model_key DO NOTHING")
    c.sql("ALTER SYSTEM SET crm_dashboard.max_running_syncs = 64")
    c.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    for i in range(n):
        c.sql("SELECT crm_api.start_sync('hubspot', %s)", (f"r{i:02d}",))
    deadline = time.time() + 120
    while time.time() < deadline:
        left = c.sql("SELECT count(*) FROM crm_dashboard.sync_history WHERE attempt = 2 AND status NOT IN "
                     "('failed', 'success')")[0][0]
        done = c.sql("SELECT count(*) FROM crm_dashboard.sync_history WHERE attempt = 2")[0][0]
        if done == n and left == 0:
            break
        time.sleep(0.2)
    rows = c.sql("SELECT extract(epoch FROM start_time - not_before) * 1000 FROM crm_dashboard.sync_history "
                 "WHERE attempt = 2")
    late = [float(r[0]) for r in rows]
    baseline = []
    conn = c.connect()
    with conn.cursor() as cur:
        for _ in range(n):
            t0 = time.perf_counter()
            cur.execute("SELECT pg_sleep(0.2)")
            baseline.append((time.perf_counter() - t0) * 1000 - 200)
    conn.close()
    c.sql("ALTER SYSTEM RESET crm_dashboard.max_running_syncs")
    c.sql("SELECT pg_reload_conf()")
    return late, baseline


def main():
    sections = set(sys.argv[1:]) or {"exec", "stop", "memory", "decide", "retries"}
    settings = {"shared_preload_libraries": "'crm_dashboard'", "max_worker_processes": "16",
                "crm_dashboard.stop_grace": "2", "max_wal_size": "'4GB'", "shared_buffers": "'512MB'"}
    c = Cluster("launcher-bench", suite_port(24439), settings).init().start()
    results = {}
    try:
        c.sql("CREATE EXTENSION crm_dashboard")
        c.sql("CREATE SCHEMA IF NOT EXISTS ingestion")
        c.sql("CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY)")
        time.sleep(0.5)
        if "exec" in sections:
            results["exec"] = start_to_exec(c)
        if "stop" in sections:
            results["stop"] = stop_to_gone(c)
        if "memory" in sections:
            size = int(os.environ.get("BENCH_OUTPUT_BYTES", str(1 << 30)))
            results["memory"] = (size,) + memory_under_output(c, size)
        if "decide" in sections:
            results["decide"] = (decision_times(c, 10000), decision_times(c, 10))
        if "retries" in sections:
            results["retries"] = retry_lateness(c)
    finally:
        c.stop("fast", check=False)

    print()
    print(f"{'measure':44} {'crm_dashboard':>16} {'baseline':>16}")
    if "exec" in results:
        ours, base = results["exec"]
        print(f"{'start-to-exec p50 (ms), ' + str(RUNS) + ' runs':44} {statistics.median(ours):16.1f} "
              f"{statistics.median(base):16.1f}   baseline: COPY FROM PROGRAM (popen via /bin/sh)")
        print(f"{'start-to-exec p95 (ms)':44} {pct(ours, 95):16.1f} {pct(base, 95):16.1f}   target p95 <= 50 ms")
    if "stop" in results:
        s_ours, s_base = results["stop"]
        print(f"{'stop-to-gone p50 (ms), 20 runs':44} {statistics.median(s_ours):16.1f} "
              f"{statistics.median(s_base):16.1f}   baseline: SIGTERM + waitpid from the client")
        print(f"{'stop-to-gone p95 (ms)':44} {pct(s_ours, 95):16.1f} {pct(s_base, 95):16.1f}")
    if "memory" in results:
        size, idle, first_half, second_half, elapsed, status, metrics = results["memory"]
        print(f"{'launcher RSS while printing %d MB (kB)' % (size >> 20):44} {max(first_half, second_half):16d} "
              f"{idle:16d}   baseline: the same launcher idle")
        print(f"{'  peak RSS, first / second half of the run':44} {first_half:16d} {second_half:16d}   "
              f"flat: equal halves")
        print(f"{'  output read (MB/s)':44} {size / elapsed / 1e6:16.1f}   run {status}, "
              f"log dropped {metrics['log_bytes_dropped'] >> 20} MB, kept log_limit")
    if "decide" in results:
        (big, big_claimed), (small, small_claimed) = results["decide"]
        print(f"{'decision per wake-up p50 (ms), 10,000 queued':44} {statistics.median(big):16.2f} "
              f"{statistics.median(small):16.2f}   baseline: 10 queued; both over 1,000,000 runs")
        print(f"{'decision per wake-up p95 (ms)':44} {pct(big, 95):16.2f} {pct(small, 95):16.2f}   "
              f"target <= 5 ms; claimed {len(big_claimed or [])} / {len(small_claimed or [])} of 2 slots")
    if "retries" in results:
        late, base = results["retries"]
        print(f"{'retry start after its due time p50 (ms)':44} {statistics.median(late):16.1f} "
              f"{statistics.median(base):16.1f}   baseline: pg_sleep(0.2) overshoot")
        print(f"{'retry start after its due time p95 (ms)':44} {pct(late, 95):16.1f} {pct(base, 95):16.1f}   "
              f"target p95 <= 1000 ms; {len(late)} retries")


if __name__ == "__main__":
    main()
