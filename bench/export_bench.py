"""The data-tools benchmark (run through bench/export.sh), each figure beside
its baseline from the same run:

  xlsx export of N x 12 columns over HTTP   vs  COPY ... TO STDOUT of the same rows
  peak private memory of the backend writing the workbook, at 100,000 and at N rows
  a filtered keyset page deep in a 2,000,000-row model (indexed filter)
                                            vs  its first page, and the same filter by OFFSET
  pre-sync checks (not null, unique primary key, accepted values) on that model
                                            vs  a plain count(*)
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
from cluster import BINDIR, Cluster, suite_port  # noqa: E402

PG_PORT = int(os.environ.get("BENCH_PG_PORT", suite_port(24560)))
HTTP_PORT = int(os.environ.get("BENCH_HTTP_PORT", suite_port(24561)))
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
MODEL_ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
RUNS = 7
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

SETUP = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA IF NOT EXISTS ingestion;
CREATE TABLE ingestion.hubspot_wide (id bigint PRIMARY KEY, email text, first_name text, last_name text,
    city text, score integer, amount numeric(12, 2), ratio float8, active boolean, born date,
    created_at timestamptz, doc jsonb);
INSERT INTO ingestion.hubspot_wide
    SELECT g, 'user' || g || '@example.com', 'First' || g % 1000, 'Last, ' || g % 777,
           (ARRAY['Austin', 'Boston', 'Chicago', NULL])[g % 4 + 1], g % 1000, g % 100000 / 100.0, g / 7.0,
           g % 3 = 0, date '1950-01-01' + g % 20000, timestamptz '2020-01-01' + g * interval '17 seconds',
           jsonb_build_object('n', g % 10)
      FROM generate_series(1, %(rows)s) g;
CREATE TABLE ingestion.hubspot_event (id bigint PRIMARY KEY, region text, status text, score integer);
INSERT INTO ingestion.hubspot_event
    SELECT g, 'r' || g %% 10, (ARRAY['new', 'won', 'lost'])[g %% 3 + 1], g %% 1000
      FROM generate_series(1, %(model_rows)s) g;
CREATE INDEX ON ingestion.hubspot_event (region, id);
ANALYZE;
SELECT crm_api.create_user('bench', 'bench-password', 'viewer');
"""

PAGING_SQL = """
CREATE FUNCTION pg_temp.median_ms(q text, n integer) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    EXECUTE q;
    FOR i IN 1 .. n LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || extract(epoch FROM clock_timestamp() - t0)::float8 * 1000;
    END LOOP;
    RETURN round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x)::numeric, 2);
END $$;
-- the "next" cursor of the page ending at filtered row n (sort id), in the cursor's own form
CREATE FUNCTION pg_temp.cursor_at(n bigint) RETURNS text LANGUAGE sql AS $$
    SELECT translate(encode(convert_to(json_build_object('m', 'ingestion.hubspot_event', 'd', 'f', 's', 'id',
                     'desc', false, 'g', 0, 'k', json_build_array(id::text))::text, 'UTF8'), 'base64'), E'+/=\\n', '-_')
      FROM ingestion.hubspot_event WHERE region = 'r3' ORDER BY id OFFSET n - 1 LIMIT 1
$$;
"""


