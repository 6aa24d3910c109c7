"""The alerts worker delivers the outbox to real receivers: signed webhooks
with an idempotency key, retries with backoff, permanent failures, a
hanging endpoint that delays no other channel, Slack, e-mail over SMTP,
crm_api.test_channel, and the allow-list checked at every connection."""
import email
import json
import time

import pytest
from conftest import CLOSED_PORT, HTTP_PORT, SMTP_PORT, signature_ok

SECRET = "whsec_test_0123456789"


def test_webhook_is_signed_keyed_and_carries_the_alert(alerts, receiver):
    model = alerts.model()
    channel, _ = alerts.webhook("/signed")
    alerts.rule(model, [channel])
    run_id = alerts.run(model)
    req = receiver.wait("/signed")[0]
    assert signature_ok(SECRET, req["headers"]["X-Crm-Dashboard-Signature"], req["body"])
    assert not signature_ok("another-secret-000000", req["headers"]["X-Crm-Dashboard-Signature"], req["body"])
    doc = json.loads(req["body"])
    assert doc["type"] == "alert.firing"
    assert doc["alert"]["model"] == model and doc["alert"]["run_id"] == run_id
    assert doc["alert"]["message"] == "HTTP 500 from HubSpot"
    [(uuid, event, status, attempts, code, error)] = alerts.notifications(channel) if alerts.wait_status(channel, "delivered") else []
    assert req["headers"]["Idempotency-Key"] == uuid == doc["id"]
    assert req["headers"]["X-Crm-Dashboard-Delivery"] == uuid
    assert (event, status, attempts, code, error) == ("firing", "delivered", 1, 200, None)
    # the success resolves the alert: a "resolved" notice follows, with its own key
    alerts.run(model, "success")
    reqs = receiver.wait("/signed", 2)
    resolved = json.loads(reqs[1]["body"])
    assert resolved["type"] == "alert.resolved" and resolved["alert"]["status"] == "resolved"
    assert reqs[1]["headers"]["Idempotency-Key"] != uuid


def test_server_errors_are_retried_with_the_same_key(alerts, receiver, cluster):
    model = alerts.model()
    receiver.behaviour["/flaky"] = [500, 502, 200]
    channel, _ = alerts.webhook("/flaky")
    alerts.rule(model, [channel])
    alerts.run(model)
    reqs = receiver.wait("/flaky", 3, timeout=30)
    assert len({r["headers"]["Idempotency-Key"] for r in reqs}) == 1
    assert [r["headers"]["X-Crm-Dashboard-Attempt"] for r in reqs] == ["1", "2", "3"]
    alerts.wait_status(channel, "delivered")
    attempts = cluster.sql("SELECT attempt, ok, status_code FROM crm_api.alert_deliveries WHERE channel = %s "
                           "ORDER BY attempt", (channel,))
    assert attempts == [(1, False, 500), (2, False, 502), (3, True, 200)]
    [(health, failures)] = cluster.sql("SELECT consecutive_failures, failures_total FROM crm_api.alert_channels "
                                       "WHERE name = %s", (channel,))
    assert (health, failures) == (0, 2)


def test_a_client_error_fails_for_good(alerts, receiver):
    model = alerts.model()
    receiver.behaviour["/gone"] = [410]
    channel, _ = alerts.webhook("/gone")
    alerts.rule(model, [channel])
    alerts.run(model)
    alerts.wait_status(channel, "failed")
    [(_, _, status, attempts, code, error)] = alerts.notifications(channel)
    assert (status, attempts, code) == ("failed", 1, 410)
    assert error.startswith("HTTP 410")


def test_a_closed_port_is_retried_until_the_attempts_are_used_up(alerts, cluster):
    model = alerts.model()
    channel, _ = alerts.webhook("/nobody", port=CLOSED_PORT)
    alerts.rule(model, [channel])
    alerts.run(model)
    alerts.wait_status(channel, "failed", timeout=40)
    [(_, _, status, attempts, code, error)] = alerts.notifications(channel)
    assert (status, attempts, code) == ("failed", 4, None)
    assert "connect" in error.lower()
    [(failing, last_error)] = cluster.sql("SELECT failing, last_error FROM crm_api.alert_channels WHERE name = %s",
                                          (channel,))
    assert failing and "connect" in last_error.lower()
    assert cluster.sql("SELECT failing_channels FROM crm_api.alert_summary")[0][0] >= 1


