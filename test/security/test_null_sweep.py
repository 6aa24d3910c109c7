"""The NULL sweep: no argument may crash a backend or a worker.

Every function of schemas crm_api and crm_dashboard is read from pg_proc
(names, argument names, types, modes, defaults, volatility, return type,
trigger or not) and called with argument vectors built from that:

- plausible values chosen by type and name (crm 'hubspot', model 'contact',
  options '{}', the id of an existing run, user 'vera', ...), as a control;
- NULL in each input position in turn, all NULLs, and all NULLs with the
  defaulted arguments left out;
- empty strings, a very long string and a printf format string for text;
- 0, -1, the type's maximum and minimum, NaN and infinities for numbers;
- odd JSON for json/jsonb: null, [], "x", 1, deep nesting, a huge object,
  and (for options) every known option set to a value of the wrong kind.

Over SQL each call runs in a transaction that is rolled back, as the
superuser and as a login role of every dashboard role that may execute the
function.  Trigger functions are also fired through their triggers with
NULL columns.  Over HTTP every crm_api function is called with the same
vectors through POST /api/rpc/<fn> as the admin ada (GET with empty values
for STABLE and IMMUTABLE ones, CSV for set-returning ones).

An error reply is fine.  A function's test fails when a process died: a
line "terminated by signal" in the server log, the postmaster, launcher,
HTTP workers or checkpointer changed pid (the checkpointer survives
everything but a crash restart), or a connection was lost.  Any 5xx reply
fails a separate test.  After a crash the sweep waits for the cluster and
the HTTP server to be back, so one crash does not fail every later test.

The sweep has a cluster of its own: failed logins count in shared memory
and wake_launcher acts outside transactions, and a crash restarts the whole
cluster; none of that may disturb the other security tests.
"""
import atexit
import http.client
import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from cluster import Cluster, suite_port
from conftest import FIXTURE_SQL, PASSWORDS, SETTINGS, server_crashed
from http_client import Http

SWEEP_PG_PORT = suite_port(24427)
SWEEP_HTTP_PORT = suite_port(24428)
SCHEMAS = ("crm_api", "crm_dashboard")
SQL_ROLES = ("sec_viewer", "sec_operator", "sec_admin", "sweep_anon")
# Processes that live as long as the cluster does; a change of pid means one died.
WATCHED = ("crm_dashboard sync launcher", "crm_dashboard http", "checkpointer")
HTTP_WORKERS = 2
STATEMENT_TIMEOUT_S = 20
LONG_TEXT = "x" * 100_000
FORMAT_TEXT = "%s%n%x%p'\"\\; -- {crm} {model}"
OPTION_KEYS = ("force", "full", "dry_run", "debug", "since", "max_records", "batch_size", "timeout")

SWEEP_SETTINGS = dict(SETTINGS)
SWEEP_SETTINGS.update({
    "shared_preload_libraries": "'crm_dashboard,pg_cron'",
    "crm_dashboard.http_port": str(SWEEP_HTTP_PORT),
    "crm_dashboard.http_workers": str(HTTP_WORKERS),
    "cron.database_name": "'postgres'",
    "cron.use_background_workers": "on",
    "max_worker_processes": "16",
    # the sweep's failed logins lock its own address out for a second only
    "crm_dashboard.login_lockout": "1",
    # the log should say which statement a crashed process was running, in full
    "track_activity_query_size": "'64kB'",
})

# Besides the security suite's users and tables: pg_cron (so schedule_sync
# gets past its pg_cron check), a registered command (so sync requests get
# past the registry), an anonymous SQL role, a finished run and a schedule.
SWEEP_FIXTURE_SQL = FIXTURE_SQL + """
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE ROLE sweep_anon LOGIN IN ROLE crm_dashboard_anon;
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('hubspot', ARRAY['/bin/true', '{crm}', '{model}']);
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, start_time, end_time, status,
                                        records_processed, error_message)
VALUES ('hubspot', 'contact', now() - interval '1 hour', now() - interval '59 minutes',
        'failed', 10, 'api said no');
INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
SELECT max(id), 1, 1, 0, E'line 1\\nline 2\\n' FROM crm_dashboard.sync_history;
SELECT crm_api.schedule_sync('hubspot', 'contact', '0 3 * * *', '{}');
"""

