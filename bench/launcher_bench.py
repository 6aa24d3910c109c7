"""Launcher benchmark: start-to-exec latency, stop-to-gone latency, memory under 1 GB of output.

Each figure is printed beside a baseline measured in the same run.
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
from cluster import Cluster  # noqa: E402

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


def main():
    settings = {"shared_preload_libraries": "'crm_dashboard'", "max_worker_processes": "16",
                "crm_dashboard.stop_grace": "2"}
    c = Cluster("launcher-dev", 54432, settings).init().start()
    try:
        c.sql("CREATE EXTENSION crm_dashboard")
        c.sql("CREATE SCHEMA IF NOT EXISTS ingestion")
        c.sql("CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY)")
        time.sleep(0.5)
        ours, base = start_to_exec(c)
        s_ours, s_base = stop_to_gone(c)
        size = int(os.environ.get("BENCH_OUTPUT_BYTES", str(1 << 30)))
        idle, first_half, second_half, elapsed, status, metrics = memory_under_output(c, size)
    finally:
        c.stop("fast", check=False)

    print()
    print(f"{'measure':44} {'crm_dashboard':>16} {'baseline':>16}")
    print(f"{'start-to-exec p50 (ms), ' + str(RUNS) + ' runs':44} {statistics.median(ours):16.1f} "
          f"{statistics.median(base):16.1f}   baseline: COPY FROM PROGRAM (popen via /bin/sh)")
    print(f"{'start-to-exec p95 (ms)':44} {pct(ours, 95):16.1f} {pct(base, 95):16.1f}   target p95 <= 50 ms")
    print(f"{'stop-to-gone p50 (ms), 20 runs':44} {statistics.median(s_ours):16.1f} "
          f"{statistics.median(s_base):16.1f}   baseline: SIGTERM + waitpid from the client")
    print(f"{'stop-to-gone p95 (ms)':44} {pct(s_ours, 95):16.1f} {pct(s_base, 95):16.1f}")
    print(f"{'launcher RSS while printing %d MB (kB)' % (size >> 20):44} {max(first_half, second_half):16d} "
          f"{idle:16d}   baseline: the same launcher idle")
    print(f"{'  peak RSS, first / second half of the run':44} {first_half:16d} {second_half:16d}   "
          f"flat: equal halves")
    print(f"{'  output read (MB/s)':44} {size / elapsed / 1e6:16.1f}   run {status}, "
          f"log dropped {metrics['log_bytes_dropped'] >> 20} MB, kept log_limit")


if __name__ == "__main__":
    main()
