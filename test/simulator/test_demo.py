"""The demo database: tables of all ten CRMs, sizes, decoys, history, registry."""
import re

import pytest

from conftest import SIMULATOR

CRMS = ["genius", "hubspot", "callrail", "arrivy", "leadconduit",
        "marketsharp", "salespro", "salesrabbit", "gsheet", "five9"]

# What discovery must find: plain or partitioned tables named <crm>_<model>
# in schema ingestion, never partitions, views or other tables.
MODELS_SQL = """
SELECT c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'ingestion'
JOIN crm_dashboard.crm_source s ON c.relname LIKE s.table_prefix || '%%'
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY 1
"""


def test_load_is_fast(demo):
    assert demo.load_seconds < 60, f"demo load took {demo.load_seconds:.1f} s"
    assert re.search(r"demo loaded into postgres in [0-9.]+ s: 33 tables", demo.load_output), demo.load_output


@pytest.mark.parametrize("crm", CRMS)
def test_every_crm_has_tables(demo, crm):
    models = [r[0] for r in demo.c.sql(MODELS_SQL) if r[0].startswith(crm + "_")]
    assert models, f"no tables for {crm}"
    for table in models:
        assert demo.one("SELECT count(*) > 0 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                        (f"ingestion.{table}",)) or table == "gsheet_marketing_spend"
        assert demo.one("SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass "
                        "AND attname IN ('sync_created_at', 'sync_updated_at') "
                        "AND atttypid = 'timestamptz'::regtype", (f"ingestion.{table}",)) == 2


def test_sizes_vary_like_a_warehouse(demo):
    assert demo.count("hubspot_contact") >= 200_000
    assert demo.count("callrail_call") >= 140_000
    assert demo.count("genius_appointment_type") < 50
    assert demo.count("genius_division") < 50
    assert demo.count("hubspot_division") < 50


def test_decoys_exist_and_are_not_models(demo):
    models = {r[0] for r in demo.c.sql(MODELS_SQL)}
    assert len(models) == 33
    kinds = dict(demo.c.sql("SELECT relname, relkind::text FROM pg_class WHERE relnamespace = 'ingestion'::regnamespace"))
    assert kinds["django_migrations"] == "r" and kinds["auth_user"] == "r"
    assert kinds["hubspot_contact_emails"] == "v"
    assert kinds["callrail_call"] == "p"
    partitions = [r[0] for r in demo.c.sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ingestion.callrail_call'::regclass")]
    assert len(partitions) >= 12
    assert all(re.fullmatch(r"callrail_call_(\d{4}_\d{2}|default)", p) for p in partitions)
    assert not (set(partitions) | {"hubspot_contact_emails", "django_migrations", "auth_user"}) & models
    assert demo.count("django_migrations") > 0 and demo.count("auth_user") > 0
    # Calls really are spread over the monthly partitions.
    assert demo.one("SELECT count(DISTINCT tableoid) FROM ingestion.callrail_call") >= 12


def test_table_without_primary_key(demo):
    assert demo.one("SELECT count(*) FROM pg_index WHERE indrelid = 'ingestion.gsheet_marketing_spend'::regclass "
                    "AND indisprimary") == 0
    assert demo.count("gsheet_marketing_spend") > 0


def test_hostile_values_present(demo):
    assert demo.one("SELECT count(*) FROM ingestion.hubspot_contact WHERE firstname = '<script>alert(1)</script>'") == 1
    assert demo.one("SELECT count(*) FROM ingestion.hubspot_contact WHERE firstname LIKE '<img src=x onerror=%%'") == 1
    assert demo.one("SELECT count(*) FROM ingestion.hubspot_contact WHERE lastname = 'O''Brien'") >= 1
    assert demo.one("SELECT count(*) FROM ingestion.hubspot_contact WHERE firstname LIKE '%%😀%%'") == 1
    assert demo.one("SELECT max(length(lastname)) FROM ingestion.hubspot_contact") > 2000
    assert demo.one("SELECT count(*) FROM ingestion.hubspot_contact WHERE email IS NULL") > 0


def test_history_covers_every_status(demo):
    statuses = {r[0]: r[1] for r in demo.c.sql(
        "SELECT status, count(*) FROM crm_dashboard.sync_history GROUP BY 1")}
    assert {"success", "failed", "partial", "cancelled"} <= set(statuses)
    assert "running" not in statuses and "queued" not in statuses


def test_history_is_consistent(demo):
    assert demo.one("SELECT count(*) FROM crm_dashboard.sync_history "
                    "WHERE records_created + records_updated + records_failed > records_processed") == 0
    assert demo.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE start_time < now() - interval '31 days' "
                    "OR start_time > now() OR end_time > now()") == 0
    low, high = demo.c.sql("SELECT min(end_time - start_time), max(end_time - start_time) "
                           "FROM crm_dashboard.sync_history WHERE parent_id IS NULL AND sync_type <> 'all'")[0]
    assert low.total_seconds() < 10 and high.total_seconds() >= 1800
    assert {r[0] for r in demo.c.sql("SELECT DISTINCT requested_via FROM crm_dashboard.sync_history")} == \
        {"sql", "ui", "schedule"}
    assert demo.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE status = 'partial' AND records_failed = 0 "
                    "AND sync_type <> 'all'") == 0