CATALOG_SQL = """
SELECT p.oid, n.nspname, p.proname, p.oid::regprocedure::text,
       ARRAY(SELECT format_type(t, NULL)
               FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY a(t, i)
              ORDER BY i),
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       p.pronargdefaults, p.provolatile::text, format_type(p.prorettype, NULL), p.proretset,
       p.prorettype = 'trigger'::regtype, p.prokind::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY (%s)
 ORDER BY n.nspname, p.proname, p.oid
"""

LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # log_line_prefix starts with %m
TEXT_TYPES = {"text", "character varying", "character", "name", "citext", "\"char\""}
NUMBER_EXTREMES = {
    "smallint": [0, -1, 32767, -32768],
    "integer": [0, -1, 2147483647, -2147483648],
    "bigint": [0, -1, 9223372036854775807, -9223372036854775808],
    "numeric": [0, -1, "NaN", "Infinity", "-Infinity", "1e1000", "-1e1000"],
    "real": [0, -1, "NaN", "Infinity", "-Infinity", "3.4e38", "-3.4e38"],
    "double precision": [0, -1, "NaN", "Infinity", "-Infinity", "1.7976931348623157e308",
                         "-1.7976931348623157e308"],
}


@dataclass
class Function:
    """One row of pg_proc, as the sweep needs it."""
    oid: int
    schema: str
    name: str
    signature: str
    inputs: list            # [(name or None, type)] of the input arguments
    ndefaults: int
    volatility: str         # i, s, v
    rettype: str
    retset: bool
    is_trigger: bool
    kind: str
    variadic: bool = False  # the last input is VARIADIC
    overloaded: bool = False
    roles: list = field(default_factory=list)   # SQL roles (besides the superuser) that may execute it

    @property
    def qualified(self):
        return f"{self.schema}.{self.name}"

    @property
    def test_id(self):
        return self.signature if self.overloaded else self.qualified


@dataclass
class Vector:
    """One call: a label saying what is odd about it and the argument values."""
    label: str
    values: list            # one per given input; the rest are left to their defaults

    def describe(self, fn):
        args = []
        for (name, _type), value in zip(fn.inputs, self.values):
            args.append(f"{name} => {short(value)}" if name else short(value))
        return f"{fn.qualified}({', '.join(args)})  [{self.label}]"


def crash_detail(lines, i):
    """The DETAIL of the crash line lines[i] (the query the process ran),
    with the query's own continuation lines."""
    if i + 1 >= len(lines) or "DETAIL:" not in lines[i + 1]:
        return ""
    out = [lines[i + 1]]
    for line in lines[i + 2:]:
        if LOG_LINE_START.match(line):
            break
        out.append(line)
    return "\n".join(out)


def ident(name):
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def short(value):
    """A value as SQL-ish text, long ones abbreviated."""
    if value is None:
        return "NULL"
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > 60:
        return f"'{text[:30]}…' ({len(text)} characters)"
    return f"'{text}'" if isinstance(value, str) else text


def deep_json(levels=500):
    return '{"a": ' * levels + "{}" + "}" * levels


def huge_json(keys=10_000):
    return json.dumps({f"k{i}": i for i in range(keys)})


def odd_json(argname):
    """Odd JSON documents for a json/jsonb argument (text form)."""
    docs = [("JSON null", "null"), ("empty array", "[]"), ("JSON string", '"x"'), ("JSON number", "1"),
            ("deep nesting", deep_json()), ("deep array", "[" * 500 + "]" * 500),
            ("huge object", huge_json())]
    if argname in ("options", "env"):
        keys = OPTION_KEYS if argname == "options" else ("A", "PATH", "-x")
        for label, value in (("null", None), ("string", "x"), ("huge number", 1e300),
                             ("negative", -1), ("array", []), ("object", {}), ("true", True)):
            docs.append((f"every key {label}", json.dumps({k: value for k in keys})))
        docs.append(("odd key", json.dumps({"": 1, "--x": "y", "a b": None})))
    return docs


