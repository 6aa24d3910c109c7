"""The launcher applies the retention policy, in batches that never wait for a lock."""
import time

import pytest

OLD_RUNS_SQL = """
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
SELECT 'hubspot', 'contact', 'success', now() - interval '40 days' - g * interval '1 minute',
       now() - interval '40 days' - g * interval '1 minute' + interval '10 seconds'
  FROM generate_series(1, %s) g
"""


@pytest.fixture
def policy(pg):
    yield pg
    pg.sql("SELECT crm_api.set_retention()")
    pg.sql("DELETE FROM crm_dashboard.retention_state")


def test_the_launcher_removes_old_runs_in_batches(policy):
    pg = policy
    pg.sql(OLD_RUNS_SQL % 120)
    latest = pg.one("SELECT max(id) FROM crm_dashboard.sync_history")
    pg.sql("SELECT crm_api.set_retention(keep_runs => '30 days', batch_size => 50)")
    deadline = time.time() + 30
    while pg.one("SELECT count(*) FROM crm_dashboard.sync_history") > 1 and time.time() < deadline:
        time.sleep(0.2)
    # all gone but the model's latest run (which is its latest success too)
    newest = pg.one("SELECT id FROM crm_dashboard.sync_history ORDER BY start_time DESC LIMIT 1")
    assert pg.sql("SELECT id FROM crm_dashboard.sync_history") == [(newest,)]
    assert newest <= latest
    state = pg.sql("SELECT last_pass_by, runs_removed, behind, applied_by FROM crm_api.retention")[0]
    assert state == ("launcher", 119, False, "launcher")


def test_a_pass_skips_what_someone_holds(policy):
    pg = policy
    pg.sql(OLD_RUNS_SQL % 20)
    held = pg.one("SELECT id FROM crm_dashboard.sync_history ORDER BY start_time LIMIT 1")
    holder = pg.c.connect(autocommit=False)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM crm_dashboard.sync_history WHERE id = %s FOR UPDATE", (held,))
        pg.sql("SELECT crm_api.set_retention(keep_runs => '30 days', batch_size => 100)")
        # a pass of our own, which must not wait for the holder either
        pg.sql("SET statement_timeout = '5s'; SELECT crm_dashboard.apply_retention()")
        deadline = time.time() + 20
        while pg.one("SELECT count(*) FROM crm_dashboard.sync_history") > 2 and time.time() < deadline:
            time.sleep(0.2)
        left = [r[0] for r in pg.sql("SELECT id FROM crm_dashboard.sync_history ORDER BY id")]
        assert held in left and len(left) == 2
    finally:
        holder.rollback()
        holder.close()
    deadline = time.time() + 20
    while pg.one("SELECT count(*) FROM crm_dashboard.sync_history") > 1 and time.time() < deadline:
        time.sleep(0.2)
    assert pg.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE id = %s", (held,)) == 0
