"""The HTTP server never waits behind SQL: requests run on a pool of
connections, a slow one delays only itself, a client that leaves has its
query cancelled, a full pool answers 504, and a pooled connection carries
nothing from one request to the next.

A cluster of its own: one HTTP worker with a pool of two connections and a
short queue wait, so that two slow requests fill it.  The fixture adds two
functions to crm_api that only these tests have: test_sleep (a slow request)
and test_session (what a request sees of its session), and test_leak (a
function that changes session state, as a careless one might).
"""
import json
import os
import signal
import socket
import time

import pytest

from conftest import FIXTURE_SQL, PASSWORDS, SECRET, UI_DIR, make_ui_dir
from cluster import Cluster, suite_port
from http_client import Http

PG_PORT = suite_port(24446)
HTTP_PORT = suite_port(24487)

SETTINGS = {
    "shared_preload_libraries": "'crm_dashboard'",
    "crm_dashboard.database_name": "'postgres'",
    "crm_dashboard.http_port": str(HTTP_PORT),
    "crm_dashboard.http_workers": "1",
    "crm_dashboard.http_pool_size": "2",
    "crm_dashboard.http_pool_timeout": "500",
    "crm_dashboard.jwt_secret": f"'{SECRET}'",
    "crm_dashboard.http_request_timeout": "5",
    "crm_dashboard.ui_directory": f"'{UI_DIR}'",
    "restart_after_crash": "on",
}

TEST_FUNCTIONS = """
CREATE FUNCTION crm_api.test_sleep(seconds float8) RETURNS text
    LANGUAGE sql VOLATILE AS $$ SELECT pg_sleep(seconds)::text || 'slept' $$;
CREATE FUNCTION crm_api.test_session() RETURNS json
    LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'current_user', current_user::text,
        'role', current_setting('role'),
        'request_user', current_setting('crm_dashboard.request_user', true),
        'leak', current_setting('crm_dashboard_test.leak', true),
        'search_path', current_setting('search_path'),
        'work_mem', current_setting('work_mem'),
        'temp_tables', (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.oid = pg_my_temp_schema()),
        'prepared', (SELECT count(*) FROM pg_prepared_statements WHERE from_sql),
        'cursors', (SELECT count(*) FROM pg_cursors WHERE is_holdable),
        'advisory', (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
        'read_only', current_setting('transaction_read_only'),
        'backend', pg_backend_pid()) $$;
CREATE FUNCTION crm_api.test_leak() RETURNS text
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('crm_dashboard_test.leak', 'from ' || current_user, false);
    PERFORM set_config('work_mem', '77MB', false);
    PERFORM set_config('search_path', 'ingestion', false);
    CREATE TEMP TABLE leaked (secret text);
    INSERT INTO leaked VALUES ('admin only');
    EXECUTE 'PREPARE leaked_statement AS SELECT 1';
    EXECUTE 'DECLARE leaked_cursor CURSOR WITH HOLD FOR SELECT 1';
    PERFORM pg_advisory_lock(4242);
    RETURN 'changed';
END $$;
GRANT EXECUTE ON FUNCTION crm_api.test_sleep(float8), crm_api.test_session(), crm_api.test_leak()
    TO crm_dashboard_viewer;
GRANT TEMPORARY ON DATABASE postgres TO crm_dashboard_viewer;
"""


@pytest.fixture(scope="module")
def pool_cluster():
    make_ui_dir()
    c = Cluster("http-pool", PG_PORT, SETTINGS).init().start()
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute(FIXTURE_SQL)
        cur.execute(TEST_FUNCTIONS)
    conn.close()
    wait_for_port(HTTP_PORT)
    yield c
    c.stop("fast", check=False)


@pytest.fixture(scope="module")
def papi(pool_cluster):
    return Http(HTTP_PORT, PASSWORDS)


def wait_for_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def raw_request(method, path, token, body=None):
    """The bytes of one HTTP/1.1 request."""
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{HTTP_PORT}\r\n"
            f"Authorization: Bearer {token}\r\nConnection: close\r\n")
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + b"\r\n" + data


def start_slow(papi, seconds, user="vera"):
    """Send a slow request on a socket of its own; returns the socket (still waiting)."""
    s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=30)
    s.sendall(raw_request("POST", "/api/rpc/test_sleep", papi.token(user), {"seconds": seconds}))
    return s


def read_reply(s):
    chunks = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    s.close()
    return b"".join(chunks)


def running_sleeps(cluster):
    """The pool backends that run test_sleep now, with their application_name."""
    return cluster.sql("SELECT pid, application_name FROM pg_stat_activity "
                       " WHERE state = 'active' AND query LIKE '%http_serve%' "
                       "   AND application_name LIKE '%/api/rpc/test_sleep'")


