"""sqlsmith against crm_dashboard: random SQL from a fixed seed against a
preloaded cluster (sync launcher, HTTP server and pg_cron running) holding
the extension and the demo warehouse.

sqlsmith (Debian package sqlsmith) reads the catalogs and generates queries
over every table and view it may see and every non-set-returning function
it finds, crm_api's and crm_dashboard's among them, with random arguments
(NULLs included).  It runs as a login role that is a member of
crm_dashboard_admin, not a superuser, so it reaches every crm_api function
but no superuser power (terminating the workers, reading server files).
Each query runs in a transaction
that sqlsmith rolls back, under sqlsmith's own statement timeout (1 s);
PGOPTIONS adds a statement and lock timeout to every connection it opens.

SQLSMITH_QUERIES (default 40000: one to two minutes on the 2-core test
machine) and SQLSMITH_SEED (default 3) override the count and the seed.
Seed 3 is the first seed whose queries call crm_api.command_preview with a
NULL CRM (from an UPDATE of sync_command), which crashed the server while
the C functions read NULL arguments; seeds 1 and 2 never do.  sqlsmith
adapts what it generates to the errors it sees, so a run with the same seed
and count is the same run up to timing (a statement timeout, a concurrent
sync).
"""
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, suite_port  # noqa: E402
from http_client import Http  # noqa: E402
from launcher_helper import Launcher  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOAD = os.path.join(ROOT, "demo", "load.sh")
SIMULATOR = os.environ.get("CRM_SYNC_SIMULATOR") or os.path.join(ROOT, "demo", "crm_sync_simulator")
PG_PORT = suite_port(24481)
HTTP_PORT = suite_port(24485)
DB = "crm"
SMITH_ROLE = "crm_smith"
SECRET = "sqlsmith-test-secret-0123456789abcdef-0123"
PASSWORDS = {"ada": "ada-password"}
HTTP_WORKERS = 2
QUERIES = int(os.environ.get("SQLSMITH_QUERIES", "40000"))
SEED = int(os.environ.get("SQLSMITH_SEED", "3"))
PGOPTIONS = "-c statement_timeout=5s -c lock_timeout=2s -c idle_in_transaction_session_timeout=30s"
# Processes that live as long as the cluster does; a change of pid means one died
# (the checkpointer survives everything but a crash restart).
WATCHED = ("crm_dashboard sync launcher", "crm_dashboard http", "checkpointer")

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard,pg_cron'",
    "crm_dashboard.database_name": f"'{DB}'",
    "cron.database_name": f"'{DB}'",
    "cron.use_background_workers": "on",
    "max_worker_processes": "16",
    "crm_dashboard.http_port": str(HTTP_PORT),
    "crm_dashboard.http_workers": str(HTTP_WORKERS),
    "crm_dashboard.jwt_secret": f"'{SECRET}'",
    "crm_dashboard.stop_grace": "1",
    "max_connections": "40",
    # A crashed process's query is logged in full, to be reported; the
    # thousands of errors sqlsmith provokes are logged without their statements.
    "track_activity_query_size": "'256kB'",
    "log_min_error_statement": "panic",
}

SETUP_SQL = f"""
CREATE EXTENSION pg_cron;
CREATE EXTENSION crm_dashboard;
CREATE ROLE {SMITH_ROLE} LOGIN NOSUPERUSER IN ROLE crm_dashboard_admin;
-- pg_cron's tables are listed to everyone but its schema is not usable:
-- without this most generated queries would stop at "permission denied for
-- schema cron".  Row security still shows the role only its own jobs.
GRANT USAGE ON SCHEMA cron TO {SMITH_ROLE};
SELECT crm_api.create_user('ada', 'ada-password', 'admin');
"""


def as_postgres(argv):
    return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv


class Target:
    """The cluster sqlsmith runs against, and what is alive in it."""

    def __init__(self, cluster):
        self.c = cluster
        self.api = Http(HTTP_PORT, PASSWORDS)
        self.launcher = Launcher(cluster)

    def sql(self, query, params=None):
        return self.c.sql(query, params, dbname=DB)

    def processes(self):
        """pid lists of the watched processes, by backend type."""
        rows = self.sql("SELECT backend_type, pid FROM pg_stat_activity WHERE backend_type = ANY (%s) "
                        "ORDER BY pid", (list(WATCHED),))
        pids = {}
        for backend_type, pid in rows:
            pids.setdefault(backend_type, []).append(pid)
        return pids

    def wait_ready(self, timeout=60):
        """Wait until the launcher, every HTTP worker and the HTTP port are up."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.processes()
                if (len(last.get("crm_dashboard sync launcher", [])) == 1
                        and len(last.get("crm_dashboard http", [])) == HTTP_WORKERS):
                    self.api.get("/api/crm_sources")
                    return last
            except Exception as e:  # not accepting connections yet
                last = e
            time.sleep(0.1)
        raise AssertionError(f"the cluster did not come up within {timeout}s (last: {last!r})")

    def log_size(self):
        return os.path.getsize(self.c.logfile)

    def log_since(self, offset):
        with open(self.c.logfile, errors="replace") as f:
            f.seek(offset)
            return f.read()


@pytest.fixture(scope="session")
def target():
    assert os.access(SIMULATOR, os.X_OK), f"{SIMULATOR} is not built: run make -C demo"
    c = Cluster("sqlsmith", PG_PORT, SETTINGS).init().start()
    try:
        c.sql(f"CREATE DATABASE {DB}")
        c.sql(SETUP_SQL, dbname=DB)
        load = subprocess.run(as_postgres(["env", f"PGHOST={c.sockdir}", f"PGPORT={c.port}",
                                           f"CRM_SYNC_SIMULATOR={SIMULATOR}", LOAD, DB]),
                              capture_output=True, text=True, timeout=300)
        assert load.returncode == 0, load.stdout + load.stderr
        t = Target(c)
        t.wait_ready()
        yield t
    finally:
        c.stop("immediate", check=False)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """sqlsmith's figures, in every run's output (and so in test/logs/sqlsmith.log)."""
    summary = getattr(config, "_sqlsmith_summary", None)
    if summary:
        terminalreporter.write_sep("-", "sqlsmith")
        terminalreporter.write_line(summary)
