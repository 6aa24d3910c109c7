"""Upgrading from the last release gives what a fresh install gives.

For each released version (its install script as released is kept beside
this file, crm_dashboard--<version>.sql), database "upgraded_<version>" gets
that version, is filled with history, users, commands and CRM tables, and is
updated with ALTER EXTENSION ... UPDATE through every upgrade script since.
Database "fresh" gets the current version directly, and the same data
afterwards.  Each upgraded database must then have the same schema as the
fresh one (every member object, its grants and comments, compared through
pg_dump) and answer the same, and must still hold all of its data.
"""
import difflib
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import BINDIR, Cluster, suite_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASES = ["1.0.0", "1.0.1"]
SHAREDIR = subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True,
                          check=True).stdout.strip()
EXTENSION_DIR = os.path.join(SHAREDIR, "extension")

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard'",
    "crm_dashboard.database_name": "'fresh'",
    "crm_dashboard.jwt_secret": "'upgrade-test-secret-0123456789abcdef'",
}

# Data every release understands: CRM tables, runs of every status, users,
# commands.  Written before the update in each "upgraded_*", after creation in "fresh".
DATA_SQL = """
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (id bigint PRIMARY KEY, email text, updated_at timestamptz);
CREATE TABLE ingestion.hubspot_deal (id bigint PRIMARY KEY, amount numeric);
CREATE TABLE ingestion.genius_lead (lead_id integer PRIMARY KEY, name text);
INSERT INTO ingestion.hubspot_contact SELECT g, 'c' || g || '@example.com', '2025-01-01'::timestamptz + g * interval '1 hour'
    FROM generate_series(1, 500) g;
INSERT INTO ingestion.hubspot_deal SELECT g, g * 1.5 FROM generate_series(1, 50) g;
INSERT INTO ingestion.genius_lead SELECT g, 'lead ' || g FROM generate_series(1, 20) g;
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_deal, ingestion.genius_lead;
INSERT INTO crm_dashboard.sync_history (id, crm_source, sync_type, start_time, end_time, status,
        records_processed, records_created, records_updated, records_failed, error_message,
        configuration, performance_metrics, requested_by, requested_via, queued_at)
SELECT g, CASE WHEN g % 3 = 0 THEN 'genius' ELSE 'hubspot' END,
       CASE WHEN g % 3 = 0 THEN 'lead' WHEN g % 3 = 1 THEN 'contact' ELSE 'deal' END,
       '2025-01-01'::timestamptz + g * interval '1 hour',
       '2025-01-01'::timestamptz + g * interval '1 hour' + g * interval '1 second',
       (ARRAY['success', 'failed', 'partial', 'cancelled'])[1 + g % 4],
       g * 10, g * 3, g * 7, g % 4, CASE WHEN g % 4 <> 0 THEN 'HTTP 429 Too Many Requests, retry after ' || g || ' s' END,
       jsonb_build_object('options', jsonb_build_object('full', g % 2 = 0), 'argv', jsonb_build_array('/bin/true')),
       jsonb_build_object('duration_seconds', g), 'alice', 'sql',
       '2025-01-01'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 300) g;
SELECT setval('crm_dashboard.sync_history_id_seq', 300);
INSERT INTO crm_dashboard.sync_command (crm, argv, environment, timeout)
    VALUES ('hubspot', '{/usr/bin/python3,manage.py,"sync_{crm}_{model}s"}', '{"DJANGO_SETTINGS_MODULE": "ingest.settings"}', '2 hours');
INSERT INTO crm_dashboard.sync_command (crm, model, argv, working_directory)
    VALUES ('hubspot', 'deal', '{/opt/sync/deals}', '/opt/sync');
INSERT INTO crm_dashboard.crm_source (name, display_name, table_prefix, sort_order)
    VALUES ('pipedrive', 'Pipedrive', 'pipedrive_', 11);
SELECT crm_api.create_user('ada', 'ada-password-1', 'admin');
SELECT crm_api.create_user('vera', 'vera-password-1', 'viewer');
"""

