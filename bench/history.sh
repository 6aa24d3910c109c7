#!/usr/bin/env bash
# Benchmark: crm_sources() and crm_models() at 1,000 and at 1,000,000 history
# rows, in one run, beside a baseline that scans the history naively
# (DISTINCT ON over the whole table), which is what an index-less design
# would cost.  Target: ratio 1M/1k <= 2, each under 20 ms.
#
# Then history at scale, each measure beside its baseline of the same run:
#   1. analytics of one model and one CRM over 90 days at HISTORY_ROWS
#      (default 10,000,000) against at 10,000 rows, beside the plain
#      aggregate over the raw history (ratio <= 2, each <= 20 ms);
#   2. search_logs for a selective term over LOG_LINES lines of kept logs
#      (default 20,000,000, about 2 GB), full-text (tsvector + GIN) beside
#      trigram search (pg_trgm, when installed) (<= 100 ms);
#   3. writing a running log, cost per flush at 1 MB and at 64 MB of log:
#      the new tail into the log store beside rewriting the whole log in
#      the history row (ratio <= 1.5);
#   4. retention removing RETENTION_RUNS old runs (default 1,000,000) in
#      batches while crm_api.crm_sources is read in a loop: reader p99
#      beside idle (within 2x), with batches at the launcher's pace (one
#      every 200 ms while behind) and, as the worst case, back to back; and
#      the log store's retention by batched deletes beside dropping
#      partitions of a time-partitioned copy.
# Smaller figures (HISTORY_ROWS=1000000 ...) give a quicker run.
#
# Runs in a throwaway cluster (pg_virtualenv) unless PGHOST/PGPORT are set.
set -euo pipefail
if [ -z "${CRM_BENCH_INSIDE:-}" ]; then
	export CRM_BENCH_INSIDE=1
	exec pg_virtualenv "$0" "$@"
fi
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
HISTORY_ROWS=${HISTORY_ROWS:-10000000}
LOG_LINES=${LOG_LINES:-20000000}
RETENTION_RUNS=${RETENTION_RUNS:-1000000}

# Each measure is a session of its own, with the timing helper.
prelude=$(mktemp)
cat > "$prelude" <<'SQL'
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
SQL
# measure [psql options]: run the SQL on stdin after the prelude
measure() { { cat "$prelude"; cat; } | psql "$@"; }

measure <<'SQL'
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

# ---------------------------------------------------------------- history at scale

measure -v history_rows="$HISTORY_ROWS" <<'SQL'
\echo
\echo '1. Analytics over 90 days of one model and one CRM (target: ratio <= 2, each <= 20 ms)'
TRUNCATE crm_dashboard.sync_history CASCADE;
TRUNCATE crm_dashboard.run_rollup, crm_dashboard.failure_rollup;
-- n runs of the 40 models spread over the last days days
CREATE FUNCTION pg_temp.add_spread(n integer, days integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, queued_at, start_time, end_time,
                                            records_processed, records_created, records_updated, records_failed)
    SELECT c.name, (ARRAY['contact', 'deal', 'appointment', 'division'])[1 + (g / 10) % 4],
           (ARRAY['success', 'success', 'success', 'partial', 'failed', 'cancelled'])[1 + g % 6],
           now() - (g::float8 / n) * days * interval '1 day' - interval '5 seconds',
           now() - (g::float8 / n) * days * interval '1 day',
           now() - (g::float8 / n) * days * interval '1 day' + (20 + g % 40) * interval '1 second',
           100 + g % 50, 40, 60, CASE WHEN g % 6 = 3 THEN 2 ELSE 0 END
      FROM generate_series(1, n) g
      CROSS JOIN LATERAL (SELECT name FROM crm_dashboard.crm_source ORDER BY sort_order OFFSET g % 10 LIMIT 1) c
