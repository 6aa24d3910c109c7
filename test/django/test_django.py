"""A real Django project's management command, started from the dashboard and by hand."""
import importlib.util
import io
import json
import os
import subprocess
import time

import pytest

from conftest import HELPER_DIR, PROJECT


def test_started_from_the_dashboard_it_leaves_one_row_with_live_progress(django):
    django.configure(SIM_CONTACTS=200, SIM_PAGE=20, SIM_PAUSE=0.3)
    run_id = django.start("hubspot", "contact")
    seen = set()
    deadline = time.time() + 60
    while time.time() < deadline:
        status, processed = django.sql("SELECT status, records_processed FROM crm_dashboard.sync_history "
                                       "WHERE id = %s", (run_id,))[0]
        if status == "running":
            seen.add(processed)
        if status not in ("queued", "running"):
            break
        time.sleep(0.1)
    # live: figures between none and all while it ran
    assert any(0 < p < 200 for p in seen), seen
    run = django.run(run_id)
    assert run["status"] == "success", django.log(run_id)
    assert (run["records_processed"], run["records_created"], run["records_updated"], run["records_total"]) == \
        (200, 200, 0, 200)
    # exactly one row: the command updated the dashboard's, it inserted none
    assert django.one("SELECT count(*) FROM crm_dashboard.sync_history") == 1
    assert django.one("SELECT endpoint FROM crm_dashboard.sync_history WHERE id = %s", (run_id,)) == \
        "/crm/v3/objects/contacts"
    assert django.one("SELECT count(*) FROM ingestion.hubspot_contact") == 200
    assert run["configuration"]["argv"][-1] == "sync_hubspot_contacts"
    # the data watermark comes from the index on lastmodifieddate
    watermark = django.one("SELECT data_watermark FROM crm_api.crm_models WHERE crm = 'hubspot' AND model = 'contact'")
    assert watermark is not None and watermark.isoformat().startswith("2025-01-01T03:20:00")

    # again, with a flag: the same contacts are updated, not created
    again = django.wait(django.start("hubspot", "contact", {"full": True, "batch_size": 50}))
    assert again["status"] == "success"
    assert (again["records_processed"], again["records_created"], again["records_updated"]) == (200, 0, 200)
    assert again["configuration"]["argv"][-3:] == ["--full", "--batch-size", "50"]
    assert django.one("SELECT count(*) FROM crm_dashboard.sync_history") == 2


def test_run_by_hand_it_keeps_its_own_row(django, cluster):
    env = dict(os.environ, PGHOST=cluster.sockdir, PGPORT=str(cluster.port), PGDATABASE="postgres",
               PGUSER="postgres", PYTHONPATH=HELPER_DIR, DJANGO_SETTINGS_MODULE="ingest.settings",
               PYTHONDONTWRITEBYTECODE="1", SIM_CONTACTS="60", SIM_PAGE="25")
    env.pop("CRM_DASHBOARD_SYNC_ID", None)
    done = subprocess.run(["/usr/bin/python3", "manage.py", "sync_hubspot_contacts", "--full"], cwd=PROJECT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1] == {"event": "summary", "processed": 60, "created": 60, "updated": 0, "failed": 0, "total": 60}
    rows = django.sql("SELECT status, records_processed, records_created, records_updated, end_time IS NOT NULL, "
                      "configuration -> 'options' ->> 'full', configuration ? 'argv' FROM crm_dashboard.sync_history")
    assert rows == [("success", 60, 60, 0, True, "true", False)]


def test_a_rate_limit_from_django_is_waited_out_without_using_an_attempt(django, cluster):
    marker = os.path.join(cluster.dir, "django-rate-marker")
    if os.path.exists(marker):
        os.remove(marker)
    django.sql("SELECT crm_api.set_run_policy('hubspot', max_attempts => 1)")
    django.configure(SIM_CONTACTS=30, SIM_FAIL="rate", SIM_FAIL_MARKER=marker, SIM_RETRY_AFTER=2)
    first = django.start("hubspot", "contact")
    run = django.wait(first)
    assert run["status"] == "failed" and run["exit_code"] == 75 and run["error_class"] == "rate_limited"
    retry = django.one("SELECT id FROM crm_dashboard.sync_history WHERE first_attempt_id = %s", (first,))
    done = django.wait(retry, timeout=60)
    assert done["status"] == "success" and done["attempt"] == 1 and done["records_processed"] == 30
    # one row per attempt and no other
    assert django.one("SELECT count(*) FROM crm_dashboard.sync_history") == 2


def test_a_revoked_key_needs_action(django):
    django.configure(SIM_CONTACTS=30, SIM_FAIL="revoked")
    first = django.start("hubspot", "contact")
    run = django.wait(first)
    assert run["status"] == "failed" and run["exit_code"] == 77 and run["error_class"] == "permanent"
    assert "HTTP 401: the API key was revoked" in run["performance_metrics"]["errors"][0]["message"]
    time.sleep(1.5)
    assert django.one("SELECT count(*) FROM crm_dashboard.sync_history") == 1
    assert django.one("SELECT action_required FROM crm_api.crm_models WHERE crm = 'hubspot' AND model = 'contact'")


def _helper():
    spec = importlib.util.spec_from_file_location("crm_dashboard_progress",
                                                  os.path.join(HELPER_DIR, "crm_dashboard_progress.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_helper_prints_the_protocol():
    helper = _helper()
    out = io.StringIO()
    run = helper.SyncRun("hubspot", "contact", stream=out, environ={})
    with run:
        run.progress(total=10)
        run.add(processed=4, created=3, updated=1)
        run.error("email invalid", record=51000017)
        run.heartbeat()
        run.rate_limited(52, "HTTP 429")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"event": "progress", "processed": 0, "created": 0, "updated": 0, "failed": 0, "total": 10},
        {"event": "progress", "processed": 4, "created": 3, "updated": 1, "failed": 0, "total": 10},
        {"event": "error", "message": "email invalid", "record": 51000017},
        {"event": "heartbeat"},
        {"event": "rate_limited", "retry_after": 52.0, "message": "HTTP 429"},
        {"event": "summary", "processed": 4, "created": 3, "updated": 1, "failed": 0, "total": 10},
    ]
    assert not run.under_dashboard
    assert helper.SyncRun("hubspot", "contact", environ={"CRM_DASHBOARD_SYNC_ID": "42"}).sync_id == 42
    with pytest.raises(ValueError):
        run.progress(processed=-1)


@pytest.mark.parametrize("error, code, last", [
    ("retry", 75, {"event": "rate_limited", "retry_after": 30.0, "message": "HTTP 429"}),
    ("retry_plain", 75, {"event": "error", "message": "timeout"}),
    ("action", 78, {"event": "error", "message": "bad setting", "retryable": False}),
    ("noperm", 77, {"event": "error", "message": "key revoked", "retryable": False}),
])
def test_the_helper_exits_with_the_sysexits_status(error, code, last):
    helper = _helper()
    out = io.StringIO()
    raised = {"retry": helper.RetryLater("HTTP 429", retry_after=30), "retry_plain": helper.RetryLater("timeout"),
              "action": helper.ActionRequired("bad setting"),
              "noperm": helper.ActionRequired("key revoked", code=helper.EX_NOPERM)}[error]
    with pytest.raises(SystemExit) as e:
        with helper.SyncRun("hubspot", "contact", stream=out, environ={}):
            raise raised
    assert e.value.code == code
    assert json.loads(out.getvalue().splitlines()[-1]) == last
