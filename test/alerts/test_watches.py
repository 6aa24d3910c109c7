"""What the rules watch, through the launcher's real runs: a failure once
its retries are used up (or at every attempt), action required, an
automatic pause and its resume, freshness late and back on time, and a
run much slower than usual."""
import json
import time

import pytest
from launcher_helper import Launcher


@pytest.fixture(scope="module")
def launcher(cluster):
    cluster.sql("CREATE TABLE IF NOT EXISTS ingestion.callrail_call (id integer PRIMARY KEY)")
    cluster.sql("CREATE TABLE IF NOT EXISTS ingestion.callrail_tracker (id integer PRIMARY KEY)")
    cluster.sql("CREATE TABLE IF NOT EXISTS ingestion.callrail_company (id integer PRIMARY KEY)")
    cluster.sql("CREATE TABLE IF NOT EXISTS ingestion.callrail_user (id integer PRIMARY KEY)")
    return Launcher(cluster)


def rule(c, name, watch, model, params="{}"):
    c.sql("SELECT crm_api.create_alert_rule(%s, %s, crm => 'callrail', model => %s, params => %s)",
          (name, watch, model, params))


def alerts_of(c, name):
    return c.sql("SELECT status, occurrences, run_id, detail, resolve_reason FROM crm_api.alerts "
                 "WHERE rule_name = %s ORDER BY id", (name,))