$$;
CREATE TEMP TABLE scale_results (measure text, small numeric, large numeric);
SELECT pg_temp.add_spread(10000, 200) \g /dev/null
ANALYZE crm_dashboard.sync_history, crm_dashboard.run_rollup;
\set model_q 'SELECT * FROM crm_dashboard.analytics(''90d'', ''hubspot'', ''contact'')'
\set crm_q 'SELECT * FROM crm_dashboard.analytics(''90d'', ''hubspot'', NULL, false)'
\set plain_q 'SELECT count(*), count(*) FILTER (WHERE status = ''success''), percentile_disc(0.95) WITHIN GROUP (ORDER BY end_time - start_time), sum(records_processed) FROM crm_dashboard.sync_history WHERE crm_source = ''hubspot'' AND sync_type = ''contact'' AND start_time >= now() - interval ''90 days'' AND status IN (''success'', ''partial'', ''failed'', ''cancelled'')'
INSERT INTO scale_results VALUES
    ('analytics: one model, 90 days', pg_temp.median_ms(:'model_q'), NULL),
    ('analytics: one CRM, 90 days', pg_temp.median_ms(:'crm_q'), NULL),
    ('baseline: plain aggregate of the raw history, one model', pg_temp.median_ms(:'plain_q', 5), NULL);
\echo building :history_rows history rows (rollups kept by the triggers, 100,000 rows a statement;
\echo anomalies, which look at the 20 runs before each, are not assessed for this bulk load)...
TRUNCATE crm_dashboard.sync_history CASCADE;
TRUNCATE crm_dashboard.run_rollup, crm_dashboard.failure_rollup;
ALTER TABLE crm_dashboard.sync_history DISABLE TRIGGER sync_history_assess_insert;
\o /dev/null
SELECT 'SELECT pg_temp.add_spread(100000, 200)' FROM generate_series(1, :history_rows / 100000) \gexec
\o
ALTER TABLE crm_dashboard.sync_history ENABLE TRIGGER sync_history_assess_insert;
VACUUM ANALYZE crm_dashboard.sync_history;
ANALYZE crm_dashboard.run_rollup;
UPDATE scale_results SET large = pg_temp.median_ms(:'model_q') WHERE measure = 'analytics: one model, 90 days';
UPDATE scale_results SET large = pg_temp.median_ms(:'crm_q') WHERE measure = 'analytics: one CRM, 90 days';
UPDATE scale_results SET large = pg_temp.median_ms(:'plain_q', 3) WHERE measure LIKE 'baseline: plain%';
SELECT measure, small AS "ms at 10k runs", large AS "ms at the large history", round(large / nullif(small, 0), 2) AS ratio
  FROM scale_results;
SQL

measure -v log_lines="$LOG_LINES" <<'SQL'
\echo
\echo '2. search_logs, a selective term over the kept logs (target: <= 100 ms)'
TRUNCATE crm_dashboard.sync_history CASCADE;
-- runs of 100,000 lines of about 100 bytes; one line in 1,000,000 holds the rare term
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
SELECT 'hubspot', 'contact', 'success', now() - g * interval '1 hour', now() - g * interval '1 hour' + interval '1 minute'
  FROM generate_series(1, greatest(:log_lines / 100000, 1)) g;
\echo writing :log_lines log lines...
INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
SELECT h.id, c.seq, (c.seq - 1) * 300 + 1, (c.seq - 1) * 30000,
       (SELECT string_agg(CASE WHEN (h.id * 100000 + c.seq * 300 + l) % 1000000 = 7
                               THEN format('2026-11-30 10:42:%s ERROR deadlock detected on ingestion.hubspot_contact row %s', l % 60, l)
                               ELSE format('2026-11-30 10:42:%s INFO fetched page %s of contacts: %s records, cursor %s',
                                           l % 60, c.seq * 300 + l, l % 100, md5((h.id * 1000 + l)::text)) END, E'\n') || E'\n'
          FROM generate_series(1, 300) l),
       h.end_time
  FROM crm_dashboard.sync_history h, generate_series(1, 334) c(seq);
