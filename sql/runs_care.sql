-- Runs that take care of themselves, at the SQL surface: retry policies and
-- every bad value, pauses and what they refuse, recorded skips, freshness
-- SLAs and states, the next fire time of a schedule, why a queued run waits.
-- (test/launcher runs real commands through retries, stalls and pools.)
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS ingestion;
RESET client_min_messages;
CREATE TABLE ingestion.marketsharp_job (id integer PRIMARY KEY, updated_at timestamptz);
CREATE INDEX ON ingestion.marketsharp_job (updated_at);
CREATE TABLE ingestion.marketsharp_note (id integer PRIMARY KEY, updated_at timestamptz);
CREATE TABLE ingestion.marketsharp_lookup (id integer PRIMARY KEY);
INSERT INTO ingestion.marketsharp_job VALUES (1, '2025-03-01 10:00+00'), (2, '2025-03-02 11:30+00'), (3, NULL);
INSERT INTO ingestion.marketsharp_note VALUES (1, '2025-03-01 10:00+00');
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('marketsharp', '{/bin/true}');
CREATE ROLE care_admin IN ROLE crm_dashboard_admin;
CREATE ROLE care_operator IN ROLE crm_dashboard_operator;
CREATE ROLE care_viewer IN ROLE crm_dashboard_viewer;
-- the name pauses and policies record (as the bundled server sets it)
SET crm_dashboard.request_user = 'alice';
-- wait until no run of a CRM is active (the launcher runs /bin/true)
CREATE FUNCTION pg_temp.settle(crm text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..400 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history
                               WHERE crm_source = crm AND status IN ('queued', 'running'));
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history
                        WHERE crm_source = crm AND status IN ('queued', 'running'));
END
$$;

-- The documented defaults, for every CRM.
SELECT crm, model, max_attempts, backoff_base, backoff_cap, stall_timeout, pause_after_failures, max_running, overrides
  FROM crm_api.run_policies WHERE crm = 'marketsharp';

-- Administrators set a CRM's policy and a model's override; the rest inherits.
SET ROLE care_admin;
SELECT crm_api.set_run_policy('marketsharp', max_attempts => 5, backoff_base => '10 seconds', max_running => 2);
SELECT crm_api.set_run_policy('marketsharp', 'job', backoff_cap => '5 minutes', pause_after_failures => 0);
SELECT crm_api.set_run_policy('marketsharp', 'job', max_attempts => 2);
SELECT crm, model, max_attempts, backoff_base, backoff_cap, pause_after_failures, max_running, overrides, updated_by
  FROM crm_api.run_policies WHERE crm = 'marketsharp';
RESET ROLE;

-- Bad values: each named, with its field as the detail and a hint.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT crm_api.set_run_policy('marketsharp', max_attempts => 0);
SELECT crm_api.set_run_policy('marketsharp', max_attempts => -3);
SELECT crm_api.set_run_policy('marketsharp', max_attempts => 1000);
SELECT crm_api.set_run_policy('marketsharp', backoff_base => '-5 seconds');
SELECT crm_api.set_run_policy('marketsharp', backoff_base => '0');
SELECT crm_api.set_run_policy('marketsharp', backoff_cap => '30 days');
SELECT crm_api.set_run_policy('marketsharp', backoff_cap => '1 month');
SELECT crm_api.set_run_policy('marketsharp', backoff_base => '10 minutes', backoff_cap => '1 minute');
-- a base above the cap already set is refused too, and a cap below the base
SELECT crm_api.set_run_policy('marketsharp', 'job', backoff_base => '10 minutes');
SELECT crm_api.set_run_policy('marketsharp', backoff_cap => '5 seconds');
SELECT crm_api.set_run_policy('marketsharp', stall_timeout => '-1 second');
SELECT crm_api.set_run_policy('marketsharp', stall_timeout => '2 days');
SELECT crm_api.set_run_policy('marketsharp', pause_after_failures => -1);
SELECT crm_api.set_run_policy('marketsharp', max_running => 0);
SELECT crm_api.set_run_policy('marketsharp', 'job', max_running => 1);
SELECT crm_api.set_run_policy('marketsharp');
SELECT crm_api.set_run_policy('nosuchcrm', max_attempts => 2);
SELECT crm_api.set_run_policy('marketsharp', 'nosuchmodel', max_attempts => 2);
\set VERBOSITY terse
-- nothing of the refused calls was kept
SELECT crm, model, max_attempts, backoff_base, backoff_cap, stall_timeout, pause_after_failures, max_running
  FROM crm_api.run_policies WHERE crm = 'marketsharp';
