"""Attacks on sessions: password guessing, lockouts, and tokens that outlive
what should end them.

Findings 3 (the login throttle could be bypassed, and could lock out the
owner), 4 (tokens outlived logout, password and role changes, and user
deletion; event streams stayed open) and 12 (failed logins and lockouts left
no line in the server log).  Every test failed on 1.0.0.
"""
import socket
import time
import uuid

import psycopg2
import pytest

from conftest import HTTP_PORT

LOCKOUT = 2  # seconds, for these tests


@pytest.fixture
def throttle(cluster, api):
    """Short lockouts for the test; afterwards wait them out so others can log in."""
    def settings(**values):
        for name, value in values.items():
            cluster.sql(f"ALTER SYSTEM SET crm_dashboard.{name} = %s", (str(value),))
        cluster.sql("SELECT pg_reload_conf()")
        time.sleep(0.3)
    settings(login_lockout=LOCKOUT)
    yield settings
    for name in ("login_lockout", "login_max_failures", "login_max_address_failures"):
        cluster.sql(f"ALTER SYSTEM RESET crm_dashboard.{name}")
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(LOCKOUT + 0.5)


def http_login(api, username, password):
    return api.post("/api/rpc/login", {"username": username, "password": password})


def sql_login(cluster, username, password):
    """Log in over SQL through the Unix socket (another client address than HTTP's 127.0.0.1)."""
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT crm_api.login(%s, %s) ->> 'role'", (username, password))
            return cur.fetchone()[0]
    except psycopg2.Error as e:
        return e.pgcode
    finally:
        conn.close()


@pytest.fixture
def user(cluster):
    """A fresh dashboard viewer (name, password), deleted afterwards."""
    name = "u" + uuid.uuid4().hex[:10]
    password = "pw-" + uuid.uuid4().hex
    cluster.sql("SELECT crm_api.create_user(%s, %s, 'viewer')", (name, password))
    yield name, password
    cluster.sql("DELETE FROM crm_dashboard.dashboard_user WHERE username = %s", (name,))


# -- Finding 3: the throttle ------------------------------------------------

def test_failures_under_other_names_do_not_clear_a_names_counter(cluster, api, throttle, user):
    name, password = user
    throttle(login_max_address_failures=0)  # isolate the per-name counter
    for _ in range(4):
        assert http_login(api, name, "wrong").status == 403
    # 1.0.0 kept 256 counters: this many other names pushed the victim's out
    for i in range(300):
        assert http_login(api, f"other{i}", "wrong").status in (403, 429)
    assert http_login(api, name, "wrong").status == 403     # the fifth failure locks
    r = http_login(api, name, password)
    assert r.status == 429 and r.json()["code"] == "PT429", r


def test_lockout_never_blocks_the_right_password_from_another_address(cluster, api, throttle, user):
    name, password = user
    for _ in range(5):
        http_login(api, name, "wrong")
    assert http_login(api, name, password).status == 429          # locked at 127.0.0.1
    assert sql_login(cluster, name, password) == "crm_dashboard_viewer"   # not from [local]
    time.sleep(LOCKOUT + 0.5)
    assert http_login(api, name, password).status == 200


def test_rotating_names_from_one_address_is_throttled(cluster, api, throttle, user):
    name, password = user
    throttle(login_max_address_failures=10)
    for i in range(10):
        http_login(api, f"guess{i}", "wrong")
    # the address is locked now, even for a name that never failed
    assert http_login(api, name, password).status == 429
    assert sql_login(cluster, name, password) == "crm_dashboard_viewer"


# -- Finding 12: failed logins and lockouts in the server log ---------------

def test_failed_logins_and_lockouts_are_logged_without_the_password(cluster, api, throttle, user):
    name, _ = user
    secret_guess = "guess-" + uuid.uuid4().hex
    for _ in range(5):
        http_login(api, name, secret_guess)
    time.sleep(0.3)
    log = cluster.log()
    assert f'failed login of dashboard user "{name}" from 127.0.0.1' in log
    assert f'logins of dashboard user "{name}" from 127.0.0.1 locked for {LOCKOUT} s after 5 failures' in log
    assert secret_guess not in log