VACUUM ANALYZE crm_dashboard.sync_log_chunk;
SELECT pg_size_pretty(sum(octet_length(body))) AS "log text", count(*) AS chunks,
       pg_size_pretty(pg_relation_size('crm_dashboard.sync_log_chunk_words')) AS "tsvector GIN index"
  FROM crm_dashboard.sync_log_chunk;
CREATE TEMP TABLE search_results (how text, ms numeric, lines bigint);
INSERT INTO search_results
SELECT 'search_logs (tsvector + GIN): rare term', pg_temp.median_ms('SELECT * FROM crm_api.search_logs(''deadlock'')', 10),
       (SELECT count(*) FROM crm_api.search_logs('deadlock'));
INSERT INTO search_results
SELECT 'search_logs (tsvector + GIN): common term, first 100 lines',
       pg_temp.median_ms('SELECT * FROM crm_api.search_logs(''contacts'')', 10),
       (SELECT count(*) FROM crm_api.search_logs('contacts'));
SELECT count(*) > 0 AS have_trgm FROM pg_available_extensions WHERE name = 'pg_trgm' \gset
\if :have_trgm
CREATE EXTENSION IF NOT EXISTS pg_trgm;
\timing on
\echo building a trigram index on the same chunks (timed):
CREATE INDEX sync_log_chunk_trgm ON crm_dashboard.sync_log_chunk USING gin (body gin_trgm_ops);
\timing off
SELECT pg_size_pretty(pg_relation_size('crm_dashboard.sync_log_chunk_trgm')) AS "trigram GIN index";
INSERT INTO search_results
SELECT 'baseline: trigram (pg_trgm) ILIKE: rare term', pg_temp.median_ms(
    'SELECT k.run_id, l.n FROM crm_dashboard.sync_log_chunk k, string_to_table(k.body, E''\n'') WITH ORDINALITY l(t, n)
      WHERE k.body ILIKE ''%deadlock%'' AND l.t ILIKE ''%deadlock%'' LIMIT 100', 10), NULL;
INSERT INTO search_results
SELECT 'baseline: trigram (pg_trgm) ILIKE: common term, first 100 lines', pg_temp.median_ms(
    'SELECT k.run_id, l.n FROM crm_dashboard.sync_log_chunk k, string_to_table(k.body, E''\n'') WITH ORDINALITY l(t, n)
      WHERE k.body ILIKE ''%contacts%'' AND l.t ILIKE ''%contacts%'' LIMIT 100', 10), NULL;
DROP INDEX crm_dashboard.sync_log_chunk_trgm;
\endif
-- on equal terms: only finding the chunks that hold the term, through each index
INSERT INTO search_results
SELECT 'index only: tsvector @@, chunks with the rare term', pg_temp.median_ms(
    'SELECT count(*) FROM crm_dashboard.sync_log_chunk k
      WHERE to_tsvector(''simple''::regconfig, k.body) @@ to_tsquery(''simple'', ''deadlock'')', 10), NULL;
\if :have_trgm
CREATE INDEX sync_log_chunk_trgm ON crm_dashboard.sync_log_chunk USING gin (body gin_trgm_ops);
INSERT INTO search_results
SELECT 'index only: trigram ILIKE, chunks with the rare term', pg_temp.median_ms(
    'SELECT count(*) FROM crm_dashboard.sync_log_chunk k WHERE k.body ILIKE ''%deadlock%''', 10), NULL;
-- what the trigram index costs each flush of a running log: one 32 kB chunk in
INSERT INTO search_results
SELECT 'write: one 32 kB chunk, tsvector and trigram indexes', pg_temp.median_ms(
    'WITH c AS (INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
                SELECT (SELECT min(id) FROM crm_dashboard.sync_history), 1000000 + (random() * 1e9)::integer, 1, 0,
                       string_agg(md5(g::text || random()::text), E''\n'')
                  FROM generate_series(1, 900) g RETURNING 1) SELECT count(*) FROM c', 20), NULL;
DROP INDEX crm_dashboard.sync_log_chunk_trgm;
\endif
INSERT INTO search_results
SELECT 'write: one 32 kB chunk, tsvector index only', pg_temp.median_ms(
    'WITH c AS (INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
                SELECT (SELECT min(id) FROM crm_dashboard.sync_history), 1000000 + (random() * 1e9)::integer, 1, 0,
                       string_agg(md5(g::text || random()::text), E''\n'')
                  FROM generate_series(1, 900) g RETURNING 1) SELECT count(*) FROM c', 20), NULL;
INSERT INTO search_results
SELECT 'baseline: no index (LIKE over every chunk)', pg_temp.median_ms(
    'SELECT count(*) FROM crm_dashboard.sync_log_chunk k WHERE k.body LIKE ''%deadlock%''', 3), NULL;
SELECT * FROM search_results;
SQL

measure <<'SQL'
\echo
\echo '3. Writing a running log: ms per flush of 64 kB of new output (target: ratio 64 MB / 1 MB <= 1.5)'
TRUNCATE crm_dashboard.sync_history CASCADE;
CREATE TEMP TABLE flush_results (how text, at_1mb numeric, at_64mb numeric);
-- the old way: the whole kept log in a text column, rewritten at each flush
CREATE TEMP TABLE whole_log (id bigint PRIMARY KEY, log text);
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time)
VALUES ('hubspot', 'contact', 'running', now()), ('hubspot', 'deal', 'running', now());
-- a log of mb megabytes, as store chunks of 32 kB and as one text
CREATE FUNCTION pg_temp.fill(run bigint, mb integer) RETURNS void LANGUAGE sql AS $$
    DELETE FROM crm_dashboard.sync_log_chunk WHERE run_id = run;
    INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
    SELECT run, s, (s - 1) * 320 + 1, (s - 1) * 32000, repeat(md5(s::text) || repeat('x', 67) || E'\n', 320)
      FROM generate_series(1, mb * 32) s;
    INSERT INTO whole_log VALUES (run, (SELECT string_agg(body, '' ORDER BY seq) FROM crm_dashboard.sync_log_chunk
                                         WHERE run_id = run))
    ON CONFLICT (id) DO UPDATE SET log = EXCLUDED.log;
$$;
-- one flush the new way (what src/launcher_log.c does): the new 64 kB as
-- two chunks, the two oldest out
CREATE FUNCTION pg_temp.tail_flush(run bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
    SELECT run, m.seq + s, 1, m.byte + s * 32000, repeat(md5(random()::text) || repeat('y', 67) || E'\n', 320)
      FROM (SELECT max(seq) AS seq, max(first_byte) AS byte FROM crm_dashboard.sync_log_chunk WHERE run_id = run) m,
           generate_series(1, 2) s;
    DELETE FROM crm_dashboard.sync_log_chunk WHERE run_id = run
       AND seq < (SELECT min(seq) + 2 FROM crm_dashboard.sync_log_chunk WHERE run_id = run);
$$;
-- one flush the old way: 64 kB more, the whole log written again
CREATE FUNCTION pg_temp.whole_flush(run bigint) RETURNS void LANGUAGE sql AS $$
    UPDATE whole_log SET log = substr(log, 64001) || repeat(md5(random()::text) || repeat('y', 67) || E'\n', 640)
     WHERE id = run;
$$;
SELECT id AS small FROM crm_dashboard.sync_history WHERE sync_type = 'contact' \gset
SELECT id AS large FROM crm_dashboard.sync_history WHERE sync_type = 'deal' \gset
SELECT pg_temp.fill(:small, 1), pg_temp.fill(:large, 64) \g /dev/null
VACUUM ANALYZE crm_dashboard.sync_log_chunk, whole_log;
INSERT INTO flush_results VALUES
    ('log store: the new tail', pg_temp.median_ms(format('SELECT pg_temp.tail_flush(%s)', :small), 30),
                                pg_temp.median_ms(format('SELECT pg_temp.tail_flush(%s)', :large), 30)),
    ('baseline: the whole log rewritten', pg_temp.median_ms(format('SELECT pg_temp.whole_flush(%s)', :small), 10),
                                          pg_temp.median_ms(format('SELECT pg_temp.whole_flush(%s)', :large), 10));
SELECT how, at_1mb AS "ms at 1 MB", at_64mb AS "ms at 64 MB", round(at_64mb / nullif(at_1mb, 0), 2) AS ratio
  FROM flush_results;
SQL

# 4. Retention while a reader loops: pgbench reads crm_sources for 15 s,
# idle, then while retention removes old runs in batches of 500: first as
# the launcher applies it (one session, a batch every 200 ms while behind),
# then back to back, as a tight loop of crm_api.apply_retention would.
reader=$(mktemp)
echo 'SELECT * FROM crm_api.crm_sources;' > "$reader"
chmod a+r "$reader"
# p99 SECONDS: the reader's 99th percentile latency in ms over that long
p99() {
	local dir
	dir=$(mktemp -d)
	(cd "$dir" && pgbench -n -f "$reader" -T "$1" -c 2 -l >/dev/null 2>&1)
	cat "$dir"/pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.99)]/1000}'
	rm -rf "$dir"
}
measure -v runs="$RETENTION_RUNS" <<'SQL'
\echo
\echo 4. Retention of :runs old runs while crm_sources is read (target: reader p99 within 2x of idle)
TRUNCATE crm_dashboard.sync_history CASCADE;
TRUNCATE crm_dashboard.run_rollup, crm_dashboard.failure_rollup;
CREATE FUNCTION pg_temp.bench_spread(n integer, days integer, older integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, queued_at, start_time, end_time, records_processed)
    SELECT c.name, (ARRAY['contact', 'deal', 'appointment', 'division'])[1 + (g / 10) % 4],
           (ARRAY['success', 'success', 'partial', 'failed'])[1 + g % 4],
           now() - (older + (g::float8 / n) * days) * interval '1 day',
           now() - (older + (g::float8 / n) * days) * interval '1 day',
           now() - (older + (g::float8 / n) * days) * interval '1 day' + interval '30 seconds', 100
      FROM generate_series(1, n) g
      CROSS JOIN LATERAL (SELECT name FROM crm_dashboard.crm_source ORDER BY sort_order OFFSET g % 10 LIMIT 1) c