-- stall detection can be switched off
SELECT crm_api.set_run_policy('marketsharp', 'note', stall_timeout => '0') ->> 'stall_timeout' AS stall_timeout;

-- Operators may not set policies; viewers read them.
SET ROLE care_operator;
SELECT crm_api.set_run_policy('marketsharp', max_attempts => 2);
SET ROLE care_viewer;
SELECT count(*) > 0 AS viewer_reads_policies FROM crm_api.run_policies;
RESET ROLE;

-- Full jitter: a random wait up to min(cap, base * 2^(attempt-1)).
SELECT bool_and(d >= '0' AND d <= '10 seconds') AS first_within_base,
       bool_and(d2 >= '0' AND d2 <= '40 seconds') AS third_within_4x_base,
       bool_and(d9 <= '1 minute') AS capped,
       count(DISTINCT d) > 1 AS jittered
  FROM (SELECT crm_dashboard.retry_delay('10 seconds', '1 minute', 1) AS d,
               crm_dashboard.retry_delay('10 seconds', '1 minute', 3) AS d2,
               crm_dashboard.retry_delay('10 seconds', '1 minute', 40) AS d9
          FROM generate_series(1, 200)) s;

-- Priorities: a person's start, a schedule, a retry.
SELECT crm_dashboard.priority_of('ui', false) AS person, crm_dashboard.priority_of('schedule', false) AS schedule,
       crm_dashboard.priority_of('sql', true) AS retry;

-- Pauses: with a reason, recorded with who paused; errors name the target.
\set VERBOSITY default
SELECT crm_api.pause_sync('marketsharp', 'job');
SELECT crm_api.pause_sync('marketsharp', 'job', '   ');
SELECT crm_api.pause_sync('marketsharp', 'all', 'x');
SELECT crm_api.pause_sync('marketsharp', 'nosuchmodel', 'x');
SELECT crm_api.resume_sync('marketsharp', 'job');
SET ROLE care_viewer;
SELECT crm_api.pause_sync('marketsharp', 'job', 'x');
SET ROLE care_operator;
SELECT crm_api.pause_sync('marketsharp', 'job', 'API migration')::jsonb - 'paused_at' - 'id' AS pause;
SELECT crm_api.pause_sync('marketsharp', 'job', 'again');
RESET ROLE;

-- start_sync refuses a paused model, with the way out in the hint.
SELECT crm_api.start_sync('marketsharp', 'job');
\set VERBOSITY terse
SELECT crm, model, paused, pause_scope, paused_by, pause_reason FROM crm_api.crm_models
 WHERE crm = 'marketsharp' ORDER BY model;

-- A schedule's start skips it, and the skip is recorded (no run).
SELECT crm_dashboard.start_sync('marketsharp', 'job', '{}', via => 'schedule') IS NULL AS skipped;
SELECT crm, model, requested_via, requested_by, reason FROM crm_api.sync_skips;
SELECT count(*) AS runs FROM crm_dashboard.sync_history WHERE crm_source = 'marketsharp';

-- "all" runs the other models and records the skip of the paused one.
SELECT crm_api.start_sync('marketsharp', 'all') AS all_run \gset
SELECT sync_type FROM crm_dashboard.sync_history WHERE parent_id = :all_run ORDER BY sync_type;
SELECT model, requested_via FROM crm_api.sync_skips ORDER BY id;
SELECT pg_temp.settle('marketsharp') AS settled;

-- ignore_pause lets a person start it anyway, never a schedule.
SELECT crm_api.start_sync('marketsharp', 'job', '{"ignore_pause": true}') IS NOT NULL AS started;
SELECT pg_temp.settle('marketsharp') AS settled;
SELECT status FROM crm_dashboard.sync_history WHERE sync_type = 'job';
SELECT crm_api.start_sync('marketsharp', 'job', '{"ignore_pause": 1}');

