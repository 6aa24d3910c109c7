"""A throwaway PostgreSQL 15 cluster for process and HTTP tests.

Runs initdb/pg_ctl as the postgres user when started as root (PostgreSQL
refuses to run as root), keeps everything under one directory, and can be
stopped or restarted in any mode so tests can exercise crash recovery.
"""
import os
import shutil
import subprocess
import time

import psycopg2
import psycopg2.extensions

BINDIR = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                        text=True, check=True).stdout.strip()

# Several checkouts may test at once on one machine: CRM_TEST_PORT_OFFSET
# shifts every port the suites use, CRM_TEST_DIR moves their clusters.  The
# ports lie below 32768, outside Linux's range of ephemeral ports, so that a
# client connection of another test can never be holding one.
PORT_OFFSET = int(os.environ.get("CRM_TEST_PORT_OFFSET", "0"))
TEST_DIR = os.environ.get("CRM_TEST_DIR", "/tmp/crm_dashboard_test")


def suite_port(port):
    """A suite's fixed port, shifted by CRM_TEST_PORT_OFFSET."""
    return port + PORT_OFFSET


def _as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


class Cluster:
    def __init__(self, name, port, settings=None, base=TEST_DIR):
        self.name = name
        self.port = port
        self.dir = os.path.join(base, name)
        self.datadir = os.path.join(self.dir, "data")
        self.sockdir = self.dir
        self.logfile = os.path.join(self.dir, "server.log")
        self.settings = dict(settings or {})

    # -- lifecycle -----------------------------------------------------------
    def prepare_dir(self):
        """An empty directory for the cluster, owned by postgres (stops a leftover server)."""
        if os.path.exists(self.dir):
            self.stop("immediate", check=False)
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            shutil.chown(os.path.dirname(self.dir), "postgres")
            shutil.chown(self.dir, "postgres", "postgres")
        return self

    def init(self):
        self.prepare_dir()
        self._run([os.path.join(BINDIR, "initdb"), "-D", self.datadir, "-A", "trust",
                   "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
        conf = {
            "port": str(self.port),
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.sockdir}'",
            "fsync": "off",
            "log_line_prefix": "'%m [%p] %b '",
        }
        conf.update(self.settings)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")
        return self

    def start(self):
        self._run([os.path.join(BINDIR, "pg_ctl"), "-D", self.datadir, "-l",
                   self.logfile, "-w", "-t", "60", "start"])
        return self

    def stop(self, mode="fast", check=True):
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            self._run([os.path.join(BINDIR, "pg_ctl"), "-D", self.datadir,
                       "-m", mode, "-w", "-t", "60", "stop"], check=check)

    def restart(self, mode="fast"):
        self.stop(mode)
        return self.start()

    def postmaster_pid(self):
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            return int(f.readline())

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    # -- SQL -----------------------------------------------------------------
    def dsn(self, dbname="postgres", user="postgres"):
        return f"host={self.sockdir} port={self.port} dbname={dbname} user={user}"

    def connect(self, dbname="postgres", user="postgres", autocommit=True):
        conn = psycopg2.connect(self.dsn(dbname, user))
        conn.autocommit = autocommit
        return conn

    def sql(self, query, params=None, dbname="postgres", user="postgres"):
        """Run one statement; return all rows (or None for statements without rows)."""
        conn = self.connect(dbname, user)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def psql_file(self, path, dbname="postgres"):
        self._run([os.path.join(BINDIR, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                   "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                   "-d", dbname, "-f", path])

    def wait_for(self, query, params=None, timeout=30, dbname="postgres", interval=0.05):
        """Poll until query returns a truthy first column; return it."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            rows = self.sql(query, params, dbname)
            last = rows[0][0] if rows else None
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for: {query} (last: {last!r})")

    def _run(self, argv, check=True):
        return subprocess.run(_as_postgres(argv), check=check, capture_output=True, text=True)
