"""E-mail over SMTP with STARTTLS and a password: the password crosses the
network only inside TLS, the certificate is checked against
crm_dashboard.delivery_ca_file, and a channel that requires TLS refuses a
server that does not offer it."""
import email
import os
import ssl
import subprocess
import time

import pytest
from conftest import SMTP_PORT, suite_port

SMTP_TLS_PORT = suite_port(24505)


@pytest.fixture(scope="module")
def tls_files(cluster):
    key = os.path.join(cluster.dir, "smtp.key")
    cert = os.path.join(cluster.dir, "smtp.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    os.chmod(cert, 0o644)
    cluster.sql("ALTER SYSTEM SET crm_dashboard.delivery_ca_file = %s", (cert,))
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    yield key, cert
    cluster.sql("ALTER SYSTEM RESET crm_dashboard.delivery_ca_file")
    cluster.sql("SELECT pg_reload_conf()")


@pytest.fixture(scope="module")
def tls_server(tls_files):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    key, cert = tls_files

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope, session.ssl is not None, session.authenticated))
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"alerts" and auth_data.password == b"s3cret-smtp-pw"
        return AuthResult(success=ok)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_TLS_PORT, tls_context=ctx,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    yield handler
    controller.stop()


def test_starttls_and_a_password(alerts, cluster, tls_server):
    model = alerts.model()
    cluster.sql("SELECT crm_api.create_alert_channel('mail-tls', 'email', %s, mail_from => 'alerts@example.com', "
                "mail_to => '{oncall@example.com}', smtp_username => 'alerts', smtp_password => 's3cret-smtp-pw')",
                (f"smtp://127.0.0.1:{SMTP_TLS_PORT}",))
    alerts.rule(model, ["mail-tls"])
    alerts.run(model, error="token expired")
    alerts.wait_status("mail-tls", "delivered")
    envelope, over_tls, authenticated = tls_server.messages[-1]
    assert over_tls and authenticated
    msg = email.message_from_bytes(envelope.original_content)
    assert msg["Subject"] == f"[FIRING] HubSpot {model}: sync failed"
    assert "s3cret-smtp-pw" not in cluster.log()


def test_a_wrong_password_fails_and_stays_secret(alerts, cluster, tls_server):
    model = alerts.model()
    cluster.sql("SELECT crm_api.create_alert_channel('mail-badpw', 'email', %s, mail_from => 'alerts@example.com', "
                "mail_to => '{oncall@example.com}', smtp_username => 'alerts', smtp_password => 'wrong-password-123')",
                (f"smtp://127.0.0.1:{SMTP_TLS_PORT}",))
    alerts.rule(model, ["mail-badpw"])
    alerts.run(model)
    alerts.wait_status("mail-badpw", "failed", timeout=60)
    [(_, _, status, _, _, error)] = alerts.notifications("mail-badpw")
    assert status == "failed" and error
    assert tls_server.messages == [m for m in tls_server.messages if m[2]]  # nothing got in unauthenticated
    assert "wrong-password-123" not in error and "wrong-password-123" not in cluster.log()


def test_required_tls_refuses_a_server_without_it(alerts, cluster):
    # the plain server of test_delivery (no STARTTLS): started here again
    from aiosmtpd.controller import Controller

    class Keep:
        messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        model = alerts.model()
        cluster.sql("SELECT crm_api.create_alert_channel('mail-musttls', 'email', %s, mail_from => 'alerts@example.com', "
                    "mail_to => '{oncall@example.com}', require_tls => true)", (f"smtp://127.0.0.1:{SMTP_PORT}",))
        alerts.rule(model, ["mail-musttls"])
        alerts.run(model)
        cluster.wait_for("SELECT count(*) > 0 FROM crm_api.alert_deliveries WHERE channel = 'mail-musttls' AND NOT ok",
                         timeout=20)
        [error] = cluster.sql("SELECT error FROM crm_api.alert_deliveries WHERE channel = 'mail-musttls' ORDER BY id LIMIT 1")[0]
        assert "ssl" in error.lower() or "tls" in error.lower()
        assert Keep.messages == []
    finally:
        controller.stop()
