"""pg_cron schedules fire runs marked requested_via = 'schedule'."""
import time

import psycopg2
import pytest


def test_schedule_fires_a_run(pg):
    pg.fake("hubspot", "success")
    try:
        job = pg.one("SELECT crm_api.schedule_sync('hubspot', 'deal', '2 seconds', '{\"full\": true}')")
        wait = 30
    except psycopg2.Error as e:
        # pg_cron before 1.5 has no seconds syntax: the next minute then
        assert e.pgcode == "22023" and "invalid schedule" in e.pgerror
        job = pg.one("SELECT crm_api.schedule_sync('hubspot', 'deal', '* * * * *', '{\"full\": true}')")
        wait = 75
    rows = pg.sql("SELECT name, crm, model, options, active FROM crm_api.schedules WHERE id = %s", (job,))
    name, crm, model, options, active = rows[0]
    assert name.startswith("crm_dashboard:hubspot:deal:") and (crm, model) == ("hubspot", "deal")
    assert options == {"full": True} and active
    run_id = pg.c.wait_for("SELECT max(id) FROM crm_dashboard.sync_history WHERE sync_type = 'deal'",
                           timeout=wait, interval=0.5)
    run = pg.wait(run_id)
    assert run["requested_via"] == "schedule" and run["status"] == "success"
    assert run["configuration"]["argv"][-1] == "--full"
    assert pg.one("SELECT crm_api.unschedule_sync(%s)", (job,)) is True
    assert pg.one("SELECT count(*) FROM crm_api.schedules") == 0
    assert pg.one("SELECT crm_api.unschedule_sync(%s)", (job,)) is False


def test_operators_schedule_viewers_read(pg):
    pg.fake("hubspot", "success")
    job = pg.one("SELECT crm_api.schedule_sync('hubspot', 'contact', '0 3 * * *', '{\"since\": \"2024-01-01\"}')",
                 user="tester_operator")
    command = pg.one("SELECT command FROM cron.job WHERE jobid = %s", (job,))
    assert command == ("SELECT crm_dashboard.start_sync('hubspot', 'contact', "
                       "'{\"since\": \"2024-01-01\"}'::jsonb, via => 'schedule')")
    assert pg.sql("SELECT cron, options FROM crm_api.schedules", user="tester_viewer") == \
        [("0 3 * * *", {"since": "2024-01-01"})]
    with pytest.raises(psycopg2.Error) as e:
        pg.sql("SELECT crm_api.schedule_sync('hubspot', 'contact', '0 3 * * *')", user="tester_viewer")
    assert e.value.pgcode == "42501"
    assert pg.one("SELECT crm_api.unschedule_sync(%s)", (job,), user="tester_operator") is True


def test_schedule_validates_like_start_sync(pg):
    pg.fake("hubspot", "success")
    for args, code in [(("hubspot", "nope", "* * * * *", "{}"), "42704"),
                       (("hubspot", "deal", "* * * * *", '{"full": 1}'), "22023"),
                       (("hubspot", "deal", "not a cron", "{}"), "22023")]:
        with pytest.raises(psycopg2.Error) as e:
            pg.sql("SELECT crm_api.schedule_sync(%s, %s, %s, %s)", args)
        assert e.value.pgcode == code
    assert pg.one("SELECT count(*) FROM crm_api.schedules") == 0


def test_pg_cron_recreated_never_confuses_jobs(pg):
    pg.fake("hubspot", "success")
    first = pg.one("SELECT crm_api.schedule_sync('hubspot', 'contact', '0 3 * * *')")
    second = pg.one("SELECT crm_api.schedule_sync('hubspot', 'deal', '0 3 * * *')")
    assert second == first + 1
    try:
        pg.sql("DROP EXTENSION pg_cron")
        assert pg.one("SELECT count(*) FROM crm_api.schedules") == 0
        pg.sql("CREATE EXTENSION pg_cron")
        # job ids start over: another team's job gets the id of our first schedule
        pg.sql("SELECT setval('cron.jobid_seq', %s, false)", (first,))
        assert pg.one("SELECT cron.schedule('other-team', '0 4 * * *', 'SELECT 1')") == first
        assert pg.one("SELECT count(*) FROM crm_api.schedules") == 0
        # a new schedule gets the id of our second, left-over one
        again = pg.one("SELECT crm_api.schedule_sync('hubspot', 'deal', '0 5 * * *')")
        assert again == second
        assert pg.sql("SELECT id, model, cron FROM crm_api.schedules") == [(second, "deal", "0 5 * * *")]
        # the left-over schedule is gone; the other team's job is not ours to remove
        assert pg.one("SELECT crm_api.unschedule_sync(%s)", (first,)) is False
        assert pg.one("SELECT count(*) FROM cron.job WHERE jobname = 'other-team'") == 1
    finally:
        pg.sql("CREATE EXTENSION IF NOT EXISTS pg_cron")
        pg.sql("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'other-team'")


def test_a_schedule_skips_a_paused_model_and_records_the_skip(pg):
    pg.fake("hubspot", "success")
    pg.sql("SELECT crm_api.pause_sync('hubspot', 'deal', 'API migration')")
    job = pg.one("SELECT crm_api.schedule_sync('hubspot', 'deal', '* * * * *')")
    try:
        pg.c.wait_for("SELECT count(*) FROM crm_api.sync_skips WHERE model = 'deal' AND requested_via = 'schedule'",
                      timeout=75, interval=0.5)
        reason = pg.one("SELECT reason FROM crm_api.sync_skips WHERE model = 'deal'")
        assert reason.startswith("model paused by ") and reason.endswith(": API migration")
        # skipped, not run, not failed: no history row, and the pg_cron job succeeded
        assert pg.one("SELECT count(*) FROM crm_dashboard.sync_history WHERE sync_type = 'deal'") == 0
        assert pg.one("SELECT last_skipped_at IS NOT NULL FROM crm_api.schedules WHERE id = %s", (job,))
        pg.c.wait_for("SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded'", (job,))
    finally:
        pg.sql("SELECT crm_api.unschedule_sync(%s)", (job,))


def test_a_schedule_cannot_ignore_a_pause(pg):
    pg.fake("hubspot", "success")
    with pytest.raises(psycopg2.Error) as e:
        pg.sql("SELECT crm_api.schedule_sync('hubspot', 'deal', '0 3 * * *', '{\"ignore_pause\": true}')")
    assert e.value.pgcode == "22023" and "ignore_pause" in e.value.pgerror
