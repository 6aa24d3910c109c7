"""Attacks on arguments, identities, names, schedules and logins.

Each test reproduces one finding of the hardening review: NULL arguments
that crashed the server, a forged audit identity, table names that became
command options, cron expressions pg_cron misreads, login with NULLs.  Every
one failed on 1.0.0; see the README's security model for what is defended.
"""
import json
import os

import psycopg2
import pytest

from conftest import process_ids, server_crashed

HERE = os.path.dirname(os.path.abspath(__file__))


def sql_error(cluster, query, params=None, user="postgres"):
    """Run a statement that must fail; return (sqlstate, message)."""
    conn = cluster.connect(user=user)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.Error) as err:
                cur.execute(query, params)
        return err.value.pgcode, err.value.pgerror
    finally:
        conn.close()


@pytest.fixture
def echo_command(launcher, tmp_path):
    """A registered command for hubspot that prints its argv as JSON."""
    script = tmp_path / "echo_argv.py"
    script.write_text("#!/usr/bin/python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    script.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    launcher.register("hubspot", [str(script), "{model}"])
    return launcher


# -- Finding 1: NULL arguments crashed the server ---------------------------

@pytest.mark.parametrize("query", [
    "SELECT crm_api.command_preview(NULL, NULL, NULL)",
    "SELECT crm_api.command_preview('hubspot', NULL)",
    "SELECT crm_api.start_sync('hubspot', NULL, '{}')",
    "SELECT crm_api.start_sync(NULL, 'contact')",
    "SELECT crm_api.schedule_sync(NULL, '', '', '{}')",
    "SELECT crm_dashboard.start_sync('hubspot', NULL, NULL, NULL)",
])
def test_null_arguments_are_errors_not_crashes(cluster, echo_command, query):
    before = process_ids(cluster)
    code, message = sql_error(cluster, query)
    assert code == "22004" and "must not be null" in message
    assert process_ids(cluster) == before and server_crashed(cluster) == []


def test_null_argument_over_http_is_400_not_a_crash(cluster, api, echo_command):
    before = process_ids(cluster)
    r = api.post("/api/rpc/command_preview", {"crm": None, "model": "contact"}, user="vera")
    assert r.status == 400 and r.json()["code"] == "22004", r
    assert r.json()["message"] == "crm must not be null"
    assert process_ids(cluster) == before and server_crashed(cluster) == []


# -- Finding 5: the audit identity could be forged --------------------------

def test_sql_caller_is_recorded_as_its_session_user(cluster, echo_command):
    conn = cluster.connect(user="sec_operator")
    with conn.cursor() as cur:
        cur.execute("SET request.jwt.claims = %s", (json.dumps({"role": "crm_dashboard_admin", "username": "ada"}),))
        cur.execute("SELECT crm_api.start_sync('hubspot', 'contact')")
        run_id = cur.fetchone()[0]
    conn.close()
    by, via = cluster.sql("SELECT requested_by, requested_via FROM crm_dashboard.sync_history WHERE id = %s",
                          (run_id,))[0]
    assert (by, via) == ("sec_operator", "sql")
    echo_command.wait(run_id)


def test_sql_users_cannot_set_the_dashboard_user(cluster):
    code, message = sql_error(cluster, "SET crm_dashboard.request_user = 'ada'", user="sec_admin")
    assert code == "42501"


def test_http_request_is_recorded_as_the_dashboard_user(cluster, api, echo_command):
    r = api.post("/api/rpc/start_sync", {"crm": "hubspot", "model": "deal"}, user="otto")
    assert r.status == 200, r
    by, via = cluster.sql("SELECT requested_by, requested_via FROM crm_dashboard.sync_history WHERE id = %s",
                          (r.json(),))[0]
    assert (by, via) == ("otto", "ui")
    echo_command.wait(r.json())


# -- Finding 6: table names went into argv as options -----------------------

@pytest.fixture
def evil_table(cluster):
    cluster.sql('CREATE TABLE ingestion."hubspot_--settings=evil" (id integer PRIMARY KEY)')
    yield
    cluster.sql('DROP TABLE ingestion."hubspot_--settings=evil"')


def test_unsafe_model_name_is_shown_but_cannot_be_synced(cluster, api, echo_command, evil_table):
    rows = cluster.sql("SELECT name_problem FROM crm_api.crm_models WHERE crm = 'hubspot' "
                       "AND model = '--settings=evil'", user="sec_viewer")
    assert rows and "starts with" in rows[0][0]
    code, message = sql_error(cluster, "SELECT crm_api.start_sync('hubspot', '--settings=evil')")
    assert code == "42602" and "not safe in a command line" in message
    code, _ = sql_error(cluster, "SELECT crm_api.command_preview('hubspot', '--settings=evil')")
    assert code == "42602"
    r = api.post("/api/rpc/start_sync", {"crm": "hubspot", "model": "--settings=evil"}, user="otto")
    assert r.status == 400 and r.json()["code"] == "42602" and r.json()["hint"], r
    assert cluster.sql("SELECT count(*) FROM crm_dashboard.sync_history "
                       "WHERE sync_type = '--settings=evil'")[0][0] == 0


def test_sync_all_skips_the_unsafe_model(cluster, echo_command, evil_table):
    parent = echo_command.start("hubspot", "all")
    echo_command.wait(parent)
    models = [r[0] for r in cluster.sql("SELECT sync_type FROM crm_dashboard.sync_history "
                                        "WHERE parent_id = %s ORDER BY sync_type", (parent,))]
    assert models == ["contact", "deal"]
    for run_id, in cluster.sql("SELECT id FROM crm_dashboard.sync_history WHERE parent_id = %s", (parent,)):
        assert "--settings=evil" not in echo_command.log(run_id)


# -- Finding 7: malformed cron expressions were accepted --------------------

@pytest.mark.parametrize("cron", ["* * * * * * * *", "* * * *", "61 * * * *", "30-10 * * * *",
                                  "1/20 * * * *", "@sometimes"])
def test_malformed_cron_is_refused_before_pg_cron(cluster, echo_command, cron):
    code, message = sql_error(cluster, "SELECT crm_api.schedule_sync('hubspot', 'contact', %s)", (cron,))
    assert code == "22023" and "invalid schedule" in message
    assert cluster.sql("SELECT count(*) FROM cron.job WHERE command LIKE '%%crm_dashboard%%'")[0][0] == 0


def test_malformed_cron_over_http_names_the_field(cluster, api, echo_command):
    r = api.post("/api/rpc/schedule_sync", {"crm": "hubspot", "model": "contact", "cron": "61 * * * *"},
                 user="otto")
    assert r.status == 400 and r.json()["code"] == "22023", r
    assert r.json()["details"] == "cron" and "minute field" in r.json()["message"]


def test_valid_cron_is_scheduled(cluster, echo_command):
    job = cluster.sql("SELECT crm_api.schedule_sync('hubspot', 'contact', '0 3 * * mon-fri')")[0][0]
    assert cluster.sql("SELECT schedule FROM cron.job WHERE jobid = %s", (job,))[0][0] == "0 3 * * mon-fri"
    cluster.sql("SELECT crm_api.unschedule_sync(%s)", (job,))


# -- Finding 12: login with NULL arguments answered 200 null ----------------

@pytest.mark.parametrize("body", [{"username": None, "password": None}, {"username": "vera", "password": None},
                                  {"username": None, "password": "vera-password"}])
def test_login_with_nulls_is_400(api, body):
    r = api.post("/api/rpc/login", body)
    assert r.status == 400 and r.json()["code"] == "22004", r