def test_hostile_user_names_cannot_forge_log_lines(cluster, api, throttle):
    http_login(api, "evil\nLOG:  forged line", "wrong")
    time.sleep(0.3)
    assert "\nLOG:  forged line" not in cluster.log()


# -- Finding 4: tokens are revoked at once ----------------------------------

def token_of(api, name, password):
    r = http_login(api, name, password)
    assert r.status == 200, r
    return r.json()["token"]


def still_valid(api, token):
    r = api.get("/api/crm_sources", token=token)
    assert r.status in (200, 401), r
    return r.status == 200


def test_logout_revokes_the_token(api, user):
    token = token_of(api, *user)
    assert still_valid(api, token)
    r = api.post("/api/rpc/logout", {}, token=token)
    assert r.status == 204, r
    r = api.get("/api/crm_sources", token=token)
    assert r.status == 401 and r.json()["message"] == "JWT has been revoked", r
    assert r.header("WWW-Authenticate").startswith("Bearer")


def test_logout_ends_every_session_of_the_user(api, user):
    first, second = token_of(api, *user), token_of(api, *user)
    api.post("/api/rpc/logout", {}, token=first)
    assert not still_valid(api, second)
    assert still_valid(api, token_of(api, *user))   # a new login works


def test_password_change_revokes_tokens(cluster, api, user):
    token = token_of(api, *user)
    cluster.sql("SELECT crm_api.set_password(%s, 'a-new-password-1')", (user[0],))
    assert not still_valid(api, token)
    assert still_valid(api, token_of(api, user[0], "a-new-password-1"))


def test_role_change_revokes_tokens(cluster, api, user):
    token = token_of(api, *user)
    r = api.post("/api/rpc/set_user_role", {"username": user[0], "role": "operator"}, user="ada")
    assert r.status == 200 and r.json()["role"] == "crm_dashboard_operator", r
    assert not still_valid(api, token)


def test_deleting_the_user_revokes_tokens(cluster, api, user):
    token = token_of(api, *user)
    cluster.sql("SELECT crm_api.delete_user(%s)", (user[0],))
    assert not still_valid(api, token)


def test_revoked_token_cannot_act(api, cluster, user):
    cluster.sql("SELECT crm_api.set_user_role(%s, 'operator')", (user[0],))
    token = token_of(api, *user)
    api.post("/api/rpc/logout", {}, token=token)
    r = api.post("/api/rpc/start_sync", {"crm": "hubspot", "model": "contact"}, token=token)
    assert r.status == 401, r


def open_stream(token):
    """An open /api/events stream (raw socket), after its headers."""
    s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    s.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "the stream closed before its headers"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def closed_within(s, seconds):
    """Whether the server closes the stream within seconds (heartbeats are read and ignored)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


@pytest.mark.parametrize("revoke", ["logout", "password", "role", "delete"])
def test_event_streams_close_within_5_seconds_of_revocation(cluster, api, user, revoke):
    token = token_of(api, *user)
    stream = open_stream(token)
    try:
        assert not closed_within(stream, 0.5)
        if revoke == "logout":
            assert api.post("/api/rpc/logout", {}, token=token).status == 204
        elif revoke == "password":
            cluster.sql("SELECT crm_api.set_password(%s, 'another-password-1')", (user[0],))
        elif revoke == "role":
            cluster.sql("SELECT crm_api.set_user_role(%s, 'operator')", (user[0],))
        else:
            cluster.sql("SELECT crm_api.delete_user(%s)", (user[0],))
        assert closed_within(stream, 5.0), f"the stream stayed open after {revoke}"
    finally:
        stream.close()


def test_other_users_streams_stay_open(cluster, api, user):
    other = token_of(api, "vera", "vera-password")
    stream = open_stream(other)
    try:
        api.post("/api/rpc/logout", {}, token=token_of(api, *user))
        assert not closed_within(stream, 4.0)
    finally:
        stream.close()
