"""The launcher writes a running log into the log store as its new tail only.

A flush appends chunks for what the command printed since the last one and
never rewrites a chunk; line numbers run on across flushes; the store keeps
at most log_limit bytes of a run, its oldest chunks going first.
"""
import time


def chunks(pg, run_id):
    return pg.sql("SELECT seq, xmin::text, first_line, first_byte, octet_length(body) "
                  "FROM crm_dashboard.sync_log_chunk WHERE run_id = %s ORDER BY seq", (run_id,))


def test_running_log_is_appended_never_rewritten(pg):
    pg.fake("hubspot", "bursts", "8")
    run_id = pg.start("hubspot", "contact")
    pg.wait(run_id, ("running",))
    deadline = time.time() + 20
    while len(chunks(pg, run_id)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    early = chunks(pg, run_id)
    assert len(early) >= 2, early
    run = pg.wait(run_id, timeout=30)
    assert run["status"] == "success"
    final = chunks(pg, run_id)
    # the early chunks are still there as they were written: same rows, same transactions
    assert final[:len(early)] == early
    assert len(final) > len(early)
    # contiguous: each chunk starts where the one before ended
    for before, after in zip(final, final[1:]):
        assert after[0] == before[0] + 1 and after[3] == before[3] + before[4]
    # line numbers are those of the whole output, across flushes
    # (the fake command prints four lines about itself first)
    lines = pg.sql("SELECT line_number, line, is_error FROM crm_api.sync_log_lines(%s, 5, 1000)", (run_id,))
    assert len(lines) == 400
    assert all(line.split()[1] == str(number - 4) for number, line, _ in lines)
    assert [number - 4 for number, _, is_error in lines if is_error] == list(range(50, 401, 50))
    assert pg.log(run_id).endswith("".join(f"line {n}" + (" ERROR: burst failed" if n % 50 == 0 else "") + "\n"
                                           for n in range(1, 401)))


def test_following_a_running_log_by_line(pg):
    """A reader passes the number after its last line and gets only what is new."""
    pg.fake("hubspot", "bursts", "6")
    run_id = pg.start("hubspot", "contact")
    pg.wait(run_id, ("running",))
    seen = []
    deadline = time.time() + 30
    while time.time() < deadline:
        status = pg.one("SELECT status FROM crm_dashboard.sync_history WHERE id = %s", (run_id,))
        rows = pg.sql("SELECT line_number, line FROM crm_api.sync_log_lines(%s, %s)", (run_id, len(seen) + 1))
        seen += [line for _, line in rows]
        if status not in ("queued", "running") and not rows:
            break
        time.sleep(0.3)
    assert seen[4:] == [f"line {n}" + (" ERROR: burst failed" if n % 50 == 0 else "") for n in range(1, 301)]


def test_store_keeps_at_most_log_limit(pg):
    pg.fake("hubspot", "flood", str(4 * 1024 * 1024))
    run = pg.wait(pg.start("hubspot", "contact"), timeout=60)
    assert run["status"] == "success"
    kept = pg.sql("SELECT sum(octet_length(body)), min(first_byte), min(seq), max(seq) "
                  "FROM crm_dashboard.sync_log_chunk WHERE run_id = %s", (run["id"],))[0]
    limit = 1024 * 1024
    assert limit - 64 * 1024 <= kept[0] <= limit
    # the oldest chunks were deleted, the newest kept, up to the last byte printed
    printed = run["performance_metrics"]["log_bytes_dropped"] + limit
    assert printed > 4_000_000 and kept[1] + kept[0] == printed
    assert pg.log(run["id"]).startswith(f"[... {kept[1]} bytes of earlier output dropped ...]\n")
