"""Runs that take care of themselves: retries by error class, rate-limit waits,
stalls, pools, priorities, pauses, automatic pauses, freshness and live parent
sums, with real commands through the launcher."""
import json
import os
import select
import time

import psycopg2
import pytest

from conftest import FAKE

EXTRA_TABLES = """
CREATE TABLE IF NOT EXISTS ingestion.five9_call (id bigint PRIMARY KEY, updated_at timestamptz);
CREATE TABLE IF NOT EXISTS ingestion.five9_agent (id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ingestion.five9_campaign (id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ingestion.five9_list (id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ingestion.five9_skill (id bigint PRIMARY KEY);
"""


@pytest.fixture
def care(pg):
    """The launcher helper, with a few more models and fast retries for hubspot and five9."""
    pg.sql(EXTRA_TABLES)
    for crm in ("hubspot", "five9", "callrail"):
        pg.sql("SELECT crm_api.set_run_policy(%s, backoff_base => '1 second', backoff_cap => '1 second')", (crm,))
    return pg


def policy(pg, crm, model=None, **values):
    args = ", ".join(f"{k} => %s" for k in values)
    return pg.one(f"SELECT crm_api.set_run_policy(%s, %s, {args})", (crm, model, *values.values()))


def chain(pg, first):
    """Every attempt of the request whose first attempt is first: (id, attempt, status, error_class)."""
    return pg.sql("SELECT id, attempt, status, error_class FROM crm_dashboard.sync_history "
                  "WHERE id = %s OR first_attempt_id = %s ORDER BY id", (first, first))