# The log of run id: short ones, long ones of many store chunks with
# non-ASCII text, one whose beginning the launcher dropped, empty ones.
LOG_OF_RUN = """
CASE WHEN id % 50 = 7 THEN (SELECT string_agg(format('row %s of run %s: café ✓ déjà vu, error %s', i, id, i % 7),
                                              E'\\n') || E'\\n'
                              FROM generate_series(1, 3000) i)
     WHEN id % 50 = 8 THEN E'[... 1234 bytes of earlier output dropped ...]\\nthe tail\\nno newline at the end'
     WHEN id % 50 = 9 THEN ''
     ELSE 'line one of run ' || id || E'\\nline two\\n' END"""

# Before the update, logs are a column of the history row (1.0.x) ...
OLD_LOGS_SQL = f"UPDATE crm_dashboard.sync_history SET log = {LOG_OF_RUN};"
# ... in a fresh install, chunks of the log store.
FRESH_LOGS_SQL = f"""
INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
SELECT id, s.seq, s.first_line, s.first_byte, s.body, end_time
  FROM crm_dashboard.sync_history CROSS JOIN LATERAL crm_dashboard.log_split({LOG_OF_RUN}) s;"""

# Reads whose answers must not depend on how the schema came to be.
COMPARED_READS = [
    "SELECT crm, model_count, estimated_records, last_sync_at, last_status, health FROM crm_api.crm_sources",
    "SELECT crm, model, estimated_rows, last_run_id, last_status, records_processed, health FROM crm_api.crm_models",
    "SELECT * FROM crm_api.model_columns",
    "SELECT id, crm, model, status, records_processed, error_message FROM crm_api.sync_runs ORDER BY id",
    "SELECT * FROM crm_api.sync_errors",
    "SELECT crm_api.model_rows('hubspot', 'contact', per_page => 5, sort => 'updated_at', descending => true)::text",
    "SELECT crm_api.command_preview('hubspot', 'contact', '{\"full\": true}')",
    "SELECT crm_api.sync_log(42)",
    "SELECT crm_api.sync_log(57)",
    "SELECT crm_api.sync_log(58)",
    "SELECT * FROM crm_api.sync_log_lines(107, 2990, 20)",
    "SELECT run_id, line_number, snippet FROM crm_api.search_logs('error 5', max_rows => 50)",
    # failures before the update get their fingerprints, the rollups count the history there was
    "SELECT id, error_fingerprint FROM crm_dashboard.sync_history ORDER BY id",
    "SELECT fingerprint, runs, failed_runs, partial_runs, models, crms, first_seen, last_seen FROM crm_api.failures",
    "SELECT * FROM crm_dashboard.run_rollup ORDER BY crm, model, day",
    "SELECT * FROM crm_dashboard.failure_rollup ORDER BY fingerprint, crm, model, day",
    "SELECT username, role FROM crm_api.users ORDER BY username",
]


@pytest.fixture(scope="module")
def cluster():
    # The released scripts are installed for the test only (and removed
    # again): the package ships the current script and the upgrade scripts.
    # A file of that name already there (left by an older build of a
    # development tree) may not be the release: set it aside meanwhile.
    installed_here = []
    for version in RELEASES:
        path = os.path.join(EXTENSION_DIR, f"crm_dashboard--{version}.sql")
        if os.path.exists(path):
            os.replace(path, path + ".before-upgrade-test")
        shutil.copy(os.path.join(HERE, f"crm_dashboard--{version}.sql"), path)
        installed_here.append(path)
    c = Cluster("upgrade", suite_port(24471), SETTINGS).init().start()
    try:
        for version in RELEASES:
            db = upgraded(version)
            c.sql(f"CREATE DATABASE {db}")
            c.sql(f"CREATE EXTENSION crm_dashboard VERSION '{version}'", dbname=db)
            run_sql(c, db, DATA_SQL)
            run_sql(c, db, OLD_LOGS_SQL)
            c.sql("ALTER EXTENSION crm_dashboard UPDATE", dbname=db)
        c.sql("CREATE DATABASE fresh")
        c.sql("CREATE EXTENSION crm_dashboard", dbname="fresh")
        run_sql(c, "fresh", DATA_SQL)
        run_sql(c, "fresh", FRESH_LOGS_SQL)
        yield c
    finally:
        c.stop("fast", check=False)
        for path in installed_here:
            os.remove(path)
            if os.path.exists(path + ".before-upgrade-test"):
                os.replace(path + ".before-upgrade-test", path)