def test_a_hanging_endpoint_delays_no_other_channel(alerts, receiver, cluster):
    model = alerts.model()
    receiver.behaviour["/hang"] = [("hang", 30)]
    hanging, _ = alerts.webhook("/hang")
    healthy, _ = alerts.webhook("/healthy")
    alerts.rule(model, [hanging, healthy])
    started = time.time()
    alerts.run(model)
    receiver.wait("/healthy")
    assert time.time() - started < 2, "the healthy channel waited for the hanging one"
    alerts.wait_status(healthy, "delivered")
    assert receiver.received("/hang"), "the hanging channel was not even tried"
    # the hanging one times out (delivery_timeout = 4 s) and is retried
    cluster.wait_for("SELECT count(*) > 0 FROM crm_api.alert_deliveries WHERE channel = %s AND error ~* 'timed? ?out'",
                     (hanging,), timeout=20)


def test_slack_gets_its_message(alerts, receiver):
    model = alerts.model()
    channel, _ = alerts.webhook("/services/T0/B0/slack", kind="slack")
    alerts.rule(model, [channel])
    alerts.run(model, error="<!channel> token expired")
    req = receiver.wait("/services/T0/B0/slack")[0]
    doc = json.loads(req["body"])
    assert set(doc) == {"text", "unfurl_links", "unfurl_media"}
    assert f"[FIRING] HubSpot {model}: sync failed" in doc["text"]
    assert "&lt;!channel&gt; token expired" in doc["text"] and "<!channel>" not in doc["text"]
    assert "X-Crm-Dashboard-Signature" not in req["headers"]


@pytest.fixture(scope="module")
def smtp_server():
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield handler
    controller.stop()


def test_email_over_smtp(alerts, cluster, smtp_server):
    model = alerts.model()
    name = "mail-oncall"
    cluster.sql("SELECT crm_api.create_alert_channel(%s, 'email', %s, mail_from => 'alerts@example.com', "
                "mail_to => '{oncall@example.com,ops@example.com}')", (name, f"smtp://127.0.0.1:{SMTP_PORT}"))
    alerts.rule(model, [name])
    alerts.run(model, error="quota exceeded")
    alerts.wait_status(name, "delivered")
    env = smtp_server.messages[-1]
    assert env.mail_from == "alerts@example.com"
    assert sorted(env.rcpt_tos) == ["oncall@example.com", "ops@example.com"]
    msg = email.message_from_bytes(env.original_content)
    assert msg["Subject"] == f"[FIRING] HubSpot {model}: sync failed"
    [(uuid, *_)] = alerts.notifications(name)
    assert msg["X-Crm-Dashboard-Delivery"] == uuid
    assert "quota exceeded" in msg.get_payload(decode=True).decode()


def test_test_channel_reports_the_result(alerts, receiver, cluster):
    ok_channel, ok_id = alerts.webhook("/tested")
    receiver.behaviour["/tested-bad"] = [503]
    bad_channel, bad_id = alerts.webhook("/tested-bad")
    result = cluster.sql("SELECT crm_api.test_channel(%s)", (ok_id,))[0][0]
    assert result["ok"] is True and result["status_code"] == 200 and result["error"] is None
    req = receiver.received("/tested")[0]
    assert signature_ok(SECRET, req["headers"]["X-Crm-Dashboard-Signature"], req["body"])
    assert json.loads(req["body"])["type"] == "alert.test"
    assert req["headers"]["Idempotency-Key"] == result["notification"]
    result = cluster.sql("SELECT crm_api.test_channel(%s)", (bad_id,))[0][0]
    assert result["ok"] is False and result["status_code"] == 503 and result["error"].startswith("HTTP 503")
    assert cluster.sql("SELECT test, ok, status_code FROM crm_api.alert_deliveries WHERE channel = %s",
                       (bad_channel,)) == [(True, False, 503)]
    with pytest.raises(Exception, match="alert channel 424242 does not exist"):
        cluster.sql("SELECT crm_api.test_channel(424242)")


