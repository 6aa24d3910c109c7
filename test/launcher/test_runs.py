"""Runs from start to finish: outcomes, options, output, limits."""
import json
import os
import signal
import time

import psycopg2
import pytest

from conftest import COMMANDS, FAKE


def test_success_records_progress_environment_and_argv(pg):
    pg.fake("hubspot", "success", env={"EXTRA": "yes"})
    run = pg.wait(pg.start("hubspot", "contact", {"full": True}))
    assert run["status"] == "success"
    assert (run["records_processed"], run["records_created"], run["records_updated"]) == (500, 300, 200)
    assert run["records_total"] == 500 and run["exit_code"] == 0
    assert run["requested_via"] == "sql" and run["requested_by"] == "postgres"
    assert run["configuration"]["argv"] == [FAKE, "success", "hubspot", "contact", "--full"]
    assert run["configuration"]["options"] == {"full": True}
    # variable names only: values may be secrets, and viewers read runs
    assert run["configuration"]["environment_keys"] == ["EXTRA"] and "environment" not in run["configuration"]
    assert run["performance_metrics"]["summary"]["processed"] == 500
    log = pg.log(run["id"])
    env = json.loads(log.split("env: ")[1].splitlines()[0])
    assert env["CRM_DASHBOARD_SYNC_ID"] == str(run["id"])
    assert (env["CRM_SOURCE"], env["SYNC_TYPE"], env["PGDATABASE"], env["PGUSER"]) == \
        ("hubspot", "contact", "postgres", "postgres")
    assert env["PGPORT"] == str(pg.c.port) and env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["EXTRA"] == "yes" and env["HOME"] is None
    # only stdin/stdout/stderr (+ the fd of the listing itself) reach the command
    assert json.loads(log.split("fds: ")[1].splitlines()[0]) == [0, 1, 2, 3]
    assert '"event"' not in log  # progress lines are not log text


def test_partial_keeps_error_events(pg):
    pg.fake("hubspot", "partial")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["status"] == "partial" and run["records_failed"] == 3
    errors = run["performance_metrics"]["errors"]
    assert [e["record"] for e in errors] == ["r1", "r2", "r3"]
    assert run["performance_metrics"]["error_count"] == 3
    assert "missing email" in run["error_message"]


def test_failure_reports_exit_code_and_last_stderr_lines(pg):
    pg.fake("hubspot", "fail")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert run["error_message"].startswith("exited with code 3")
    assert "authentication failed: token expired" in run["error_message"]


def test_malformed_json_is_log_text(pg):
    pg.fake("hubspot", "malformed")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["status"] == "success" and run["records_processed"] == 7
    assert "{not json at all" in pg.log(run["id"])


def test_binary_output_is_kept_as_text(pg):
    pg.fake("hubspot", "binary")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["status"] == "failed" and run["exit_code"] == 1
    assert "oops ??" in run["error_message"]
    log = pg.log(run["id"])
    assert "bin?ary ?? café" in log and "error: bad \u00ff" in log


def test_line_splitting_edge_cases(pg):
    pg.fake("hubspot", "edges")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["records_total"] == 10  # CRLF line parsed
    assert run["records_updated"] == 2  # line split across reads parsed
    assert (run["records_processed"], run["records_created"]) == (3, 3)  # unterminated last line parsed
    assert run["records_failed"] == 0 and run["status"] == "success"  # overlong line not parsed
    log = pg.log(run["id"])
    assert "y" * 100000 + "\n" in log and '"failed": 999' in log and "z" * 200000 in log
    assert "?? cut" in log and '"updated"' not in log


def test_options_become_flags_in_fixed_order(pg):
    pg.fake("hubspot", "success")
    opts = {"debug": True, "batch_size": 10, "max_records": 5, "dry_run": True,
            "since": "2024-02-29", "force": True, "full": True}
    run = pg.wait(pg.start("hubspot", "contact", opts))
    flags = ["--force", "--full", "--since", "2024-02-29", "--dry-run", "--max-records", "5",
             "--batch-size", "10", "--debug"]
    assert run["configuration"]["argv"][4:] == flags
    assert json.loads(pg.log(run["id"]).split("argv: ")[1].splitlines()[0])[3:] == flags
    assert pg.one("SELECT crm_api.command_preview('hubspot', 'contact', %s)", (json.dumps(opts),))[4:] == flags


