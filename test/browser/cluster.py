"""Start or stop the browser tests' cluster: preloaded crm_dashboard with its
HTTP server, the demo warehouse, and an admin and a viewer with random passwords.

  cluster.py start   prints KEY=VALUE lines (URL, credentials, libpq settings)
  cluster.py stop
"""
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

PORT = suite_port(24451)
HTTP_PORT = suite_port(24490)
PKGLIBDIR = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True,
                           text=True, check=True).stdout.strip()


def postgres_can_read(path):
    """Whether the server's operating-system user can read path."""
    argv = ["test", "-r", path]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    return subprocess.run(argv).returncode == 0


def cluster():
    """The cluster object; pg_cron is preloaded too when it is installed."""
    libs = ["crm_dashboard"]
    settings = {}
    if os.path.exists(os.path.join(PKGLIBDIR, "pg_cron.so")):
        libs.append("pg_cron")
        settings["cron.database_name"] = "'postgres'"
    settings.update({
        "shared_preload_libraries": "'%s'" % ",".join(libs),
        "crm_dashboard.http_port": str(HTTP_PORT),
        "crm_dashboard.jwt_secret": "'%s'" % secrets.token_hex(24),
    })
    # Serve this tree's ui/ so that the tests check the files under test,
    # whatever another checkout installed into the shared share directory;
    # fall back to the installed copy when the server cannot read the tree.
    if postgres_can_read(os.path.join(ROOT, "ui", "index.html")):
        settings["crm_dashboard.ui_directory"] = "'%s'" % os.path.join(ROOT, "ui")
    return Cluster("browser", PORT, settings)


def wait_http(url, timeout=30):
    """Wait until the HTTP server answers the UI's start page."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.time() > deadline:
            raise SystemExit("the HTTP server did not answer on %s" % url)
        time.sleep(0.2)


def start():
    """Create and start the cluster, load the demo, add the users; print the settings."""
    c = cluster().init().start()
    env = dict(os.environ, PGHOST=c.sockdir, PGPORT=str(PORT), PGUSER="postgres")
    load = subprocess.run([os.path.join(ROOT, "demo", "load.sh"), "postgres"], env=env,
                          capture_output=True, text=True)
    if load.returncode != 0:
        raise SystemExit("demo/load.sh failed:\n" + load.stdout + load.stderr)
    if c.sql("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_cron'")[0][0] and \
            "pg_cron" in c.settings["shared_preload_libraries"]:
        c.sql("CREATE EXTENSION IF NOT EXISTS pg_cron")
    # Pace HubSpot's simulated syncs faster so that a full sync takes seconds, not a minute.
    c.sql("""UPDATE crm_dashboard.sync_command SET environment = environment || '{"CRM_SIM_RATE": "500"}'
             WHERE crm = 'hubspot'""")
    creds = {}
    for user, role in (("admin", "crm_dashboard_admin"), ("viewer", "crm_dashboard_viewer")):
        password = secrets.token_hex(10)
        c.sql("SELECT crm_api.create_user(%s, %s, %s)", (user, password, role))
        creds[user] = password
    url = "http://127.0.0.1:%d" % HTTP_PORT
    wait_http(url)
    print("CRM_URL=%s" % url)
    print("CRM_ADMIN_USER=admin")
    print("CRM_ADMIN_PASSWORD=%s" % creds["admin"])
    print("CRM_VIEWER_USER=viewer")
    print("CRM_VIEWER_PASSWORD=%s" % creds["viewer"])
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
