"""A primary with the extension and a demo-like model, and a hot standby streaming from it."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import BINDIR, Cluster, _as_postgres, suite_port  # noqa: E402

PRIMARY_PORT = suite_port(24461)
STANDBY_PORT = suite_port(24462)

SETUP = """
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (id text PRIMARY KEY, email text, lastname text);
INSERT INTO ingestion.hubspot_contact
    SELECT g::text, 'user' || g || '@example.com', (ARRAY['Smith', 'Jones', NULL])[1 + g % 3]
      FROM generate_series(1, 120) g;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_processed)
    VALUES ('hubspot', 'contact', 'success', now() - interval '1 hour', now() - interval '59 minutes', 120);
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', '{/bin/true}');
ANALYZE;
"""


@pytest.fixture(scope="session")
def standby():
    # Preloaded, so the standby has the workers' shared memory too (its launcher waits for promotion).
    settings = {"wal_level": "replica", "shared_preload_libraries": "'crm_dashboard'"}
    primary = Cluster("standby-primary", PRIMARY_PORT, settings).init().start()
    primary.sql(SETUP)
    replica = Cluster("standby-replica", STANDBY_PORT).prepare_dir()
    # A base backup with -R writes standby.signal and the connection to the primary.
    subprocess.run(_as_postgres([os.path.join(BINDIR, "pg_basebackup"), "-h", primary.sockdir,
                                 "-p", str(PRIMARY_PORT), "-U", "postgres", "-D", replica.datadir, "-R", "-c", "fast"]),
                   check=True, capture_output=True)
    with open(os.path.join(replica.datadir, "postgresql.auto.conf"), "a") as f:
        f.write(f"port = {STANDBY_PORT}\nunix_socket_directories = '{replica.sockdir}'\n")
    replica.start()
    yield primary, replica
    replica.stop("immediate", check=False)
    primary.stop("immediate", check=False)