-- A paused CRM holds all its models.
SELECT crm_api.resume_sync('marketsharp', 'job') ->> 'resumed_by' AS resumed_by;
SELECT crm_api.resume_sync('marketsharp', 'job');
SELECT crm_api.pause_sync('marketsharp', reason => 'contract ends') ->> 'text' AS pause;
\set VERBOSITY default
SELECT crm_api.start_sync('marketsharp', 'note');
SELECT crm_api.start_sync('marketsharp', 'all');
SELECT crm_api.resume_sync('marketsharp', 'note');
\set VERBOSITY terse
SELECT crm, paused, paused_by, pause_reason, paused_models FROM crm_api.crm_sources WHERE crm = 'marketsharp';
SELECT crm_api.resume_sync('marketsharp') ->> 'resumed_by' AS resumed_by;
SELECT crm, model, reason, paused_by, automatic, resumed_by, active FROM crm_api.pauses ORDER BY id;

-- Why a queued run waits: the retry time or rate limit (times in the session's zone).
SET TimeZone = 'UTC';
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, configuration, attempt, max_attempts,
                                        first_attempt_id, not_before, priority, rate_limited_until)
VALUES ('marketsharp', 'job', 'queued', '{"argv": ["/bin/true"]}', 2, 3, NULL, '2999-01-01 10:42:05+00', 2, NULL),
       ('marketsharp', 'note', 'queued', '{"argv": ["/bin/true"]}', 1, 3, NULL, '2999-01-01 10:45:00+00', 2,
        '2999-01-01 10:45:00+00'),
       ('marketsharp', 'lookup', 'queued', '{}', 1, NULL, NULL, now(), 0, NULL);
SELECT model, wait_reason FROM crm_api.sync_runs WHERE crm = 'marketsharp' AND status = 'queued' ORDER BY model;
-- a pause says who and why; the retry time still comes first
SELECT crm_api.pause_sync('marketsharp', 'job', 'API migration') IS NOT NULL AS paused;
UPDATE crm_dashboard.sync_history SET not_before = now() WHERE sync_type = 'job' AND status = 'queued';
SELECT model, wait_reason FROM crm_api.sync_runs WHERE crm = 'marketsharp' AND status = 'queued' ORDER BY model;
SELECT crm_api.sync_status(id) ->> 'wait_reason' AS wait_reason FROM crm_dashboard.sync_history
 WHERE sync_type = 'job' AND status = 'queued';
DELETE FROM crm_dashboard.sync_history WHERE crm_source = 'marketsharp';
SELECT crm_api.resume_sync('marketsharp', 'job') IS NOT NULL AS resumed;

-- Action required: the latest finished run failed for good.
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message, error_class)
VALUES ('marketsharp', 'note', 'failed', now() - interval '2 hours', now() - interval '2 hours', 'exited with code 3', 'temporary'),
       ('marketsharp', 'note', 'failed', now() - interval '1 hour', now() - interval '1 hour',
        'exited with code 77: API key revoked', 'permanent');
SELECT model, action_required, action_required_error FROM crm_api.crm_models WHERE crm = 'marketsharp' ORDER BY model;
SELECT crm_api.model_detail('marketsharp', 'note') -> 'state' ->> 'action_required' AS action_required;
SELECT crm, action_required_models FROM crm_api.crm_sources WHERE crm = 'marketsharp';
-- a success clears it
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
VALUES ('marketsharp', 'note', 'success', now() - interval '5 minutes', now() - interval '4 minutes');
SELECT model, action_required FROM crm_api.crm_models WHERE crm = 'marketsharp' AND model = 'note';

