-- Analytics: daily rollups kept current as runs finish, compared with a
-- straightforward computation over the raw history of random histories;
-- anomalies against the median and MAD of recent runs; error fingerprints.
SET timezone = 'UTC';
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (id integer);
CREATE TABLE ingestion.hubspot_deal (id integer);
CREATE TABLE ingestion.genius_lead (id integer);
CREATE TABLE ingestion.genius_appointment (id integer);

-- ---- histograms of seconds: percentiles within 1 % of percentile_disc
SELECT setseed(0.14);
CREATE TEMP TABLE samples AS
SELECT g % 7 AS grp, CASE WHEN g % 50 = 0 THEN 0.0004 ELSE exp(random() * 12) END AS v
  FROM generate_series(1, 20000) g;
SELECT count(*) AS groups,
       count(*) FILTER (WHERE abs(crm_dashboard.sketch_quantile(h, q) - exact) > 0.01 * exact + 0.001) AS off
  FROM (SELECT grp, q, crm_dashboard.sketch_agg(v, 1) AS h,
               percentile_disc(q) WITHIN GROUP (ORDER BY v) AS exact
          FROM samples, unnest(ARRAY[0.05, 0.5, 0.95, 0.99]) q GROUP BY grp, q) t;
-- merging histograms is adding their counts; a run taken away (-1) is gone
SELECT crm_dashboard.sketch_merge(crm_dashboard.sketch_agg(v, 1), crm_dashboard.sketch_agg(v, -1)) AS empty
  FROM samples WHERE grp = 1;
SELECT crm_dashboard.sketch_quantile('{}', 0.5) AS nothing;
SELECT crm_dashboard.sketch_quantile('{1,2,3}', 0.5);
SELECT crm_dashboard.sketch_quantile('{999999,1}', 0.5);
SELECT crm_dashboard.sketch_quantile('{1,1}', 1.5);

-- ---- random histories: what the rollups say equals the plain computation
-- 4 models, 100 days, every status, durations, records and time queued at random
CREATE FUNCTION pg_temp.random_history(n integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, queued_at, start_time, end_time,
        records_processed, records_created, records_updated, records_failed, error_message)
    SELECT (ARRAY['hubspot', 'hubspot', 'genius', 'genius'])[1 + g % 4],
           (ARRAY['contact', 'deal', 'lead', 'appointment'])[1 + g % 4],
           x.status, x.started - x.wait, x.started,
           CASE WHEN x.status NOT IN ('queued', 'running') THEN x.started + x.seconds END,
           x.processed, x.processed / 3, x.processed / 2, CASE WHEN x.status = 'partial' THEN x.processed / 10 ELSE 0 END,
           CASE WHEN x.status IN ('failed', 'partial') THEN format('HTTP 429 Too Many Requests, retry after %s s', g % 60) END
      FROM (SELECT g, (ARRAY['success', 'success', 'success', 'partial', 'failed', 'cancelled'])
                          [1 + floor(random() * 6)::integer] AS status,
                   now() - random() * interval '100 days' AS started,
                   random() * random() * interval '2 hours' AS seconds,
                   random() * interval '10 minutes' AS wait,
                   floor(random() * 5000)::integer AS processed
              FROM generate_series(1, n) g) x
$$;
SELECT pg_temp.random_history(3000);
-- runs that change after they were written: a running run finishes, a
-- finished one is corrected, one is deleted by hand (not by retention)
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time)
VALUES ('hubspot', 'contact', 'running', now() - interval '3 days');
UPDATE crm_dashboard.sync_history SET status = 'success', end_time = start_time + interval '5 minutes',
       records_processed = 1234 WHERE status = 'running';
UPDATE crm_dashboard.sync_history SET records_processed = records_processed + 1
 WHERE id IN (SELECT id FROM crm_dashboard.sync_history WHERE status = 'success' ORDER BY id LIMIT 50);
DELETE FROM crm_dashboard.sync_history WHERE id IN (SELECT id FROM crm_dashboard.sync_history ORDER BY id DESC LIMIT 40);

