"""Where the launcher serves another database, pg_cron applies the retention
policy: its job "crm_dashboard retention" runs every minute, commits a batch at
a time, and goes away with the policy.  A cluster of its own, because the
launcher must be elsewhere."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, suite_port  # noqa: E402

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard,pg_cron'",
    "cron.database_name": "'postgres'",
    "cron.use_background_workers": "on",
    "crm_dashboard.database_name": "'elsewhere'",
    "max_worker_processes": "16",
}

OLD_RUNS = """
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
SELECT 'hubspot', 'contact', 'success', now() - interval '40 days' - g * interval '1 minute',
       now() - interval '40 days' - g * interval '1 minute' + interval '10 seconds'
  FROM generate_series(1, 120) g
"""


@pytest.fixture(scope="module")
def here():
    c = Cluster("retention_cron", suite_port(24432), SETTINGS).init().start()
    c.sql("CREATE DATABASE elsewhere")
    c.sql("CREATE EXTENSION pg_cron")
    c.sql("CREATE EXTENSION crm_dashboard")
    yield c
    c.stop("fast", check=False)


@pytest.fixture
def policy(here):
    here.sql("DELETE FROM crm_dashboard.sync_history")
    yield here
    here.sql("SELECT crm_api.set_retention()")
    here.sql("DELETE FROM crm_dashboard.retention_state")


def job(c):
    rows = c.sql("SELECT schedule, command, active FROM cron.job WHERE jobname = 'crm_dashboard retention'")
    return rows[0] if rows else None


def test_the_job_commits_batch_after_batch(policy):
    c = policy
    c.sql(OLD_RUNS)
    state = c.sql("SELECT crm_api.set_retention(keep_runs => '30 days', batch_size => 50)")[0][0]
    assert state["applied_by"] == "pg_cron"
    assert job(c) == ("* * * * *", "CALL crm_dashboard.retention_job()", True)
    # what the job runs, called as pg_cron calls it: 120 runs take three passes, each committed
    c.sql("CALL crm_dashboard.retention_job()")
    assert c.sql("SELECT count(*) FROM crm_dashboard.sync_history")[0][0] == 1
    row = c.sql("SELECT last_pass_by, runs_removed, behind FROM crm_api.retention")[0]
    assert row == ("pg_cron", 119, False)


def test_pg_cron_runs_the_job_and_it_goes_with_the_policy(policy):
    c = policy
    c.sql("SELECT crm_api.set_retention(keep_runs => '30 days', batch_size => 50)")
    c.sql(OLD_RUNS)
    # pg_cron before 1.5 knows only minutes: the job runs at the next one
    deadline = time.time() + 75
    while c.sql("SELECT count(*) FROM crm_dashboard.sync_history")[0][0] > 1 and time.time() < deadline:
        time.sleep(0.5)
    runs = c.sql("SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid) "
                 "WHERE j.jobname = 'crm_dashboard retention' ORDER BY d.runid")
    assert runs and all(status == "succeeded" for status, _ in runs), runs
    assert c.sql("SELECT count(*) FROM crm_dashboard.sync_history")[0][0] == 1
    assert c.sql("SELECT last_pass_by FROM crm_api.retention")[0][0] == "pg_cron"
    # no policy, no job (and nothing that applies one)
    assert c.sql("SELECT crm_api.set_retention()")[0][0]["applied_by"] is None
    assert job(c) is None
