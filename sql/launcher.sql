-- Launching syncs: the command registry and its permissions, the argv a
-- request would run, every validation error of start_sync, runs going
-- through the preloaded launcher (test/regress.conf), and the clear errors
-- when pg_cron is missing.
SET client_min_messages = warning;
-- ids appear in the output: make them independent of the tests before this one
ALTER TABLE crm_dashboard.sync_command ALTER COLUMN id RESTART WITH 1;
SELECT setval('crm_dashboard.sync_history_id_seq', 41, true);
CREATE SCHEMA IF NOT EXISTS ingestion;
RESET client_min_messages;
CREATE TABLE ingestion.salesrabbit_rep (id integer PRIMARY KEY, name text);
CREATE TABLE ingestion.salesrabbit_lead (id integer PRIMARY KEY, email text);
CREATE TABLE ingestion.salesrabbit_area (id integer PRIMARY KEY);
CREATE TABLE ingestion.arrivy_task (id integer PRIMARY KEY);
INSERT INTO ingestion.salesrabbit_lead SELECT g, 'l' || g FROM generate_series(1, 200) g;
INSERT INTO ingestion.salesrabbit_rep SELECT g, 'r' || g FROM generate_series(1, 20) g;
ANALYZE ingestion.salesrabbit_lead, ingestion.salesrabbit_rep;

CREATE ROLE launcher_test_admin IN ROLE crm_dashboard_admin;
CREATE ROLE launcher_test_operator IN ROLE crm_dashboard_operator;
CREATE ROLE launcher_test_viewer IN ROLE crm_dashboard_viewer;

-- The registry: only administrators write it.
SET ROLE launcher_test_operator;
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('salesrabbit', '{/bin/true}');
SELECT count(*) FROM crm_dashboard.sync_command;
SET ROLE launcher_test_viewer;
SELECT count(*) FROM crm_dashboard.sync_command;
SET ROLE launcher_test_admin;
INSERT INTO crm_dashboard.sync_command (crm, argv, environment, timeout)
    VALUES ('salesrabbit', '{python3,manage.py,"sync_{crm}_{model}"}', '{"DJANGO_SETTINGS_MODULE": "app.settings"}', '1 hour');
INSERT INTO crm_dashboard.sync_command (crm, model, argv, working_directory)
    VALUES ('salesrabbit', 'rep', '{/opt/sync/bin/reps,"--crm={crm}"}', '/opt/sync');
-- a second CRM-wide row, shell strings, relative paths, bad environments: refused
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('salesrabbit', '{/bin/false}');
INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('salesrabbit', 'lead', '{"bin/sync lead"}');
INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('salesrabbit', 'lead', '{}');
INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('salesrabbit', 'lead', '{/bin/x,NULL}');
INSERT INTO crm_dashboard.sync_command (crm, model, argv, environment) VALUES ('salesrabbit', 'lead', '{/bin/x}', '{"A": 1}');
INSERT INTO crm_dashboard.sync_command (crm, model, argv, environment) VALUES ('salesrabbit', 'lead', '{/bin/x}', '["A"]');
INSERT INTO crm_dashboard.sync_command (crm, model, argv, environment) VALUES ('salesrabbit', 'lead', '{/bin/x}', '{"A B": "x"}');
INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('nosuchcrm', NULL, '{/bin/x}');
RESET ROLE;

-- The exact argv: template substituted, then flags in a fixed order.
SELECT crm_api.command_preview('salesrabbit', 'lead');
SELECT crm_api.command_preview('salesrabbit', 'lead', '{"full": true, "force": true}');
SELECT crm_api.command_preview('salesrabbit', 'lead',
    '{"debug": true, "batch_size": 500, "max_records": 1000, "dry_run": true, "since": "2024-02-29", "full": false}');
SELECT crm_api.command_preview('salesrabbit', 'rep', '{"full": true}');
SELECT crm_api.command_preview('salesrabbit', 'all', '{"dry_run": true}');
SELECT crm_api.command_preview('salesrabbit', 'lead', NULL);
SET ROLE launcher_test_viewer;
SELECT crm_api.command_preview('salesrabbit', 'area', '{"timeout": 60}');
RESET ROLE;

