-- Retention: the policy, and batches that keep exactly what it says.
SET timezone = 'UTC';
CREATE SCHEMA IF NOT EXISTS ingestion;  -- (an earlier test may leave it)
CREATE TABLE ingestion.hubspot_contact (id integer);
CREATE TABLE ingestion.hubspot_deal (id integer);
CREATE TABLE ingestion.genius_lead (id integer);
CREATE TABLE ingestion.five9_contact (id integer);
CREATE TABLE ingestion.five9_call (id integer);

-- no policy: everything is kept, a pass does nothing
SELECT keep_runs, keep_failed_runs, keep_logs, batch_size, history_kept_since, applied_by, runs_removed
  FROM crm_api.retention;
SELECT crm_dashboard.apply_retention();

-- ---- the policy: admins set it, with errors that name the value
SELECT crm_api.set_retention(keep_runs => '1 hour');
SELECT crm_api.set_retention(keep_runs => '30 days', keep_failed_runs => '7 days');
SELECT crm_api.set_retention(keep_failed_runs => '7 days');
SELECT crm_api.set_retention(keep_runs => '30 days', keep_logs => '60 days');
SELECT crm_api.set_retention(keep_logs => '10 minutes');
SELECT crm_api.set_retention(keep_runs => '30 days', batch_size => 5);
CREATE ROLE retention_operator IN ROLE crm_dashboard_operator;
CREATE ROLE retention_viewer IN ROLE crm_dashboard_viewer;
SET ROLE retention_operator;
SELECT crm_api.set_retention(keep_runs => '30 days');
SELECT crm_api.apply_retention();
RESET ROLE;
SET ROLE retention_viewer;
SELECT keep_runs FROM crm_api.retention;
RESET ROLE;

-- ---- a history: 200 days of runs of three models, one model that stopped
-- syncing long ago, an "all" run with a failed model run, runs still going
CREATE FUNCTION pg_temp.run(crm text, model text, status text, days_ago float8, parent bigint DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    WITH r AS (
        INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, parent_id)
        VALUES (crm, model, status, now() - days_ago * interval '1 day',
                CASE WHEN status NOT IN ('queued', 'running') THEN now() - days_ago * interval '1 day' + interval '1 minute' END,
                parent)
        RETURNING id, start_time),
    l AS (
        INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
        SELECT r.id, 1, 1, 0, format(E'run %s\n', r.id), r.start_time FROM r)
    SELECT id FROM r $$;
SELECT count(*) FROM (
    SELECT pg_temp.run(m.crm, m.model, (ARRAY['success', 'failed', 'partial', 'cancelled', 'success'])[1 + d % 5], d + 0.5)
      FROM generate_series(0, 199) d,
           (VALUES ('hubspot', 'contact'), ('hubspot', 'deal'), ('genius', 'lead')) AS m(crm, model)) runs;
-- five9 contact: a success 300 days ago, then only failures, the last 250 days ago
SELECT pg_temp.run('five9', 'contact', 'success', 300) AS five9_success \gset
SELECT pg_temp.run('five9', 'contact', 'failed', 280) > 0 AS ok;
SELECT pg_temp.run('five9', 'contact', 'failed', 250) AS five9_latest \gset
-- five9 call: a long success that started first and ended last, and a short one
-- inside it; the latest success is the one that ended last, as freshness reads it
SELECT pg_temp.run('five9', 'call', 'success', 400) AS five9_long \gset
UPDATE crm_dashboard.sync_history SET end_time = now() - interval '350 days' WHERE id = :five9_long;
SELECT pg_temp.run('five9', 'call', 'success', 380) AS five9_short \gset
SELECT last_success_at AS five9_call_success FROM crm_api.crm_models WHERE crm = 'five9' AND model = 'call' \gset
-- an "all" run of 50 days ago: its failed model run is kept (60 days), so it is too
SELECT pg_temp.run('hubspot', 'all', 'partial', 50) AS all_run \gset
SELECT pg_temp.run('hubspot', 'contact', 'failed', 50, :all_run) > 0 AS ok;
SELECT pg_temp.run('hubspot', 'deal', 'success', 50, :all_run) > 0 AS ok;
-- an old run that never ended (still running) and a long-queued one
SELECT pg_temp.run('genius', 'lead', 'running', 120) > 0 AS ok;
SELECT pg_temp.run('hubspot', 'deal', 'queued', 90) > 0 AS ok;

-- what the policy keeps, computed the plain way: runs of the last 30 days,
-- failed runs of the last 60, each model's latest run and latest success,
-- the "all" runs of those, and what is queued or running
CREATE TEMP TABLE expected_kept AS
WITH latest AS (
    SELECT DISTINCT ON (crm_source, sync_type) id FROM crm_dashboard.sync_history
     ORDER BY crm_source, sync_type, start_time DESC, id DESC),
success AS (
    SELECT DISTINCT ON (crm_source, sync_type) id FROM crm_dashboard.sync_history WHERE status = 'success'
     ORDER BY crm_source, sync_type, end_time DESC),