def test_model_specific_command_wins(pg):
    pg.fake("hubspot", "fail")
    pg.fake("hubspot", "success", model="deal")
    assert pg.wait(pg.start("hubspot", "deal"))["status"] == "success"
    assert pg.wait(pg.start("hubspot", "contact"))["status"] == "failed"


def _group_gone(pgid, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_stop_terminates_the_process_group(pg):
    pg.register("hubspot", [os.path.join(COMMANDS, "hang.sh")])
    run_id = pg.start("hubspot", "contact")
    run = pg.wait(run_id, ("running",))
    pg.c.wait_for("SELECT crm_api.sync_log(%s) LIKE '%%hang: pid%%'", (run_id,))
    t = time.time()
    answer = pg.one("SELECT crm_api.stop_sync(%s)", (run_id,))
    assert answer["stop_requested"] is True
    run = pg.wait(run_id)
    assert run["exit_signal"] != 9  # SIGTERM sufficed: no SIGKILL after the grace
    assert run["status"] == "cancelled" and run["error_message"] == "stopped on request"
    assert _group_gone(run["pid"])  # the sleep child died with the shell
    # stopping a finished run changes nothing
    assert pg.one("SELECT crm_api.stop_sync(%s)", (run_id,))["status"] == "cancelled"


def test_stop_kills_after_grace(pg):
    pg.fake("hubspot", "stubborn")
    run_id = pg.start("hubspot", "contact")
    pg.c.wait_for("SELECT (crm_api.sync_status(%s)->>'records_processed')::int = 1", (run_id,))
    t = time.time()
    pg.sql("SELECT crm_api.stop_sync(%s)", (run_id,))
    run = pg.wait(run_id)
    assert time.time() - t > 1.8  # stop_grace = 2 s was honoured before SIGKILL
    assert run["status"] == "cancelled" and run["exit_signal"] == 9


def test_stop_queued_run_cancels_at_once(pg):
    pg.sql("ALTER SYSTEM SET crm_dashboard.max_running_syncs = 1")
    pg.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    pg.fake("hubspot", "sleep", "5")
    first = pg.start("hubspot", "contact")
    pg.wait(first, ("running",))
    second = pg.start("hubspot", "deal")
    assert pg.run(second)["status"] == "queued"
    assert pg.one("SELECT crm_api.stop_sync(%s)", (second,))["status"] == "cancelled"
    pg.sql("SELECT crm_api.stop_sync(%s)", (first,))
    assert pg.wait(first)["status"] == "cancelled"


def test_timeout(pg):
    pg.fake("hubspot", "sleep", "30")
    run = pg.wait(pg.start("hubspot", "contact", {"timeout": 1}))
    assert run["status"] == "failed" and run["error_message"] == "timed out after 1 s"
    assert 0.9 < run["duration_seconds"] < 15


def test_registry_timeout_applies(pg):
    pg.fake("hubspot", "sleep", "30", timeout="1 second")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["error_message"] == "timed out after 1 s"


def test_concurrency_limit_queues(pg):
    pg.sql("ALTER SYSTEM SET crm_dashboard.max_running_syncs = 2")
    pg.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    pg.fake("hubspot", "sleep", "1.5")
    ids = [pg.start("hubspot", m) for m in ("contact", "deal", "company")]
    time.sleep(0.5)
    statuses = [pg.run(i)["status"] for i in ids]
    assert statuses == ["running", "running", "queued"]
    runs = [pg.wait(i) for i in ids]
    assert all(r["status"] == "success" for r in runs)
    third_start = pg.one("SELECT start_time FROM crm_dashboard.sync_history WHERE id = %s", (ids[2],))
    first_end = pg.one("SELECT min(end_time) FROM crm_dashboard.sync_history WHERE id = ANY(%s)", (ids[:2],))
    assert third_start >= first_end


def test_one_active_run_per_model(pg):
    pg.fake("hubspot", "sleep", "5")
    first = pg.start("hubspot", "contact")
    with pytest.raises(psycopg2.Error) as e:
        pg.start("hubspot", "contact")
    assert e.value.pgcode == "55006"
    assert f"(run {first})" in e.value.pgerror
    pg.sql("SELECT crm_api.stop_sync(%s)", (first,))
    pg.wait(first)
    assert pg.wait(pg.start("hubspot", "contact"), ("running", "success"))


def test_all_runs_models_one_after_another_smallest_first(pg):
    pg.fake("hubspot", "success")
    parent = pg.start("hubspot", "all")
    run = pg.wait(parent)
    assert run["status"] == "success"
    children = pg.sql("SELECT sync_type, status, start_time, end_time FROM crm_dashboard.sync_history "
                      "WHERE parent_id = %s ORDER BY id", (parent,))
    assert [c[0] for c in children] == ["deal", "company", "contact"]
    assert all(c[1] == "success" for c in children)
    for a, b in zip(children, children[1:]):
        assert b[2] >= a[3]  # sequential
    assert run["records_processed"] == 1500
    with pytest.raises(psycopg2.Error):
        pg.start("hubspot", "contact --settings=evil")


def test_all_with_a_failing_model_is_partial(pg):
    pg.sql("SELECT crm_api.set_run_policy('hubspot', max_attempts => 2, backoff_base => '1 second', "
           "backoff_cap => '1 second')")
    pg.fake("hubspot", "success")
    pg.fake("hubspot", "fail", model="company")
    run = pg.wait(pg.start("hubspot", "all"))
    assert run["status"] == "partial" and run["error_message"] == "1 of 3 models failed"
    # the failing model was tried twice; the parent counts its last attempt once
    assert len(run["children"]) == 4
    attempts = pg.sql("SELECT attempt, status FROM crm_dashboard.sync_history WHERE parent_id = %s "
                      "AND sync_type = 'company' ORDER BY id", (run["id"],))
    assert attempts == [(1, "failed"), (2, "failed")]


def test_stop_all_cancels_children(pg):
    pg.fake("hubspot", "sleep", "10")
    parent = pg.start("hubspot", "all")
    pg.c.wait_for("SELECT count(*) = 1 FROM crm_dashboard.sync_history WHERE parent_id = %s AND status = 'running'",
                  (parent,))
    pg.sql("SELECT crm_api.stop_sync(%s)", (parent,))
    assert pg.wait(parent)["status"] == "cancelled"
    statuses = pg.sql("SELECT status FROM crm_dashboard.sync_history WHERE parent_id = %s", (parent,))
    assert {s[0] for s in statuses} == {"cancelled"}


def test_command_killed_by_signal(pg):
    pg.fake("hubspot", "crash")
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["status"] == "failed" and run["exit_signal"] == 9
    assert run["error_message"].startswith("terminated by signal 9 (Killed)")


def test_external_kill_9_of_the_command(pg):
    pg.register("hubspot", [os.path.join(COMMANDS, "hang.sh")])
    run_id = pg.start("hubspot", "contact")
    pid = pg.wait(run_id, ("running",))["pid"]
    os.kill(pid, signal.SIGKILL)
    run = pg.wait(run_id)
    assert run["status"] == "failed" and "signal 9" in run["error_message"]
    assert run["error_class"] == "temporary"
    assert _group_gone(pid)
    # a crash is retried by policy: the next attempt is queued already
    retry = pg.one("SELECT id FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (run_id,))
    assert pg.run(retry)["attempt"] == 2
    # full jitter may have picked a delay near zero, so the retry may be running already:
    # stopping a running attempt ends it asynchronously, and a stopped run is never retried
    pg.sql("SELECT crm_api.stop_sync(%s)", (retry,))
    assert pg.wait(retry)["status"] == "cancelled"
    assert pg.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (run_id,)) == 1
    assert pg.wait(pg.start("hubspot", "contact"), ("running",))


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def test_ten_megabytes_of_output(pg):
    pg.fake("hubspot", "flood", str(10 * 1024 * 1024))
    launcher = pg.launcher_pid()
    before = _rss_kb(launcher)
    run = pg.wait(pg.start("hubspot", "contact"), timeout=60)
    assert run["status"] == "success"
    log = pg.log(run["id"])
    assert len(log.encode()) <= 1024 * 1024 + 200
    assert log.startswith("[... ") and "bytes of earlier output dropped" in log.splitlines()[0]
    assert run["performance_metrics"]["log_bytes_dropped"] > 8 * 1024 * 1024
    assert _rss_kb(launcher) - before < 8 * 1024


def test_progress_flood_is_coalesced(pg):
    pg.fake("hubspot", "progress_flood", "200000")
    conn = pg.c.connect()
    conn.cursor().execute("LISTEN crm_dashboard_sync")
    t = time.time()
    run = pg.wait(pg.start("hubspot", "contact"), timeout=60)
    elapsed = time.time() - t
    assert run["status"] == "success" and run["records_processed"] == 200000
    conn.poll()
    events = [json.loads(n.payload) for n in conn.notifies if json.loads(n.payload)["id"] == run["id"]]
    # queued, running, success, plus at most one update per 250 ms
    assert len(events) <= 3 + elapsed / 0.25 + 2
    conn.close()


def test_missing_program(pg):
    pg.register("hubspot", ["/nonexistent/crm-sync", "{model}"])
    run = pg.wait(pg.start("hubspot", "contact"))
    assert run["status"] == "failed"
    assert run["error_message"] == 'could not execute "/nonexistent/crm-sync": No such file or directory'
    pg.register("hubspot", ["/tmp"], model="deal")
    assert "Permission denied" in pg.wait(pg.start("hubspot", "deal"))["error_message"]


def test_working_directory(pg):
    pg.fake("hubspot", "success", workdir="/tmp")
    assert "cwd: /tmp\n" in pg.log(pg.wait(pg.start("hubspot", "contact"))["id"])


@pytest.mark.parametrize("model, options", [
    ("contact --settings=evil", {}),
    ("contact; rm -rf /", {}),
    ("contact", {"since": "2024-01-01 --settings=evil"}),
    ("contact", {"max_records": "5 --evil"}),
    ("contact", {"full": "true --evil"}),
    ("contact", {"--settings": "evil"}),
    ("contact", {"full'; DROP TABLE x; --": True}),
])
def test_injection_attempts_are_refused(pg, model, options):
    pg.fake("hubspot", "success")
    with pytest.raises(psycopg2.Error) as e:
        pg.start("hubspot", model, options)
    assert e.value.pgcode in ("42704", "22023")
    assert pg.one("SELECT count(*) FROM crm_dashboard.sync_history") == 0


def test_registry_is_admin_only(pg):
    with pytest.raises(psycopg2.Error) as e:
        pg.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', '{/bin/true}')",
               user="tester_operator")
    assert e.value.pgcode == "42501"
    pg.sql("DROP ROLE IF EXISTS tester_admin; CREATE ROLE tester_admin LOGIN IN ROLE crm_dashboard_admin")
    pg.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', '{/bin/true}')",
           user="tester_admin")
    with pytest.raises(psycopg2.Error) as e:  # a shell string is not an argv
        pg.sql("INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('hubspot', 'deal', '{\"bin/sh -c x\"}')")
    assert e.value.pgcode == "23514"


