"""Cross-site request forgery: no page of another origin can act for a
signed-in user, over raw HTTP as a browser would send it.

A browser attaches the login cookie to requests that other pages make; to
it, 127.0.0.1:8899 and 127.0.0.1:8787 are the same site, so SameSite=Strict
does not stop a page on another port.  So the cookie authenticates only
GET /api/events, function bodies must be JSON (a form or text/plain body is
what another page can make a browser send), and any request whose Origin or
Sec-Fetch-Site shows another origin is refused, even with a valid token.
"""
import http.client
import json
import time

import pytest

JSON = {"Content-Type": "application/json"}
FOREIGN = "http://127.0.0.1:8899"


def new_user(name):
    return {"username": name, "password": name + "-password", "role": "admin"}


def user_exists(cluster, name):
    return cluster.sql("SELECT count(*) FROM crm_api.users WHERE username = %s", (name,))[0][0] == 1


def cookie(api, user="ada"):
    return {"Cookie": f"crm_dashboard_token={api.token(user)}"}


def own(api, host="127.0.0.1"):
    return f"http://{host}:{api.port}"


def events(api, headers):
    """Status and Content-Type of GET /api/events (the stream itself is not read)."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("GET", "/api/events", headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type") or ""
    finally:
        conn.close()


# -- the cookie ---------------------------------------------------------------

def test_login_cookie_is_scoped_to_the_event_stream(api):
    r = api.login("vera")
    attrs = [a.strip() for a in r.header("Set-Cookie").split(";")]
    assert attrs[0] == "crm_dashboard_token=" + r.json()["token"]
    assert {"HttpOnly", "SameSite=Strict", "Path=/api/events"} <= set(attrs), attrs


def test_cookie_alone_cannot_call_a_function(api, cluster):
    body = json.dumps(new_user("csrf_cookie"))
    r = api.request("POST", "/api/rpc/create_user", body=body, headers=dict(JSON, **cookie(api)))
    assert r.status == 401 and r.json()["code"] == "PGRST302", r
    assert not user_exists(cluster, "csrf_cookie")


@pytest.mark.parametrize("path", ["/api/crm_sources", "/api/rpc/whoami", "/api/users"])
def test_cookie_is_not_accepted_for_reads(api, path):
    r = api.get(path, headers=cookie(api))
    assert r.status == 401 and r.json()["code"] == "PGRST302", r


def test_cookie_still_opens_the_event_stream(api):
    status, ctype = events(api, cookie(api, "vera"))
    assert status == 200 and ctype.startswith("text/event-stream")
    assert events(api, {})[0] == 401


def test_logout_clears_the_cookie_at_its_path(api):
    r = api.post("/api/rpc/logout", user="vera")
    assert r.status == 204
    cleared = [c for c in r.headers_all("Set-Cookie") if "Path=/api/events" in c]
    assert len(cleared) == 1 and "Max-Age=0" in cleared[0] and cleared[0].startswith("crm_dashboard_token=;")


# -- the body's type ----------------------------------------------------------

# What an HTML form on another page can send besides text/plain (which, like
# fetch in no-cors mode, can carry the JSON itself).
FORM_BODIES = {
    "application/x-www-form-urlencoded": "username=csrf_form&password=x-password-1&role=admin",
    "multipart/form-data; boundary=b": ("--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n"
                                        "csrf_multi\r\n--b--\r\n"),
}


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain; charset=utf-8",
                                   "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
                                   None, "application/jsonp", "text/json", "application/json-seq"])
def test_a_body_that_is_not_json_is_415_even_with_a_token(api, cluster, ctype):
    if ctype in FORM_BODIES:
        body = FORM_BODIES[ctype]
    else:
        body = json.dumps(new_user("csrf_typed"))
    headers = {"Content-Type": ctype} if ctype else {}
    r = api.request("POST", "/api/rpc/create_user", body=body, headers=headers, user="ada")
    assert r.status == 415, r
    err = r.json()
    assert set(err) == {"code", "message", "details", "hint"}
    assert err["code"] == "PGRST102"
    assert err["message"] == "Content-Type not acceptable: " + (ctype or "(none)")
    for name in ("csrf_typed", "csrf_form", "csrf_multi"):
        assert not user_exists(cluster, name)


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON;charset=UTF-8", " application/json "])
def test_json_with_parameters_is_accepted(api, ctype):
    r = api.request("POST", "/api/rpc/whoami", body="{}", headers={"Content-Type": ctype}, user="vera")
    assert r.status == 200 and r.json()["username"] == "vera", r


def test_an_empty_untyped_body_is_an_empty_object(api):
    r = api.request("POST", "/api/rpc/whoami", user="vera")
    assert r.status == 200 and r.json()["username"] == "vera", r


# -- Origin and Sec-Fetch-Site ------------------------------------------------

@pytest.mark.parametrize("origin", [FOREIGN, "null", "http://localhost:{port}", "https://127.0.0.1:{port}",
                                    "http://127.0.0.1:{port}.evil.example", "http://127.0.0.1"])
def test_a_foreign_origin_is_403_even_with_a_token(api, cluster, origin):
    origin = origin.format(port=api.port)
    headers = dict(JSON, Origin=origin)
    r = api.request("POST", "/api/rpc/create_user", body=json.dumps(new_user("csrf_origin")),
                    headers=headers, user="ada")
    assert r.status == 403, r
    err = r.json()
    assert set(err) == {"code", "message", "details", "hint"}
    assert err["message"] == f'request from origin "{origin}" refused'
    assert own(api) in err["details"]
    assert not user_exists(cluster, "csrf_origin")
    assert api.get("/api/crm_sources", user="vera", headers={"Origin": origin}).status == 403


@pytest.mark.parametrize("site", ["same-site", "cross-site", "Cross-Site"])
def test_sec_fetch_site_of_another_origin_is_403_even_with_a_token(api, cluster, site):
    headers = dict(JSON, **{"Sec-Fetch-Site": site})
    r = api.request("POST", "/api/rpc/create_user", body=json.dumps(new_user("csrf_site")),
                    headers=headers, user="ada")
    assert r.status == 403, r
    assert site in r.json()["message"]
    assert not user_exists(cluster, "csrf_site")
    assert api.get("/api/crm_sources", user="vera", headers={"Sec-Fetch-Site": site}).status == 403


def test_a_foreign_page_cannot_open_the_event_stream_with_the_cookie(api):
    assert events(api, dict(cookie(api, "vera"), Origin=FOREIGN))[0] == 403
    assert events(api, dict(cookie(api, "vera"), **{"Sec-Fetch-Site": "same-site"}))[0] == 403


@pytest.mark.parametrize("headers", [
    {"Origin": "{own}"},
    {"Origin": "{own}", "Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "HTTP://127.0.0.1:{port}"},
])
def test_the_servers_own_pages_pass(api, headers):
    headers = {k: v.format(own=own(api), port=api.port) for k, v in headers.items()}
    r = api.request("POST", "/api/rpc/whoami", body="{}", headers=dict(JSON, **headers), user="vera")
    assert r.status == 200, r
    assert api.get("/api/crm_sources", user="vera", headers=headers).status == 200


def test_own_origin_follows_the_host_the_client_addressed(api):
    """Reached as localhost, the server's origin is http://localhost:port."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.putrequest("GET", "/api/crm_sources", skip_host=True)
        conn.putheader("Host", f"localhost:{api.port}")
        conn.putheader("Origin", own(api, "localhost"))
        conn.putheader("Authorization", "Bearer " + api.token("vera"))
        conn.endheaders()
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_static_ui_is_served_to_links_from_other_sites(api):
    """A link to the dashboard from a wiki or a chat is a cross-site navigation:
    the UI's files hold no data and need no credentials, so they are served."""
    r = api.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert r.status == 200 and r.header("Content-Type").startswith("text/html")


