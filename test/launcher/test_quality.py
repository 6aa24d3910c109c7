"""Data-quality checks with real runs: a failing check blocks a sync before
it starts and force overrides it; a sync that leaves bad data behind ends
partial with "checks failed"; a check waiting for a lock stops at its time
limit instead of holding the caller."""
import os
import time

import psycopg2
import pytest

from conftest import COMMANDS, FAKE

DIRTY = os.path.join(COMMANDS, "dirty_sync.py")


@pytest.fixture
def quality(pg):
    pg.sql("CREATE TABLE IF NOT EXISTS ingestion.gsheet_sheet (id bigint PRIMARY KEY, email text)")
    pg.sql("TRUNCATE ingestion.gsheet_sheet")
    pg.sql("INSERT INTO ingestion.gsheet_sheet SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 50) g")
    pg.sql("DELETE FROM crm_dashboard.quality_check")
    pg.sql("SET crm_dashboard.request_user = 'alice'; "
           "SELECT crm_api.add_check('gsheet', 'sheet', 'email_present', 'not_null', 'email')")
    yield pg
    pg.sql("DELETE FROM crm_dashboard.quality_check")


def results(pg, run_id):
    return pg.sql("SELECT name, phase, passed FROM crm_api.quality_results WHERE run_id = %s ORDER BY id", (run_id,))


def test_failing_check_blocks_the_sync_and_force_overrides(quality):
    pg = quality
    pg.fake("gsheet", "success")
    pg.sql("UPDATE ingestion.gsheet_sheet SET email = NULL WHERE id IN (7, 9)")
    with pytest.raises(psycopg2.Error) as e:
        pg.start("gsheet", "sheet", user="tester_operator")
    assert e.value.pgcode == "23514"
    assert "1 data-quality check of gsheet sheet failed: the sync is refused" in e.value.pgerror
    assert 'email_present (not_null): 2 failing rows, e.g. {"id": 7}, {"id": 9}' in e.value.pgerror
    assert pg.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE crm_source = 'gsheet'") == 0
    # force: the sync runs; the checks before it are its results, and the same
    # failure after it makes the run partial
    run_id = pg.start("gsheet", "sheet", {"force": True}, user="tester_operator")
    run = pg.wait(run_id)
    assert run["status"] == "partial"
    assert "checks failed: email_present" in run["error_message"]
    assert results(pg, run_id) == [("email_present", "before", False), ("email_present", "after", False)]


def test_bad_data_left_by_a_sync_makes_it_partial(quality):
    pg = quality
    pg.register("gsheet", [DIRTY, "ingestion.gsheet_sheet"])
    run_id = pg.start("gsheet", "sheet", user="tester_operator")
    run = pg.wait(run_id)
    assert run["status"] == "partial", run
    assert run["error_message"] == "checks failed: email_present"
    assert results(pg, run_id) == [("email_present", "before", True), ("email_present", "after", False)]
    # a warning does not change the run
    pg.sql("UPDATE crm_dashboard.quality_check SET severity = 'warn'")
    run_id = pg.start("gsheet", "sheet", user="tester_operator")
    assert pg.wait(run_id)["status"] == "success"
    # the launcher went on: another sync runs as usual
    pg.fake("hubspot", "success")
    assert pg.wait(pg.start("hubspot", "deal"))["status"] == "success"


def test_a_check_stops_at_its_time_limit(quality, cluster):
    pg = quality
    locker = psycopg2.connect(cluster.dsn())
    try:
        with locker.cursor() as cur:
            cur.execute("BEGIN; LOCK TABLE ingestion.gsheet_sheet IN ACCESS EXCLUSIVE MODE")
            began = time.time()
            rows = pg.sql("SET crm_dashboard.check_timeout = 300; "
                          "SELECT passed, error, summary FROM crm_api.run_checks('gsheet', 'sheet')")
            took = time.time() - began
    finally:
        locker.rollback()
        locker.close()
    assert rows == [(False, "stopped after 300 ms (crm_dashboard.check_timeout)",
                     "could not run: stopped after 300 ms (crm_dashboard.check_timeout)")]
    assert took < 10
    # without the lock it passes
    assert pg.one("SELECT passed FROM crm_api.run_checks('gsheet', 'sheet')") is True