class Context:
    """Values that exist in the sweep database: a run, a schedule, a cursor."""

    def __init__(self, cluster):
        self.run_id = cluster.sql("SELECT max(id) FROM crm_dashboard.sync_history")[0][0]
        self.schedule_id = cluster.sql("SELECT max(jobid) FROM crm_dashboard.sync_schedule")[0][0]
        # a cursor is tied to its model, sort and direction: those of plausible()
        self.cursor = cluster.sql("SELECT crm_api.model_rows('hubspot', 'contact', per_page => 1, search => 'note', "
                                  "sort => 'email')->>'next'")[0][0]

    def plausible(self, fn, name, typ):
        """A value that makes sense for an argument of this name and type."""
        by_name = {
            "crm": "hubspot", "model": "contact", "options": "{}", "username": "vera",
            "password": "vera-password", "role": "viewer", "cron": "0 3 * * *", "path": "index.html",
            "search": "note", "sort": "email", "via": "sql", "env": '{"LANG": "C.UTF-8"}',
            "per_page": 25, "exact_count": False, "descending": False,
        }
        if name == "after":
            return 0 if typ == "bigint" else self.cursor
        if name in ("id", "run_id"):
            return self.schedule_id if "schedule" in fn.name else self.run_id
        if name in by_name:
            return by_name[name]
        by_type = {"boolean": False, "json": "{}", "jsonb": "{}", "bytea": "\\x00",
                   "date": "2024-01-01", "timestamp with time zone": "2024-01-01 00:00+00",
                   "text[]": "{x}", "interval": "1 hour"}
        if typ in TEXT_TYPES:
            return "x"
        if typ in NUMBER_EXTREMES:
            return 1
        return by_type.get(typ)


def vectors(fn, ctx):
    """Every argument vector of the sweep for one function."""
    n = len(fn.inputs)
    if n == 0:
        return [Vector("no arguments", [])]
    base = [ctx.plausible(fn, name, typ) for name, typ in fn.inputs]
    out = [Vector("plausible values", base)]

    def replaced(i, value):
        v = list(base)
        v[i] = value
        return v

    for i, (name, _typ) in enumerate(fn.inputs):
        out.append(Vector(f"{name or i + 1} NULL", replaced(i, None)))
    if n > 1:
        out.append(Vector("all NULL", [None] * n))
    for k in range(1, fn.ndefaults + 1):
        if n - k > 0:
            out.append(Vector(f"all NULL, last {k} left to the default", [None] * (n - k)))
    texts = [i for i, (_n, typ) in enumerate(fn.inputs) if typ in TEXT_TYPES]
    for i in texts:
        name = fn.inputs[i][0] or i + 1
        out.append(Vector(f"{name} empty", replaced(i, "")))
        out.append(Vector(f"{name} {len(LONG_TEXT)} characters", replaced(i, LONG_TEXT)))
        out.append(Vector(f"{name} a format string", replaced(i, FORMAT_TEXT)))
    if len(texts) > 1:
        v = list(base)
        for i in texts:
            v[i] = ""
        out.append(Vector("every text empty", v))
    for i, (name, typ) in enumerate(fn.inputs):
        for value in NUMBER_EXTREMES.get(typ, []):
            out.append(Vector(f"{name or i + 1} = {value}", replaced(i, value)))
        if typ in ("json", "jsonb"):
            for label, doc in odd_json(name):
                out.append(Vector(f"{name or i + 1} {label}", replaced(i, doc)))
    return out


@dataclass
class State:
    """Who is alive: the postmaster, the watched processes, the crash lines so far."""
    postmaster: int
    pids: dict
    crash_lines: int

    def complete(self):
        return (len(self.pids.get("crm_dashboard sync launcher", [])) == 1
                and len(self.pids.get("crm_dashboard http", [])) == HTTP_WORKERS
                and len(self.pids.get("checkpointer", [])) == 1)