def wait_sleeping(cluster, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = running_sleeps(cluster)
        if len(rows) >= n:
            return rows
        time.sleep(0.02)
    raise AssertionError(f"expected {n} slow requests in pg_stat_activity, saw {running_sleeps(cluster)}")


def wait_no_sleeps(cluster, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not running_sleeps(cluster):
            return True
        time.sleep(0.01)
    return False


def test_a_slow_request_delays_only_itself(pool_cluster, papi):
    slow = start_slow(papi, 4)
    wait_sleeping(pool_cluster, 1)
    for _ in range(5):
        r = papi.get("/api/crm_sources", user="vera")
        assert r.status == 200, r
    assert len(running_sleeps(pool_cluster)) == 1, "the fast requests finished while the slow one ran"
    reply = read_reply(slow)
    assert reply.startswith(b"HTTP/1.1 200") and b"slept" in reply


def test_static_files_login_and_events_go_on_while_every_connection_is_busy(pool_cluster, papi):
    token = papi.token("vera")
    events = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    events.sendall(raw_request("GET", "/api/events", token))
    assert events.recv(4096).startswith(b"HTTP/1.1 200")
    slow = [start_slow(papi, 4), start_slow(papi, 4)]
    wait_sleeping(pool_cluster, 2)

    assert papi.get("/").status == 200
    assert papi.get("/ui/js/app.js").status == 200
    # a login runs on the connection kept for the server's own work
    assert papi.post("/api/rpc/login", {"username": "otto", "password": PASSWORDS["otto"]}).status == 200
    pool_cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status) "
                     "VALUES ('hubspot', 'deal', 'running')")
    seen = b""
    while b"event: sync" not in seen:
        seen += events.recv(4096)
    assert len(running_sleeps(pool_cluster)) == 2, "all of it happened while both connections were busy"
    events.close()
    for s in slow:
        assert read_reply(s).startswith(b"HTTP/1.1 200")


def test_a_full_pool_answers_504_with_retry_after_and_never_hangs(pool_cluster, papi):
    slow = [start_slow(papi, 3), start_slow(papi, 3)]
    wait_sleeping(pool_cluster, 2)
    started = time.time()
    r = papi.get("/api/crm_sources", user="vera")
    waited = time.time() - started
    assert r.status == 504, r
    body = r.json()
    assert body["code"] == "PGRST003" and set(body) == {"code", "message", "details", "hint"}
    assert r.header("Retry-After") == "1"
    assert waited < 2.5, "the request waited its queue time, not for the slow ones"
    for s in slow:
        assert read_reply(s).startswith(b"HTTP/1.1 200")
    assert papi.get("/api/crm_sources", user="vera").status == 200


def test_a_client_that_leaves_has_its_query_cancelled(pool_cluster, papi):
    s = start_slow(papi, 60)
    wait_sleeping(pool_cluster, 1)
    s.close()
    # well before the statement time limit (5 s) would end it
    assert wait_no_sleeps(pool_cluster, 2), "the query of a client that left still runs"
    # and its connection serves others at once: both slots take slow requests again
    slow = [start_slow(papi, 1), start_slow(papi, 1)]
    wait_sleeping(pool_cluster, 2)
    for s in slow:
        assert read_reply(s).startswith(b"HTTP/1.1 200")


def test_a_client_that_leaves_while_queued_frees_its_place(pool_cluster, papi):
    slow = [start_slow(papi, 2), start_slow(papi, 2)]
    wait_sleeping(pool_cluster, 2)
    queued = start_slow(papi, 30)
    time.sleep(0.1)
    queued.close()
    for s in slow:
        assert read_reply(s).startswith(b"HTTP/1.1 200")
    assert wait_no_sleeps(pool_cluster, 3), "the request of a client that left while queued ran anyway"


