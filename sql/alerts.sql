-- Alerts at the SQL surface: rules and every bad parameter, channels and
-- every bad URL (schemes, internal addresses outside the allow-list),
-- alerts written in the transaction of the run that causes them, their
-- notifications in the outbox in that same transaction, deduplication,
-- resolving with a "resolved" notice, acknowledging and snoozing, and who
-- may read which secret.  (test/alerts delivers to real receivers.)
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS ingestion;
RESET client_min_messages;
CREATE TABLE ingestion.arrivy_task (id integer PRIMARY KEY, updated_at timestamptz);
CREATE TABLE ingestion.arrivy_crew (id integer PRIMARY KEY, updated_at timestamptz);
CREATE ROLE alert_admin IN ROLE crm_dashboard_admin;
CREATE ROLE alert_operator IN ROLE crm_dashboard_operator;
CREATE ROLE alert_viewer IN ROLE crm_dashboard_viewer;
SET crm_dashboard.request_user = 'alice';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The watches and their parameters.
SELECT w ->> 'watch' AS watch, jsonb_path_query_array(w, '$.params[*].name') AS params
  FROM jsonb_array_elements(crm_dashboard.alert_watches()) w;
SELECT crm_dashboard.check_alert_params('consecutive_failures', '{}');
SELECT crm_dashboard.check_alert_params('slow', '{"factor": 3}');

-- Channels: URLs are checked (schemes, hosts, the allow-list), errors never repeat a URL whole.
SET ROLE alert_admin;
SELECT crm_api.create_alert_channel('hook', 'webhook', 'file:///etc/passwd');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'gopher://example.com:70/_x');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'not a url');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'http://');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'http://127.0.0.1:9/hook');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'http://169.254.169.254/latest/meta-data/');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'https://10.1.2.3/hook?token=s3cret');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'http://[::1]:9/hook');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'http://localhost:9/hook');
SELECT crm_api.create_alert_channel('hook', 'slack', 'smtp://203.0.113.5');
SELECT crm_api.create_alert_channel('mail', 'email', 'https://mail.example.com');
SELECT crm_api.create_alert_channel('Bad Name', 'webhook', 'https://alerts.example.com/hook');
SELECT crm_api.create_alert_channel('hook', 'pager', 'https://alerts.example.com/hook');
SELECT crm_api.create_alert_channel('hook', 'webhook', NULL);
SELECT crm_api.create_alert_channel('hook', 'webhook', 'https://alerts.example.com/hook', secret => 'short');
SELECT crm_api.create_alert_channel('ops', 'slack', 'https://hooks.example.com/x', secret => 'a-secret-for-slack');
SELECT crm_api.create_alert_channel('mail', 'email', 'smtp://mail.example.com', mail_from => 'alerts@example.com');
SELECT crm_api.create_alert_channel('mail', 'email', 'smtp://mail.example.com', mail_from => 'Alerts <a@example.com>',
                                    mail_to => '{ops@example.com}');
SELECT crm_api.create_alert_channel('mail', 'email', 'smtp://mail.example.com', mail_from => 'a@example.com',
                                    mail_to => ARRAY[E'ops@example.com\r\nBcc: x@evil.example']);
SELECT crm_api.create_alert_channel('mail', 'email', 'smtp://mail.example.com', mail_from => 'a@example.com',
                                    mail_to => '{ops@example.com}', smtp_password => 'pw');
SELECT crm_api.create_alert_channel('hook', 'webhook', 'https://alerts.example.com/hook', mail_from => 'a@example.com');
RESET ROLE;

-- Internal addresses are refused unless listed; a listed one may be called.
ALTER SYSTEM SET crm_dashboard.delivery_allowed_hosts = 'public, 127.0.0.1, ::1';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT current_setting('crm_dashboard.delivery_allowed_hosts');
SET ROLE alert_admin;
SELECT crm_api.create_alert_channel('hook', 'webhook', 'https://10.1.2.3/hook?token=s3cret');
SELECT name, kind, target, enabled, recipients, failing, pending, rules, created_by
  FROM json_populate_record(NULL::crm_api.alert_channels,
                            crm_api.create_alert_channel('hook', 'webhook', 'http://127.0.0.1:9/hook',
                                                         secret => 'whsec_0123456789abcdef'));
SELECT name, kind, target FROM json_populate_record(NULL::crm_api.alert_channels,
    crm_api.create_alert_channel('ops-slack', 'slack', 'http://127.0.0.1:9/services/T000/B000/XXXX'));
