"""The launcher under adverse conditions: failing statements, lost wake-ups, a dropped extension."""
import os
import time

from conftest import COMMANDS, FAKE

# Makes every attempt to mark a "deal" run running fail (and counts the attempts).
REFUSE_DEAL_LAUNCH = """
CREATE SEQUENCE public.refused_launches;
CREATE FUNCTION public.refuse_launch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'queued' AND NEW.status = 'running' AND NEW.sync_type = 'deal' THEN
        PERFORM nextval('public.refused_launches');
        RAISE EXCEPTION 'launch of run % refused', NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_launch BEFORE UPDATE ON crm_dashboard.sync_history
    FOR EACH ROW EXECUTE FUNCTION public.refuse_launch();
"""

ALLOW_DEAL_LAUNCH = """
DROP TRIGGER IF EXISTS refuse_launch ON crm_dashboard.sync_history;
DROP FUNCTION IF EXISTS public.refuse_launch();
DROP SEQUENCE IF EXISTS public.refused_launches;
"""


def _processes_of(run_id):
    """Live (non-zombie) processes carrying the run's CRM_DASHBOARD_SYNC_ID."""
    want = f"CRM_DASHBOARD_SYNC_ID={run_id}".encode()
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want in env:
            found.append(int(p))
    return found


def _max_running(pg, n):
    pg.sql(f"ALTER SYSTEM SET crm_dashboard.max_running_syncs = {int(n)}")
    pg.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)


def test_failed_launch_kills_the_process_and_keeps_other_outcomes(pg):
    _max_running(pg, 1)
    pg.fake("hubspot", "sleep", "0.5", model="contact")
    pg.fake("hubspot", "sleep", "60", model="deal")
    pg.sql(REFUSE_DEAL_LAUNCH)
    try:
        first = pg.start("hubspot", "contact")
        second = pg.start("hubspot", "deal")
        # the batch that records the first run's end also tries (and fails) to launch the second
        assert pg.wait(first)["status"] == "success"
        pg.c.wait_for("SELECT is_called FROM public.refused_launches")
        before = pg.one("SELECT last_value FROM public.refused_launches")
        time.sleep(2)
        # retried about once a second, not in a busy loop (a slow machine only retries less)
        assert pg.one("SELECT last_value FROM public.refused_launches") - before <= 3
        pg.c.wait_for("SELECT last_value >= 3 FROM public.refused_launches")
        # each refused launch killed its process: none runs unsupervised
        assert len(_processes_of(second)) <= 1
        assert pg.run(second)["status"] == "queued"
    finally:
        pg.sql(ALLOW_DEAL_LAUNCH)
    pid = pg.wait(second, ("running",))["pid"]
    deadline = time.time() + 10
    while _processes_of(second) != [pid] and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_of(second) == [pid]  # launched once, nothing left of earlier attempts
    pg.sql("SELECT crm_api.stop_sync(%s)", (second,))
    assert pg.wait(second)["status"] == "cancelled"


def test_a_run_skipped_while_locked_is_launched_later(pg):
    _max_running(pg, 1)
    pg.fake("hubspot", "sleep", "1")
    first = pg.start("hubspot", "contact")
    pg.wait(first, ("running",))
    second = pg.start("hubspot", "deal")
    locker = pg.c.connect(autocommit=False)
    try:
        cur = locker.cursor()
        # a reader holding a row lock makes the launcher skip the queued run (SKIP LOCKED)
        cur.execute("SELECT 1 FROM crm_dashboard.sync_history WHERE id = %s FOR SHARE", (second,))
        assert pg.wait(first)["status"] == "success"
        time.sleep(0.5)
        assert pg.run(second)["status"] == "queued"
        locker.commit()  # releasing the lock wakes nobody
    finally:
        locker.close()
    # the launcher's periodic sweep launches it without any further event
    assert pg.wait(second, timeout=40)["status"] == "success"


def test_dropping_the_extension_kills_its_runs(pg):
    pg.fake("hubspot", "sleep", "60")
    old = pg.start("hubspot", "contact")
    pid = pg.wait(old, ("running",))["pid"]
    pg.sql("DROP EXTENSION crm_dashboard CASCADE")
    deadline = time.time() + 30
    while _processes_of(old) and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_of(old) == [], f"process {pid} of a dropped run still runs"
    pg.sql("CREATE EXTENSION crm_dashboard")
    # ids start again: the next run gets the dropped run's id
    pg.sql("SELECT setval(pg_get_serial_sequence('crm_dashboard.sync_history', 'id'), %s, false)", (old,))
    pg.fake("hubspot", "success")
    new = pg.start("hubspot", "contact")
    assert new == old
    run = pg.wait(new)
    assert run["status"] == "success" and run["records_processed"] == 500
    assert run["configuration"]["argv"][:2] == [FAKE, "success"]


def test_timeout_is_enforced_while_the_history_table_is_locked(pg):
    pg.fake("hubspot", "sleep", "60", timeout="1 second")
    run_id = pg.start("hubspot", "contact")
    pid = pg.wait(run_id, ("running",))["pid"]
    locker = pg.c.connect(autocommit=False)
    try:
        # e.g. a long CREATE INDEX: the launcher cannot write, but must still supervise
        locker.cursor().execute("LOCK TABLE crm_dashboard.sync_history IN SHARE MODE")
        deadline = time.time() + 30
        while _processes_of(run_id) and time.time() < deadline:
            time.sleep(0.1)
        assert _processes_of(run_id) == [], f"process {pid} outlived its timeout"
    finally:
        locker.rollback()
        locker.close()
    run = pg.wait(run_id)
    assert run["status"] == "failed" and run["error_message"] == "timed out after 1 s"


def test_last_line_counts_when_a_process_left_the_group_holds_the_pipe(pg):
    pg.register("hubspot", [os.path.join(COMMANDS, "escape.sh")])
    run_id = pg.start("hubspot", "contact")
    try:
        run = pg.wait(run_id)
        assert run["status"] == "success"
        assert (run["records_processed"], run["records_created"]) == (7, 7)
    finally:
        for p in _processes_of(run_id):
            os.kill(p, 9)