def wait_chain(pg, first, n, timeout=30):
    """Wait until the request has n attempts and none is active; return them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = chain(pg, first)
        if len(rows) >= n and all(r[2] not in ("queued", "running") for r in rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"request {first}: {chain(pg, first)}")


class Events:
    """LISTEN crm_dashboard_event on a connection of its own."""

    def __init__(self, cluster):
        self.conn = cluster.connect()
        self.conn.cursor().execute("LISTEN crm_dashboard_event")
        self.seen = []

    def wait(self, kind, timeout=30, **match):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.seen:
                if e["event"] == kind and all(e.get(k) == v for k, v in match.items()):
                    return e
            select.select([self.conn], [], [], 0.2)
            self.conn.poll()
            while self.conn.notifies:
                self.seen.append(json.loads(self.conn.notifies.pop(0).payload))
        raise AssertionError(f"no {kind} event {match}; saw {self.seen}")

    def close(self):
        self.conn.close()


def test_exit_75_is_retried_with_backoff_until_attempts_run_out(care):
    policy(care, "hubspot", max_attempts=3)
    care.fake("hubspot", "exit", "75")
    first = care.start("hubspot", "contact")
    rows = wait_chain(care, first, 3)
    assert [(a, s, c) for _, a, s, c in rows] == [(1, "failed", "temporary")] * 1 + \
        [(2, "failed", "temporary"), (3, "failed", "temporary")]
    # each attempt is its own row, linked to the first and numbered n of m
    runs = care.sql("SELECT attempt, max_attempts, first_attempt_id, priority, requested_via FROM crm_api.sync_runs "
                    "WHERE id = ANY(%s) ORDER BY id", ([r[0] for r in rows],))
    assert runs == [(1, 3, None, 0, "sql"), (2, 3, first, 2, "sql"), (3, 3, first, 2, "sql")]
    # the retries waited their backoff: each starts after the one before ended
    times = care.sql("SELECT start_time, end_time, not_before, queued_at FROM crm_dashboard.sync_history "
                     "WHERE id = ANY(%s) ORDER BY id", ([r[0] for r in rows],))
    for (s0, e0, _, _), (s1, _, nb1, _) in zip(times, times[1:]):
        assert s1 >= nb1 and s1 >= e0
    time.sleep(2)
    assert len(chain(care, first)) == 3  # attempts used up: no fourth


@pytest.mark.parametrize("code", ["77", "78"])
def test_exit_77_and_78_need_action_not_retries(care, code):
    events = Events(care.c)
    try:
        care.fake("hubspot", "exit", code)
        first = care.start("hubspot", "deal")
        run = care.wait(first)
        assert run["status"] == "failed" and run["error_class"] == "permanent"
        assert events.wait("action_required", run_id=first)["model"] == "deal"
    finally:
        events.close()
    time.sleep(1.5)
    assert len(chain(care, first)) == 1
    action, error = care.sql("SELECT action_required, action_required_error FROM crm_api.crm_models "
                             "WHERE crm = 'hubspot' AND model = 'deal'")[0]
    assert action is True and error.startswith(f"exited with code {code}")
    detail = care.one("SELECT crm_api.model_detail('hubspot', 'deal')")
    assert detail["state"]["action_required"] is True and detail["state"]["action_required_run_id"] == first
    assert care.one("SELECT action_required_models FROM crm_api.crm_sources WHERE crm = 'hubspot'") == 1
    # a success clears it
    care.fake("hubspot", "success", model="deal")
    care.wait(care.start("hubspot", "deal"))
    assert care.one("SELECT action_required FROM crm_api.crm_models WHERE crm = 'hubspot' AND model = 'deal'") is False


def test_an_error_event_marked_not_retryable_is_permanent(care):
    care.fake("hubspot", "permanent")
    first = care.start("hubspot", "contact")
    run = care.wait(first)
    assert run["status"] == "failed" and run["exit_code"] == 1 and run["error_class"] == "permanent"
    assert "API key revoked" in run["error_message"]
    time.sleep(1.5)
    assert len(chain(care, first)) == 1


def test_any_other_failure_and_a_crash_are_retried(care):
    policy(care, "hubspot", max_attempts=2)
    care.fake("hubspot", "fail")
    care.fake("hubspot", "crash", model="deal")
    failing, crashing = care.start("hubspot", "contact"), care.start("hubspot", "deal")
    assert [r[1:] for r in wait_chain(care, failing, 2)] == [(1, "failed", "temporary"), (2, "failed", "temporary")]
    assert [r[1:] for r in wait_chain(care, crashing, 2)] == [(1, "failed", "temporary"), (2, "failed", "temporary")]


def test_a_run_stopped_by_a_person_is_never_retried(care):
    care.register("hubspot", [os.path.join(os.path.dirname(__file__), "commands", "hang.sh")])
    first = care.start("hubspot", "contact")
    care.wait(first, ("running",))
    care.sql("SELECT crm_api.stop_sync(%s)", (first,))
    assert care.wait(first)["status"] == "cancelled"
    time.sleep(1.5)
    assert len(chain(care, first)) == 1


def test_a_missing_program_needs_action(care):
    care.register("hubspot", ["/nonexistent/sync"])
    first = care.start("hubspot", "contact")
    run = care.wait(first)
    assert run["status"] == "failed" and run["error_class"] == "permanent"
    time.sleep(1.5)
    assert len(chain(care, first)) == 1


def test_exit_75_after_a_rate_limit_is_retried_when_it_ends_without_using_an_attempt(care):
    policy(care, "hubspot", max_attempts=1)
    path = os.path.join(care.c.dir, "rate-flaky")
    if os.path.exists(path):
        os.remove(path)
    care.fake("hubspot", "flaky", path, "rate")
    first = care.start("hubspot", "contact")
    run = care.wait(first)
    assert run["status"] == "failed" and run["error_class"] == "rate_limited"
    assert run["error_message"].startswith("rate limited: HTTP 429 Too Many Requests")
    retry = care.one("SELECT id FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (first,))
    queued = care.run(retry)
    # one attempt allowed, yet retried: a rate-limit wait does not use one up
    assert queued["attempt"] == 1 and queued["max_attempts"] == 1
    if queued["status"] == "queued":
        assert queued["wait_reason"].startswith("rate limit until ")
        assert queued["rate_limited_until"] is not None
    limited_until = care.one("SELECT rate_limited_until FROM crm_dashboard.sync_history WHERE id = %s", (first,))
    done = care.wait(retry)
    assert done["status"] == "success"
    started = care.one("SELECT start_time FROM crm_dashboard.sync_history WHERE id = %s", (retry,))
    assert started >= limited_until
    assert [r[1:] for r in chain(care, first)] == [(1, "failed", "rate_limited"), (1, "success", None)]


def test_a_rate_limit_wait_is_not_a_stall_and_shows_until_when(care):
    policy(care, "hubspot", stall_timeout="1 second")
    care.fake("hubspot", "rate_wait", "3")
    first = care.start("hubspot", "contact")
    until = care.c.wait_for("SELECT rate_limited_until FROM crm_api.sync_runs WHERE id = %s", (first,))
    eta = care.one("SELECT eta_seconds FROM crm_api.sync_runs WHERE id = %s", (first,))
    # the ETA includes the rest of the wait
    assert eta is not None and eta >= 1.0
    assert care.one("SELECT %s > now()", (until,))
    run = care.wait(first)
    assert run["status"] == "success" and run["records_processed"] == 20


def test_a_silent_run_is_stopped_as_stalled_and_retried(care):
    policy(care, "hubspot", stall_timeout="1 second", max_attempts=2)
    events = Events(care.c)
    try:
        care.fake("hubspot", "sleep", "60")
        first = care.start("hubspot", "contact")
        run = care.wait(first)
        assert run["status"] == "failed" and run["error_class"] == "stalled"
        assert run["error_message"] == "stalled: no output for 1 s"
        assert events.wait("stalled", run_id=first)["detail"]["error_class"] == "stalled"
    finally:
        events.close()
    retry = care.one("SELECT id FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (first,))
    assert care.wait(retry)["error_class"] == "stalled"


def test_heartbeats_keep_a_run_alive(care):
    policy(care, "hubspot", stall_timeout="1 second")
    care.fake("hubspot", "heartbeat", "3")
    run = care.wait(care.start("hubspot", "contact"))
    assert run["status"] == "success"
    assert '"event": "heartbeat"' not in care.log(run["id"])  # not log text


def test_a_crm_pool_limits_its_runs_and_says_why(care):
    policy(care, "hubspot", max_running=1)
    care.fake("hubspot", "sleep", "2")
    care.fake("callrail", "sleep", "2")
    first = care.start("hubspot", "contact")
    care.wait(first, ("running",))
    second = care.start("hubspot", "deal")
    other = care.start("callrail", "call")
    care.wait(other, ("running",))
    reason = care.one("SELECT wait_reason FROM crm_api.sync_runs WHERE id = %s", (second,))
    assert reason == f"hubspot pool 1/1 busy (run {first})"
    assert care.wait(first)["status"] == "success"
    assert care.wait(second)["status"] == "success"
    starts = care.sql("SELECT start_time FROM crm_dashboard.sync_history WHERE id = %s", (second,))[0][0]
    assert starts >= care.one("SELECT end_time FROM crm_dashboard.sync_history WHERE id = %s", (first,))


def test_the_global_limit_says_why(care):
    care.sql("ALTER SYSTEM SET crm_dashboard.max_running_syncs = 1")
    care.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    care.fake("hubspot", "sleep", "2")
    care.fake("callrail", "success")
    first = care.start("hubspot", "contact")
    care.wait(first, ("running",))
    second = care.start("callrail", "call")
    assert care.one("SELECT wait_reason FROM crm_api.sync_runs WHERE id = %s", (second,)) == "global limit 1/1"
    assert care.wait(second)["status"] == "success"


def _blocked_queue(care):
    """One slot, taken by a run of five9 skill for about 3 s."""
    care.sql("ALTER SYSTEM SET crm_dashboard.max_running_syncs = 1")
    care.sql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    care.fake("five9", "success")
    care.fake("five9", "sleep", "3", model="skill")
    blocker = care.start("five9", "skill")
    care.wait(blocker, ("running",))
    return blocker


def _start_order(care, ids):
    rows = care.sql("SELECT id FROM crm_dashboard.sync_history WHERE id = ANY(%s) ORDER BY start_time, id", (ids,))
    return [r[0] for r in rows]


def test_a_person_goes_before_a_schedule_and_a_schedule_before_a_retry(care):
    blocker = _blocked_queue(care)
    # a retry: a queued next attempt, due now
    care.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, configuration, attempt, "
             "max_attempts, first_attempt_id, not_before, priority) "
             "VALUES ('five9', 'call', 'queued', jsonb_build_object('argv', jsonb_build_array(%s, 'success')), "
             "2, 3, %s, now(), 2)", (FAKE, blocker))
    retry = care.one("SELECT max(id) FROM crm_dashboard.sync_history WHERE sync_type = 'call'")
    scheduled = care.one("SELECT crm_dashboard.start_sync('five9', 'agent', '{}', via => 'schedule')")
    person1 = care.start("five9", "campaign")
    person2 = care.start("five9", "list")
    reasons = care.sql("SELECT wait_reason FROM crm_api.sync_runs WHERE id = ANY(%s)",
                       ([retry, scheduled, person1, person2],))
    assert {r[0] for r in reasons} == {"global limit 1/1"}
    for i in (retry, scheduled, person1, person2):
        care.wait(i)
    # first in first out among people, then the schedule, then the retry
    assert _start_order(care, [retry, scheduled, person1, person2]) == [person1, person2, scheduled, retry]


def test_a_waiting_run_climbs_with_age_so_nothing_starves(care):
    care.sql("ALTER SYSTEM SET crm_dashboard.priority_aging = 1")
    blocker = _blocked_queue(care)
    scheduled = care.one("SELECT crm_dashboard.start_sync('five9', 'agent', '{}', via => 'schedule')")
    time.sleep(1.5)
    person = care.start("five9", "campaign")
    care.wait(blocker)
    care.wait(scheduled)
    care.wait(person)
    # the schedule waited longer than one aging step: it went first
    assert _start_order(care, [scheduled, person]) == [scheduled, person]


def test_pause_holds_queued_runs_and_resume_lets_them_start(care):
    blocker = _blocked_queue(care)
    queued = care.start("five9", "call")
    care.sql("SET crm_dashboard.request_user = 'alice'; SELECT crm_api.pause_sync('five9', 'call', 'API migration')")
    care.wait(blocker)
    time.sleep(1)
    assert care.run(queued)["status"] == "queued"
    assert care.one("SELECT wait_reason FROM crm_api.sync_runs WHERE id = %s", (queued,)) == \
        "model paused by alice: API migration"
    care.sql("SELECT crm_api.resume_sync('five9', 'call')")
    assert care.wait(queued)["status"] == "success"


def test_start_sync_refuses_a_paused_model_unless_told(care):
    care.fake("hubspot", "success")
    care.sql("SELECT crm_api.pause_sync('hubspot', reason => 'contract ends')")
    with pytest.raises(psycopg2.Error) as e:
        care.start("hubspot", "contact")
    assert e.value.pgcode == "PT409" and "CRM hubspot is paused" in e.value.pgerror
    assert "ignore_pause" in e.value.diag.message_hint
    run = care.wait(care.start("hubspot", "contact", {"ignore_pause": True}))
    assert run["status"] == "success"
    assert care.sql("SELECT paused, pause_reason, paused_models FROM crm_api.crm_sources WHERE crm = 'hubspot'") == \
        [(True, "contract ends", 3)]


def test_consecutive_failures_pause_the_model_and_say_so(care):
    policy(care, "hubspot", max_attempts=10, pause_after_failures=3)
    events = Events(care.c)
    try:
        care.fake("hubspot", "fail")
        first = care.start("hubspot", "contact")
        event = events.wait("auto_paused", model="contact")
    finally:
        events.close()
    assert event["detail"]["reason"] == "paused after 3 consecutive failures"
    rows = wait_chain(care, first, 3)
    time.sleep(1.5)
    # paused instead of a fourth attempt
    assert len(chain(care, first)) == 3 and all(r[2] == "failed" for r in rows)
    state = care.sql("SELECT paused, pause_scope, paused_by, pause_reason FROM crm_api.crm_models "
                     "WHERE crm = 'hubspot' AND model = 'contact'")[0]
    assert state == (True, "model", "crm_dashboard", "paused after 3 consecutive failures")
    assert care.one("SELECT automatic FROM crm_api.pauses WHERE model = 'contact' AND active") is True
    # after a resume the count starts again: one more failure does not pause it again
    care.sql("SELECT crm_api.resume_sync('hubspot', 'contact')")
    policy(care, "hubspot", max_attempts=1)
    care.wait(care.start("hubspot", "contact"))
    assert care.one("SELECT paused FROM crm_api.crm_models WHERE crm = 'hubspot' AND model = 'contact'") is False


def test_an_all_run_shows_the_live_sum_of_its_models_and_an_eta_for_the_rest(care):
    care.fake("hubspot", "steps", "10")
    # the last model ran before, in 4 s: the ETA counts it
    care.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time) "
             "VALUES ('hubspot', 'contact', 'success', now() - interval '1 hour', now() - interval '1 hour' + interval '4 seconds')")
    parent = care.start("hubspot", "all")
    # while the second model runs, the parent counts the first and the live second
    deadline = time.time() + 30
    seen = None
    while time.time() < deadline:
        rows = care.sql("SELECT sync_type, status, records_processed FROM crm_dashboard.sync_history "
                        "WHERE parent_id = %s ORDER BY id", (parent,))
        running = [r for r in rows if r[1] == "running"]
        done = [r for r in rows if r[1] == "success"]
        if len(done) == 1 and running and 0 < running[0][2] < 100:
            total, eta = care.sql("SELECT records_processed, eta_seconds FROM crm_api.sync_runs WHERE id = %s",
                                  (parent,))[0]
            seen = (total, done[0][2], running[0][2], eta)
            break
        time.sleep(0.05)
    assert seen, "never saw the second model running"
    total, first, second, eta = seen
    assert first == 100 and total >= first + 1
    # the running model's rest plus the last model's 4 s
    assert eta is not None and eta >= 4
    final = care.wait(parent)
    assert final["status"] == "success" and final["records_processed"] == 300


def test_freshness_follows_a_schedule_and_its_changes_are_events(care):
    care.fake("hubspot", "success")
    job = care.one("SELECT crm_api.schedule_sync('hubspot', 'deal', '0 3 * * *')")
    try:
        source, cadence, expected = care.sql(
            "SELECT cadence_source, cadence_seconds, expected_by FROM crm_api.crm_models "
            "WHERE crm = 'hubspot' AND model = 'deal'")[0]
        assert (source, cadence) == ("schedule", 86400)
        assert expected == care.one("SELECT crm_dashboard.cron_next('0 3 * * *', created_at) "
                                    "FROM crm_dashboard.sync_schedule WHERE jobid = %s", (job,))
    finally:
        care.sql("SELECT crm_api.unschedule_sync(%s)", (job,))
    # an SLA on a never-synced model: overdue, announced when recorded
    care.sql("SELECT crm_api.set_freshness_sla('hubspot', 'company', '1 hour')")
    events = Events(care.c)
    try:
        care.sql("SELECT crm_dashboard.note_freshness()")
        event = events.wait("freshness", model="company")
    finally:
        events.close()
    assert event["detail"]["to"] == "overdue"
    assert care.one("SELECT freshness FROM crm_api.crm_sources WHERE crm = 'hubspot'") == "overdue"
    run = care.wait(care.start("hubspot", "company"))
    assert run["status"] == "success"
    assert care.one("SELECT freshness FROM crm_api.crm_models WHERE crm = 'hubspot' AND model = 'company'") == "on_time"


def test_starting_a_model_whose_retry_waits_says_so(care):
    policy(care, "hubspot", backoff_base="1 hour", backoff_cap="1 hour")
    care.fake("hubspot", "exit", "75")
    first = care.start("hubspot", "contact")
    care.wait(first)
    retry = care.one("SELECT id FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (first,))
    with pytest.raises(psycopg2.Error) as e:
        care.start("hubspot", "contact")
    assert e.value.pgcode == "55006"
    assert e.value.diag.message_primary == f"a retry of hubspot contact is already queued (run {retry})"
    assert e.value.diag.message_detail.startswith(f"Run {retry} is attempt 2 of 3, not before ")
    # the retry says why it waits, and when
    reason = care.one("SELECT wait_reason FROM crm_api.sync_runs WHERE id = %s", (retry,))
    assert reason.startswith("retry at ") and reason.endswith("(attempt 2 of 3)")
