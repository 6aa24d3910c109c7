"""Secrets of the command registry stay secret.

Only administrators read the registry's environment values; operators read
the other columns, viewers nothing.  The values of the variables a registry
row names in secret_names are replaced by *** in everything kept about a run
(its log, error message and metrics), whatever way the command prints them:
on stdout or stderr, inside JSON events (also JSON-escaped), split across
two writes, in the middle of a line longer than the launcher parses, or in
the last line of stderr of a failing command.  Then no viewer, over SQL or
HTTP, finds them anywhere.
"""
import json
import os
import secrets as pysecrets
import shutil
import stat
import tempfile

import psycopg2
import pytest
from cluster import TEST_DIR

TOKEN = "s3cr3t-token-" + pysecrets.token_hex(12)
PASSWORD = "pw-" + pysecrets.token_hex(10)
SHORT = "xq7"  # under 4 bytes: not masked (it would mask every "xq7" of the log)
PLAIN = "plain-value-" + pysecrets.token_hex(6)
SECRETS = (TOKEN, PASSWORD)

# Prints the secrets every way a command might; ends with exit code 3 and
# the password in its last line of stderr.
LEAKER = r"""#!/bin/sh
echo "stdout: token=$API_TOKEN plain=$PLAIN short=$SHORT"
echo "stderr: token=$API_TOKEN" >&2
printf '{"event": "progress", "processed": 1, "total": 3}\n'
printf '{"event": "error", "message": "login refused for %s", "record": "%s"}\n' "$API_TOKEN" "$PGPASSWORD"
# the same token, its first letter JSON-escaped: only a JSON parser sees it
rest=$(printf %s "$API_TOKEN" | cut -c2-)
printf '{"event": "error", "message": "escaped \\u0073%s", "record": 7}\n' "$rest"
printf '{"event": "summary", "processed": 3, "created": 1, "updated": 1, "failed": 1, "token": "%s"}\n' "$API_TOKEN"
# split across two writes, a moment apart, on both streams
head=$(printf %s "$API_TOKEN" | cut -c1-9)
tail=$(printf %s "$API_TOKEN" | cut -c10-)
printf 'split stdout: %s' "$head"; sleep 0.3; printf '%s done\n' "$tail"
printf 'split stderr: %s' "$head" >&2; sleep 0.3; printf '%s done\n' "$tail" >&2
# lines longer than the launcher parses, the token everywhere in them
awk -v t="$API_TOKEN" 'BEGIN { for (i = 0; i < 6000; i++) printf "%s,", t; printf "\n" }'
awk -v t="$API_TOKEN" 'BEGIN { for (i = 0; i < 6000; i++) printf "%s;", t; printf "\n" }' >&2
echo "fatal: could not log in with password $PGPASSWORD" >&2
exit 3
"""


@pytest.fixture
def leaker():
    d = tempfile.mkdtemp(prefix="secrets-", dir=TEST_DIR)
    os.chmod(d, 0o755)
    path = os.path.join(d, "leaker.sh")
    with open(path, "w") as f:
        f.write(LEAKER)
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    yield path
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def leaky_run(launcher, leaker):
    """A finished run of the leaking command; its id."""
    launcher.register("hubspot", [leaker], env={"API_TOKEN": TOKEN, "PGPASSWORD": PASSWORD,
                                                "SHORT": SHORT, "PLAIN": PLAIN})
    launcher.sql("UPDATE crm_dashboard.sync_command SET secret_names = %s WHERE crm = 'hubspot'",
                 (["API_TOKEN", "PGPASSWORD", "SHORT"],))
    run_id = launcher.start("hubspot", "contact")
    run = launcher.wait(run_id, timeout=60)
    assert run["status"] == "failed" and run["exit_code"] == 3
    return run_id


def assert_no_secret(what, text):
    for secret in SECRETS:
        assert secret not in text, f"{what} shows a secret"


