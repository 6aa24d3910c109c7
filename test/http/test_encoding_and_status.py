"""Text that reaches SQL is valid UTF-8, CSV headers are quoted, and
SQLSTATEs map to HTTP statuses as PostgREST maps them."""
import csv
import io

import pytest


def post_raw(api, path, body, user="vera", headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return api.request("POST", path, body=body, headers=h, user=user)


def test_body_must_be_utf8(api):
    r = post_raw(api, "/api/rpc/count_rows", b'{"crm": "hub\xffspot", "model": "contact"}')
    assert r.status == 400 and r.json()["code"] == "PGRST102", r
    r.body.decode("utf-8")              # the error itself echoes no invalid bytes


@pytest.mark.parametrize("body", [
    b'{"crm": "hubspot\\u0000x", "model": "contact"}',
    b'{"crm\\u0000x": "hubspot", "model": "contact"}',
])
def test_escaped_nul_is_refused_not_truncated(api, body):
    # cJSON would cut "hubspot\u0000x" to "hubspot" and count that model's rows
    r = post_raw(api, "/api/rpc/count_rows", body)
    assert r.status == 400 and r.json()["code"] == "PGRST102", r


def test_escaped_backslash_before_u0000_is_plain_text(api):
    r = post_raw(api, "/api/rpc/count_rows", b'{"crm": "hub\\\\u0000", "model": "contact"}')
    assert r.status == 400 and r.json()["code"] == "42704", r     # unknown CRM "hub\u0000"


def test_non_utf8_header_stays_out_of_request_headers(api, cluster):
    cluster.sql("""
        CREATE OR REPLACE FUNCTION crm_api.echo_headers() RETURNS json LANGUAGE sql STABLE AS
            $$ SELECT current_setting('request.headers', true)::json $$;
        GRANT EXECUTE ON FUNCTION crm_api.echo_headers() TO crm_dashboard_viewer;
    """)
    r = api.request("POST", "/api/rpc/echo_headers", body=b"{}",
                    headers={"X-Bad": b"caf\xe9", "X-Good": "ok", "Content-Type": "application/json"},
                    user="vera")
    assert r.status == 200, r
    headers = r.json()
    assert headers["x-good"] == "ok" and "x-bad" not in headers
    assert "authorization" not in headers


def test_header_only_csv_export_quotes_column_names(api, cluster):
    cluster.sql('CREATE TABLE IF NOT EXISTS ingestion.hubspot_odd '
                '(id bigint PRIMARY KEY, "a,b" int, "say ""hi""" int)')
    # a search on a model without text columns runs no query: header only
    r = api.post("/api/rpc/export_rows", {"crm": "hubspot", "model": "odd", "search": "zz"},
                 user="vera", headers={"Accept": "text/csv"})
    assert r.status == 200, r
    assert r.body == b'id,"a,b","say ""hi"""\n'
    assert list(csv.reader(io.StringIO(r.body.decode()))) == [["id", "a,b", 'say "hi"']]


@pytest.mark.parametrize("sqlstate, status", [
    ("23505", 409), ("25006", 405), ("P0001", 400), ("42P01", 404), ("42501", 403),
    ("08006", 503), ("53100", 503), ("53400", 500), ("57P01", 503), ("57014", 500),
    ("57P03", 500), ("09000", 500), ("0L000", 403), ("0P000", 403), ("28000", 403),
    ("HV000", 500), ("42P17", 500), ("XX000", 500), ("P0002", 500), ("PT418", 418),
    ("22023", 400), ("42703", 400),
])
def test_sqlstate_to_status_as_postgrest(api, cluster, sqlstate, status):
    cluster.sql("""
        CREATE OR REPLACE FUNCTION crm_api.fail_with(code text) RETURNS void LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'failing with %', code USING ERRCODE = code; END $$;
        GRANT EXECUTE ON FUNCTION crm_api.fail_with(text) TO crm_dashboard_viewer;
    """)
    r = api.post("/api/rpc/fail_with", {"code": sqlstate}, user="vera")
    assert (r.status, r.json()["code"]) == (status, sqlstate)


def test_error_quoting_a_header_is_valid_utf8(api):
    r = api.get("/api/crm_sources", headers={"Accept": b"text/caf\xe9, x/\xf0\x9f\x99\x82"}, user="vera")
    assert r.status == 406 and r.json()["code"] == "PGRST107", r
    assert r.json()["details"] == "text/caf\ufffd, x/\U0001f642"


def test_token_with_a_duplicate_claim_is_refused(api):
    """cJSON reads the first "role", PostgreSQL's ->> the last: refuse the ambiguity."""
    import hashlib
    import hmac
    import time
    from conftest import SECRET, b64url
    exp = int(time.time()) + 600
    head = b64url(b'{"alg":"HS256","typ":"JWT"}')
    body = b64url(('{"role":"crm_dashboard_viewer","exp":%d,"role":"crm_dashboard_admin"}' % exp).encode())
    sig = b64url(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    r = api.get("/api/crm_sources", token=f"{head}.{body}.{sig}")
    assert r.status == 401 and r.json()["code"] == "PGRST301", r