def upgraded(version):
    """The database that started at version."""
    return "upgraded_" + version.replace(".", "_")


def run_sql(cluster, dbname, sql):
    conn = cluster.connect(dbname)
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def default_version():
    with open(os.path.join(HERE, "..", "..", "crm_dashboard.control")) as f:
        return re.search(r"default_version\s*=\s*'([^']+)'", f.read()).group(1)


def member_dump(cluster, dbname):
    """Every object of the extension as pg_dump would recreate it, OIDs removed.

    A plain dump shows an extension as one CREATE EXTENSION line; a
    binary-upgrade dump spells out each member object, its grants and
    comments, which is what an upgrade must get right.
    """
    argv = [os.path.join(BINDIR, "pg_dump"), "--schema-only", "--binary-upgrade", "--no-owner",
            "-h", cluster.sockdir, "-p", str(cluster.port), "-U", "postgres", dbname]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    keep = []
    for line in out.splitlines():
        if "binary_upgrade_set_next" in line or line.startswith(("-- Dumped", "\\restrict", "\\unrestrict")):
            continue
        # transaction ids and OIDs differ between any two databases
        line = re.sub(r"relfrozenxid = '\d+', relminmxid = '\d+'", "relfrozenxid = ?", line)
        line = re.sub(r"^WHERE oid = '\d+';", "WHERE oid = ?;", line)
        line = re.sub(r"'\{(\d+(,\d+)*)\}'", lambda m: "'{%d oids}'" % len(m.group(1).split(",")), line)
        # a column added with a default keeps it as a "missing value": same table either way
        if re.match(r"SELECT pg_catalog\.binary_upgrade_(set_missing_value|set_record_init_privs)", line) \
                or line == "-- set missing value.":
            continue
        # a dropped column (the history row's log, moved to the log store) is
        # no column to anyone but pg_upgrade
        if re.match(r'\s*"\.+pg\.dropped\.\d+\.+" INTEGER /\* dummy \*/,?$', line):
            continue
        keep.append(line)
    text = re.sub(r"\n-- For binary upgrade, recreate dropped column\.\n.*?DROP COLUMN \"\.+pg\.dropped\.\d+\.+\";\n",
                  "\n", "\n".join(keep), flags=re.S)
    text = re.sub(r"\n{3,}", "\n\n", text)
    # the CRM tables and data are the test's own, not the extension's
    return re.sub(r"\n-- Name: [^\n]*Schema: ingestion;.*?(?=\n-- Name: |\Z)", "", text, flags=re.S)


@pytest.mark.parametrize("release", RELEASES)
def test_update_reaches_the_current_version(cluster, release):
    version = cluster.sql("SELECT extversion FROM pg_extension WHERE extname = 'crm_dashboard'",
                          dbname=upgraded(release))[0][0]
    assert version == default_version()


@pytest.mark.parametrize("release", RELEASES)
def test_upgraded_schema_equals_a_fresh_install(cluster, release):
    dump = member_dump(cluster, upgraded(release))
    fresh = member_dump(cluster, "fresh")
    diff = "\n".join(difflib.unified_diff(fresh.splitlines(), dump.splitlines(),
                                          "fresh", f"from {release}", lineterm="", n=2))
    assert diff == "", f"the schema updated from {release} differs from a fresh install:\n" + diff[:6000]