def test_roles_start_and_watch(pg):
    pg.fake("hubspot", "success")
    run_id = pg.start("hubspot", "contact", user="tester_operator")
    assert pg.wait(run_id)["requested_by"] == "tester_operator"
    assert pg.one("SELECT crm_api.sync_status(%s)->>'status'", (run_id,), user="tester_viewer") == "success"
    with pytest.raises(psycopg2.Error) as e:
        pg.start("hubspot", "contact", user="tester_viewer")
    assert e.value.pgcode == "42501"


def test_ui_requests_are_marked(pg):
    """The HTTP server names the dashboard user in a superuser-only setting; request.jwt.claims is not trusted."""
    pg.fake("hubspot", "success")
    conn = pg.c.connect(autocommit=False)
    cur = conn.cursor()
    cur.execute("SELECT set_config('crm_dashboard.request_user', 'alice', true)")
    cur.execute("SELECT crm_api.start_sync('hubspot', 'contact')")
    run_id = cur.fetchone()[0]
    conn.commit()
    conn.close()
    run = pg.wait(run_id)
    assert run["requested_via"] == "ui" and run["requested_by"] == "alice"
    assert run["configuration"]["requested_by"] == {"session_user": "postgres", "username": "alice"}


def test_notify_carries_run_changes(pg):
    pg.fake("hubspot", "success")
    conn = pg.c.connect()
    conn.cursor().execute("LISTEN crm_dashboard_sync")
    run_id = pg.wait(pg.start("hubspot", "contact"))["id"]
    conn.poll()
    events = [json.loads(n.payload) for n in conn.notifies]
    conn.close()
    mine = [e for e in events if e["id"] == run_id]
    assert [e["status"] for e in mine][0] == "queued"
    assert mine[-1]["status"] == "success" and mine[-1]["processed"] == 500
    assert "running" in [e["status"] for e in mine]
    assert set(mine[-1]) == {"id", "crm", "model", "status", "processed", "created", "updated", "failed",
                             "total", "records_per_second", "start_time", "end_time", "parent_id"}
    assert mine[-1]["crm"] == "hubspot" and mine[-1]["model"] == "contact"
    assert mine[-1]["start_time"] <= mine[-1]["end_time"] and "T" in mine[-1]["end_time"]  # ISO 8601
    assert mine[-1]["records_per_second"] > 0