-- the plain computation, per model and period
CREATE TEMP VIEW plain AS
SELECT h.crm_source AS crm, h.sync_type AS model, p.period, count(*) AS runs,
       count(*) FILTER (WHERE h.status = 'success') AS succeeded,
       count(*) FILTER (WHERE h.status = 'partial') AS partial,
       count(*) FILTER (WHERE h.status = 'failed') AS failed,
       count(*) FILTER (WHERE h.status = 'cancelled') AS cancelled,
       (count(*) FILTER (WHERE h.status = 'success'))::float8
           / nullif(count(*) FILTER (WHERE h.status IN ('success', 'partial', 'failed')), 0) AS success_rate,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM h.end_time - h.start_time))
           FILTER (WHERE h.status IN ('success', 'partial')) AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM h.end_time - h.start_time))
           FILTER (WHERE h.status IN ('success', 'partial')) AS p95,
       sum(h.records_processed) AS processed, sum(h.records_created) AS created,
       sum(h.records_updated) AS updated, sum(h.records_failed) AS records_failed,
       sum(h.records_processed) FILTER (WHERE h.status IN ('success', 'partial'))
           / nullif(sum(extract(epoch FROM h.end_time - h.start_time)) FILTER (WHERE h.status IN ('success', 'partial')), 0)
           AS per_second,
       avg(extract(epoch FROM h.start_time - h.queued_at)) FILTER (WHERE h.status IN ('success', 'partial', 'failed'))
           AS queued_avg
  FROM crm_dashboard.sync_history h
 CROSS JOIN (VALUES ('24h', now() - interval '24 hours'),
                    ('7d', date_trunc('day', now()) - interval '6 days'),
                    ('30d', date_trunc('day', now()) - interval '29 days'),
                    ('90d', date_trunc('day', now()) - interval '89 days')) AS p(period, since)
 WHERE h.start_time >= p.since AND h.status IN ('success', 'partial', 'failed', 'cancelled')
 GROUP BY 1, 2, 3;
-- 4 models x 4 periods: counts and records exact, percentiles within 1 %
CREATE FUNCTION pg_temp.close(a float8, b float8, tolerance float8 DEFAULT 1e-9) RETURNS boolean
LANGUAGE sql RETURN (a IS NULL AND b IS NULL) OR abs(a - b) <= tolerance * greatest(abs(a), abs(b), 1e-6);
CREATE TEMP VIEW mismatches AS
SELECT p.crm, p.model, p.period,
       (a.runs, a.succeeded, a.partial, a.failed, a.cancelled, a.records_processed, a.records_created,
        a.records_updated, a.records_failed) IS DISTINCT FROM
       (p.runs, p.succeeded, p.partial, p.failed, p.cancelled, p.processed, p.created, p.updated, p.records_failed)
           AS counts_differ,
       NOT pg_temp.close(a.success_rate, p.success_rate) AS rate_differs,
       NOT pg_temp.close(a.duration_p50_seconds, p.p50, 0.01) OR NOT pg_temp.close(a.duration_p95_seconds, p.p95, 0.01)
           AS percentiles_differ,
       NOT pg_temp.close(a.records_per_second, p.per_second, 1e-6) AS throughput_differs,
       NOT pg_temp.close(a.queued_seconds_avg, p.queued_avg, 1e-6) AS queued_differs
  FROM plain p
  JOIN crm_api.model_analytics a ON a.crm = p.crm AND a.model = p.model AND a.period = p.period;
SELECT count(*) AS compared, count(*) FILTER (WHERE counts_differ) AS counts, count(*) FILTER (WHERE rate_differs) AS rates,
       count(*) FILTER (WHERE percentiles_differ) AS percentiles, count(*) FILTER (WHERE throughput_differs) AS throughput,
       count(*) FILTER (WHERE queued_differs) AS queued
  FROM mismatches;
-- per CRM: the sums of its models
SELECT count(*) AS crm_periods,
       count(*) FILTER (WHERE (c.runs, c.records_processed) IS DISTINCT FROM (s.runs, s.processed)) AS differ
  FROM crm_api.crm_analytics c
  JOIN (SELECT crm, period, sum(runs) AS runs, sum(processed) AS processed FROM plain GROUP BY 1, 2) s
    ON s.crm = c.crm AND s.period = c.period;
-- recomputed from the raw history, the rollups are what the trigger kept
CREATE TEMP TABLE kept_rollups AS SELECT * FROM crm_dashboard.run_rollup WHERE runs <> 0;
SELECT crm_dashboard.rebuild_rollups() > 90 AS rebuilt_days;
SELECT count(*) AS differ FROM (
    (SELECT crm, model, day, runs, succeeded, partial, failed, cancelled, records_processed, durations FROM kept_rollups
     EXCEPT SELECT crm, model, day, runs, succeeded, partial, failed, cancelled, records_processed, durations
              FROM crm_dashboard.run_rollup)
    UNION ALL
    (SELECT crm, model, day, runs, succeeded, partial, failed, cancelled, records_processed, durations
       FROM crm_dashboard.run_rollup WHERE runs <> 0
     EXCEPT SELECT crm, model, day, runs, succeeded, partial, failed, cancelled, records_processed, durations
              FROM kept_rollups)) d;
