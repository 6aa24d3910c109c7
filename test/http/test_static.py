"""The static UI: files, content types, ETag/304, security headers, traversal."""
import pytest

from conftest import UI_FILES

SECURITY = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@pytest.mark.parametrize("path,name,ctype", [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/ui/", "index.html", "text/html; charset=utf-8"),
    ("/ui/index.html", "index.html", "text/html; charset=utf-8"),
    ("/ui/js/app.js", "js/app.js", "text/javascript; charset=utf-8"),
    ("/ui/css/app.css", "css/app.css", "text/css; charset=utf-8"),
    ("/ui/favicon.svg", "favicon.svg", "image/svg+xml"),
    ("/ui/img/logo.png", "img/logo.png", "image/png"),
    ("/favicon.svg", "favicon.svg", "image/svg+xml"),
    ("/crm/hubspot", "index.html", "text/html; charset=utf-8"),
    ("/crm/hubspot/contact", "index.html", "text/html; charset=utf-8"),
    ("/history", "index.html", "text/html; charset=utf-8"),
])
def test_files_and_routes(api, path, name, ctype):
    r = api.get(path)
    assert r.status == 200, r
    assert r.body == UI_FILES[name]
    assert r.header("Content-Type") == ctype
    assert r.header("Cache-Control") == "no-cache"
    assert r.header("ETag").startswith('"')


def test_security_headers_everywhere(api):
    for r in (api.get("/"), api.get("/api/crm_sources"), api.get("/ui/missing.js"),
              api.get("/api/crm_sources", user="vera"), api.post("/api/rpc/login", {"username": "x", "password": "y"})):
        for name, value in SECURITY.items():
            assert r.header(name) == value, (name, r)


def test_etag_and_304(api):
    r = api.get("/ui/js/app.js")
    etag = r.header("ETag")
    again = api.get("/ui/js/app.js", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"" and again.header("ETag") == etag
    other = api.get("/ui/js/app.js", headers={"If-None-Match": '"0-0"'})
    assert other.status == 200 and other.body == UI_FILES["js/app.js"]
    head = api.request("HEAD", "/ui/js/app.js")
    assert head.status == 200 and head.body == b"" and head.header("ETag") == etag


def test_ui_file_sql_matches_http(api, cluster):
    for name in ("index.html", "js/app.js", "img/logo.png"):
        r = api.get("/ui/" + name)
        body, media, etag = cluster.sql("SELECT body, media_type, etag FROM crm_api.ui_file(%s)", (name,))[0]
        assert bytes(body) == r.body
        assert media == r.header("Content-Type")
        assert etag == r.header("ETag")


def test_missing_file_is_404(api):
    r = api.get("/ui/nope.js")
    assert r.status == 404 and r.header("Content-Type").startswith("application/json")


@pytest.mark.parametrize("raw_path", [
    b"/ui/../../../../etc/passwd",
    b"/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/ui/%2E%2E/%2E%2E/etc/passwd",
    b"/ui/..%2f..%2f..%2fetc/passwd",
    b"/ui/%252e%252e/etc/passwd",
    b"/ui/..\\..\\etc\\passwd",
    b"/ui/..%5c..%5cetc%5cpasswd",
    b"/ui/index.html%00.png",
    b"/ui//etc/passwd",
    b"/ui/escape.txt",
    b"/../../etc/passwd.txt",
    b"/ui/js/../../../etc/passwd",
])
def test_traversal_is_impossible(api, raw_path):
    out = api.raw(b"GET " + raw_path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = out.split(b"\r\n", 1)[0]
    assert b"root:" not in out
    assert status.startswith(b"HTTP/1.1 400") or status.startswith(b"HTTP/1.1 404"), (raw_path, status)


def test_ui_is_get_only(api):
    r = api.request("POST", "/ui/index.html", body="x")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