def test_each_request_shows_in_pg_stat_activity_with_its_user_and_route(pool_cluster, papi):
    s = start_slow(papi, 3, user="otto")
    [(pid, name)] = wait_sleeping(pool_cluster, 1)
    assert name == "crm_dashboard http: otto POST /api/rpc/test_sleep"
    # a DBA cancels it like any other query: the client gets an error, not a hang
    assert pool_cluster.sql("SELECT pg_cancel_backend(%s)", (pid,)) == [(True,)]
    reply = read_reply(s)
    assert reply.split(b"\r\n")[0].split()[1] in (b"500", b"503", b"504"), reply[:200]
    assert b"57014" in reply
    # afterwards the connection is idle, under the pool's own name
    idle = pool_cluster.sql("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,))
    assert idle == [("crm_dashboard http pool",)]


def test_the_statement_time_limit_is_the_request_timeout(pool_cluster, papi):
    started = time.time()
    r = papi.post("/api/rpc/test_sleep", {"seconds": 30}, user="vera")
    assert r.json()["code"] == "57014", r
    assert time.time() - started < 9
    assert not running_sleeps(pool_cluster)


def test_a_reloaded_request_timeout_applies_to_the_next_requests(pool_cluster, papi):
    pool_cluster.sql("ALTER SYSTEM SET crm_dashboard.http_request_timeout = 1")
    pool_cluster.sql("SELECT pg_reload_conf()")
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            r = papi.post("/api/rpc/test_sleep", {"seconds": 2}, user="vera")
            if r.status != 200:
                break
        assert r.json()["code"] == "57014", r
    finally:
        pool_cluster.sql("ALTER SYSTEM RESET crm_dashboard.http_request_timeout")
        pool_cluster.sql("SELECT pg_reload_conf()")
    deadline = time.time() + 10
    while time.time() < deadline:
        if papi.post("/api/rpc/test_sleep", {"seconds": 2}, user="vera").status == 200:
            break
    else:
        raise AssertionError("the default time limit did not come back")


def session(papi, user):
    r = papi.post("/api/rpc/test_session", user=user)
    assert r.status == 200, r
    return r.json()


def test_a_pooled_connection_carries_nothing_to_the_next_user(pool_cluster, papi):
    clean = session(papi, "vera")
    # fill both connections with the admin's changes
    for _ in range(4):
        assert papi.post("/api/rpc/test_leak", user="ada").json() == "changed"
    backends = set()
    for _ in range(6):
        s = session(papi, "vera")
        backends.add(s["backend"])
        assert s["current_user"] == "crm_dashboard_viewer" and s["role"] == "crm_dashboard_viewer"
        assert s["request_user"] == "vera"
        assert s["leak"] in (None, ""), s
        assert s["work_mem"] == clean["work_mem"] and s["search_path"] == clean["search_path"], s
        assert s["temp_tables"] == 0, s
        assert s["read_only"] == "off"
        assert s["prepared"] == 0 and s["cursors"] == 0 and s["advisory"] == 0, s
    assert len(backends) <= 2
    # a GET is read-only, and that does not stick either
    r = papi.get("/api/rpc/test_session", user="vera")
    assert r.status == 200 and r.json()["read_only"] == "on"
    assert session(papi, "vera")["read_only"] == "off"


def test_what_a_failed_request_leaves_is_gone_too(pool_cluster, papi):
    pool_cluster.sql("""
        CREATE FUNCTION crm_api.test_leak_and_fail() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            EXECUTE 'PREPARE failed_statement AS SELECT 2';
            PERFORM pg_advisory_lock(4343);
            RAISE EXCEPTION 'failing on purpose';
        END $$;
        GRANT EXECUTE ON FUNCTION crm_api.test_leak_and_fail() TO crm_dashboard_viewer""")
    for _ in range(3):
        assert papi.post("/api/rpc/test_leak_and_fail", user="ada").status == 400
    for _ in range(4):
        s = session(papi, "vera")
        assert s["prepared"] == 0 and s["advisory"] == 0, s


def pool_backends(cluster):
    return [r[0] for r in cluster.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'crm_dashboard http%' "
        "   AND application_name <> 'crm_dashboard http control' AND backend_type = 'client backend'")]


def test_terminating_a_pool_backend_fails_only_its_request(pool_cluster, papi):
    s = start_slow(papi, 10)
    [(pid, _)] = wait_sleeping(pool_cluster, 1)
    other = start_slow(papi, 1)
    assert pool_cluster.sql("SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    reply = read_reply(s)
    assert reply.split(b"\r\n")[0].split()[1] in (b"500", b"503"), reply[:200]
    assert read_reply(other).startswith(b"HTTP/1.1 200"), "the other request was not touched"
    # the pool opens a new connection for the next requests
    for _ in range(4):
        assert papi.get("/api/crm_sources", user="vera").status == 200


def test_kill_9_of_a_pool_backend_is_survived(pool_cluster, papi):
    """SIGKILL of any backend makes PostgreSQL restart every process (shared
    memory may be damaged), the HTTP worker too: the request fails, and the
    server answers again without anyone's help."""
    s = start_slow(papi, 10)
    [(pid, _)] = wait_sleeping(pool_cluster, 1)
    os.kill(pid, signal.SIGKILL)
    reply = read_reply(s)
    assert not reply.startswith(b"HTTP/1.1 200"), reply[:200]
    deadline = time.time() + 60
    status = None
    while time.time() < deadline:
        try:
            papi.tokens.clear()
            status = papi.get("/api/crm_sources", user="vera").status
            if status == 200:
                break
        except (OSError, AssertionError):
            pass
        time.sleep(0.5)
    assert status == 200


def test_thousands_of_event_streams_are_held_and_all_get_each_event(pool_cluster, papi):
    """More streams than the soft limit of open files a server usually starts with (1024)."""
    import resource
    import selectors
    n = 1500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 500), hard))
    token = papi.token("vera")
    sel = selectors.DefaultSelector()
    streams = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=30)
            s.sendall(raw_request("GET", "/api/events", token))
            streams.append(s)
        for s in streams:
            head = b""
            while b"retry:" not in head:
                chunk = s.recv(4096)
                assert chunk, "a stream was closed"
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
        run = pool_cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status) "
                               "VALUES ('genius', 'lead', 'running') RETURNING id")[0][0]
        marker = f'"id":{run},'.encode()
        waiting = set(streams)
        deadline = time.time() + 30
        while waiting and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                key.data.extend(key.fileobj.recv(65536))
                if marker in key.data:
                    waiting.discard(key.fileobj)
        assert not waiting, f"{len(waiting)} of {n} streams did not get the event"
        # and the server still answers everything else
        assert papi.get("/api/crm_sources", user="vera").status == 200
    finally:
        for s in streams:
            s.close()