-- a statement that rolls back leaves the rollups as they were
BEGIN;
UPDATE crm_dashboard.sync_history SET records_processed = 0 WHERE status = 'success';
ROLLBACK;
SELECT count(*) FILTER (WHERE counts_differ) AS counts_after_rollback FROM mismatches;
-- retention removes rows but not the figures of their days
SELECT crm_api.set_retention(keep_runs => '10 days', batch_size => 100000) IS NOT NULL AS set;
SELECT crm_dashboard.apply_retention() IS NOT NULL AS applied;  -- (or the launcher was first)
SELECT runs_removed > 1000 AS removed FROM crm_api.retention;
SELECT a.runs = k.runs AS figures_kept, a.history_kept_since IS NOT NULL AS says_since
  FROM crm_api.model_analytics a,
       (SELECT sum(runs) AS runs FROM kept_rollups
         WHERE crm = 'hubspot' AND model = 'contact' AND day >= current_date - 89) k
 WHERE a.crm = 'hubspot' AND a.model = 'contact' AND a.period = '90d';
SELECT crm_api.set_retention() IS NOT NULL AS cleared;
-- the daily figures for charts: every day present
SELECT count(*) AS days, count(*) FILTER (WHERE runs > 0) AS with_runs, min(day) = current_date - 29 AS from_day
  FROM crm_api.analytics_daily('hubspot', 'contact', 30);
SELECT count(*) AS days FROM crm_api.analytics_daily(days => 7);
SELECT * FROM crm_api.analytics_daily('hubspot', 'contact', 0);
SELECT * FROM crm_api.analytics_daily('nosuchcrm');
SELECT * FROM crm_dashboard.analytics('1y');
-- the heat strip: the latest runs of each model, oldest first
SELECT model, json_array_length(outcomes) AS runs,
       (SELECT bool_and(e ->> 'status' IS NOT NULL) FROM json_array_elements(outcomes) e) AS statuses
  FROM crm_api.run_outcomes('genius', 10);
SELECT * FROM crm_api.run_outcomes('genius', 0);
TRUNCATE crm_dashboard.sync_history CASCADE;
TRUNCATE crm_dashboard.run_rollup, crm_dashboard.failure_rollup;
DELETE FROM crm_dashboard.retention_policy;
DELETE FROM crm_dashboard.retention_state;

-- ---- anomalies: against the median and MAD of the model's last 20 completed runs
CREATE FUNCTION pg_temp.run(model text, status text, minutes_ago integer, seconds float8, processed integer,
                            failed integer DEFAULT 0)
RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time,
                                            records_processed, records_failed)
    VALUES ('hubspot', model, status, now() - minutes_ago * interval '1 minute',
            now() - minutes_ago * interval '1 minute' + seconds * interval '1 second', processed, failed)
    RETURNING anomalies $$;
-- too few runs to know what is usual: nothing is flagged
SELECT pg_temp.run('contact', 'success', 1000, 60, 1200) AS first_run;
SELECT pg_temp.run('contact', 'success', 990, 600, 0) AS early_zero;
-- a steady model: 20 runs of about a minute and 1,200 records, 0.1 % failed
SELECT count(*) FROM (SELECT pg_temp.run('contact', 'partial', 900 - g * 10, 58 + g % 5, 1190 + g % 20, 1 + g % 2)
                        FROM generate_series(1, 20) g) r;
-- its usual noise stays quiet
SELECT pg_temp.run('contact', 'success', 600, 63, 1215, 1) AS usual;
-- 0 records, usually about 1,200
SELECT pg_temp.run('contact', 'success', 590, 61, 0) AS zero;
-- 3.4 times slower
SELECT pg_temp.run('contact', 'success', 580, 204, 1200, 1) AS slow;
-- failed-record share 12 %, usually 0.1 %
SELECT pg_temp.run('contact', 'partial', 570, 60, 1200, 144) AS failed_share;
-- failed and cancelled runs are not assessed; a model run that is only slightly slower is not flagged
SELECT pg_temp.run('contact', 'failed', 560, 500, 0) AS failed, pg_temp.run('contact', 'cancelled', 550, 1, 0) AS cancelled;
SELECT pg_temp.run('contact', 'success', 540, 90, 1200, 1) AS a_bit_slower;
-- flagged on the run (sync_runs) and on the model (crm_models)
SELECT status, anomalies -> 0 ->> 'kind' AS kind FROM crm_api.sync_runs
 WHERE jsonb_array_length(anomalies) > 0 ORDER BY start_time;
