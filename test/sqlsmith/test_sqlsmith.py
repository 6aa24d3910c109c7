"""A bounded, repeatable sqlsmith run must not crash the server.

sqlsmith's own errors (syntax errors, type guesses that do not resolve,
permission denied, timeouts) are expected; they are summarised at the end of
the run.  What fails: a process killed by a signal (the server log says
"terminated by signal"), the postmaster or a worker changing pid, sqlsmith
not getting through its queries, or the HTTP server or the launcher not
working afterwards.  A crash's query is taken from the server log, in full.
"""
import collections
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass

import pytest
from conftest import DB, PGOPTIONS, QUERIES, SEED, SMITH_ROLE, WATCHED

CRASH = re.compile(r"terminated by signal|was terminated by")
LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # log_line_prefix starts with %m
PROGRESS = re.compile(r"^[.a-zA-Z]+$")
CATEGORIES = [
    ("permission denied", re.compile(r"permission denied|must be (superuser|owner|a member)|only superuser")),
    ("statement timeout", re.compile(r"statement timeout")),
    ("lock timeout", re.compile(r"lock timeout")),
    ("syntax error", re.compile(r"syntax error")),
    ("types and names that do not resolve", re.compile(
        r"^ERROR:  (function|operator) |does not|is not an? |cannot cast|could not determine|COALESCE"
        r"|cannot accept|cannot return type|could not identify|cannot determine|failed to find conversion"
        r"|is ambiguous|is not unique|input of anonymous composite")),
    ("constraint violations", re.compile(r"violates|cannot insert a non-DEFAULT|can only be updated to DEFAULT")),
]


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


@dataclass
class Run:
    """One sqlsmith run and what the cluster looked like around it."""
    returncode: int
    seconds: float
    stderr: str
    log: str                  # the server log written during the run
    postmaster_before: int
    processes_before: dict
    sync_id: int

    def last_report(self):
        """sqlsmith's final report: (queries, {error message: count})."""
        lines = self.stderr.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("queries: ")]
        if not starts:
            return 0, {}
        queries = int(lines[starts[-1]].split()[1])
        errors = {}
        for line in lines[starts[-1] + 1:]:
            if line.startswith("error rate"):
                break
            count, _tab, message = line.partition("\t")
            if count.isdigit():
                errors[message] = int(count)
        return queries, errors

    def progress(self):
        """Counts of sqlsmith's progress marks: . ran, e error, t timeout, s syntax
        error, c connection lost (builds differ in case: counted as lower case)."""
        marks = collections.Counter()
        for line in self.stderr.splitlines():
            if PROGRESS.match(line) and not line.startswith("Loading"):
                marks.update(line.lower())
        return marks

    def crashes(self):
        """The server log's crash lines, each with its DETAIL (the query)."""
        lines = self.log.splitlines()
        out = []
        for i, line in enumerate(lines):
            if CRASH.search(line):
                detail = crash_detail(lines, i)
                out.append(line + ("\n" + detail if detail else ""))
        return out

    def summary(self):
        queries, errors = self.last_report()
        marks = self.progress()
        by_category = collections.Counter()
        other = collections.Counter()
        for message, count in errors.items():
            for name, pattern in CATEGORIES:
                if pattern.search(message):
                    by_category[name] += count
                    break
            else:
                by_category["other"] += count
                other[message] += count
        fatal = sorted({line.split("FATAL:", 1)[1].strip() for line in self.log.splitlines() if "FATAL:" in line})
        lines = [f"sqlsmith: {queries} queries (seed {SEED}) in {self.seconds:.1f} s, "
                 f"{marks['.']} ran, {sum(errors.values())} errors, "
                 f"{marks['t']} timeouts, {marks['c']} lost connections, "
                 f"{len(self.crashes())} crashes"]
        for name, count in by_category.most_common():
            lines.append(f"  {count:6d}  {name}")
        lines.append("  most frequent other errors:")
        for message, count in other.most_common(12):
            lines.append(f"  {count:6d}  {message}")
        if fatal:
            lines.append("  FATAL lines in the server log: " + "; ".join(fatal[:5]))
        return "\n".join(lines)