$$;
ALTER TABLE crm_dashboard.sync_history DISABLE TRIGGER sync_history_assess_insert;
SELECT count(pg_temp.bench_spread(100000, 300, 31)) FROM generate_series(1, greatest(:runs / 100000, 1)) \g /dev/null
SELECT pg_temp.bench_spread(10000, 30, 0) \g /dev/null
ALTER TABLE crm_dashboard.sync_history ENABLE TRIGGER sync_history_assess_insert;
VACUUM ANALYZE crm_dashboard.sync_history;
SQL
# passes PACE SECONDS: retention passes in one session, each committed, the
# next one PACE seconds after the last began, until caught up or SECONDS are over
passes() {
	psql -c "DO \$\$ DECLARE t0 timestamptz; stop_at timestamptz := clock_timestamp() + interval '$2 seconds';
	         BEGIN LOOP t0 := clock_timestamp();
	         EXIT WHEN NOT (crm_dashboard.apply_retention('sql') ->> 'behind')::boolean; COMMIT;
	         EXIT WHEN clock_timestamp() >= stop_at;
	         PERFORM pg_sleep(greatest(0, $1 - extract(epoch FROM clock_timestamp() - t0))); END LOOP; END \$\$" >/dev/null
}
idle=$(p99 15)
psql -c "SELECT crm_api.set_retention(keep_runs => '30 days', keep_failed_runs => '30 days', batch_size => 500)" >/dev/null
start=$(date +%s.%N)
passes 0.2 15 &
retention=$!
paced=$(p99 15)
wait $retention
paced_runs=$(psql -At -c "SELECT runs_removed FROM crm_api.retention")
passes 0 86400 &
retention=$!
busy=$(p99 15)
wait $retention
end=$(date +%s.%N)
left=$(psql -At -c "SELECT count(*) FROM crm_dashboard.sync_history")
psql -c "SELECT crm_api.set_retention()" >/dev/null
echo "reader p99: idle ${idle} ms; during retention at the launcher's pace ${paced} ms ($paced_runs runs removed in those 15 s), back to back ${busy} ms"
echo "retention of all took $(echo "$end - $start" | bc) s; runs left $left"