def test_an_address_refused_at_connection_time(alerts, receiver, cluster):
    """DNS rebinding: a target allowed when the channel was made is checked again at every connection."""
    model = alerts.model()
    channel, channel_id = alerts.webhook("/rebound")
    alerts.rule(model, [channel])
    cluster.sql("ALTER SYSTEM SET crm_dashboard.delivery_allowed_hosts = 'public'")
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    try:
        alerts.run(model)
        alerts.wait_status(channel, "failed")
        [(_, _, status, attempts, code, error)] = alerts.notifications(channel)
        assert (status, attempts) == ("failed", 1)
        assert "address 127.0.0.1" in error and "not allowed" in error
        assert not receiver.received("/rebound")
        result = cluster.sql("SELECT crm_api.test_channel(%s)", (channel_id,))[0][0]
        assert result["ok"] is False and "not allowed" in result["error"]
    finally:
        cluster.sql("ALTER SYSTEM RESET crm_dashboard.delivery_allowed_hosts")
        cluster.sql("SELECT pg_reload_conf()")
        time.sleep(0.5)


def test_secrets_stay_out_of_errors_and_logs(alerts, cluster):
    model = alerts.model()
    secret_path = "/hooks/T000/B000/sup3rs3cr3tt0ken"
    channel, _ = alerts.webhook(secret_path, port=CLOSED_PORT, kind="slack")
    alerts.rule(model, [channel])
    alerts.run(model)
    cluster.wait_for("SELECT count(*) >= 2 FROM crm_api.alert_deliveries WHERE channel = %s", (channel,), timeout=20)
    errors = [r[0] for r in cluster.sql("SELECT error FROM crm_api.alert_deliveries WHERE channel = %s", (channel,))]
    assert errors and all(e and "sup3rs3cr3t" not in e for e in errors)
    assert "sup3rs3cr3t" not in cluster.log()
    for role in ("alerts_operator", "alerts_viewer"):
        with pytest.raises(Exception, match="permission denied"):
            cluster.sql("SELECT url FROM crm_api.alert_channel_settings", user=role)
        targets = cluster.sql("SELECT target FROM crm_api.alert_channels WHERE name = %s", (channel,), user=role)
        assert targets == [(f"http://127.0.0.1:{CLOSED_PORT}",)]


def test_reminders_after_renotify_and_when_a_snooze_ends(alerts, receiver, cluster):
    model = alerts.model()
    channel, _ = alerts.webhook("/remind")
    rule_id = alerts.rule(model, [channel])
    cluster.sql("SELECT crm_api.update_alert_rule(%s, renotify_after => '1 hour')", (rule_id,))
    alerts.run(model)
    receiver.wait("/remind")
    # a repeat within renotify_after: counted, not notified
    alerts.run(model)
    [(alert_id, occurrences)] = cluster.sql("SELECT id, occurrences FROM crm_api.alerts WHERE rule_id = %s", (rule_id,))
    assert occurrences == 2
    assert [e for _, e, *_ in alerts.notifications(channel)] == ["firing"]
    # an hour later (as if): the next repeat reminds
    cluster.sql("UPDATE crm_dashboard.alert SET last_notified_at = now() - interval '61 minutes' WHERE id = %s", (alert_id,))
    alerts.run(model)
    reqs = receiver.wait("/remind", 2)
    assert json.loads(reqs[1]["body"])["type"] == "alert.reminder"
    # snoozed: repeats stay quiet; when the snooze ends, the periodic check reminds
    cluster.sql("SELECT crm_api.snooze_alert(%s, now() + interval '1 second', 'deploying a fix')", (alert_id,))
    cluster.sql("UPDATE crm_dashboard.alert SET last_notified_at = now() - interval '61 minutes' WHERE id = %s", (alert_id,))
    alerts.run(model)
    assert len(alerts.notifications(channel)) == 2
    time.sleep(1.2)
    cluster.sql("SELECT crm_dashboard.alerts_tick()")
    reqs = receiver.wait("/remind", 3)
    assert json.loads(reqs[2]["body"])["type"] == "alert.reminder"
    [(status, action)] = cluster.sql("SELECT a.status, l.action FROM crm_api.alerts a JOIN crm_api.alert_history l "
                                     "ON l.alert_id = a.id WHERE a.id = %s ORDER BY l.id DESC LIMIT 1", (alert_id,))
    assert (status, action) == ("open", "unsnoozed")
