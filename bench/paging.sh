#!/usr/bin/env bash
# Benchmark of model_rows keyset paging on a 2,000,000-row model table.
#
# Prints, from one run on a throwaway cluster (pg_virtualenv): the first page
# vs a page near the end (target: ratio <= 2), beside the same deep page
# fetched by OFFSET as the baseline; and estimated_total vs count_rows.
# Each figure is the median of several runs in milliseconds.
#
# Usage: bench/paging.sh [rows] [runs]   (after scripts/install-dev)
set -euo pipefail
ROWS=${1:-2000000}
RUNS=${2:-7}
cd "$(dirname "$0")/.."

if [ -z "${PGHOST:-}" ] || [ -z "${CRM_BENCH_INSIDE:-}" ]; then
    exec env CRM_BENCH_INSIDE=1 pg_virtualenv -o shared_buffers=256MB -o work_mem=16MB \
        "$0" "$ROWS" "$RUNS"
fi

psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE crm_bench_paging"
exec psql -X -q -t -A -v ON_ERROR_STOP=1 -d crm_bench_paging -v rows="$ROWS" -v runs="$RUNS" <<'SQL'
\set QUIET on
CREATE EXTENSION crm_dashboard;
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (
    id text PRIMARY KEY,
    email text,
    firstname text,
    lastname text,
    phone text,
    city text,
    state text,
    zip text,
    createdate timestamptz NOT NULL,
    lastmodifieddate timestamptz,
    archived boolean NOT NULL DEFAULT false
);
\echo building :rows rows...
INSERT INTO ingestion.hubspot_contact
SELECT lpad(i::text, 9, '0'),
       'user' || i || '@example.com',
       (ARRAY['Ann', 'Bob', 'Carla', 'Dmitri', 'Eve', 'Farid'])[i % 6 + 1],
       (ARRAY['Smith', 'Jones', 'O''Neil', 'Garcia', 'Nguyen'])[i % 5 + 1],
       '555-' || lpad((i % 10000)::text, 4, '0'),
       (ARRAY['Austin', 'Boston', 'Chicago', 'Denver', NULL])[i % 5 + 1],
       (ARRAY['TX', 'MA', 'IL', 'CO'])[i % 4 + 1],
       lpad((i % 99999)::text, 5, '0'),
       timestamptz '2020-01-01' + i * interval '37 seconds',
       CASE WHEN i % 10 = 0 THEN NULL ELSE timestamptz '2024-01-01' + (i::bigint * 7919 % 1000003) * interval '1 minute' END,
       i % 50 = 0
  FROM generate_series(1, :rows) i;
-- A sort other than the primary key needs its own index, as any keyset does.
CREATE INDEX ON ingestion.hubspot_contact (lastmodifieddate, id);
VACUUM ANALYZE ingestion.hubspot_contact;

-- Median wall time of a statement over n runs, in milliseconds.
CREATE FUNCTION pg_temp.median_ms(q text, n integer) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    times float8[] := '{}';
BEGIN
    EXECUTE q;                  -- warm the cache
    FOR i IN 1 .. n LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || extract(epoch FROM clock_timestamp() - t0)::float8 * 1000;
    END LOOP;
    RETURN round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x)::numeric, 2);
END
$$;

-- The "next" cursor of the ascending page that ends at row n of a sort:
-- what a user holds after paging that far.  Built from the row's keys in the
-- cursor's form (base64url JSON) to skip 80,000 page requests.
CREATE FUNCTION pg_temp.cursor_at(p_sort text, n bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    doc json;
BEGIN
    EXECUTE format('SELECT id, %1$I::text AS v FROM ingestion.hubspot_contact ORDER BY %1$I, id OFFSET $1 LIMIT 1',
                   p_sort) INTO r USING n - 1;
    doc := json_build_object('m', 'ingestion.hubspot_contact', 'd', 'f', 's', p_sort, 'desc', false,
                             'g', CASE WHEN r.v IS NULL THEN 1 ELSE 0 END,
                             'k', CASE WHEN r.v IS NULL OR p_sort = 'id' THEN json_build_array(r.id)
                                       ELSE json_build_array(r.v, r.id) END);
    RETURN translate(encode(convert_to(doc::text, 'UTF8'), 'base64'), E'+/=\n', '-_');
END
$$;

-- One line per case: first page, deep page, their ratio, the OFFSET
-- baseline, and whether the deep page holds exactly the rows OFFSET finds.
CREATE FUNCTION pg_temp.case_line(label text, p_sort text, n bigint, runs integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    cur text := pg_temp.cursor_at(p_sort, n);
    first_q text := format('SELECT crm_api.model_rows(%L, %L, NULL, 25, NULL, %L)', 'hubspot', 'contact', p_sort);
    deep_q text := format('SELECT crm_api.model_rows(%L, %L, %L, 25, NULL, %L)', 'hubspot', 'contact', cur, p_sort);
    offset_q text := format('SELECT json_agg(row_to_json(t)) FROM (SELECT * FROM ingestion.hubspot_contact '
                            'ORDER BY %I, id OFFSET %s LIMIT 25) t', p_sort, n);
    first_ms numeric := pg_temp.median_ms(first_q, runs);
    deep_ms numeric := pg_temp.median_ms(deep_q, runs);
    offset_ms numeric := pg_temp.median_ms(offset_q, runs);
    deep json;
    base json;
BEGIN
    EXECUTE deep_q INTO deep;
    EXECUTE offset_q INTO base;
    RETURN format('%-42s %8s %8s %6s %10s  %s', label, first_ms, deep_ms,
                  round(deep_ms / greatest(first_ms, 0.01), 2), offset_ms,
                  CASE WHEN (deep->'rows')::jsonb = base::jsonb THEN 'yes' ELSE 'NO' END);
END
$$;

-- One line of a single timing.
CREATE FUNCTION pg_temp.time_line(label text, q text, runs integer) RETURNS text LANGUAGE sql AS $$
    SELECT format('%-42s %8s ms', label, pg_temp.median_ms(q, runs))
$$;

\echo
SELECT format('model_rows on %s rows, median of %s runs, milliseconds', :rows, :runs);
SELECT format('%-42s %8s %8s %6s %10s  %s', 'page of 25', 'first', 'deep', 'ratio', 'OFFSET', 'same rows');
SELECT pg_temp.case_line(format('sort id (primary key), row %s', :rows - 1000), 'id', :rows - 1000, :runs);
SELECT pg_temp.case_line(format('sort lastmodifieddate, row %s', :rows * 4 / 5),
                         'lastmodifieddate', :rows * 4 / 5, :runs);
SELECT pg_temp.case_line(format('sort lastmodifieddate (NULLs), row %s', :rows - 1000),
                         'lastmodifieddate', :rows - 1000, :runs);
\echo
SELECT pg_temp.time_line('estimated_total (model_rows, 1 row)',
    $q$SELECT crm_api.model_rows('hubspot', 'contact', per_page => 1)->'estimated_total'$q$, :runs);
SELECT pg_temp.time_line('estimated_total of a search (planner)',
    $q$SELECT crm_api.model_rows('hubspot', 'contact', per_page => 1, search => 'o''neil')->'estimated_total'$q$, :runs);
SELECT pg_temp.time_line('count_rows (exact count)',
    $q$SELECT crm_api.count_rows('hubspot', 'contact')$q$, :runs);
SQL