kept AS (
    SELECT id FROM crm_dashboard.sync_history
     WHERE start_time >= now() - interval '30 days'
        OR (status = 'failed' AND start_time >= now() - interval '60 days')
        OR status IN ('queued', 'running')
        OR id IN (SELECT id FROM latest) OR id IN (SELECT id FROM success))
SELECT id FROM kept
UNION SELECT parent_id FROM crm_dashboard.sync_history WHERE id IN (SELECT id FROM kept) AND parent_id IS NOT NULL;
SELECT count(*) AS runs_before, (SELECT count(*) FROM expected_kept) AS to_keep FROM crm_dashboard.sync_history;

SELECT keep_runs, keep_failed_runs, keep_logs, batch_size, applied_by IN ('launcher', 'nobody') AS applied
  FROM json_populate_record(NULL::crm_api.retention,
                            crm_api.set_retention(keep_runs => '30 days', keep_failed_runs => '60 days',
                                                  keep_logs => '7 days', batch_size => 50));
-- one pass removes at most batch_size runs and batch_size log chunks, oldest first
SELECT (r ->> 'runs')::integer <= 50 AS small_batch, (r ->> 'log_chunks')::integer <= 50 AS small_log_batch,
       (r ->> 'behind')::boolean AS behind
  FROM crm_dashboard.apply_retention() r;
-- passes until it has caught up (the launcher may take some of them)
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT (crm_dashboard.apply_retention() ->> 'behind')::boolean;
    END LOOP;
END $$;
-- exactly what the policy keeps is kept
SELECT (SELECT count(*) FROM crm_dashboard.sync_history) AS runs_after,
       (SELECT count(*) FROM crm_dashboard.sync_history WHERE id NOT IN (SELECT id FROM expected_kept)) AS extra,
       (SELECT count(*) FROM expected_kept WHERE id NOT IN (SELECT id FROM crm_dashboard.sync_history)) AS missing;
-- the model that stopped long ago keeps its latest run and its latest success
SELECT id = :five9_success AS latest_success, id = :five9_latest AS latest, status
  FROM crm_dashboard.sync_history WHERE crm_source = 'five9' AND sync_type = 'contact' ORDER BY start_time;
-- the one whose long run ended last keeps it (and its latest run): freshness reads the same
SELECT id = :five9_long AS ended_last, id = :five9_short AS started_last
  FROM crm_dashboard.sync_history WHERE crm_source = 'five9' AND sync_type = 'call' ORDER BY start_time;
SELECT last_success_at = :'five9_call_success' AS same_last_success
  FROM crm_api.crm_models WHERE crm = 'five9' AND model = 'call';
-- the "all" run stays while its failed model run does
SELECT count(*) AS all_run_and_models FROM crm_dashboard.sync_history WHERE id = :all_run OR parent_id = :all_run;
-- logs go sooner than their runs: none written before a week ago, but of runs still going
SELECT count(*) AS old_logs FROM crm_dashboard.sync_log_chunk c JOIN crm_dashboard.sync_history h ON h.id = c.run_id
 WHERE c.written_at < now() - interval '7 days' AND h.status NOT IN ('queued', 'running');
SELECT count(*) > 0 AS recent_logs_kept FROM crm_dashboard.sync_log_chunk WHERE written_at >= now() - interval '7 days';
-- a kept run whose log went says so
SELECT crm_api.sync_log(:five9_latest);
SELECT crm_api.sync_log((SELECT id FROM crm_dashboard.sync_history WHERE status = 'success' ORDER BY start_time DESC LIMIT 1))
       ~ '^run \d+\n$' AS recent_log;
-- what retention did, and since when history is kept
SELECT history_kept_since BETWEEN now() - interval '31 days' AND now() - interval '29 days' AS kept_since_30_days,
       logs_kept_since BETWEEN now() - interval '8 days' AND now() - interval '6 days' AS logs_since_7_days,
       runs_removed > 0 AS removed, log_chunks_removed > 0 AS logs_removed, behind,
       oldest_run_at < now() - interval '299 days' AS oldest_is_five9
  FROM crm_api.retention;
-- health still reads right after retention: five9's latest run failed
SELECT crm, model, last_status FROM crm_api.crm_models WHERE crm = 'five9' ORDER BY model;
-- a second pass finds nothing more to do
SELECT crm_dashboard.apply_retention() ->> 'runs' AS runs;

-- clearing the policy keeps everything from now on
SELECT keep_runs IS NULL AS forever FROM json_populate_record(NULL::crm_api.retention, crm_api.set_retention());
SELECT crm_dashboard.apply_retention() ->> 'policy' AS policy;

DROP ROLE retention_operator;
DROP ROLE retention_viewer;
TRUNCATE crm_dashboard.sync_history CASCADE;
DELETE FROM crm_dashboard.retention_policy;
DELETE FROM crm_dashboard.retention_state;
DROP SCHEMA ingestion CASCADE;
