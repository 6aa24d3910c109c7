"""Clients that trickle a request are dropped once crm_dashboard.http_request_timeout
(3 s here) has passed, even though they are never idle for that long."""
import socket
import time

import pytest


def trickle(port, head, byte=b"X", interval=0.5, limit=12):
    """Send head, then one byte every interval; seconds until the server hangs up."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    start = time.time()
    try:
        s.sendall(head)
        s.setblocking(False)
        while time.time() - start < limit:
            try:
                if s.recv(4096) == b"":
                    return time.time() - start
            except BlockingIOError:
                pass
            except OSError:
                return time.time() - start
            try:
                s.sendall(byte)
            except OSError:
                return time.time() - start
            time.sleep(interval)
        return None
    finally:
        s.close()


@pytest.mark.parametrize("head", [
    b"GET /api/crm_sources HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    b"POST /api/rpc/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{",
], ids=["headers", "body"])
def test_trickling_client_is_dropped(api, head):
    took = trickle(api.port, head)
    assert took is not None, "the server kept a trickling client for 12 s"
    assert 2.0 < took < 8.0, took


def test_keep_alive_connection_gets_a_fresh_deadline(api):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/ui/js/app.js")
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b"console.log('app');\n"
            time.sleep(1.2)   # 3.6 s in all: longer than one deadline
    finally:
        conn.close()