measure <<'SQL'
\echo
\echo '   Log retention: batched deletes beside dropping partitions (500,000 chunks of 1 kB over 42 days)'
TRUNCATE crm_dashboard.sync_history CASCADE;
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
SELECT 'hubspot', 'contact', 'success', now() - g * interval '1 hour', now() - g * interval '1 hour' + interval '1 minute'
  FROM generate_series(1, 1000) g;
INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
SELECT h.id, s, s, s * 1000, repeat('x', 999) || E'\n', h.end_time
  FROM crm_dashboard.sync_history h, generate_series(1, 500) s;
-- the same chunks in a copy partitioned by day of writing
CREATE TEMP TABLE parted (LIKE crm_dashboard.sync_log_chunk) PARTITION BY RANGE (written_at);
DO $$
BEGIN
    FOR d IN 0..45 LOOP
        EXECUTE format('CREATE TEMP TABLE parted_%s PARTITION OF parted FOR VALUES FROM (%L) TO (%L)', d,
                       date_trunc('day', now()) - (d - 1) * interval '1 day' - interval '1 day',
                       date_trunc('day', now()) - (d - 1) * interval '1 day');
    END LOOP;
END $$;
INSERT INTO parted SELECT * FROM crm_dashboard.sync_log_chunk;
CREATE INDEX ON parted (run_id, seq);
VACUUM ANALYZE crm_dashboard.sync_log_chunk;
ANALYZE parted;
CHECKPOINT;
CREATE TEMP TABLE parts (how text, ms numeric, wal text);
DO $$
DECLARE t0 timestamptz; w0 pg_lsn; n integer;
BEGIN
    t0 := clock_timestamp(); w0 := pg_current_wal_insert_lsn();
    LOOP
        DELETE FROM crm_dashboard.sync_log_chunk k WHERE k.ctid = ANY (ARRAY(
            SELECT c.ctid FROM crm_dashboard.sync_log_chunk c WHERE c.written_at < now() - interval '30 days'
             ORDER BY c.written_at LIMIT 500));
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
    END LOOP;
    INSERT INTO parts VALUES ('batched deletes, 500 a batch, of everything older than 30 days',
        round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1),
        pg_size_pretty(pg_current_wal_insert_lsn() - w0));
    t0 := clock_timestamp(); w0 := pg_current_wal_insert_lsn();
    FOR d IN 31..45 LOOP
        EXECUTE format('DROP TABLE parted_%s', d);
    END LOOP;
    INSERT INTO parts VALUES ('dropping the daily partitions older than 30 days',
        round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1),
        pg_size_pretty(pg_current_wal_insert_lsn() - w0));
END $$;
SELECT * FROM parts;
\echo '   Reading one run''s log: the store by primary key, beside the partitioned copy (every partition probed)'
SELECT max(run_id) AS run FROM crm_dashboard.sync_log_chunk \gset
SELECT pg_temp.median_ms(format('SELECT string_agg(body, '''' ORDER BY seq) FROM crm_dashboard.sync_log_chunk WHERE run_id = %s', :run)) AS "store ms",
       pg_temp.median_ms(format('SELECT string_agg(body, '''' ORDER BY seq) FROM parted WHERE run_id = %s', :run)) AS "partitioned ms";
TRUNCATE crm_dashboard.sync_history CASCADE;
SQL
rm -f "$reader" "$prelude"
