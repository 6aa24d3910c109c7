"""The PostgREST subset: views, filters, counts, functions, errors, CSV, roles."""
import base64
import csv
import hashlib
import hmac
import io
import json
import time
import urllib.parse

import pytest

from conftest import SECRET, b64url, http_worker_pids, make_token


@pytest.fixture(scope="module")
def workers_before(cluster):
    return http_worker_pids(cluster)


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


# -- authentication ---------------------------------------------------------

def test_no_token_is_401(api, workers_before):
    r = api.get("/api/crm_sources")
    assert r.status == 401
    assert r.json()["code"] == "PGRST302"
    assert r.header("WWW-Authenticate") == "Bearer"
    assert set(r.json()) == {"code", "message", "details", "hint"}


def test_login_token_and_cookie(api):
    r = api.login("otto")
    body = r.json()
    assert body["username"] == "otto" and body["role"] == "crm_dashboard_operator"
    head, payload, sig = body["token"].split(".")
    # the token verifies with the configured secret
    mac = hmac.new(SECRET.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert b64url(mac) == sig
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert claims["exp"] - claims["iat"] == 8 * 3600
    cookie = r.header("Set-Cookie")
    assert cookie.startswith("crm_dashboard_token=" + body["token"])
    attrs = [a.strip() for a in cookie.split(";")[1:]]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/api/events"):
        assert attr in attrs, cookie


def test_login_bad_password_same_error_as_unknown_user(api):
    a = api.post("/api/rpc/login", {"username": "otto", "password": "nope-nope"})
    b = api.post("/api/rpc/login", {"username": "nobody", "password": "nope-nope"})
    assert a.status == b.status == 403
    assert a.json() == b.json()
    assert a.json()["code"] == "28P01"


def events_status(api, headers):
    """The status of GET /api/events with the given headers (the stream is not read)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("GET", "/api/events", headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_cookie_opens_only_the_event_stream_and_logout_clears_it(api):
    token = api.token("vera")
    cookie = {"Cookie": f"crm_dashboard_token={token}"}
    assert events_status(api, cookie) == 200
    r = api.get("/api/rpc/whoami", headers=cookie)
    assert r.status == 401 and r.json()["code"] == "PGRST302"
    r = api.post("/api/rpc/logout")
    assert r.status == 204
    cleared = [c for c in r.headers_all("Set-Cookie") if "Path=/api/events" in c]
    assert len(cleared) == 1 and "Max-Age=0" in cleared[0]


@pytest.mark.parametrize("case", ["expired", "not_yet", "alg_none", "forged", "garbage", "bad_role",
                                  "superuser_role", "no_role", "basic"])
def test_bad_tokens_are_401(api, case):
    now = int(time.time())
    good = {"role": "crm_dashboard_admin", "username": "x", "iat": now, "exp": now + 600}
    headers = {}
    if case == "expired":
        token = make_token(dict(good, exp=now - 120))
    elif case == "not_yet":
        token = make_token(dict(good, nbf=now + 3600))
    elif case == "alg_none":
        token = make_token(good, alg="none")
    elif case == "forged":
        token = make_token(good, secret="another-secret-of-sufficient-length-000")
    elif case == "garbage":
        token = "not.a.jwt"
    elif case == "bad_role":
        token = make_token(dict(good, role="no_such_role"))
    elif case == "superuser_role":
        token = make_token(dict(good, role="postgres"))
    elif case == "no_role":
        token = make_token({"exp": now + 600})
    else:
        token = None
        headers = {"Authorization": "Basic YWRhOmFkYQ=="}
    r = api.get("/api/crm_sources", token=token, headers=headers)
    assert r.status == 401, r
    if case in ("expired", "not_yet"):
        assert r.json()["code"] == "PGRST303"
        assert r.header("WWW-Authenticate") == 'Bearer error="invalid_token", error_description="JWT expired"'
    else:
        assert r.json()["code"] == "PGRST301"
        assert r.header("WWW-Authenticate").startswith("Bearer")


def test_token_within_clock_skew_is_accepted(api):
    now = int(time.time())
    token = make_token({"role": "crm_dashboard_viewer", "exp": now - 10, "iat": now - 100})
    assert api.get("/api/crm_sources", token=token).status == 200


# -- reading views ------------------------------------------------------------

@pytest.mark.parametrize("view", ["crm_sources", "crm_models", "model_columns", "sync_runs", "sync_errors"])
def test_every_view_is_readable_by_a_viewer(api, view):
    r = api.get(f"/api/{view}", user="vera")
    assert r.status == 200, r
    assert isinstance(r.json(), list)
    assert r.header("Content-Type").startswith("application/json")
    assert r.header("Content-Range")


def test_select_alias_cast_order_limit(api):
    r = api.get(q("/api/crm_models", select="name:model,crm,rows:estimated_rows::text",
                  crm="eq.hubspot", order="model.desc", limit="1"), user="vera")
    assert r.status == 200, r
    assert r.json() == [{"name": "deal", "crm": "hubspot", "rows": r.json()[0]["rows"]}]
    assert isinstance(r.json()[0]["rows"], str)


@pytest.mark.parametrize("flt,expected", [
    ({"crm": "eq.hubspot"}, {("hubspot", "contact"), ("hubspot", "deal")}),
    ({"crm": "neq.hubspot"}, {("genius", "lead")}),
    ({"records_processed": "gt.3"}, {("hubspot", "contact"), ("genius", "lead")}),
    ({"records_processed": "gte.5"}, {("hubspot", "contact"), ("genius", "lead")}),
    ({"records_processed": "lt.5"}, {("hubspot", "deal")}),
    ({"records_processed": "lte.5"}, {("hubspot", "deal"), ("genius", "lead")}),
    ({"model": "like.*on*"}, {("hubspot", "contact")}),
    ({"model": "ilike.*DEA*"}, {("hubspot", "deal")}),
    ({"model": "in.(lead,deal)"}, {("hubspot", "deal"), ("genius", "lead")}),
    ({"model": "in.()"}, set()),
    ({"error_message": "is.null"}, {("hubspot", "contact")}),
    ({"error_message": "not.is.null"}, {("hubspot", "deal"), ("genius", "lead")}),
    ({"crm": "not.eq.hubspot", "model": "eq.lead"}, {("genius", "lead")}),
    ({"records_processed": "gt.1", "status": "in.(success,\"partial\")"}, {("hubspot", "contact"), ("genius", "lead")}),
])
def test_filters(api, flt, expected):
    r = api.get(q("/api/sync_runs", select="crm,model", **flt), user="vera")
    assert r.status == 200, r
    assert {(x["crm"], x["model"]) for x in r.json()} == expected


def test_filter_values_are_parameters_not_sql(api):
    r = api.get(q("/api/sync_runs", crm="eq.x' OR '1'='1"), user="vera")
    assert r.status == 200 and r.json() == []
    r = api.get(q("/api/sync_runs", select='crm,"model"'), user="vera")
    assert r.status == 400 and r.json()["code"] == "42703"


def test_counts_and_ranges(api):
    r = api.get(q("/api/sync_runs", select="id", limit="2", order="id"), user="vera",
                headers={"Prefer": "count=exact"})
    assert r.status == 206 and r.header("Content-Range") == "0-1/3"
    r = api.get(q("/api/sync_runs", select="id", offset="2"), user="vera", headers={"Prefer": "count=exact"})
    assert r.status == 200 and r.header("Content-Range") == "2-2/3"
    r = api.get(q("/api/sync_runs", offset="7"), user="vera", headers={"Prefer": "count=exact"})
    assert r.status == 416 and r.json()["code"] == "PGRST103" and r.header("Content-Range") == "*/3"
    r = api.get(q("/api/sync_runs", offset="7"), user="vera")
    assert r.status == 200 and r.json() == [] and r.header("Content-Range") == "*/*"
    for pref in ("count=planned", "count=estimated"):
        r = api.get("/api/sync_runs", user="vera", headers={"Prefer": f"return=minimal, {pref}"})
        total = r.header("Content-Range").split("/")[1]
        assert total.isdigit(), r.headers


def test_head_counts_without_body(api):
    r = api.request("HEAD", "/api/sync_runs", user="vera", headers={"Prefer": "count=exact"})
    assert r.status == 200 and r.body == b"" and r.header("Content-Range") == "0-2/3"


def test_single_object(api):
    obj = {"Accept": "application/vnd.pgrst.object+json"}
    r = api.get(q("/api/crm_sources", crm="eq.hubspot"), user="vera", headers=obj)
    assert r.status == 200 and r.json()["crm"] == "hubspot"
    r = api.get("/api/crm_sources", user="vera", headers=obj)
    assert r.status == 406 and r.json()["code"] == "PGRST116"


@pytest.mark.parametrize("path,headers,status,code", [
    ("/api/crm_sources?crm=xx.1", {}, 400, "PGRST100"),
    ("/api/crm_sources?crm=eq", {}, 400, "PGRST100"),
    ("/api/crm_sources?crm=in.(a", {}, 400, "PGRST100"),
    ("/api/crm_sources?crm=is.maybe", {}, 400, "PGRST100"),
    ("/api/crm_sources?order=crm.sideways", {}, 400, "PGRST100"),
    ("/api/crm_sources?or=(crm.eq.a)", {}, 400, "PGRST100"),
    ("/api/crm_sources?limit=abc", {}, 400, "PGRST100"),
    ("/api/crm_sources?limit=-1", {}, 416, "PGRST103"),
    ("/api/crm_sources?nope=eq.1", {}, 400, "42703"),
    ("/api/crm_sources?select=crm::no_such_type", {}, 400, "42704"),
    ("/api/sync_runs?id=eq.notanumber", {}, 400, "22P02"),
    ("/api/pg_class", {}, 404, "PGRST205"),
    ("/api/dashboard_user", {}, 404, "PGRST205"),
    ("/api/crm_sources/extra", {}, 404, "PGRST125"),
    ("/api/crm_sources", {"Accept-Profile": "public"}, 406, "PGRST106"),
    ("/api/crm_sources", {"Accept": "image/png"}, 406, "PGRST107"),
])
def test_read_errors(api, path, headers, status, code):
    r = api.get(path, user="vera", headers=headers)
    assert r.status == status, r
    assert r.json()["code"] == code
    assert r.header("Content-Type") == "application/json; charset=utf-8"


# -- functions ----------------------------------------------------------------

def test_rpc_json_and_scalar_results(api):
    r = api.post("/api/rpc/model_detail", {"crm": "hubspot", "model": "contact", "exact_count": True}, user="vera")
    assert r.status == 200, r
    assert r.json()["exact_rows"] == 300
    r = api.get(q("/api/rpc/count_rows", crm="hubspot", model="deal"), user="vera")
    assert r.status == 200 and r.json() == 20
    r = api.get("/api/rpc/whoami", user="ada")
    assert r.json() == {"username": "ada", "role": "crm_dashboard_admin"}


def test_rpc_set_result_is_an_array(api):
    r = api.post("/api/rpc/export_rows", {"crm": "hubspot", "model": "deal"}, user="vera")
    assert r.status == 200, r
    rows = r.json()
    assert len(rows) == 20 and rows[0]["name"].startswith("deal")
    r = api.get(q("/api/rpc/export_rows", crm="hubspot", model="deal", limit="5", offset="5"), user="vera")
    assert len(r.json()) == 5 and r.header("Content-Range") == "5-9/*"


@pytest.mark.parametrize("method,path,body,status,code", [
    ("POST", "/api/rpc/no_such_fn", {}, 404, "PGRST202"),
    ("POST", "/api/rpc/count_rows", {"crm": "hubspot", "bogus": 1}, 404, "PGRST202"),
    ("POST", "/api/rpc/count_rows", {"crm": "hubspot"}, 404, "PGRST202"),
    ("POST", "/api/rpc/count_rows", "{not json", 400, "PGRST102"),
    ("POST", "/api/rpc/count_rows", "[1,2]", 400, "PGRST102"),
    ("POST", "/api/rpc/count_rows", "{} {}", 400, "PGRST102"),
    ("POST", "/api/rpc/count_rows", {"crm": "nosuch", "model": "x"}, 400, "42704"),
    ("GET", "/api/rpc/start_sync?crm=hubspot&model=contact", None, 405, "PGRST101"),
    ("GET", "/api/rpc/pg_sleep?seconds=1", None, 404, "PGRST202"),
    ("PUT", "/api/rpc/count_rows", "{}", 405, "PGRST117"),
    ("GET", "/api/rpc/export_rows?crm=hubspot&model=deal&limit=abc", None, 400, "PGRST100"),
    ("POST", "/api/rpc/export_rows?limit=-2", {"crm": "hubspot", "model": "deal"}, 416, "PGRST103"),
])
def test_rpc_errors(api, method, path, body, status, code):
    headers = {"Content-Type": "application/json"} if isinstance(body, str) else None
    r = api.request(method, path, body=body, user="vera", headers=headers)
    assert r.status == status, r
    assert r.json()["code"] == code


def test_roles(api, cluster):
    # a viewer may not start a sync; an admin may manage users, others not
    r = api.post("/api/rpc/start_sync", {"crm": "hubspot", "model": "contact"}, user="vera")
    assert r.status == 403 and r.json()["code"] == "42501"
    r = api.post("/api/rpc/create_user", {"username": "eve", "password": "eve-password", "role": "admin"},
                 user="otto")
    assert r.status == 403
    r = api.post("/api/rpc/create_user", {"username": "wes", "password": "wes-password", "role": "viewer"},
                 user="ada")
    assert r.status == 200 and r.json()["role"] == "crm_dashboard_viewer"
    r = api.post("/api/rpc/create_user", {"username": "wes", "password": "wes-password"}, user="ada")
    assert r.status == 409
    r = api.post("/api/rpc/set_password", {"username": "wes", "password": "wes-password-2"}, user="ada")
    assert r.status == 204 and r.body == b""
    r = api.post("/api/rpc/delete_user", {"username": "wes"}, user="ada")
    assert r.status == 204
    r = api.post("/api/rpc/delete_user", {"username": "wes"}, user="ada")
    assert r.status == 404
    r = api.get("/api/users", user="vera")
    assert r.status == 403
    assert [u["username"] for u in api.get("/api/users?order=username", user="ada").json()] == ["ada", "otto", "vera"]


def test_anonymous_role_only_reaches_login(api):
    # without crm_dashboard.anon_role the login role can call login and nothing else
    r = api.post("/api/rpc/whoami")
    assert r.status == 401 and r.json()["code"] == "PGRST302"
    r = api.post("/api/rpc/start_sync", {"crm": "hubspot", "model": "contact"})
    assert r.status == 401


# -- CSV ------------------------------------------------------------------------

def test_view_as_csv(api):
    r = api.get(q("/api/sync_runs", select="crm,model,error_message", order="id"), user="vera",
                headers={"Accept": "text/csv"})
    assert r.status == 200 and r.header("Content-Type").startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.body.decode())))
    assert rows[0] == ["crm", "model", "error_message"]
    assert rows[1] == ["hubspot", "contact", ""]
    assert rows[2] == ["hubspot", "deal", "api said no"]
    assert len(rows) == 4


def test_export_rows_as_csv_with_filename(api):
    r = api.post("/api/rpc/export_rows", {"crm": "hubspot", "model": "contact", "sort": "id"}, user="vera",
                 headers={"Accept": "text/csv"})
    assert r.status == 200, r
    assert r.header("Content-Disposition") == 'attachment; filename="hubspot_contact.csv"'
    text = r.body.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "email", "note", "updated_at"]
    assert len(rows) == 301
    assert rows[1][:3] == ["1", "c1@example.com", "has, comma"]
    assert rows[2][2] == 'has "quote"'
    assert '"has ""quote"""' in text
    assert rows[3][2] == ""           # NULL is an empty field
    r = api.get(q("/api/rpc/export_rows", crm="hubspot", model="deal"), user="vera",
                headers={"Accept": "text/csv"})
    assert r.status == 200 and r.body.decode().count("\n") == 21


# -- hostile input -------------------------------------------------------------

def test_limits(api):
    assert api.get("/api/crm_sources?crm=eq." + "a" * 9000, user="vera").status == 414
    many = {f"X-Filler-{i}": "1" for i in range(120)}
    assert api.get("/api/crm_sources", headers=many, user="vera").status == 431
    huge = api.raw(b"GET /api/crm_sources HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    assert huge.split(b"\r\n")[0] in (b"HTTP/1.1 431 Request Header Fields Too Large",
                                      b"HTTP/1.1 414 URI Too Long") or huge == b""
    r = api.post("/api/rpc/login", "x" * 70000)
    assert r.status == 413 and r.json()["code"] == "PGRST100"
    r = api.raw(b"POST /api/rpc/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 413")


def test_malformed_requests(api):
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET /api/crm_sources HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe.\x00.x\r\n\r\n"):
        out = api.raw(junk)
        assert out == b"" or out[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4") or out.startswith(b"HTTP/1.1 505"), out[:80]


def test_slowloris_is_dropped(api):
    import socket
    s = socket.create_connection(("127.0.0.1", api.port), timeout=15)
    s.sendall(b"GET /api/crm_sources HTTP/1.1\r\nHost: x\r\n")
    start = time.time()
    s.settimeout(15)
    data = s.recv(1024)   # the server closes an idle, incomplete request
    s.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 408")
    assert time.time() - start < 10


def test_workers_never_crashed(cluster, api, workers_before):
    assert api.get("/api/crm_sources", user="vera").status == 200
    assert http_worker_pids(cluster) == workers_before
    assert "terminated by signal" not in cluster.log()


@pytest.mark.parametrize("args", [
    {"sort": "id", "descending": True, "search": "c1"},
    {"sort": "note"},
    {"sort": "note", "descending": True},
    {},
])
def test_csv_export_matches_export_rows(api, args):
    body = dict({"crm": "hubspot", "model": "contact"}, **args)
    as_json = api.post("/api/rpc/export_rows", body, user="vera").json()
    r = api.post("/api/rpc/export_rows", body, user="vera", headers={"Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(r.body.decode())))[1:]
    assert [int(x[0]) for x in rows] == [x["id"] for x in as_json]
    assert [x[2] or None for x in rows] == [x["note"] for x in as_json]


def test_csv_with_counts_and_ranges(api):
    r = api.get("/api/sync_runs?select=id&limit=1&order=id", user="vera",
                headers={"Accept": "text/csv", "Prefer": "count=exact"})
    assert r.status == 206 and r.header("Content-Range") == "0-0/3"
    assert r.body.decode().splitlines()[0] == "id"
    r = api.get("/api/sync_runs?offset=9", user="vera", headers={"Accept": "text/csv", "Prefer": "count=exact"})
    assert r.status == 416 and r.json()["code"] == "PGRST103"


def test_random_queries_never_fail_the_server(api):
    """A seeded storm of odd query strings and bodies: always a 2xx or 4xx answer."""
    import random
    rng = random.Random(4)
    pieces = ["select=", "order=", "limit=", "offset=", "crm=", "id=", "status=", "not.", "eq.", "in.(", ")",
              "is.", "like.", "ilike.", "*", ",", ".", "::", ":", "%00", "%2e%2e", "%ff", "'", '"', "\\", "(",
              "null", "desc", "nullsfirst", "-1", "99999999999999999999", "&", "=", "+", "text", "json", "%F0%9F%99%82", "%C3"]
    for _ in range(250):
        qs = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        r = api.get("/api/sync_runs?" + qs, user="vera")
        assert r.status < 500, (qs, r)
        if r.status >= 400:
            assert set(r.json()) == {"code", "message", "details", "hint"}
    bodies = ['{"crm": {"a": [1, 2]}, "model": null}', '{"crm": 1e999}', '{"crm": "\\u0000"}', '""', "null",
              '{"crm": "hubspot", "model": "contact", "per_page": "many"}', "{" * 5000, '{"a":' * 100]
    for body in bodies:
        r = api.post("/api/rpc/model_rows", body, user="vera", headers={"Content-Type": "application/json"})
        assert r.status < 500, (body, r)


def test_range_header(api):
    r = api.get("/api/sync_runs?select=id&order=id", user="vera", headers={"Range": "1-2", "Range-Unit": "items"})
    assert r.status == 200 and len(r.json()) == 2 and r.header("Content-Range") == "1-2/*"
    r = api.get("/api/sync_runs?select=id", user="vera", headers={"Range": "2-1"})
    assert r.status == 416 and r.json()["code"] == "PGRST103"


def test_csv_export_with_null_arguments_and_paging(api):
    body = {"crm": "hubspot", "model": "deal", "search": None, "sort": "id"}
    r = api.post("/api/rpc/export_rows", body, user="vera", headers={"Accept": "text/csv"})
    assert r.status == 200 and r.body.decode().count("\n") == 21
    # limit and offset count rows of the same export
    r = api.post("/api/rpc/export_rows?limit=3&offset=2", body, user="vera", headers={"Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(r.body.decode())))
    assert r.status == 200 and rows[0] == ["id", "name", "amount"] and [x[0] for x in rows[1:]] == ["3", "4", "5"]


def test_request_settings_and_read_only_get(api, cluster):
    cluster.sql("""
        CREATE FUNCTION crm_api.request_info() RETURNS json LANGUAGE sql STABLE AS $$
            SELECT json_build_object('claims', current_setting('request.jwt.claims', true)::json,
                                     'method', current_setting('request.method', true),
                                     'path', current_setting('request.path', true),
                                     'headers', current_setting('request.headers', true)::json,
                                     'role', current_user, 'search_path', current_setting('search_path'),
                                     'read_only', current_setting('transaction_read_only'))
        $$;
        CREATE SEQUENCE crm_dashboard.request_test_seq;
        GRANT USAGE ON SEQUENCE crm_dashboard.request_test_seq TO crm_dashboard_viewer;
        CREATE FUNCTION crm_api.sneaky_write() RETURNS int LANGUAGE sql STABLE AS $$
            SELECT nextval('crm_dashboard.request_test_seq')::int
        $$;
        GRANT EXECUTE ON FUNCTION crm_api.request_info(), crm_api.sneaky_write() TO crm_dashboard_viewer;
    """)
    try:
        token = api.token("vera")
        r = api.get("/api/rpc/request_info", token=token, headers={"X-Trace-Id": "abc"})
        info = r.json()
        assert info["claims"]["username"] == "vera" and info["claims"]["role"] == "crm_dashboard_viewer"
        assert info["method"] == "GET" and info["path"] == "/api/rpc/request_info"
        assert info["headers"]["x-trace-id"] == "abc"
        assert "authorization" not in info["headers"] and "cookie" not in info["headers"]
        assert info["role"] == "crm_dashboard_viewer" and info["search_path"] == "crm_api"
        assert info["read_only"] == "on"
        assert api.post("/api/rpc/request_info", token=token).json()["read_only"] == "off"
        # GET runs read-only: a "stable" function that writes is refused
        r = api.get("/api/rpc/sneaky_write", token=token)
        assert r.status == 405 and r.json()["code"] == "25006"
        assert token not in cluster.log()
    finally:
        cluster.sql("DROP FUNCTION crm_api.request_info(), crm_api.sneaky_write(); "
                    "DROP SEQUENCE crm_dashboard.request_test_seq")