@pytest.fixture(scope="module")
def run(target, request):
    """Run sqlsmith once while a sync runs; the tests below judge the run."""
    before = target.wait_ready()
    postmaster = target.c.postmaster_pid()
    offset = target.log_size()
    # The launcher supervises a real command throughout the run.
    sync_id = target.sql("SELECT crm_api.start_sync('hubspot', 'all', '{\"max_records\": 3000}')")[0][0]
    dsn = f"host={target.c.sockdir} port={target.c.port} dbname={DB} user={SMITH_ROLE}"
    argv = ["sqlsmith", f"--target={dsn}", f"--seed={SEED}", f"--max-queries={QUERIES}",
            "--verbose", "--exclude-catalog"]
    start = time.monotonic()
    proc = subprocess.run(argv, env=dict(os.environ, PGOPTIONS=PGOPTIONS), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, errors="replace", timeout=max(900, QUERIES // 40))
    seconds = time.monotonic() - start
    with open(os.path.join(target.c.dir, "sqlsmith.err"), "w") as f:
        f.write(proc.stderr)
    time.sleep(0.5)             # a process hit at the very end dies about now
    r = Run(proc.returncode, seconds, proc.stderr, target.log_since(offset), postmaster, before, sync_id)
    request.config._sqlsmith_summary = r.summary()
    return r


def test_sqlsmith_ran_every_query(run):
    queries, _errors = run.last_report()
    if run.returncode != 0 or queries != QUERIES:
        pytest.fail(f"sqlsmith exited with {run.returncode} after {queries} of {QUERIES} queries:\n"
                    f"{run.stderr[-3000:]}", pytrace=False)
    assert run.progress()["."] > 0, "not one query ran without an error"


def test_no_process_was_killed_by_a_signal(run, target):
    crashes = run.crashes()
    if crashes:
        path = os.path.join(target.c.dir, "crashes.log")
        with open(path, "w") as f:
            f.write("\n\n".join(crashes) + "\n")
        shown = "\n\n".join(c[:3000] for c in crashes[:5])
        pytest.fail(f"{len(crashes)} processes died during the sqlsmith run (all of them, in full: {path}):\n"
                    f"{shown}", pytrace=False)


def test_postmaster_and_workers_kept_their_pids(run, target):
    changed = []
    if target.c.postmaster_pid() != run.postmaster_before:
        changed.append(f"postmaster: {run.postmaster_before} -> {target.c.postmaster_pid()}")
    after = target.wait_ready()
    for backend_type in WATCHED:
        if after.get(backend_type) != run.processes_before.get(backend_type):
            changed.append(f"{backend_type}: {run.processes_before.get(backend_type)} -> {after.get(backend_type)}")
    if changed:
        pytest.fail("processes were replaced during the sqlsmith run:\n  " + "\n  ".join(changed), pytrace=False)


def test_http_server_still_answers(run, target):
    r = target.api.get("/api/crm_sources", user="ada")
    assert r.status == 200, r
    assert {row["crm"] for row in r.json()} >= {"hubspot", "genius"}


def test_launcher_still_runs_syncs(run, target):
    # the run started before sqlsmith: stop it if it still runs, and see it end
    target.sql("SELECT crm_api.stop_sync(%s)", (run.sync_id,))
    status = wait_finished(target, run.sync_id)
    assert status in ("success", "partial", "cancelled"), status
    model = target.sql("SELECT model FROM crm_api.crm_models WHERE crm = 'genius' "
                       "ORDER BY estimated_rows NULLS LAST, model LIMIT 1")[0][0]
    sync_id = target.sql("SELECT crm_api.start_sync('genius', %s, %s)",
                         (model, json.dumps({"max_records": 20})))[0][0]
    assert wait_finished(target, sync_id) == "success"


def wait_finished(target, sync_id, timeout=60):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = target.sql("SELECT crm_api.sync_status(%s)->>'status'", (sync_id,))[0][0]
        if status not in ("queued", "running"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"run {sync_id} still {status} after {timeout}s")
