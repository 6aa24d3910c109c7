"""Strict request parsing: a body is one JSON value and nothing after it, and a
request's framing (where its body ends) is never ambiguous.

Lenient parsing lets two parties read one request differently: a proxy and
this server, or a client's intent and the server's.  PostgREST answers 400
PGRST102 to anything after the JSON value; two Content-Length headers, or
Content-Length beside Transfer-Encoding, are the classic request-smuggling
framings and get 400 before any body is read.
"""
import pytest

JSON = {"Content-Type": "application/json"}


def post(api, body, user="vera", path="/api/rpc/count_rows"):
    return api.request("POST", path, body=body, headers=JSON, user=user)


# -- the JSON body ------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b'{"crm": "hubspot", "model": "deal"}garbage',
    b'{"crm": "hubspot", "model": "deal"}{"crm": "genius", "model": "lead"}',
    b'{"crm": "hubspot", "model": "deal"} {}',
    b'{"crm": "hubspot", "model": "deal"},',
    b'{"crm": "hubspot", "model": "deal"}\n]',
    b'{"crm": "hubspot", "model": "deal"}\x00',
    b'{"crm": "hubspot", "model": "deal"}  // a comment',
])
def test_trailing_data_after_the_json_body_is_400(api, body):
    r = post(api, body)
    assert r.status == 400, r
    assert r.json()["code"] == "PGRST102"
    assert set(r.json()) == {"code", "message", "details", "hint"}


@pytest.mark.parametrize("body", [
    b'{"crm": "hubspot", "model": "deal"}',
    b'  \r\n\t{"crm": "hubspot", "model": "deal"} \r\n\t ',
    b'{"crm": "hubspot", "model": "deal"}\n',
])
def test_white_space_around_the_json_body_is_fine(api, body):
    r = post(api, body)
    assert r.status == 200, r
    assert r.json() == 20


def test_trailing_data_never_reaches_the_function(api, cluster):
    """The second object of a doubled body would have been a second intent."""
    body = (b'{"username": "smuggled1", "password": "smuggled-password", "role": "viewer"}'
            b'{"username": "smuggled2", "password": "smuggled-password", "role": "admin"}')
    r = post(api, body, user="ada", path="/api/rpc/create_user")
    assert r.status == 400 and r.json()["code"] == "PGRST102", r
    assert cluster.sql("SELECT count(*) FROM crm_api.users WHERE username LIKE 'smuggled%'")[0][0] == 0


# -- framing ------------------------------------------------------------------

def request_bytes(api, headers, body=b'{"crm": "hubspot", "model": "deal"}'):
    """A raw POST of count_rows as vera with the given extra header lines."""
    lines = [b"POST /api/rpc/count_rows HTTP/1.1",
             b"Host: 127.0.0.1:%d" % api.port,
             b"Authorization: Bearer " + api.token("vera").encode(),
             b"Content-Type: application/json",
             b"Connection: close"]
    lines += headers
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def status_lines(raw):
    """The status lines of every response in raw bytes from the server."""
    return [line for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def test_a_well_framed_raw_request_is_answered(api):
    body = b'{"crm": "hubspot", "model": "deal"}'
    out = api.raw(request_bytes(api, [b"Content-Length: %d" % len(body)], body))
    assert status_lines(out) == [b"HTTP/1.1 200 OK"], out[:300]
    assert out.endswith(b"\r\n\r\n20")


def test_chunked_body_alone_is_fine(api):
    body = b'{"crm": "hubspot", "model": "deal"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    out = api.raw(request_bytes(api, [b"Transfer-Encoding: chunked"], chunked))
    assert status_lines(out) == [b"HTTP/1.1 200 OK"], out[:300]


@pytest.mark.parametrize("name,headers", [
    ("same twice", [b"Content-Length: 35", b"Content-Length: 35"]),
    ("conflicting", [b"Content-Length: 35", b"Content-Length: 2"]),
    ("conflicting, other case", [b"Content-Length: 35", b"content-length: 100"]),
    ("with chunked", [b"Content-Length: 35", b"Transfer-Encoding: chunked"]),
    ("chunked first", [b"Transfer-Encoding: chunked", b"Content-Length: 35"]),
    ("two encodings", [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"]),
])
def test_ambiguous_framing_is_400(api, name, headers):
    body = b'{"crm": "hubspot", "model": "deal"}'
    assert len(body) == 35
    if any(h.lower().startswith(b"transfer-encoding") for h in headers):
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    out = api.raw(request_bytes(api, headers, body))
    lines = status_lines(out)
    assert lines and lines[0].startswith(b"HTTP/1.1 400"), (name, out[:300])
    assert len(lines) == 1, (name, out[:600])


def test_an_unknown_transfer_coding_is_501_at_once(api):
    """libmicrohttpd would wait for the connection to close to find the body's end."""
    out = api.raw(request_bytes(api, [b"Transfer-Encoding: gzip"]), timeout=5)
    assert status_lines(out)[:1] == [b"HTTP/1.1 501 Not Implemented"], out[:300]


def test_libmicrohttpd_refuses_a_content_length_list(api):
    """Already refused by libmicrohttpd 0.9.75 itself (its 400 page): kept so
    that a library update that stops doing so is noticed."""
    out = api.raw(request_bytes(api, [b"Content-Length: 35, 35"]), timeout=5)
    lines = status_lines(out)
    assert lines and all(line.startswith(b"HTTP/1.1 400") for line in lines), out[:300]


def test_a_smuggled_second_request_is_never_answered(api):
    """Framing the body by the first of two lengths, on a kept-alive connection,
    would run the request hidden after it; the server refuses the connection."""
    hidden = (b"POST /api/rpc/whoami HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\n\r\n{}")
    body = b"{}" + hidden
    req = request_bytes(api, [b"Content-Length: 2", b"Content-Length: %d" % len(body)], body)
    out = api.raw(req.replace(b"Connection: close\r\n", b""), timeout=3)
    lines = status_lines(out)
    assert lines == [b"HTTP/1.1 400 Bad Request"], out[:600]