def test_shared_memory_ring_gets_committed_changes_only(pg):
    pg.fake("hubspot", "success")
    last = pg.one("SELECT coalesce(max(seq), 0) FROM crm_dashboard.recent_announcements(0)")
    run_id = pg.wait(pg.start("hubspot", "contact"))["id"]
    conn = pg.c.connect(autocommit=False)
    conn.cursor().execute("UPDATE crm_dashboard.sync_history SET records_processed = 999 WHERE id = %s", (run_id,))
    conn.rollback()  # an aborted change is never published
    conn.cursor().execute("UPDATE crm_dashboard.sync_history SET heartbeat = now() WHERE id = %s", (run_id,))
    conn.commit()  # a heartbeat alone is not announced (the log has a table of its own)
    conn.close()
    events = [p for s, p in pg.sql("SELECT seq, payload FROM crm_dashboard.recent_announcements(%s) ORDER BY seq",
                                   (last,)) if p["id"] == run_id]
    assert events[0]["status"] == "queued" and events[-1]["status"] == "success"
    assert 999 not in [e["processed"] for e in events]
    assert len([e for e in events if e["status"] == "success"]) == 1


def test_drop_extension_is_not_blocked(pg):
    t = time.time()
    pg.sql("DROP EXTENSION crm_dashboard CASCADE")
    assert time.time() - t < 15
    time.sleep(0.5)
    pg.sql("CREATE EXTENSION crm_dashboard")
    pg.fake("hubspot", "success")
    assert pg.wait(pg.start("hubspot", "contact"))["status"] == "success"