-- Freshness from an SLA: never synced with an SLA is overdue; then on time,
-- late (past expected + grace), overdue (past twice the cadence).
\set VERBOSITY default
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '0');
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '1 year');
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '6 hours', '6 hours');
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '6 hours', '-1 minute');
SELECT crm_api.set_freshness_sla('marketsharp', 'nosuchmodel', '6 hours');
SET ROLE care_operator;
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '6 hours');
RESET ROLE;
\set VERBOSITY terse
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '6 hours') ->> 'freshness' AS never_synced;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
VALUES ('marketsharp', 'job', 'success', now() - interval '1 hour', now() - interval '1 hour');
SELECT freshness, cadence_source, cadence_seconds, expected_by = last_success_at + interval '6 hours' AS expected
  FROM crm_api.crm_models WHERE crm = 'marketsharp' AND model = 'job';
UPDATE crm_dashboard.sync_history SET start_time = now() - interval '7 hours', end_time = now() - interval '7 hours'
 WHERE sync_type = 'job';
SELECT freshness FROM crm_api.crm_models WHERE crm = 'marketsharp' AND model = 'job';
SELECT crm_api.set_freshness_sla('marketsharp', 'job', '6 hours', '2 hours') ->> 'freshness' AS within_grace;
UPDATE crm_dashboard.sync_history SET start_time = now() - interval '13 hours', end_time = now() - interval '13 hours'
 WHERE sync_type = 'job';
SELECT freshness FROM crm_api.crm_models WHERE crm = 'marketsharp' AND model = 'job';
SELECT crm, freshness, late_models, overdue_models FROM crm_api.crm_sources WHERE crm = 'marketsharp';
SELECT crm, model, expected_every, grace, set_by FROM crm_api.freshness_slas;
SELECT crm_api.clear_freshness_sla('marketsharp', 'job'), crm_api.clear_freshness_sla('marketsharp', 'job');

-- Learned: the median gap of recent successes (three at least); else unknown.
SELECT freshness, cadence_source FROM crm_api.crm_models WHERE crm = 'marketsharp' AND model = 'job';
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
SELECT 'marketsharp', 'job', 'success', now() - g * interval '10 minutes' - interval '1 minute',
       now() - g * interval '10 minutes'
  FROM generate_series(1, 4) g;
SELECT freshness, cadence_source, cadence_seconds FROM crm_api.crm_models WHERE crm = 'marketsharp' AND model = 'job';

-- The data watermark comes from an index, or is said to be "not indexed".
SELECT model, data_watermark, watermark_note FROM crm_api.crm_models WHERE crm = 'marketsharp' ORDER BY model;
SELECT crm_api.model_detail('marketsharp', 'job') -> 'freshness' ->> 'data_watermark' AS watermark;

-- When a schedule fires next (UTC, as pg_cron reads it).
SELECT c, crm_dashboard.cron_next(c, '2025-01-15 10:00:00+00') AS next
  FROM unnest(ARRAY['*/15 * * * *', '0 3 * * *', '0 9 * * 1-5', '@weekly', '30 10 1,15 * 5',
                    '0 0 29 2 *', '0 0 30 2 *', '@reboot', 'not cron']) c;
SELECT crm_dashboard.cron_next('0 9 * * 1-5', '2025-01-17 09:00:00+00') AS after_friday;

-- Viewers read every new column.
SET ROLE care_viewer;
SELECT count(*) > 0 AS reads_models, bool_or(freshness IS NOT NULL) AS with_freshness FROM crm_api.crm_models;
SELECT count(*) > 0 AS reads_sources FROM crm_api.crm_sources;
SELECT count(*) >= 0 AS reads_runs FROM crm_api.sync_runs WHERE wait_reason IS NOT NULL OR eta_seconds IS NOT NULL;
SELECT count(*) >= 0 AS reads_skips FROM crm_api.sync_skips;
RESET ROLE;

DELETE FROM crm_dashboard.sync_history WHERE crm_source = 'marketsharp';
DELETE FROM crm_dashboard.sync_skip;
DELETE FROM crm_dashboard.run_pause;
DELETE FROM crm_dashboard.run_policy;
DELETE FROM crm_dashboard.sync_command WHERE crm = 'marketsharp';
DROP TABLE ingestion.marketsharp_job, ingestion.marketsharp_note, ingestion.marketsharp_lookup;
RESET crm_dashboard.request_user;
DROP ROLE care_admin, care_operator, care_viewer;