SELECT name, kind, target, recipients FROM json_populate_record(NULL::crm_api.alert_channels,
    crm_api.create_alert_channel('oncall-mail', 'email', 'smtp://127.0.0.1:9', mail_from => 'alerts@example.com',
                                 mail_to => '{oncall@example.com,ops@example.com}', smtp_username => 'alerts',
                                 smtp_password => 'mail-password', enabled => false));
SELECT crm_api.create_alert_channel('hook', 'webhook', 'http://127.0.0.1:9/other');
SELECT name, length(secret) AS secret_length FROM json_populate_record(NULL::crm_api.alert_channel_settings,
    (SELECT row_to_json(s) FROM crm_api.alert_channel_settings s WHERE s.name = 'hook'));
-- a webhook without a secret gets a random one
SELECT name FROM json_populate_record(NULL::crm_api.alert_channels,
       crm_api.create_alert_channel('hook2', 'webhook', 'http://127.0.0.1:9/two'));
SELECT length(secret), secret ~ '^[0-9a-f]{64}$' AS hex FROM crm_api.alert_channel_settings WHERE name = 'hook2';
SELECT crm_api.delete_alert_channel(id) FROM crm_api.alert_channels WHERE name = 'hook2';
SELECT crm_api.delete_alert_channel(424242);
RESET ROLE;

-- The signature of a webhook: HMAC-SHA256 of "<t>.<body>" (checked against Python's hmac in test/alerts).
SELECT crm_dashboard.webhook_signature('whsec_0123456789abcdef', 1700000000, '{"id":1}');

-- Secrets: only administrators read them.
SET ROLE alert_viewer;
SELECT name, kind, target FROM crm_api.alert_channels ORDER BY name;
SELECT url FROM crm_dashboard.alert_channel;
SELECT secret FROM crm_api.alert_channel_settings;
SELECT crm_api.create_alert_channel('x', 'webhook', 'http://127.0.0.1:9/x');
RESET ROLE;
SET ROLE alert_operator;
SELECT secret FROM crm_api.alert_channel_settings;
SELECT smtp_password FROM crm_dashboard.alert_channel;
SELECT crm_api.test_channel(1);
RESET ROLE;

-- Rules: bad parameters, scopes, channels.
SET ROLE alert_admin;
SELECT crm_api.create_alert_rule('r', 'on_fire');
SELECT crm_api.create_alert_rule('r', 'consecutive_failures', params => '[3]');
SELECT crm_api.create_alert_rule('r', 'consecutive_failures', params => '{"cnt": 3}');
SELECT crm_api.create_alert_rule('r', 'auto_paused', params => '{"count": 3}');
SELECT crm_api.create_alert_rule('r', 'consecutive_failures', params => '{"count": 1}');
SELECT crm_api.create_alert_rule('r', 'consecutive_failures', params => '{"count": 2.5}');
SELECT crm_api.create_alert_rule('r', 'partial', params => '{"failed_percent": "ten"}');
SELECT crm_api.create_alert_rule('r', 'freshness', params => '{"level": "stale"}');
SELECT crm_api.create_alert_rule('r', 'run_failed', params => '{"every_attempt": 1}');
SELECT crm_api.create_alert_rule('r', 'run_failed', model => 'task');
SELECT crm_api.create_alert_rule('r', 'run_failed', crm => 'nosuchcrm');
SELECT crm_api.create_alert_rule('r', 'run_failed', crm => 'arrivy', model => 'nosuchmodel');
SELECT crm_api.create_alert_rule('r', 'run_failed', channels => '{hook,nosuchchannel}');
SELECT crm_api.create_alert_rule('r', 'run_failed', severity => 'urgent');
SELECT crm_api.create_alert_rule('r', 'run_failed', renotify_after => '10 seconds');
SELECT crm_api.create_alert_rule('', 'run_failed');
SELECT name, watch, crm, model, params, severity, channels, open_alerts, created_by
  FROM json_populate_record(NULL::crm_api.alert_rules,
       crm_api.create_alert_rule('arrivy failures', 'run_failed', crm => 'arrivy', channels => '{hook,ops-slack}',
                                 severity => 'critical'));
SELECT name, watch, params FROM json_populate_record(NULL::crm_api.alert_rules,
       crm_api.create_alert_rule('task streak', 'consecutive_failures', crm => 'arrivy', model => 'task',
                                 params => '{"count": 2}', channels => '{hook}'));
SELECT name, watch, params FROM json_populate_record(NULL::crm_api.alert_rules,
       crm_api.create_alert_rule('bad records', 'partial', params => '{"failed_percent": 10}', channels => '{hook}'));
SELECT crm_api.create_alert_rule('arrivy failures', 'stalled');
RESET ROLE;
SET ROLE alert_operator;
SELECT crm_api.create_alert_rule('mine', 'run_failed');
RESET ROLE;

-- A failed run opens an alert in its own transaction, with one notification per channel.
BEGIN;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
VALUES ('arrivy', 'task', 'failed', now() - interval '1 minute', now(), 'HTTP 401 from Arrivy');
SELECT status, severity, rule_name, crm, model, title, message, occurrences FROM crm_api.alerts ORDER BY id;
SELECT n.event, c.name AS channel, n.status, n.attempts, n.payload ->> 'type' AS type,
       n.payload #>> '{alert,title}' AS title, (n.payload ->> 'id')::uuid = n.uuid AS keyed
  FROM crm_dashboard.alert_notification n JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id ORDER BY c.name;
ROLLBACK;
-- rolled back: no alert, no notification
SELECT count(*) AS alerts FROM crm_dashboard.alert;
SELECT count(*) AS notifications FROM crm_dashboard.alert_notification;

-- Repeats count on the open alert; N in a row opens the streak alert.
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
VALUES ('arrivy', 'task', 'failed', now() - interval '3 minutes', now() - interval '2 minutes', 'HTTP 401 from Arrivy');
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
VALUES ('arrivy', 'task', 'failed', now() - interval '1 minute', now(), 'HTTP 503 from Arrivy');
SELECT status, rule_name, model, title, message, occurrences, first_seen < last_seen AS repeated
  FROM crm_api.alerts ORDER BY id;
SELECT event, count(*) FROM crm_dashboard.alert_notification GROUP BY event ORDER BY event;
SELECT a.rule_name, l.action, l.by FROM crm_api.alert_history l JOIN crm_api.alerts a ON a.id = l.alert_id ORDER BY l.id;
-- a run of another model is another alert
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
VALUES ('arrivy', 'crew', 'failed', now() - interval '1 minute', now(), 'timeout');
SELECT crm, model, open, severity, latest_title FROM crm_api.alert_counts;
SELECT open, acknowledged, snoozed, open_critical, open_warning FROM crm_api.alert_summary;

-- Partial runs over the share.
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_processed, records_failed)
VALUES ('arrivy', 'crew', 'partial', now() - interval '1 minute', now(), 100, 5);
SELECT count(*) AS partial_alerts FROM crm_dashboard.alert WHERE watch = 'partial';
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_processed, records_failed)
VALUES ('arrivy', 'crew', 'partial', now() - interval '1 minute', now(), 100, 25);
SELECT title, detail ->> 'failed_percent' AS failed_percent FROM crm_api.alerts WHERE watch = 'partial';