-- Validation: CRM and model (names come from the catalog, never from the caller).
\set VERBOSITY default
SELECT crm_api.start_sync('nosuchcrm', 'lead');
SELECT crm_api.start_sync('salesrabbit', 'nosuchmodel');
SELECT crm_api.start_sync('salesrabbit', 'lead --settings=evil');
SELECT crm_api.start_sync('salesrabbit', '''; drop table x; --');
SELECT crm_api.start_sync('salesrabbit', '');
-- options
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"fulll": true}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"--settings": "evil"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"since": "2024-02-30"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"since": "2023-02-29"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"since": "24-01-01"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"since": "2024-01-01 --evil"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"since": "2999-01-01"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"since": 20240101}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"max_records": 0}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"max_records": -5}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"max_records": 100000001}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"max_records": 1e30}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"max_records": 2.5}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"max_records": "100"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"batch_size": 0}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"batch_size": 100001}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"timeout": 86401}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"full": "yes"}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"dry_run": null}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"force": [true]}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '[{"full": true}]');
SELECT crm_api.start_sync('salesrabbit', 'lead', '"full"');
-- a CRM without a registered command
SELECT crm_api.start_sync('arrivy', 'task');
SELECT crm_api.command_preview('arrivy', 'all');
-- viewers may not start syncs
SET ROLE launcher_test_viewer;
SELECT crm_api.start_sync('salesrabbit', 'lead');
RESET ROLE;
\set VERBOSITY terse

-- Runs through the launcher: queued, launched, finished with their exit status.
CREATE FUNCTION pg_temp.wait_for(run bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR i IN 1..400 LOOP
        SELECT status INTO s FROM crm_dashboard.sync_history WHERE id = run;
        EXIT WHEN s NOT IN ('queued', 'running');
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN s;
END
$$;
UPDATE crm_dashboard.sync_command SET argv = '{/bin/true}' WHERE crm = 'salesrabbit' AND model IS NULL;
INSERT INTO crm_dashboard.sync_command (crm, model, argv) VALUES ('salesrabbit', 'area', '{/bin/false}');
SELECT crm_api.start_sync('salesrabbit', 'lead', '{"full": true}') AS lead_run \gset
SELECT crm_api.start_sync('salesrabbit', 'lead');
SELECT pg_temp.wait_for(:lead_run) AS status;
SELECT status, exit_code, error_message, requested_via, configuration -> 'argv' AS argv
  FROM crm_dashboard.sync_history WHERE id = :lead_run;
-- failures are not retried here (max_attempts 1); test/launcher covers retries
SELECT crm_api.set_run_policy('salesrabbit', max_attempts => 1) ->> 'max_attempts' AS max_attempts;
SELECT crm_api.start_sync('salesrabbit', 'all') AS all_run \gset
SELECT pg_temp.wait_for(:all_run) AS status;
SELECT sync_type, status, exit_code, error_message FROM crm_dashboard.sync_history
 WHERE id = :all_run OR parent_id = :all_run ORDER BY id;
SELECT crm_api.clear_run_policy('salesrabbit');
DELETE FROM crm_dashboard.sync_command WHERE model = 'area';
DELETE FROM crm_dashboard.sync_history WHERE crm_source = 'salesrabbit';

-- Status, log and stop of runs that do not exist; a finished run stays as it is.
SELECT crm_api.sync_status(-1);
SELECT crm_api.sync_log(-1);
SELECT crm_api.stop_sync(-1);
INSERT INTO crm_dashboard.sync_history (id, crm_source, sync_type, status, start_time, end_time, requested_via)
    VALUES (900001, 'salesrabbit', 'lead', 'success', '2025-01-01 10:00+00', '2025-01-01 10:05+00', 'external');
SELECT crm_api.stop_sync(900001) ->> 'status' AS status, crm_api.sync_status(900001) ->> 'model' AS model;
-- one active run per model, whoever writes the row
INSERT INTO crm_dashboard.sync_history (id, crm_source, sync_type, status, requested_via)
    VALUES (900002, 'salesrabbit', 'lead', 'running', 'external');
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, requested_via)
    VALUES ('salesrabbit', 'lead', 'queued', 'external');
SELECT crm_api.start_sync('salesrabbit', 'lead');
DELETE FROM crm_dashboard.sync_history WHERE id IN (900001, 900002);
-- changes are announced in the shared-memory ring (and with NOTIFY)
SELECT count(*) > 0 AS ring_has_events FROM crm_dashboard.recent_announcements(0);

-- Schedules need pg_cron; the view answers without it.
SELECT crm_api.schedule_sync('salesrabbit', 'lead', '*/5 * * * *');
SELECT crm_api.unschedule_sync(1);
SELECT * FROM crm_api.schedules;
SET ROLE launcher_test_viewer;
SELECT count(*) FROM crm_api.schedules;
RESET ROLE;

-- The launcher's settings.
SELECT name, setting, unit, context FROM pg_settings
WHERE name IN ('crm_dashboard.database_name', 'crm_dashboard.max_running_syncs',
               'crm_dashboard.stop_grace', 'crm_dashboard.log_limit', 'crm_dashboard.sync_user')
ORDER BY name;

DELETE FROM crm_dashboard.sync_command;
DROP TABLE ingestion.salesrabbit_rep, ingestion.salesrabbit_lead, ingestion.salesrabbit_area,
    ingestion.arrivy_task;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = 'ingestion'::regnamespace) THEN
        DROP SCHEMA ingestion;
    END IF;
END
$$;
DROP ROLE launcher_test_admin, launcher_test_operator, launcher_test_viewer;