def viewer_sql(cluster, query, params=None):
    conn = cluster.connect(user="sec_viewer")
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return json.dumps(cur.fetchall(), default=str)
    finally:
        conn.close()


def test_the_launcher_masks_secrets_in_everything_it_keeps(cluster, launcher, leaky_run):
    log = viewer_sql(cluster, "SELECT crm_api.sync_log(%s)", (leaky_run,))
    assert_no_secret("sync_log", log)
    text = json.loads(log)[0][0]
    assert "stdout: token=*** plain=" + PLAIN + " short=" + SHORT in text
    assert "stderr: token=***" in text
    assert "split stdout: *** done" in text and "split stderr: *** done" in text
    assert "***," * 100 in text and "***;" * 100 in text
    assert "fatal: could not log in with password ***" in text

    status = viewer_sql(cluster, "SELECT crm_api.sync_status(%s)", (leaky_run,))
    assert_no_secret("sync_status", status)
    run = json.loads(status)[0][0]
    assert run["error_message"].startswith("exited with code 3: ")
    assert run["error_message"].endswith("fatal: could not log in with password ***")
    metrics = run["performance_metrics"]
    assert [e["message"] for e in metrics["errors"]] == ["login refused for ***", "escaped ***"]
    assert metrics["errors"][0]["record"] == "***"
    assert metrics["summary"]["token"] == "***" and metrics["summary"]["processed"] == 3
    assert (run["records_processed"], run["records_failed"]) == (3, 1)

    for query in ("SELECT * FROM crm_api.sync_runs WHERE id = %s",
                  "SELECT * FROM crm_api.sync_errors WHERE run_id = %s"):
        rows = viewer_sql(cluster, query, (leaky_run,))
        assert_no_secret(query, rows)
        assert "***" in rows
    detail = viewer_sql(cluster, "SELECT crm_api.model_detail('hubspot', 'contact')")
    assert_no_secret("model_detail", detail)
    assert "***" in detail


def test_no_viewer_sees_a_secret_over_http(api, launcher, leaky_run):
    for method, path, body in (("GET", f"/api/sync_runs?id=eq.{leaky_run}", None),
                               ("POST", "/api/rpc/sync_log", {"id": leaky_run}),
                               ("POST", "/api/rpc/sync_status", {"id": leaky_run})):
        r = api.request(method, path, body=body, user="vera")
        assert r.status == 200, r
        assert_no_secret(path, r.body.decode())
        assert "***" in r.body.decode()


def _select(cluster, user, query):
    conn = cluster.connect(user=user)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def test_only_admins_read_registry_environment(cluster, launcher):
    launcher.register("hubspot", ["/bin/true"], env={"API_TOKEN": TOKEN})
    launcher.sql("UPDATE crm_dashboard.sync_command SET secret_names = '{API_TOKEN}'")
    for user in ("sec_operator", "sec_viewer"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
            _select(cluster, user, "SELECT environment FROM crm_dashboard.sync_command")
    # operators still see what runs and which variables are secret
    assert _select(cluster, "sec_operator",
                   "SELECT crm, model, argv, working_directory, timeout, secret_names "
                   "FROM crm_dashboard.sync_command") == [("hubspot", None, ["/bin/true"], None, None,
                                                          ["API_TOKEN"])]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        _select(cluster, "sec_viewer", "SELECT crm FROM crm_dashboard.sync_command")
    assert _select(cluster, "sec_admin", "SELECT environment FROM crm_dashboard.sync_command") == \
        [({"API_TOKEN": TOKEN},)]


@pytest.mark.parametrize("names", [["A B"], [""], ["1TOKEN"], ["TOKEN", None], ["TOKEN=x"], [["A"], ["B"]]])
def test_secret_names_are_variable_names(launcher, names):
    launcher.register("hubspot", ["/bin/true"])
    with pytest.raises(psycopg2.errors.CheckViolation):
        launcher.sql("UPDATE crm_dashboard.sync_command SET secret_names = %s", (names,))