-- Operators acknowledge and snooze (recorded with who did it); viewers may not.
SET ROLE alert_viewer;
SELECT crm_api.acknowledge_alert((SELECT min(id) FROM crm_api.alerts));
RESET ROLE;
SET crm_dashboard.request_user = 'otto';
SET ROLE alert_operator;
SELECT status, acknowledged_by FROM json_populate_record(NULL::crm_api.alerts,
       crm_api.acknowledge_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'arrivy failures' AND model = 'task'),
                                 'looking at the token'));
-- (terse: the details name the time)
\set VERBOSITY terse
SELECT crm_api.acknowledge_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'arrivy failures' AND model = 'task'));
-- a partial run cleared the crew's failure: resolved, so it cannot be snoozed
SELECT crm_api.snooze_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'arrivy failures' AND model = 'crew'), now() + interval '1 hour', 'x');
\set VERBOSITY default
SELECT crm_api.acknowledge_alert(424242);
SELECT crm_api.snooze_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'bad records'), '2020-01-01 00:00+00', 'x');
SELECT crm_api.snooze_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'bad records'), '2100-01-01 00:00+00', 'x');
SELECT crm_api.snooze_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'bad records'), now() + interval '1 hour', '  ');
SELECT status, snoozed_by, snooze_reason FROM json_populate_record(NULL::crm_api.alerts,
       crm_api.snooze_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'bad records'),
                            now() + interval '1 hour', 'Arrivy maintenance'));
SELECT model, rule_name, status FROM crm_api.open_alerts ORDER BY id;
SELECT open, acknowledged, snoozed FROM crm_api.alert_summary;
RESET ROLE;
SET crm_dashboard.request_user = 'alice';

