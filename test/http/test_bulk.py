"""Bulk operations over HTTP: start_syncs takes a JSON array of models and
answers an outcome per model; stop_syncs stops several runs."""
import pytest


@pytest.fixture
def genius_command(cluster):
    cluster.sql("INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('genius', 'lead', %s)",
                (["/bin/sh", "-c", "exec /bin/sleep 30", "sync"],))
    yield
    cluster.sql("DELETE FROM crm_dashboard.sync_command WHERE crm = 'genius'")


def test_start_and_stop_several(api, cluster, genius_command):
    r = api.post("/api/rpc/start_syncs", {"crm": "genius", "models": ["lead", "nosuch", "lead"],
                                          "options": {"debug": True}}, user="otto")
    assert r.status == 200, r
    rows = r.json()
    assert [(x["model"], x["outcome"]) for x in rows] == [
        ("lead", "started"), ("nosuch", "unknown_model"), ("lead", "duplicate")]
    run, parent = rows[0]["run_id"], rows[0]["parent_id"]
    assert parent and rows[1]["parent_id"] is None and "nosuch" in rows[1]["message"]
    # the same again: the run is in the way, named
    again = api.post("/api/rpc/start_syncs", {"crm": "genius", "models": ["lead"]}, user="otto").json()
    assert again[0]["outcome"] in ("already_queued", "already_running") and again[0]["run_id"] == run
    # a viewer may not
    r = api.post("/api/rpc/start_syncs", {"crm": "genius", "models": ["lead"]}, user="vera")
    assert r.status == 403
    r = api.post("/api/rpc/stop_syncs", {"ids": [run, parent, 987654321]}, user="otto")
    assert r.status == 200, r
    out = {x["run_id"]: x["outcome"] for x in r.json()}
    assert out[run] in ("cancelled", "stopping") and out[987654321] == "unknown"
    assert cluster.wait_for("SELECT status IN ('cancelled', 'failed') FROM crm_dashboard.sync_history WHERE id = %s",
                            (run,))
    assert cluster.wait_for("SELECT status NOT IN ('queued', 'running') FROM crm_dashboard.sync_history WHERE id = %s",
                            (parent,))
