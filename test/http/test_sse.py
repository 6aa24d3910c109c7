"""Server-Sent Events of run changes: during a sync, resume, roles, load."""
import json
import os
import shutil
import socket
import threading
import time

import pytest

from conftest import HERE, HTTP_PORT, TEST_DIR, http_worker_pids

REPO = os.path.dirname(os.path.dirname(HERE))
FINAL = {"success", "failed", "partial", "cancelled"}

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(REPO, "src", "announce.c")),
                                reason="run-change announcements (src/announce.c) are not built yet")


class SseClient:
    """An EventSource over a raw socket: connect, then read parsed events."""

    def __init__(self, token=None, last_event_id=None, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=timeout)
        head = "GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.buf = b""
        self.status, self.headers = self._read_head()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.text = ""
        self._feed()   # the first bytes may have come with the headers

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def _decode_chunks(self):
        # chunked framing: size CRLF data CRLF
        while True:
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                return
            size = int(line, 16)
            if len(rest) < size + 2:
                return
            self.text += rest[:size].decode()
            self.buf = rest[size + 2:]

    def events(self, deadline):
        """Yield (id, event, data) until the deadline."""
        while time.time() < deadline:
            while "\n\n" in self.text:
                block, _, self.text = self.text.partition("\n\n")
                fields = {}
                for line in block.split("\n"):
                    if line.startswith(":") or not line:
                        continue
                    k, _, v = line.partition(": ")
                    fields[k] = fields[k] + "\n" + v if k in fields else v
                if "data" in fields:
                    yield int(fields["id"]), fields.get("event"), json.loads(fields["data"])
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            if not data:
                return
            self.buf += data
            self._feed()

    def _feed(self):
        if self.chunked:
            self._decode_chunks()
        else:
            self.text += self.buf.decode()
            self.buf = b""

    def run_events(self, run_id, timeout=30):
        """The events of one run, until its final status."""
        got = []
        for seq, kind, data in self.events(time.time() + timeout):
            if data.get("id") == run_id:
                got.append((seq, kind, data))
                if data["status"] in FINAL:
                    break
        return got

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def sync_command(cluster):
    script = os.path.join(TEST_DIR, "http-progress_sync.py")
    shutil.copy(os.path.join(HERE, "progress_sync.py"), script)
    os.chmod(script, 0o755)
    cluster.sql("INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('hubspot', NULL, %s)",
                (["/usr/bin/python3", script, "{crm}", "{model}"],))
    return script


def start(api, model):
    r = api.post("/api/rpc/start_sync", {"crm": "hubspot", "model": model}, user="otto")
    assert r.status == 200, r
    return r.json()


def test_events_need_a_login(api):
    c = SseClient()
    assert c.status == 401
    c.close()


def test_stream_ends_when_its_token_expires(api):
    from conftest import make_token
    # valid for about 3 more seconds: verification allows 30 s of clock skew
    token = make_token({"role": "crm_dashboard_viewer", "exp": int(time.time()) - 27})
    c = SseClient(token=token)
    assert c.status == 200
    start = time.time()
    closed = False
    c.sock.settimeout(12)
    try:
        while time.time() - start < 12:
            if not c.sock.recv(65536):
                closed = True
                break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    finally:
        c.close()
    took = time.time() - start
    assert closed and took < 8, f"the stream outlived its token by {took - 3:.0f} s"


def test_events_during_a_sync(api, sync_command):
    c = SseClient(api.token("vera"))
    assert c.status == 200 and c.headers["content-type"].startswith("text/event-stream")
    run_id = start(api, "contact")
    got = c.run_events(run_id)
    c.close()
    assert got, "no events arrived"
    seqs = [s for s, _, _ in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(kind == "sync" for _, kind, _ in got)
    statuses = [d["status"] for _, _, d in got]
    assert statuses[-1] == "success", statuses
    assert set(statuses) <= {"queued", "running", "success"}
    processed = [d["processed"] for _, _, d in got]
    assert processed == sorted(processed) and processed[-1] == 50
    assert all(d["crm"] == "hubspot" and d["model"] == "contact" for _, _, d in got)

    # Last-Event-ID resumes with what the ring still holds
    again = SseClient(api.token("vera"), last_event_id=seqs[0] - 1)
    replayed = again.run_events(run_id, timeout=5)
    again.close()
    assert [s for s, _, _ in replayed] == seqs


def test_fifty_clients_and_steady_requests(api, cluster, sync_command):
    token = api.token("vera")
    clients = [SseClient(token) for _ in range(50)]
    assert all(c.status == 200 for c in clients)
    pids = http_worker_pids(cluster)

    # idle clients cost (almost) no CPU: the workers sleep
    def cpu():
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total
    before = cpu()
    time.sleep(1.5)
    assert cpu() - before <= 5, "idle event streams should not use CPU"

    results = [None] * len(clients)
    errors = []
    run_box = {}
    started = threading.Event()

    def listen(i):
        started.wait(10)
        results[i] = clients[i].run_events(run_box["id"], timeout=40)

    def hammer():
        for _ in range(40):
            r = api.get("/api/crm_sources", user="vera")
            if r.status != 200:
                errors.append(r)
            r = api.get("/api/sync_runs?limit=5", user="vera")
            if r.status != 200:
                errors.append(r)

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(len(clients))]
    threads += [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    run_box["id"] = start(api, "deal")
    started.set()
    for t in threads:
        t.join(60)
    for c in clients:
        c.close()
    assert errors == []
    finals = [r[-1][2]["status"] if r else None for r in results]
    assert finals == ["success"] * len(clients)
    # every client saw the same sequence of events
    assert len({tuple(s for s, _, _ in r) for r in results}) == 1
    assert http_worker_pids(cluster) == pids


def test_slow_client_is_dropped_without_blocking_others(api, cluster):
    token = api.token("vera")
    # a client that never reads, with a tiny receive window
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", HTTP_PORT))
    slow.sendall(f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    fast = SseClient(token)
    run_id = cluster.sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, end_time) "
                         "VALUES ('genius', 'lead', 'success', now()) RETURNING id")[0][0]
    marker = 0
    for _ in range(12):
        # several hundred events per transaction, a few megabytes in all
        with cluster.connect(autocommit=False) as conn:
            with conn.cursor() as cur:
                for _ in range(500):
                    marker += 1
                    cur.execute("UPDATE crm_dashboard.sync_history SET records_processed = %s WHERE id = %s",
                                (marker, run_id))
            conn.commit()
        # the fast client keeps up
        last = None
        for _, _, data in fast.events(time.time() + 10):
            if data["id"] == run_id and data["processed"] == marker:
                last = data
                break
        assert last is not None, f"fast client missed event {marker}"
    fast.close()
    # the slow client's connection was closed by the server
    slow.setblocking(False)
    closed = False
    deadline = time.time() + 10
    while time.time() < deadline and not closed:
        try:
            data = slow.recv(1 << 20)
            closed = data == b""
        except BlockingIOError:
            time.sleep(0.1)
        except ConnectionResetError:
            closed = True
    slow.close()
    assert closed, "a client that never reads should be dropped"