def sh(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def login():
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT)
    conn.request("POST", "/api/rpc/login", json.dumps({"username": "bench", "password": "bench-password"}),
                 {"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())["token"]


def anonymous_kb(pid):
    """Private anonymous memory of a process in kB (not the shared buffers it maps)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory(threading.Thread):
    """Samples the private memory of the backends serving HTTP requests until stopped."""

    def __init__(self, c):
        super().__init__(daemon=True)
        self.c = c
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        conn = self.c.connect()
        cur = conn.cursor()
        while not self.done.is_set():
            cur.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE '%http_serve%' AND pid <> pg_backend_pid()")
            for (pid,) in cur.fetchall():
                self.peak = max(self.peak, anonymous_kb(pid))
            time.sleep(0.05)
        conn.close()

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def xlsx_export(c, token, n):
    body = {"crm": "hubspot", "model": "wide", "sort": "id",
            "filter": {"column": "id", "op": "lte", "value": n}}
    mem = PeakMemory(c)
    mem.start()
    t = time.time()
    out = sh(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", "-H", f"Authorization: Bearer {token}",
              "-H", f"Accept: {XLSX}", "-H", "Content-Type: application/json", "-d", json.dumps(body),
              f"http://127.0.0.1:{HTTP_PORT}/api/rpc/export_rows"])
    took = time.time() - t
    return n / took, int(out), mem.stop()


def copy_export(c, n):
    t = time.time()
    proc = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(BINDIR, "psql"), "-X", "-q",
                           "-h", c.sockdir, "-p", str(c.port), "-d", "postgres", "-c",
                           f"COPY (SELECT * FROM ingestion.hubspot_wide WHERE id <= {n} ORDER BY id) TO STDOUT"],
                          check=True, stdout=subprocess.PIPE)
    return n / (time.time() - t), len(proc.stdout)


def one(c, q):
    return c.sql(q)[0][0]


def paging(c):
    conn = c.connect()
    cur = conn.cursor()
    cur.execute(PAGING_SQL)
    matching = one(c, "SELECT count(*) FROM ingestion.hubspot_event WHERE region = 'r3'")
    deep = matching - 1000
    f = json.dumps({"column": "region", "op": "eq", "value": "r3"})
    cur.execute("SELECT pg_temp.cursor_at(%s)", (deep,))
    cursor = cur.fetchone()[0]
    q_first = f"SELECT crm_api.model_rows('hubspot', 'event', NULL, 25, NULL, 'id', false, '{f}')"
    q_deep = f"SELECT crm_api.model_rows('hubspot', 'event', '{cursor}', 25, NULL, 'id', false, '{f}')"
    q_offset = ("SELECT json_agg(row_to_json(t)) FROM (SELECT * FROM ingestion.hubspot_event WHERE region = 'r3' "
                f"ORDER BY id OFFSET {deep} LIMIT 25) t")
    out = {}
    for name, q in (("first", q_first), ("deep", q_deep), ("offset", q_offset)):
        cur.execute("SELECT pg_temp.median_ms(%s, %s)", (q, RUNS))
        out[name] = float(cur.fetchone()[0])
    cur.execute(q_deep)
    page = cur.fetchone()[0]
    cur.execute(q_offset)
    base = cur.fetchone()[0]
    out["same"] = [r["id"] for r in page["rows"]] == [r["id"] for r in base]
    out["scan"] = page.get("scan")
    out["matching"] = matching
    conn.close()
    return out


def checks(c):
    conn = c.connect()
    cur = conn.cursor()
    cur.execute("SELECT crm_api.add_check('hubspot', 'event', 'region_present', 'not_null', 'region'); "
                "SELECT crm_api.add_check('hubspot', 'event', 'id_unique', 'unique', 'id'); "
                "SELECT crm_api.add_check('hubspot', 'event', 'known_status', 'accepted_values', 'status', "
                "'{\"values\": [\"new\", \"won\", \"lost\"]}')")
    times, counts, passed = [], [], None
    for _ in range(3):
        t = time.time()
        cur.execute("SELECT cardinality(failures) = 0 FROM crm_dashboard.pre_sync_checks('hubspot', 'event')")
        passed = cur.fetchone()[0]
        times.append(time.time() - t)
        t = time.time()
        cur.execute("SELECT count(*) FROM ingestion.hubspot_event")
        cur.fetchone()
        counts.append(time.time() - t)
    conn.close()
    return statistics.median(times) * 1000, statistics.median(counts) * 1000, passed


def main():
    c = Cluster("export-bench", PG_PORT, {
        "shared_preload_libraries": "'crm_dashboard'",
        "crm_dashboard.database_name": "'postgres'",
        "crm_dashboard.http_port": str(HTTP_PORT),
        "crm_dashboard.http_workers": "1",
        "crm_dashboard.jwt_secret": "'bench-secret-0123456789abcdef-0123456789'",
        "crm_dashboard.http_request_timeout": "900",
        "max_connections": "40",
        "shared_buffers": "256MB",
        "work_mem": "16MB",
    }).init().start()
    try:
        print(f"building {ROWS:,} x 12 and {MODEL_ROWS:,}-row models...", flush=True)
        conn = c.connect()
        conn.cursor().execute(SETUP.replace("%(rows)s", str(ROWS)).replace("%%", "%")
                              .replace("%(model_rows)s", str(MODEL_ROWS)))
        conn.close()
        time.sleep(1)
        token = login()
        small = min(100_000, ROWS)
        xlsx_export(c, token, small)            # warm the caches
        x_small, b_small, m_small = xlsx_export(c, token, small)
        x_big, b_big, m_big = xlsx_export(c, token, ROWS)
        copy_export(c, ROWS)
        cp_big, cb_big = copy_export(c, ROWS)
        p = paging(c)
        chk, cnt, passed = checks(c)
        print(f"\ncrm_dashboard data-tools benchmark ({ROWS:,} x 12 export, {MODEL_ROWS:,}-row model, medians of {RUNS})")
        print(f"{'metric':48} {'crm_dashboard':>16} {'baseline':>22} {'ratio':>7}")
        print(f"{'xlsx export rows/s (%s rows)' % format(ROWS, ','):48} {x_big:>16,.0f} {f'{cp_big:,.0f} (COPY)':>22} {x_big / cp_big:>7.2f}")
        print(f"{'  bytes':48} {b_big:>16,} {f'{cb_big:,} (COPY)':>22}")
        print(f"{'xlsx peak backend memory kB, %s vs %s rows' % (format(small, ','), format(ROWS, ',')):48} "
              f"{m_big:>16,} {f'{m_small:,} ({small:,} rows)':>22} {m_big / max(m_small, 1):>7.2f}")
        print(f"{'xlsx export rows/s (%s rows)' % format(small, ','):48} {x_small:>16,.0f}")
        first = f"{p['first']:.2f} (first page)"
        print(f"{'filtered keyset page ms, deep vs first':48} {p['deep']:>16.2f} {first:>22} "
              f"{p['deep'] / max(p['first'], 0.01):>7.2f}")
        print(f"{'  same filter by OFFSET ms':48} {p['offset']:>16.2f}   (deep page rows equal OFFSET's: {p['same']}, "
              f"{p['matching']:,} matching rows, scan warning: {p['scan'] is not None})")
        print(f"{'pre-sync checks ms (not null, unique, accepted)':48} {chk:>16.1f} {f'{cnt:.1f} (count(*))':>22} "
              f"{chk / max(cnt, 0.01):>7.2f}")
        print(f"{'  all passed':48} {str(passed):>16}")
    finally:
        c.stop("fast", check=False)


if __name__ == "__main__":
    main()