class Sweep:
    """The sweep's own cluster, its catalog and the helpers every test uses."""

    def __init__(self):
        self.cluster = Cluster("security-sweep", SWEEP_PG_PORT, SWEEP_SETTINGS).init().start()
        self.stopped = False
        try:
            self.cluster.sql(SWEEP_FIXTURE_SQL)
            self.wait_ready()
        except Exception:
            self.stop()
            raise
        self.api = Http(SWEEP_HTTP_PORT, PASSWORDS)
        self.ctx = Context(self.cluster)
        self.functions = self.read_catalog()
        self.http_results = {}

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.cluster.stop("fast", check=False)

    # -- the catalog ---------------------------------------------------------
    def read_catalog(self):
        rows = self.cluster.sql(CATALOG_SQL, (list(SCHEMAS),))
        functions = []
        for (oid, schema, name, signature, types, names, modes, ndefaults, volatility, rettype,
             retset, is_trigger, kind) in rows:
            inputs = []
            for i, typ in enumerate(types):
                mode = modes[i] if modes else "i"
                if mode in ("i", "b", "v"):
                    inputs.append(((names[i] or None) if i < len(names) else None, typ))
            functions.append(Function(oid, schema, name, signature, inputs, ndefaults, volatility,
                                      rettype, retset, is_trigger, kind, variadic="v" in modes))
        counts = {}
        for f in functions:
            counts[f.qualified] = counts.get(f.qualified, 0) + 1
        for f in functions:
            f.overloaded = counts[f.qualified] > 1
            f.roles = [r for r in SQL_ROLES
                       if self.cluster.sql("SELECT has_function_privilege(%s, %s::oid, 'EXECUTE')",
                                           (r, f.oid))[0][0]]
        return functions

    # -- liveness ------------------------------------------------------------
    def state(self):
        rows = self.cluster.sql("SELECT backend_type, pid FROM pg_stat_activity "
                                "WHERE backend_type = ANY (%s) ORDER BY pid", (list(WATCHED),))
        pids = {}
        for backend_type, pid in rows:
            pids.setdefault(backend_type, []).append(pid)
        return State(self.cluster.postmaster_pid(), pids, len(server_crashed(self.cluster)))

    def http_answers(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", SWEEP_HTTP_PORT, timeout=5)
            conn.request("GET", "/api/crm_sources")
            conn.getresponse().read()
            conn.close()
            return True
        except (OSError, http.client.HTTPException):
            return False

    def wait_ready(self, timeout=90):
        """Wait until the cluster accepts connections, every watched process runs
        and the HTTP server answers (after a crash the postmaster restarts them)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.state()
                if last.complete() and self.http_answers():
                    self.last = last
                    return last
            except (psycopg2.Error, OSError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError(f"the sweep cluster did not come back within {timeout}s (last: {last!r})")

    def recover(self):
        """After a lost connection: wait for the postmaster to log the crash (if
        it was one: until then the old processes still answer), then for the
        cluster to be back, so the next call is not blamed for this one."""
        deadline = time.time() + 5
        while time.time() < deadline and len(server_crashed(self.cluster)) <= self.last.crash_lines:
            time.sleep(0.05)
        return self.wait_ready()

    def crash_report(self, before):
        """The server log's crash lines since before, each with its DETAIL line."""
        lines = self.cluster.log().splitlines()
        out = []
        seen = 0
        for i, line in enumerate(lines):
            if "terminated by signal" in line or "was terminated by" in line:
                seen += 1
                if seen > before.crash_lines:
                    detail = crash_detail(lines, i)
                    out.append(line + ("\n      " + detail[:400] if detail else ""))
        return out

    def deaths(self, before):
        """What died since before: [] when the cluster is as it was."""
        time.sleep(0.05)        # a worker hit asynchronously (wake_launcher) dies about now
        after = self.wait_ready()
        problems = [f"server log: {line}" for line in self.crash_report(before)]
        if after.postmaster != before.postmaster:
            problems.append(f"the postmaster changed pid: {before.postmaster} -> {after.postmaster}")
        for backend_type in WATCHED:
            if before.pids.get(backend_type) != after.pids.get(backend_type):
                problems.append(f"{backend_type} changed pid: {before.pids.get(backend_type)} -> "
                                f"{after.pids.get(backend_type)}")
        return problems

    # -- SQL calls -----------------------------------------------------------
    def connect(self, role):
        conn = self.cluster.connect(user=role)
        with conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'")
        return conn

    def sql_call(self, conn, fn, vector):
        """Call fn in a rolled-back transaction.  Returns None when the call
        ended normally (a result or an error), else what went wrong."""
        placeholders = [f"%s::{typ}" for (_n, typ), _v in zip(fn.inputs, vector.values)]
        if fn.variadic and len(placeholders) == len(fn.inputs):
            placeholders[-1] = "VARIADIC " + placeholders[-1]
        placeholders = ", ".join(placeholders)
        values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in vector.values]
        return self.in_rollback(conn, f"SELECT * FROM {fn.schema}.{fn.name}({placeholders})", values)

    def in_rollback(self, conn, statement, params=None):
        try:
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                try:
                    cur.execute(statement, params)
                    if cur.description:
                        cur.fetchall()
                except psycopg2.errors.QueryCanceled:
                    cur.execute("ROLLBACK")
                    return f"did not finish within {STATEMENT_TIMEOUT_S} s"
                except psycopg2.Error:
                    if conn.closed:
                        raise
                cur.execute("ROLLBACK")
            return None
        except psycopg2.Error as e:
            if not conn.closed:
                raise
            return f"connection lost: {str(e).strip().splitlines()[0] if str(e).strip() else e!r}"

    def trigger_statements(self, fn):
        """Statements that fire fn through each trigger that uses it, with NULL columns."""
        out = []
        triggers = self.cluster.sql("SELECT tgrelid::regclass::text, tgrelid FROM pg_trigger "
                                    "WHERE tgfoid = %s AND NOT tgisinternal", (fn.oid,))
        for table, relid in triggers:
            cols = self.cluster.sql(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "       a.atthasdef OR a.attidentity <> '' "
                "  FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
                " ORDER BY a.attnum", (relid,))
            names, values, nullable = [], [], []
            for name, typ, notnull, hasdef in cols:
                if not notnull:
                    nullable.append(name)
                    names.append(name)
                    values.append("NULL")
                elif not hasdef:
                    names.append(name)
                    value = self.ctx.plausible(fn, {"crm_source": "crm", "sync_type": "model"}.get(name, name), typ)
                    values.append(psycopg2.extensions.adapt(value).getquoted().decode() + f"::{typ}")
            out.append((f"INSERT INTO {table} (every nullable column NULL)",
                        f"INSERT INTO {table} ({', '.join(map(ident, names))}) VALUES ({', '.join(values)})"))
            # one column at a time: together they would break a CHECK
            # constraint before the trigger fires
            for n in nullable:
                out.append((f"UPDATE {table} SET {n} = NULL", f"UPDATE {table} SET {ident(n)} = NULL"))
        return out

    # -- HTTP calls ----------------------------------------------------------
    def token(self, timeout=30):
        """ada's token; a login refused for a while (429: the sweep's own failed
        logins came from this address too) is retried after the short lockout."""
        if "ada" not in self.api.tokens:
            deadline = time.time() + timeout
            while True:
                r = self.api.post("/api/rpc/login", {"username": "ada", "password": PASSWORDS["ada"]})
                if r.status == 200:
                    self.api.tokens["ada"] = r.json()["token"]
                    break
                if r.status != 429 or time.time() > deadline:
                    raise AssertionError(f"ada cannot log in: {r!r}")
                time.sleep(0.5)
        return self.api.tokens["ada"]

    def http(self, method, path, body=None, headers=None):
        """One request as ada; a token refused (401: a sweep call logged out or
        a crash forgot it) is renewed once."""
        for attempt in (1, 2):
            try:
                r = self.api.request(method, path, body=body, headers=headers, token=self.token())
            except (OSError, http.client.HTTPException) as e:
                return None, f"connection lost: {e!r}"
            if r.status != 401 or attempt == 2:
                return r, None
            self.api.tokens.pop("ada", None)
        return r, None