@pytest.mark.parametrize("release", RELEASES)
def test_upgraded_data_is_all_there(cluster, release):
    counts = "SELECT (SELECT count(*) FROM crm_dashboard.sync_history), " \
             "(SELECT sum(records_processed) FROM crm_dashboard.sync_history), " \
             "(SELECT count(*) FROM crm_dashboard.sync_command), " \
             "(SELECT count(*) FROM crm_dashboard.dashboard_user), " \
             "(SELECT count(*) FROM crm_dashboard.crm_source)"
    assert cluster.sql(counts, dbname=upgraded(release)) == cluster.sql(counts, dbname="fresh")
    assert cluster.sql(counts, dbname=upgraded(release))[0][:4] == (300, sum(g * 10 for g in range(1, 301)), 2, 2)


@pytest.mark.parametrize("release", RELEASES)
def test_every_log_moved_into_the_store(cluster, release):
    """The update moves every kept log out of the history row, byte for byte."""
    db = upgraded(release)
    moved = cluster.sql("SELECT id, crm_api.sync_log(id) FROM crm_dashboard.sync_history ORDER BY id", dbname=db)
    expected = cluster.sql(f"SELECT id, {LOG_OF_RUN} FROM generate_series(1, 300) id ORDER BY id", dbname=db)
    assert len(moved) == 300 and moved == expected
    # long logs are several chunks, numbered from 1, their lines numbered as in the whole log
    chunks = cluster.sql("SELECT count(*), count(DISTINCT run_id), max(seq) FROM crm_dashboard.sync_log_chunk",
                         dbname=db)[0]
    assert chunks[1] == 300 - 6 and chunks[2] >= 4
    line = cluster.sql("SELECT line_number, line FROM crm_api.sync_log_lines(257, 2999, 1)", dbname=db)
    assert line == [(2999, "row 2999 of run 257: café ✓ déjà vu, error 3")]
    assert cluster.sql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'crm_dashboard.sync_history'::regclass "
                       "AND attname = 'log' AND NOT attisdropped", dbname=db) == [(0,)]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("query", COMPARED_READS)
def test_reads_answer_the_same(cluster, query, release):
    assert cluster.sql(query, dbname=upgraded(release)) == cluster.sql(query, dbname="fresh")


def test_grants_behave_the_same(cluster):
    """A viewer reads, may not start syncs and may not read the registry's secrets, in both."""
    for db in [upgraded(r) for r in RELEASES] + ["fresh"]:
        conn = cluster.connect(db, autocommit=False)
        with conn.cursor() as cur:
            cur.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_viewer') "
                        "THEN CREATE ROLE upgrade_viewer IN ROLE crm_dashboard_viewer; END IF; END $$")
            cur.execute("SET ROLE upgrade_viewer")
            cur.execute("SELECT count(*) FROM crm_api.sync_runs")
            assert cur.fetchone()[0] == 300
            for forbidden in ("SELECT crm_api.start_sync('hubspot', 'contact')",
                              "SELECT environment FROM crm_dashboard.sync_command"):
                cur.execute("SAVEPOINT s")
                with pytest.raises(Exception, match="permission denied"):
                    cur.execute(forbidden)
                cur.execute("ROLLBACK TO SAVEPOINT s")
        conn.rollback()
        conn.close()


@pytest.mark.parametrize("release", RELEASES)
def test_users_can_still_log_in(cluster, release):
    conn = cluster.connect(upgraded(release))
    with conn.cursor() as cur:
        cur.execute("SELECT crm_api.login('ada', 'ada-password-1') ->> 'role'")
        assert cur.fetchone()[0] == "crm_dashboard_admin"
    conn.close()


def test_versions_agree():
    """The control file is the one source of the version; META.json and the CHANGELOG follow it."""
    import json
    root = os.path.join(HERE, "..", "..")
    version = default_version()
    with open(os.path.join(root, "META.json")) as f:
        meta = json.load(f)
    assert meta["version"] == version
    assert all(p["version"] == version for p in meta["provides"].values())
    with open(os.path.join(root, "CHANGELOG.md")) as f:
        first = re.search(r"^## (\S+)", f.read(), re.M).group(1)
    assert first == version
    # an upgrade script leads to the current version from the last release
    assert os.path.exists(os.path.join(root, "updates", f"crm_dashboard--{RELEASES[-1]}--{version}.sql"))