def wait_chain(launcher, model, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = launcher.sql("SELECT id, attempt, status FROM crm_dashboard.sync_history WHERE crm_source = 'callrail' "
                            "AND sync_type = %s AND status IN ('success', 'failed', 'partial') ORDER BY id", (model,))
        if len(rows) >= n and not launcher.sql("SELECT 1 FROM crm_dashboard.sync_history WHERE crm_source = 'callrail' "
                                               "AND sync_type = %s AND status IN ('queued', 'running')", (model,)):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{model}: fewer than {n} finished runs")


def test_a_failure_alerts_once_its_retries_are_used_up(launcher, cluster):
    launcher.sql("SELECT crm_api.set_run_policy('callrail', 'call', max_attempts => 2, backoff_base => '1 second', "
                 "backoff_cap => '1 second')")
    launcher.register("callrail", ["/bin/false"], model="call")
    rule(cluster, "call failed", "run_failed", "call")
    rule(cluster, "call attempts", "run_failed", "call", '{"every_attempt": true}')
    launcher.start("callrail", "call")
    runs = wait_chain(launcher, "call", 2)
    assert [(a, s) for _, a, s in runs] == [(1, "failed"), (2, "failed")]
    [(status, occurrences, run_id, detail, _)] = alerts_of(cluster, "call failed")
    # the first attempt was followed by a retry: only the last one alerted
    assert (status, occurrences, run_id, detail["attempt"]) == ("open", 1, runs[1][0], 2)
    [(status, occurrences, run_id, _, _)] = alerts_of(cluster, "call attempts")
    assert (status, occurrences, run_id) == ("open", 2, runs[1][0])
    # a success resolves both
    launcher.sql("UPDATE crm_dashboard.sync_command SET argv = '{/bin/true}' WHERE crm = 'callrail' AND model = 'call'")
    launcher.wait(launcher.start("callrail", "call"))
    assert [a[0] for a in alerts_of(cluster, "call failed") + alerts_of(cluster, "call attempts")] == ["resolved"] * 2


def test_action_required(launcher, cluster):
    launcher.register("callrail", ["/bin/sh", "-c", "exit 78"], model="tracker")
    rule(cluster, "tracker needs action", "action_required", "tracker")
    run = launcher.wait(launcher.start("callrail", "tracker"))
    assert run["status"] == "failed"
    [(status, _, run_id, detail, _)] = alerts_of(cluster, "tracker needs action")
    assert (status, run_id, detail["error_class"]) == ("open", run["id"], "permanent")


def test_an_automatic_pause_alerts_and_resuming_resolves(launcher, cluster):
    launcher.sql("SELECT crm_api.set_run_policy('callrail', 'company', max_attempts => 5, backoff_base => '1 second', "
                 "backoff_cap => '1 second', pause_after_failures => 2)")
    launcher.register("callrail", ["/bin/false"], model="company")
    rule(cluster, "company paused", "auto_paused", "company")
    rule(cluster, "company streak", "consecutive_failures", "company", '{"count": 2}')
    launcher.start("callrail", "company")
    cluster.wait_for("SELECT count(*) FROM crm_api.alerts WHERE rule_name = 'company paused'")
    [(status, _, _, detail, _)] = alerts_of(cluster, "company paused")
    assert status == "open" and detail["reason"] == "paused after 2 consecutive failures"
    [(status, occurrences, _, detail, _)] = alerts_of(cluster, "company streak")
    assert (status, detail["failures"]) == ("open", 2)
    cluster.sql("SET crm_dashboard.request_user = 'otto'; SELECT crm_api.resume_sync('callrail', 'company')")
    [(status, _, _, _, reason)] = alerts_of(cluster, "company paused")
    assert status == "resolved" and reason.startswith("resumed by")


def test_freshness_alerts_and_resolves(launcher, cluster):
    rule(cluster, "user stale", "freshness", "user", '{"level": "overdue"}')
    cluster.sql("SELECT crm_api.set_freshness_sla('callrail', 'user', '1 hour')")
    cluster.sql("SELECT crm_dashboard.note_freshness()")
    [(status, _, _, detail, _)] = alerts_of(cluster, "user stale")
    assert status == "open" and detail["to"] == "overdue"
    launcher.register("callrail", ["/bin/true"], model="user")
    assert launcher.wait(launcher.start("callrail", "user"))["status"] == "success"
    cluster.sql("SELECT crm_dashboard.note_freshness()")
    [(status, _, _, _, reason)] = alerts_of(cluster, "user stale")
    assert status == "resolved" and reason == "the data is on time now"


def test_a_run_much_slower_than_usual(cluster):
    cluster.sql("CREATE TABLE IF NOT EXISTS ingestion.callrail_slow (id integer PRIMARY KEY)")
    rule(cluster, "slow runs", "slow", "slow", '{"factor": 2, "min_runs": 3, "min_seconds": 10}')
    for minutes in (10, 9, 8):
        cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time) "
                    "VALUES ('callrail', 'slow', 'success', now() - make_interval(mins => %s), "
                    "now() - make_interval(mins => %s) + interval '60 seconds')", (minutes * 10, minutes * 10))
    # a run of the usual length: nothing
    cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time) "
                "VALUES ('callrail', 'slow', 'success', now() - interval '70 seconds', now())")
    assert alerts_of(cluster, "slow runs") == []
    # a running sync at 3x the usual is seen by the alerts worker's periodic check
    cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time) "
                "VALUES ('callrail', 'slow', 'running', now() - interval '200 seconds')")
    cluster.sql("SELECT crm_dashboard.alerts_tick()")
    [(status, _, _, detail, _)] = alerts_of(cluster, "slow runs")
    assert status == "open" and detail["running"] is True and detail["usual_seconds"] == 60
    cluster.sql("UPDATE crm_dashboard.sync_history SET status = 'success', end_time = now() "
                "WHERE crm_source = 'callrail' AND sync_type = 'slow' AND status = 'running'")
    [(status, occurrences, _, detail, _)] = alerts_of(cluster, "slow runs")
    assert (status, occurrences, detail["running"]) == ("open", 1, False)
    cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time) "
                "VALUES ('callrail', 'slow', 'success', now() - interval '61 seconds', now())")
    [(status, _, _, _, reason)] = alerts_of(cluster, "slow runs")
    assert status == "resolved" and "usual time" in reason