SWEEP = None


def sweep_instance():
    """The one sweep cluster, started when the tests are collected (their
    parameters come from its catalog)."""
    global SWEEP
    if SWEEP is None:
        SWEEP = Sweep()
        atexit.register(SWEEP.stop)
    return SWEEP


def pytest_generate_tests(metafunc):
    if "fn" not in metafunc.fixturenames:
        return
    functions = sweep_instance().functions
    if metafunc.function.__name__ != "test_null_sweep_sql":
        functions = [f for f in functions if f.schema == "crm_api" and f.kind == "f"]
    metafunc.parametrize("fn", functions, ids=[f.test_id for f in functions])


@pytest.fixture(scope="module")
def sweep():
    s = sweep_instance()
    yield s
    s.stop()


def failure(fn, title, lines):
    return f"{fn.signature}: {title}:\n  " + "\n  ".join(lines)


def test_catalog_was_read(sweep):
    """The sweep found the functions of both schemas (it cannot pass on an empty catalog)."""
    names = {f.qualified for f in sweep.functions}
    assert {"crm_api.command_preview", "crm_api.start_sync", "crm_dashboard.start_sync"} <= names
    assert any(f.is_trigger for f in sweep.functions)


def test_null_sweep_sql(sweep, fn):
    before = sweep.wait_ready()
    bad = []
    vecs = vectors(fn, sweep.ctx)
    for role in ["postgres"] + fn.roles:
        conn = sweep.connect(role)
        for vector in vecs:
            problem = sweep.sql_call(conn, fn, vector)
            if problem:
                bad.append(f"as {role}: {vector.describe(fn)}: {problem}")
                if conn.closed:
                    sweep.recover()
                    conn = sweep.connect(role)
        if fn.is_trigger:
            for label, statement in sweep.trigger_statements(fn):
                problem = sweep.in_rollback(conn, statement)
                if problem:
                    bad.append(f"as {role}: trigger fired by {label}: {problem}")
                    if conn.closed:
                        sweep.recover()
                        conn = sweep.connect(role)
        conn.close()
    deaths = sweep.deaths(before)
    if bad or deaths:
        pytest.fail(failure(fn, f"{len(vecs)} vectors as {', '.join(['postgres'] + fn.roles)}", bad + deaths),
                    pytrace=False)