# -- crm_dashboard.http_allowed_origins ---------------------------------------

def set_allowed_origins(cluster, value):
    cluster.sql("ALTER SYSTEM SET crm_dashboard.http_allowed_origins = %s", (value,))
    cluster.sql("SELECT pg_reload_conf()")


def settle(check, want, streak=20, timeout=20):
    """Call check() until it returns want streak times in a row (every HTTP
    worker has reloaded: connections are spread over them)."""
    deadline = time.time() + timeout
    run = 0
    last = None
    while time.time() < deadline:
        last = check()
        run = run + 1 if last == want else 0
        if run >= streak:
            return
        time.sleep(0.02)
    raise AssertionError(f"never settled on {want!r} (last {last!r})")


def test_allowed_origins_admit_a_proxy_origin(api, cluster):
    proxy = "https://dash.example.com"

    def status(origin):
        return api.request("POST", "/api/rpc/whoami", body="{}", user="vera",
                           headers=dict(JSON, Origin=origin)).status

    assert status(proxy) == 403
    set_allowed_origins(cluster, f"http://other.example:8080, {proxy}")
    try:
        settle(lambda: status(proxy), 200)
        assert status("https://DASH.example.com:443") == 200
        assert status("http://other.example:8080") == 200
        assert status("https://dash.example.com.evil.example") == 403
        assert status(FOREIGN) == 403
        with pytest.raises(Exception, match="invalid origin"):
            cluster.sql("ALTER SYSTEM SET crm_dashboard.http_allowed_origins = 'dash.example.com/ui'")
    finally:
        cluster.sql("ALTER SYSTEM RESET crm_dashboard.http_allowed_origins")
        cluster.sql("SELECT pg_reload_conf()")
    settle(lambda: status(proxy), 403)