-- A success resolves the model's alerts, and their channels hear "resolved".
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
VALUES ('arrivy', 'task', 'success', now() - interval '1 minute', now());
SELECT rule_name, model, status, resolve_reason FROM crm_api.alerts WHERE model = 'task' ORDER BY id;
SELECT a.rule_name, n.event, c.name FROM crm_dashboard.alert_notification n JOIN crm_api.alerts a ON a.id = n.alert_id
  JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id WHERE a.model = 'task' AND n.event = 'resolved' ORDER BY 1, 3;
SET ROLE alert_operator;
\set VERBOSITY terse
SELECT crm_api.acknowledge_alert((SELECT id FROM crm_api.alerts WHERE rule_name = 'arrivy failures' AND model = 'task'));
\set VERBOSITY default
RESET ROLE;
-- the next failure opens a new alert
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
VALUES ('arrivy', 'task', 'failed', now() - interval '1 minute', now(), 'again');
SELECT rule_name, model, status, occurrences FROM crm_api.alerts WHERE model = 'task' ORDER BY id;

-- Disabling a rule resolves its alerts; its notices stop.
SET ROLE alert_admin;
SELECT name, enabled, open_alerts FROM json_populate_record(NULL::crm_api.alert_rules,
       crm_api.update_alert_rule((SELECT id FROM crm_api.alert_rules WHERE name = 'arrivy failures'), enabled => false));
SELECT crm_api.update_alert_rule(424242, severity => 'info');
SELECT crm_api.update_alert_rule((SELECT id FROM crm_api.alert_rules WHERE name = 'task streak'), params => '{"count": 0}');
RESET ROLE;
SELECT rule_name, model, status, resolve_reason FROM crm_api.alerts WHERE rule_name = 'arrivy failures' ORDER BY id;

-- Disabling a channel cancels what it still had to send.
SET ROLE alert_admin;
SELECT name, enabled FROM json_populate_record(NULL::crm_api.alert_channels,
       crm_api.update_alert_channel((SELECT id FROM crm_api.alert_channels WHERE name = 'ops-slack'), enabled => false));
RESET ROLE;
SELECT count(*) AS pending_to_slack FROM crm_dashboard.alert_notification n
  JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id WHERE c.name = 'ops-slack' AND n.status = 'pending';

-- Renders: Slack escapes what comes from the data; e-mail headers stay single lines.
SELECT crm_dashboard.slack_message('{"id": "00000000-0000-0000-0000-000000000000", "type": "alert.firing",
    "alert": {"title": "<!channel> & co", "message": "<https://evil.example|click>", "severity": "critical",
              "rule": {"name": "r", "watch": "run_failed"}, "crm": "arrivy", "model": "task", "occurrences": 1,
              "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z"}}')::json ->> 'text';
SELECT crm_dashboard.mail_header_value(E'Subject\r\nBcc: x@evil.example'), crm_dashboard.mail_header_value('Café');

-- Metrics in the Prometheus text format: label values escaped, every family typed.
SELECT crm_dashboard.prom_label(E'a"b\\c\nd');
SELECT crm_dashboard.prom_family('x_total', 'counter', 'Things.', '[{"labels": {"b": "2", "a": "1"}, "value": 2}, {"labels": {}, "value": 3}]');
SELECT line FROM regexp_split_to_table(crm_dashboard.metrics_text(), E'\n') line WHERE line LIKE '# TYPE %';
SELECT line FROM regexp_split_to_table(crm_dashboard.metrics_text(), E'\n') line
 WHERE line ~ '^crm_dashboard_alerts_open\{severity="critical"' OR line ~ '^crm_dashboard_runs_total\{crm="arrivy",model="crew"';
SET ROLE alert_viewer;
SELECT length(crm_dashboard.metrics_text()) > 0 AS viewers_read_metrics;
SELECT watch, label FROM crm_api.alert_watches;
RESET ROLE;
CREATE ROLE alert_stranger;
SET ROLE alert_stranger;
SELECT crm_dashboard.metrics_text();
RESET ROLE;
DROP ROLE alert_stranger;

-- Clean up: nothing of this test reaches the others.
SET ROLE alert_admin;
SELECT count(crm_api.delete_alert_rule(id)) FROM crm_api.alert_rules;
SELECT count(crm_api.delete_alert_channel(id)) FROM crm_api.alert_channels;
RESET ROLE;
DELETE FROM crm_dashboard.alert;
DELETE FROM crm_dashboard.sync_history WHERE crm_source = 'arrivy';
ALTER SYSTEM RESET crm_dashboard.delivery_allowed_hosts;
SELECT pg_reload_conf();
DROP TABLE ingestion.arrivy_task, ingestion.arrivy_crew;
DROP SCHEMA ingestion;
DROP ROLE alert_admin, alert_operator, alert_viewer;
