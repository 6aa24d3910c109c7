-- Sync history: latest runs, health aggregation, views.  Uses the fixture
-- tables of the discovery test.
SET timezone = 'UTC';

-- a helper to add finished runs concisely
CREATE FUNCTION pg_temp.run(crm text, model text, status text, started timestamptz,
                            seconds integer DEFAULT 60, processed integer DEFAULT 0,
                            failed integer DEFAULT 0, error text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time,
        records_processed, records_created, records_updated, records_failed, error_message)
    VALUES (crm, model, status, started,
            CASE WHEN status IN ('queued', 'running') THEN NULL ELSE started + seconds * interval '1 second' END,
            processed, processed / 2, processed - processed / 2 - failed, failed, error)
    RETURNING id $$;

-- hubspot: contact failed before but succeeded last; deal's latest run is partial
SELECT pg_temp.run('hubspot', 'contact', 'failed', '2026-01-01 10:00', 5, 0, 0, 'HTTP 401: invalid API key') > 0 AS ok;
SELECT pg_temp.run('hubspot', 'contact', 'success', '2026-01-02 10:00', 125, 5000) > 0 AS ok;
SELECT pg_temp.run('hubspot', 'deal', 'success', '2026-01-01 11:00', 30, 900) > 0 AS ok;
SELECT pg_temp.run('hubspot', 'deal', 'partial', '2026-01-02 11:00', 40, 1000, 3,
                   'validation error: 3 records rejected (first: deal 9912, amount not numeric)') > 0 AS ok;
-- genius: one model failed last, the other is running now
SELECT pg_temp.run('genius', 'lead', 'success', '2026-01-01 09:00', 10, 10) > 0 AS ok;
SELECT pg_temp.run('genius', 'lead', 'failed', '2026-01-02 09:00', 3600, 0, 0, 'timed out after 3600 s') > 0 AS ok;
SELECT pg_temp.run('genius', 'appointment_type', 'running', now() - interval '30 seconds') > 0 AS ok;
-- callrail: a cancelled run is a warning; five9: only successes; gsheet: running only
SELECT pg_temp.run('callrail', 'call', 'cancelled', '2026-01-03 08:00', 12) > 0 AS ok;
SELECT pg_temp.run('five9', 'contact', 'success', '2026-01-03 07:00', 8, 40) > 0 AS ok;
SELECT pg_temp.run('gsheet', 'marketing_spend', 'queued', now()) > 0 AS ok;
-- a run of a model whose table is gone does not count for health
SELECT pg_temp.run('five9', 'dropped_model', 'failed', '2026-01-04 07:00', 8) > 0 AS ok;

SELECT crm, model, last_status, health, records_processed, records_failed,
       CASE WHEN last_status = 'running' THEN last_duration_seconds >= 30 END AS running_long_enough,
       CASE WHEN last_status <> 'running' THEN last_duration_seconds END AS finished_seconds, is_active, active_run_id IS NOT NULL AS has_active
  FROM crm_api.crm_models ORDER BY crm, model;

-- CRM health: error > warning > running > success > never
SELECT crm, display_name, model_count, last_status, health, running_count
  FROM crm_api.crm_sources;
SELECT crm, last_sync_at FROM crm_api.crm_sources WHERE crm IN ('hubspot', 'five9', 'arrivy');

-- detail: latest run, last success, errors newest first
SELECT d->'latest_run'->>'status' AS status, d->'latest_run'->>'duration_seconds' AS seconds,
       d->>'last_success_at' AS last_success, d->>'health' AS health,
       json_array_length(d->'errors') AS errors, d->'errors'->0->>'message' AS last_error
  FROM crm_api.model_detail('hubspot', 'deal') d;
SELECT d->'latest_run'->>'status' AS status, d->>'active_run_id' IS NOT NULL AS active
  FROM crm_api.model_detail('genius', 'appointment_type') d;

-- 25 failures: detail keeps the last 20, newest first
SELECT count(pg_temp.run('hubspot', 'contact', 'failed', '2025-06-01'::timestamptz + g * interval '1 hour',
                         1, 0, 0, 'HTTP 429 Too Many Requests #' || g)) FROM generate_series(1, 25) g;
SELECT json_array_length(d->'errors') AS kept,
       d->'errors'->0->>'message' AS newest, d->'errors'->19->>'message' AS oldest_kept
  FROM crm_api.model_detail('hubspot', 'contact') d;

-- views: newest first, filterable
SELECT crm, model, status FROM crm_api.sync_runs WHERE crm = 'hubspot' AND model = 'deal';
SELECT count(*) FROM crm_api.sync_runs WHERE status = 'failed';
SELECT crm, model, status, message FROM crm_api.sync_errors WHERE crm <> 'hubspot';

-- runs that someone else (the ingestion app) writes count the same way
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, start_time, end_time, status, records_processed)
    VALUES ('five9', 'contact', '2026-01-05 07:00', '2026-01-05 07:01', 'failed', 0);
SELECT health FROM crm_api.crm_sources WHERE crm = 'five9';

SET client_min_messages = warning;
DROP SCHEMA ingestion CASCADE;
DROP TABLE public.hubspot_secret;
TRUNCATE crm_dashboard.sync_history CASCADE;
SELECT count(*) AS models_left, sum(model_count) AS counted FROM crm_api.crm_sources;
