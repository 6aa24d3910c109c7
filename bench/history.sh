#!/usr/bin/env bash
# Benchmark: crm_sources() and crm_models() at 1,000 and at 1,000,000 history
# rows, in one run, beside a baseline that scans the history naively
# (DISTINCT ON over the whole table), which is what an index-less design
# would cost.  Target: ratio 1M/1k <= 2, each under 20 ms.
#
# Runs in a throwaway cluster (pg_virtualenv) unless PGHOST/PGPORT are set.
set -euo pipefail
if [ -z "${CRM_BENCH_INSIDE:-}" ]; then
	export CRM_BENCH_INSIDE=1
	exec pg_virtualenv "$0" "$@"
fi
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql <<'SQL'
DROP EXTENSION IF EXISTS crm_dashboard CASCADE;
DROP SCHEMA IF EXISTS ingestion CASCADE;
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA ingestion;
-- 40 models: four per CRM
DO $$
DECLARE c text; m text;
BEGIN
    FOR c IN SELECT name FROM crm_dashboard.crm_source LOOP
        FOREACH m IN ARRAY ARRAY['contact', 'deal', 'appointment', 'division'] LOOP
            EXECUTE format('CREATE TABLE ingestion.%I (id bigint PRIMARY KEY, name text)', c || '_' || m);
        END LOOP;
    END LOOP;
END $$;

CREATE FUNCTION pg_temp.add_history(n integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time,
                                            records_processed, records_created, records_updated)
    SELECT c.name, m.model,
           (ARRAY['success', 'success', 'success', 'partial', 'failed', 'cancelled'])[1 + g % 6],
           now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '30 seconds',
           100, 40, 60
      FROM generate_series(1, n) g
      CROSS JOIN LATERAL (SELECT name FROM crm_dashboard.crm_source ORDER BY sort_order OFFSET g % 10 LIMIT 1) c
      CROSS JOIN LATERAL (SELECT (ARRAY['contact', 'deal', 'appointment', 'division'])[1 + (g / 10) % 4] AS model) m
$$;

-- median milliseconds of n executions of q
CREATE FUNCTION pg_temp.median_ms(q text, n integer DEFAULT 30) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    EXECUTE q;  -- warm the caches
    FOR i IN 1..n LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
    END LOOP;
    RETURN round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x)::numeric, 2);
END $$;

CREATE TEMP TABLE results (query text, rows_1k numeric, rows_1m numeric);
SELECT pg_temp.add_history(1000) \g /dev/null
ANALYZE crm_dashboard.sync_history;
INSERT INTO results VALUES
    ('crm_api.crm_sources', pg_temp.median_ms('SELECT * FROM crm_api.crm_sources'), NULL),
    ('crm_api.crm_models', pg_temp.median_ms('SELECT * FROM crm_api.crm_models'), NULL),
    ('baseline: DISTINCT ON scan', pg_temp.median_ms(
        'SELECT DISTINCT ON (crm_source, sync_type) * FROM crm_dashboard.sync_history
          ORDER BY crm_source, sync_type, start_time DESC', 5), NULL);

\echo building 1,000,000 history rows...
SELECT pg_temp.add_history(999000) \g /dev/null
VACUUM ANALYZE crm_dashboard.sync_history;
UPDATE results SET rows_1m = pg_temp.median_ms('SELECT * FROM crm_api.crm_sources') WHERE query = 'crm_api.crm_sources';
UPDATE results SET rows_1m = pg_temp.median_ms('SELECT * FROM crm_api.crm_models') WHERE query = 'crm_api.crm_models';
UPDATE results SET rows_1m = pg_temp.median_ms(
        'SELECT DISTINCT ON (crm_source, sync_type) * FROM crm_dashboard.sync_history
          ORDER BY crm_source, sync_type, start_time DESC', 5) WHERE query LIKE 'baseline%';

\echo
\echo 'History aggregation, median ms (target: ratio <= 2, each under 20 ms)'
SELECT query, rows_1k AS "ms at 1k runs", rows_1m AS "ms at 1M runs",
       round(rows_1m / nullif(rows_1k, 0), 2) AS ratio
  FROM results;
SQL
