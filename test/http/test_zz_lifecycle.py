"""Worker lifecycle: reload re-reads the secret and limits; SIGTERM exits and the worker returns.

Runs last (it changes the secret and restarts workers)."""
import os
import time

from conftest import SECRET, TEST_DIR, http_worker_pids, wait_for_http


def reload_with(cluster, **settings):
    for name, value in settings.items():
        cluster.sql(f"ALTER SYSTEM SET crm_dashboard.{name} = %s", (value,))
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)


def test_reload_rereads_secret_and_limits(cluster, api):
    old = api.token("vera")
    api.tokens.clear()
    reload_with(cluster, jwt_secret="a-brand-new-secret-0123456789abcdef-xyz", http_max_body="2048")
    try:
        r = api.get("/api/crm_sources", token=old)
        assert r.status == 401 and r.json()["code"] == "PGRST301"
        assert api.get("/api/crm_sources", user="vera").status == 200
        assert api.post("/api/rpc/login", "x" * 4000).status == 413
    finally:
        reload_with(cluster, jwt_secret=SECRET, http_max_body="65536")
        api.tokens.clear()
    assert api.get("/api/crm_sources", token=old).status == 200


def test_sigterm_exits_and_worker_is_restarted(cluster, api):
    before = http_worker_pids(cluster)
    assert len(before) == 2
    cluster.sql("SELECT pg_terminate_backend(%s)", (before[0],))
    deadline = time.time() + 20
    while time.time() < deadline:
        now = http_worker_pids(cluster)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.2)
    now = http_worker_pids(cluster)
    assert len(now) == 2 and before[0] not in now and before[1] in now
    wait_for_http()
    for _ in range(10):     # both workers answer (the kernel spreads connections)
        assert api.get("/api/crm_sources", user="vera").status == 200
    assert "terminated by signal" not in cluster.log()


def test_connection_limit_is_reloadable(cluster, api):
    import socket
    reload_with(cluster, http_max_connections="1")
    try:
        socks = [socket.create_connection(("127.0.0.1", api.port), timeout=5) for _ in range(4)]
        answered = refused = 0
        for s in socks:
            s.sendall(b"GET /ui/favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            try:
                data = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                data = b""
            if data.startswith(b"HTTP/1.1 200"):
                answered += 1
            else:
                refused += 1
            s.close()
        # two workers, one connection each: the others were turned away
        assert answered <= 2 and refused >= 2, (answered, refused)
    finally:
        reload_with(cluster, http_max_connections="200")
    assert api.get("/ui/favicon.svg").status == 200


def test_secret_file_wins_and_stays_out_of_the_log(cluster, api):
    import os
    import shutil
    from conftest import make_token
    path = os.path.join(TEST_DIR, "http-jwt-secret")
    file_secret = "secret-from-a-file-0123456789abcdef-0123456789"
    with open(path, "w") as f:
        f.write(file_secret + "\n")
    os.chmod(path, 0o600)
    shutil.chown(path, "postgres")
    reload_with(cluster, jwt_secret_file=path)
    try:
        token = make_token({"role": "crm_dashboard_viewer", "exp": int(time.time()) + 60}, secret=file_secret)
        assert api.get("/api/crm_sources", token=token).status == 200
        old = make_token({"role": "crm_dashboard_viewer", "exp": int(time.time()) + 60})
        assert api.get("/api/crm_sources", token=old).status == 401
        api.tokens.clear()
        assert api.get("/api/rpc/whoami", user="vera").status == 200     # login signs with it too
        assert file_secret not in cluster.log()
    finally:
        cluster.sql("ALTER SYSTEM RESET crm_dashboard.jwt_secret_file")
        cluster.sql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        api.tokens.clear()
