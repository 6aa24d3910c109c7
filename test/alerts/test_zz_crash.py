"""kill -9 of the alerts worker in the middle of a delivery: after the
restart the notification is delivered, at least once, with the same
idempotency key on both attempts.  (Runs last: the crash restarts the
whole cluster.)"""
import json
import os
import signal
import time


def _sql_when_up(cluster, query, params=None, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            return cluster.sql(query, params)
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_kill_9_mid_delivery_delivers_after_restart_with_the_same_key(alerts, receiver, cluster):
    model = alerts.model()
    # the first attempt is held until the worker is dead; the next one succeeds
    receiver.behaviour["/crash"] = [("hang", 3), 200]
    channel, _ = alerts.webhook("/crash")
    alerts.rule(model, [channel])
    alerts.run(model)
    first = receiver.wait("/crash")[0]
    [(pid,)] = cluster.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'crm_dashboard alerts worker'")
    os.kill(pid, signal.SIGKILL)
    reqs = receiver.wait("/crash", 2, timeout=60)
    assert reqs[0]["headers"]["Idempotency-Key"] == reqs[1]["headers"]["Idempotency-Key"]
    assert json.loads(reqs[0]["body"])["id"] == json.loads(reqs[1]["body"])["id"]
    assert reqs[1]["headers"]["X-Crm-Dashboard-Attempt"] == "2"
    deadline = time.time() + 30
    while _sql_when_up(cluster, "SELECT status FROM crm_api.alert_notifications WHERE channel = %s",
                       (channel,))[0][0] != "delivered":
        assert time.time() < deadline, "not delivered after the restart"
        time.sleep(0.1)
    attempts = _sql_when_up(cluster, "SELECT attempt, ok, error FROM crm_api.alert_deliveries WHERE channel = %s "
                            "ORDER BY attempt", (channel,))
    assert [(a, ok) for a, ok, _ in attempts] == [(1, False), (2, True)]
    assert "stopped during this attempt" in attempts[0][2]
    assert first["headers"]["Idempotency-Key"] == _sql_when_up(
        cluster, "SELECT uuid::text FROM crm_api.alert_notifications WHERE channel = %s", (channel,))[0][0]
    assert f"background worker \"crm_dashboard alerts worker\" (PID {pid}) was terminated by signal 9" in cluster.log()