def test_history_error_kinds(demo):
    errors = [r[0] for r in demo.c.sql("SELECT DISTINCT error_message FROM crm_dashboard.sync_history "
                                      "WHERE error_message IS NOT NULL")]
    for pattern in [r"HTTP 429 .*Retry-After", r"HTTP 401 .*invalid API key", r"timeout",
                    r"validation error for .* record \S+"]:
        assert any(re.search(pattern, e) for e in errors), pattern


def test_history_covers_most_models_and_leaves_some_never_synced(demo):
    models = {r[0] for r in demo.c.sql(MODELS_SQL)}
    synced = {r[0] for r in demo.c.sql("SELECT DISTINCT crm_source || '_' || sync_type FROM crm_dashboard.sync_history "
                                       "WHERE sync_type <> 'all'")}
    assert synced <= models
    never = models - synced
    assert 1 <= len(never) <= 0.15 * len(models), never


def test_all_runs_have_children(demo):
    rows = demo.c.sql("""
        SELECT p.id, p.status, p.records_processed, sum(c.records_processed), count(c.id),
               bool_or(c.status = 'failed')
        FROM crm_dashboard.sync_history p
        JOIN crm_dashboard.sync_history c ON c.parent_id = p.id
        WHERE p.sync_type = 'all' GROUP BY p.id""")
    assert len(rows) >= 4
    for _id, status, processed, child_sum, children, any_failed in rows:
        assert children >= 4 and processed == child_sum
        assert (status == "failed") == any_failed


def test_history_json_shapes(demo):
    config, metrics = demo.c.sql("SELECT configuration, performance_metrics FROM crm_dashboard.sync_history "
                                 "WHERE sync_type <> 'all' ORDER BY id LIMIT 1")[0]
    assert set(config) >= {"options", "argv", "requested_by", "via"} and isinstance(config["argv"], list)
    assert set(metrics) >= {"records_per_second", "api_calls", "peak_memory_mb"}


def test_commands_registered_when_registry_exists(demo):
    if not demo.one("SELECT to_regclass('crm_dashboard.sync_command') IS NOT NULL"):
        assert "sync commands not registered" in demo.load_output
        return
    rows = demo.c.sql("SELECT crm, model, argv, environment FROM crm_dashboard.sync_command ORDER BY crm")
    assert sorted(r[0] for r in rows) == sorted(CRMS)
    for crm, model, argv, env in rows:
        assert model is None
        assert argv == [SIMULATOR, "--crm", "{crm}", "--model", "{model}"]
    env = {r[0]: r[3] for r in rows}
    assert env["five9"] == {"CRM_SIM_FAULT": "rate-limit"} and env["leadconduit"] == {"CRM_SIM_FAULT": "partial"}


def test_load_is_idempotent(demo):
    before = demo.c.sql("SELECT count(*), (SELECT count(*) FROM ingestion.hubspot_contact) "
                        "FROM crm_dashboard.sync_history")[0]
    demo.load()
    after = demo.c.sql("SELECT count(*), (SELECT count(*) FROM ingestion.hubspot_contact) "
                       "FROM crm_dashboard.sync_history")[0]
    assert after[1] == 210_000
    # The history is replaced, not appended (its size varies a little with random cadence).
    assert abs(after[0] - before[0]) < 0.2 * before[0]


def test_discovery_agrees_with_the_catalogs(demo):
    """The extension's discovery finds exactly the demo's models (decoys excluded)."""
    if not demo.one("SELECT to_regclass('crm_api.crm_models') IS NOT NULL"):
        pytest.skip("crm_api.crm_models is not part of this build")
    found = {f"{crm}_{model}" for crm, model in demo.c.sql("SELECT crm, model FROM crm_api.crm_models")}
    assert found == {r[0] for r in demo.c.sql(MODELS_SQL)}