def test_sync_user_and_other_databases(pg):
    pg.sql("ALTER SYSTEM SET crm_dashboard.sync_user = 'tester_operator'")
    pg.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    try:
        pg.fake("hubspot", "success")
        log = pg.log(pg.wait(pg.start("hubspot", "contact"))["id"])
        assert json.loads(log.split("env: ")[1].splitlines()[0])["PGUSER"] == "tester_operator"
    finally:
        pg.sql("ALTER SYSTEM RESET crm_dashboard.sync_user")
        pg.sql("SELECT pg_reload_conf()")
    # the launcher serves one database: elsewhere start_sync says so
    pg.sql("DROP DATABASE IF EXISTS other")
    pg.sql("CREATE DATABASE other")
    pg.c.sql("CREATE EXTENSION crm_dashboard", dbname="other")
    pg.c.sql("CREATE SCHEMA IF NOT EXISTS ingestion; CREATE TABLE ingestion.hubspot_contact (id int PRIMARY KEY)",
             dbname="other")
    pg.c.sql("INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', '{/bin/true}')", dbname="other")
    with pytest.raises(psycopg2.Error) as e:
        pg.c.sql("SELECT crm_api.start_sync('hubspot', 'contact')", dbname="other")
    assert e.value.pgcode == "55000"
    assert 'sync launcher serves database "postgres", not "other"' in e.value.pgerror
    pg.sql("DROP DATABASE other")