def http_requests(fn, sweep):
    """(label, method, path, body, headers) of every HTTP call of fn."""
    out = []
    path = f"/api/rpc/{fn.name}"
    if any(name is None for name, _t in fn.inputs):
        return out              # without argument names a function cannot be called over HTTP
    for vector in vectors(fn, sweep.ctx):
        if vector.label == "plausible values":
            continue            # requests commit: only the odd vectors go over HTTP
        body = {}
        for (name, typ), value in zip(fn.inputs, vector.values):
            if typ in ("json", "jsonb") and isinstance(value, str):
                value = json.loads(value)
            body[name] = value
        out.append((vector.describe(fn), "POST", path, body, None))
        if fn.retset:
            out.append((vector.describe(fn) + " as CSV", "POST", path, body, {"Accept": "text/csv"}))
    if fn.volatility in ("s", "i"):
        base = {name: sweep.ctx.plausible(fn, name, typ) for name, typ in fn.inputs}
        cases = [("plausible values", base)]
        for name, _typ in fn.inputs:
            cases.append((f"{name} empty", dict(base, **{name: ""})))
        if len(fn.inputs) > 1:
            cases.append(("every argument empty", {name: "" for name, _t in fn.inputs}))
        for label, args in cases:
            query = urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v)
                                            for k, v in args.items()})
            out.append((f"GET {path}?{query[:80]}  [{label}]", "GET", f"{path}?{query}" if query else path,
                        None, None))
    return out


def http_sweep(sweep, fn):
    """Every HTTP call of fn, once: (problems, replies as (label, status, body))."""
    if fn.signature not in sweep.http_results:
        before = sweep.wait_ready()
        bad, replies = [], []
        for label, method, path, body, headers in http_requests(fn, sweep):
            r, problem = sweep.http(method, path, body, headers)
            if problem:
                bad.append(f"{method} {label}: {problem}")
                sweep.recover()
            else:
                replies.append((f"{method} {label}", r.status, r.body[:300]))
        sweep.http_results[fn.signature] = (bad + sweep.deaths(before), replies)
    return sweep.http_results[fn.signature]


def test_null_sweep_http(sweep, fn):
    bad, replies = http_sweep(sweep, fn)
    if bad:
        pytest.fail(failure(fn, f"{len(replies) + len(bad)} requests as ada", bad), pytrace=False)


def test_null_sweep_http_no_5xx(sweep, fn):
    _bad, replies = http_sweep(sweep, fn)
    errors = [f"{label}: {status} {body!r}" for label, status, body in replies if status >= 500]
    if errors:
        pytest.fail(failure(fn, f"{len(errors)} of {len(replies)} replies were 5xx (an internal error is a bug)",
                            errors), pytrace=False)