SELECT pg_temp.run('deal', 'success', 5, 10, 0) IS NOT NULL AS deal_run;
SELECT model, last_run_anomalies FROM crm_api.crm_models WHERE crm = 'hubspot' ORDER BY model;
TRUNCATE crm_dashboard.sync_history CASCADE;
TRUNCATE crm_dashboard.run_rollup, crm_dashboard.failure_rollup;

-- ---- error fingerprints: the demo's realistic errors group across runs and models
SELECT m, crm_dashboard.error_fingerprint(m, 'hubspot', 'contact') FROM unnest(ARRAY[
    'exited with code 1: HTTP 401: invalid API key',
    'terminated by signal 6 (Aborted): Segmentation fault while parsing the HubSpot response',
    '12 records failed; last error: validation error: email invalid',
    '3 records failed; last error: validation error: required property ''lastname'' is missing',
    'rate limited: HTTP 429 Too Many Requests; retrying after 4 s (exited with code 75)',
    'stalled: no output for 300 s',
    'exited with code 1: database error: duplicate key value violates unique constraint "hubspot_contact_pkey"',
    'exited with code 1: could not connect to https://api.hubapi.com/crm/v3/objects/contacts?after=12345 at 2026-11-30T10:42:17Z',
    'exited with code 2: record 5f3a9c2e-1b7d-4e8a-9c3f-2a1b0c9d8e7f of ingestion.hubspot_contact rejected by ops@example.com',
    'timed out after 3600 s', 'exited with code 1: deal 9912 amount 12.50 is not numeric (took 3.5s, 2026-11-30 10:42)',
    'psycopg2.OperationalError: could not connect to server at 10.0.4.17:5432', 'Can''t parse "hello world" as JSON',
    '', 'é ü ✓ 42']) m;
SELECT crm_dashboard.error_fingerprint(NULL), crm_dashboard.error_fingerprint('x 1', NULL, NULL);
SELECT length(crm_dashboard.error_fingerprint(repeat('word ', 2000))) <= 500 AS bounded;
-- failed runs of three models, with the demo's messages and their numbers varying
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_failed, error_message)
SELECT m.crm, m.model, CASE WHEN g % 3 = 0 THEN 'partial' ELSE 'failed' END,
       now() - g * interval '5 hours', now() - g * interval '5 hours' + interval '1 minute',
       CASE WHEN g % 3 = 0 THEN g ELSE 0 END,
       CASE WHEN g % 3 = 0 THEN format('%s records failed; last error: validation error: email invalid', g)
            WHEN g % 3 = 1 THEN format('exited with code 1: HTTP 429 Too Many Requests, retry after %s s', g * 7)
            ELSE 'terminated by signal 6 (Aborted): Segmentation fault while parsing the ' || m.crm || ' response' END
  FROM generate_series(1, 60) g
 CROSS JOIN LATERAL (SELECT (ARRAY['hubspot', 'hubspot', 'genius'])[1 + (g / 3) % 3] AS crm,
                            (ARRAY['contact', 'deal', 'lead'])[1 + (g / 3) % 3] AS model) m;
-- HTTP 429 more often lately: rising
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
SELECT 'hubspot', 'deal', 'failed', now() - g * interval '7 hours', now() - g * interval '7 hours' + interval '1 minute',
       format('exited with code 1: HTTP 429 Too Many Requests, retry after %s s', g)
  FROM generate_series(1, 5) g;
SELECT fingerprint, runs, failed_runs, partial_runs, models, crms, trend,
       last_seen > first_seen AS spread, array_length(daily_runs, 1) AS days,
       latest_message IS NOT NULL AS has_latest
  FROM crm_api.failures ORDER BY runs DESC, fingerprint;
-- a failure's runs: crm_api.sync_runs by fingerprint
SELECT count(*) AS runs_of_429 FROM crm_api.sync_runs
 WHERE error_fingerprint = 'exited with code <n>: HTTP 429 Too Many Requests, retry after <n> s';

TRUNCATE crm_dashboard.sync_history CASCADE;
TRUNCATE crm_dashboard.run_rollup, crm_dashboard.failure_rollup;
DROP SCHEMA ingestion CASCADE;
