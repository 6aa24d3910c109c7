"""The full refresh of a table without a primary key (a sheet): one transaction, all or nothing."""
import re
import signal
import time

import pytest

from conftest import events, read_until_progress

SHEET = ["--crm", "gsheet", "--model", "marketing_spend"]
# The whole content, order-independent: equal digests mean an untouched snapshot.
DIGEST = ("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
          "FROM ingestion.gsheet_marketing_spend t")


def summary_of(evs):
    assert evs and evs[-1]["event"] == "summary", evs[-3:]
    return evs[-1]


def snapshot(demo):
    return tuple(demo.c.sql(DIGEST)[0])


def row_numbers(demo):
    """(rows, distinct row numbers, lowest, highest) of the sheet."""
    return tuple(demo.c.sql("SELECT count(*), count(DISTINCT sheet_row_number), min(sheet_row_number), "
                            "max(sheet_row_number) FROM ingestion.gsheet_marketing_spend")[0])


def wait_for_backend_gone(demo):
    """Wait until the server has ended the killed simulator's backend (and its transaction)."""
    for _ in range(100):
        if demo.one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'crm_sync_simulator'") == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the simulator's backend is still there")


def fresh_snapshot(demo, rows=60):
    """Refresh the sheet to a known, non-empty snapshot and return its digest."""
    rc, _, err, _ = demo.run(*SHEET, "--max-records", str(rows), "--rate", "0")
    assert rc == 0, err
    digest = snapshot(demo)
    assert digest[0] == rows
    return digest


def test_refresh_replaces_the_sheet_with_the_snapshot(demo):
    mark = demo.one("SELECT now()")
    rc, out, err, evs = demo.run(*SHEET, "--max-records", "150", "--batch-size", "40", "--rate", "0")
    assert rc == 0, err
    assert "has no row ids" in out and "replacing it as a whole in one transaction" in out
    progress = [e for e in evs if e["event"] == "progress"]
    assert [p["processed"] for p in progress] == [40, 80, 120, 150]
    assert all(p["created"] == p["processed"] and p["updated"] == 0 and p["total"] == 150 for p in progress)
    s = summary_of(evs)
    assert (s["processed"], s["created"], s["updated"], s["failed"], s["cancelled"]) == (150, 150, 0, 0, False)
    assert row_numbers(demo) == (150, 150, 1, 150)
    # Every row is new: nothing of the previous snapshot is left.
    assert demo.one("SELECT count(*) FROM ingestion.gsheet_marketing_spend WHERE sync_created_at < %s",
                    (mark,)) == 0
    # Rows look like the sheet's: known channels, positive costs, no NULL dates.
    assert demo.one("SELECT count(*) FROM ingestion.gsheet_marketing_spend "
                    "WHERE channel NOT IN ('Google Ads', 'Facebook', 'Bing', 'TV') OR cost <= 0") == 0


def test_two_runs_never_duplicate(demo):
    demo.run(*SHEET, "--max-records", "300", "--rate", "0")
    for _ in range(2):
        before = demo.count("gsheet_marketing_spend")
        rc, out, err, evs = demo.run(*SHEET, "--rate", "0")
        assert rc == 0, err
        s = summary_of(evs)
        # Without --max-records the snapshot is the sheet's size give or take a few rows.
        assert abs(s["created"] - before) <= 3 and s["updated"] == 0
        assert row_numbers(demo) == (s["created"], s["created"], 1, s["created"])


def test_dry_run_changes_nothing(demo):
    before = fresh_snapshot(demo)
    rc, out, err, evs = demo.run(*SHEET, "--max-records", "90", "--batch-size", "30", "--dry-run", "--rate", "0")
    assert rc == 0, err
    s = summary_of(evs)
    assert s["dry_run"] is True and s["created"] == 90 and s["updated"] == 0
    assert [e["processed"] for e in evs if e["event"] == "progress"] == [30, 60, 90]
    assert snapshot(demo) == before


def test_partial_fault_skips_bad_rows(demo):
    rc, out, err, evs = demo.run(*SHEET, "--max-records", "600", "--rate", "0", "--fault", "partial")
    assert rc == 0, err
    s = summary_of(evs)
    errors = [e for e in evs if e["event"] == "error"]
    assert 1 <= len(errors) == s["failed"] and s["created"] + s["failed"] == s["processed"] == 600
    assert all(e["record"].startswith("row ") for e in errors)
    # A skipped row leaves its row number unused; the others are unique.
    rows, distinct, low, high = row_numbers(demo)
    assert rows == distinct == s["created"] and high <= 600


def test_pacing_and_rate_limit(demo):
    rc, out, err, evs = demo.run(*SHEET, "--max-records", "200", "--batch-size", "50", "--rate", "200",
                                 "--fault", "rate-limit")
    assert rc == 0, err
    pause = re.search(r"HTTP 429 Too Many Requests; retrying after (\d+) s", err)
    assert pause, err
    # The announced pause really happened (no upper bound: the machine may be slow).
    assert summary_of(evs)["duration_seconds"] >= int(pause.group(1))
    assert demo.count("gsheet_marketing_spend") == 200


def test_sigterm_keeps_the_previous_snapshot(demo):
    before = fresh_snapshot(demo)
    proc = demo.start(*SHEET, "--max-records", "2000", "--batch-size", "50", "--rate", "200")
    try:
        lines = read_until_progress(proc)
        # Mid-refresh, readers are not blocked and still see the previous snapshot.
        conn = demo.c.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = '2s'")
                cur.execute(DIGEST)
                assert tuple(cur.fetchone()) == before
        finally:
            conn.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    s = summary_of(events("".join(lines) + out))
    assert s["cancelled"] is True and s["created"] == 0
    assert "rolled back the refresh" in err
    assert snapshot(demo) == before


@pytest.mark.parametrize("how", ["sigkill", "crash"])
def test_kill_or_crash_mid_refresh_keeps_the_previous_snapshot(demo, how):
    before = fresh_snapshot(demo)
    if how == "sigkill":
        proc = demo.start(*SHEET, "--max-records", "2000", "--batch-size", "50", "--rate", "200")
        read_until_progress(proc)
        time.sleep(0.2)
        proc.kill()
        proc.communicate(timeout=15)
        assert proc.returncode == -signal.SIGKILL
    else:
        rc, out, err, evs = demo.run(*SHEET, "--max-records", "400", "--batch-size", "50", "--rate", "0",
                                     "--fault", "crash")
        assert rc == -signal.SIGABRT
        assert [e["processed"] for e in evs if e["event"] == "progress"] == [50, 100, 150, 200]
    wait_for_backend_gone(demo)
    assert snapshot(demo) == before
    # The lock died with the transaction: the next refresh runs.
    rc, _, err, evs = demo.run(*SHEET, "--max-records", "25", "--rate", "0")
    assert rc == 0, err
    assert row_numbers(demo) == (25, 25, 1, 25)


def test_concurrent_refreshes_never_interleave(demo):
    """Two refreshes at once: the second waits for the first, then replaces its snapshot whole."""
    procs = [demo.start(*SHEET, "--max-records", str(n), "--batch-size", "20", "--rate", "150") for n in (90, 110)]
    results = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    rows, distinct, low, high = row_numbers(demo)
    assert rows == distinct == high and low == 1 and rows in (90, 110)
