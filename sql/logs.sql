-- The log store: chunks of whole lines, the reads of a run's log by text
-- and by line, and the search across the kept logs of all runs.
SET timezone = 'UTC';
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (id integer);
CREATE TABLE ingestion.hubspot_deal (id integer);
CREATE TABLE ingestion.genius_lead (id integer);

-- a finished run with a log, written as the launcher writes it
CREATE FUNCTION pg_temp.run_with_log(crm text, model text, status text, started timestamptz, log text)
RETURNS bigint LANGUAGE sql AS $$
    WITH r AS (
        INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
        VALUES (crm, model, status, started, started + interval '1 minute') RETURNING id),
    c AS (
        INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
        SELECT r.id, s.seq, s.first_line, s.first_byte, s.body, started + s.seq * interval '1 second'
          FROM r, crm_dashboard.log_split(log) s)
    SELECT id FROM r $$;

-- ---- cutting a log into chunks
-- whole lines, at most 32 kB, numbered; the pieces make the log again
WITH log AS (SELECT string_agg(format('line %s: %s', i, repeat('é', i % 90)), E'\n') || E'\n' AS t
               FROM generate_series(1, 2000) i)
SELECT count(*) AS chunks, bool_and(octet_length(s.body) <= 32768) AS small,
       bool_and(right(s.body, 1) = E'\n') AS whole_lines,
       string_agg(s.body, '' ORDER BY s.seq) = (SELECT t FROM log) AS same,
       min(s.seq) AS first_seq, max(s.seq) = count(*) AS numbered, min(s.first_line) AS first_line
  FROM log, crm_dashboard.log_split(log.t) s;
-- each chunk knows its first line and byte in the whole log
WITH log AS (SELECT string_agg(format('line %s %s', i, repeat('x', 40)), E'\n') || E'\n' AS t
               FROM generate_series(1, 3000) i)
SELECT bool_and(s.first_line = split_part(split_part(s.body, ' ', 2), ' ', 1)::bigint) AS lines_right,
       bool_and(substr(convert_to(log.t, 'UTF8'), s.first_byte::integer + 1, 20) = substr(convert_to(s.body, 'UTF8'), 1, 20))
           AS bytes_right
  FROM log, crm_dashboard.log_split(log.t) s;
-- a line longer than a chunk is cut, never inside a character
SELECT count(*) AS chunks, bool_and(octet_length(body) <= 32768) AS small,
       string_agg(body, '' ORDER BY seq) = repeat('€', 30000) AS same
  FROM crm_dashboard.log_split(repeat('€', 30000));
SELECT count(*) AS chunks FROM crm_dashboard.log_split('');

-- ---- reading a run's log
SELECT pg_temp.run_with_log('hubspot', 'contact', 'failed', '2026-03-01 10:00',
    E'starting contact sync\nfetched page 1 of 3\nWARNING: slow response from api.hubspot.com\n'
    || E'ERROR: HTTP 429 Too Many Requests, retry after 30 s\nTraceback (most recent call last):\n'
    || E'giving up after 3 attempts\n') AS contact_run \gset
SELECT pg_temp.run_with_log('hubspot', 'deal', 'success', '2026-03-02 10:00',
    E'starting deal sync\ntimeout talking to api.hubspot.com, retrying\n1000 deals written\n') AS deal_run \gset
SELECT pg_temp.run_with_log('genius', 'lead', 'partial', '2026-03-03 10:00',
    E'starting lead sync\nvalidation error: lead 17 has no name\nerror count 1\n') AS lead_run \gset
SELECT crm_api.sync_log(:contact_run);
SELECT * FROM crm_api.sync_log_lines(:contact_run);
SELECT line_number, line FROM crm_api.sync_log_lines(:contact_run, from_line => 5);
SELECT line_number, line FROM crm_api.sync_log_lines(:contact_run, max_lines => 2);
SELECT line_number, line FROM crm_api.sync_log_lines(:contact_run, from_line => 99);
-- the oldest chunks of a long running log are gone (log_limit): the read says so,
-- and line numbers stay those of the whole output
DELETE FROM crm_dashboard.sync_log_chunk WHERE run_id = :contact_run;
INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
VALUES (:contact_run, 7, 5001, 123456, E'line five thousand and one\nERROR: the end\n');
SELECT crm_api.sync_log(:contact_run);
SELECT line_number, line, is_error FROM crm_api.sync_log_lines(:contact_run);
SELECT line_number, line FROM crm_api.sync_log_lines(:contact_run, from_line => 1, max_lines => 1);
-- a run without output, an unknown run, bad arguments
SELECT pg_temp.run_with_log('genius', 'lead', 'cancelled', '2026-03-04 10:00', '') AS quiet_run \gset
SELECT crm_api.sync_log(:quiet_run) = '' AS empty, (SELECT count(*) FROM crm_api.sync_log_lines(:quiet_run)) AS lines;
SELECT crm_api.sync_log(-1);
SELECT * FROM crm_api.sync_log_lines(-1);
SELECT * FROM crm_api.sync_log_lines(:deal_run, max_lines => 0);
SELECT * FROM crm_api.sync_log_lines(:deal_run, from_line => 0);
-- what counts as an error line
SELECT l, crm_dashboard.is_error_line(l) FROM unnest(ARRAY['ERROR: x', 'validation error: y', 'Traceback (most',
    'fatal: no', '0 errors', 'errorless', 'terror', 'panic!', 'all good']) l;

-- ---- search
-- one row per matching line, newest first, with the words marked
SELECT run_id = :deal_run AS deal, run_id = :contact_run AS contact, line_number, "time", snippet, line,
       run_crm, run_model, run_status
  FROM crm_api.search_logs('api.hubspot.com');
SELECT run_crm, run_model, line_number, snippet FROM crm_api.search_logs('error');
-- phrases, or, not; case does not matter
SELECT run_model, snippet FROM crm_api.search_logs('"no name"');
SELECT run_model, snippet FROM crm_api.search_logs('TIMEOUT or Validation');
SELECT run_model, snippet FROM crm_api.search_logs('starting -deal');
-- filters: CRM, model, status, time; max_rows
SELECT run_model, snippet FROM crm_api.search_logs('starting', crm => 'hubspot');
SELECT run_model, snippet FROM crm_api.search_logs('starting', crm => 'hubspot', model => 'deal');
SELECT run_model, snippet FROM crm_api.search_logs('starting', status => 'partial');
SELECT run_model, snippet FROM crm_api.search_logs('starting', since => '2026-03-02', until => '2026-03-02 23:00');
SELECT count(*) FROM crm_api.search_logs('starting', max_rows => 2);
SELECT count(*) FROM crm_api.search_logs('nothinglikethis');
-- a long line gives the fragments around the match
SELECT pg_temp.run_with_log('hubspot', 'contact', 'success', '2026-03-05 10:00',
    repeat('lorem ipsum ', 60) || 'needle here ' || repeat('dolor sit ', 60) || E'\n') AS long_run \gset
SELECT length(snippet) < 400 AS short, snippet LIKE '%«needle»%' AS marked FROM crm_api.search_logs('needle');
-- bad searches say what is wrong
SELECT * FROM crm_api.search_logs('');
SELECT * FROM crm_api.search_logs(NULL);
SELECT * FROM crm_api.search_logs('!!!');
SELECT * FROM crm_api.search_logs(repeat('x', 201));
SELECT * FROM crm_api.search_logs('x', model => 'deal');
SELECT * FROM crm_api.search_logs('x', crm => 'nosuchcrm');
SELECT * FROM crm_api.search_logs('x', crm => 'hubspot', model => 'nosuchmodel');
SELECT * FROM crm_api.search_logs('x', status => 'exploded');
SELECT * FROM crm_api.search_logs('x', since => '2026-03-02', until => '2026-03-01');
SELECT * FROM crm_api.search_logs('x', max_rows => 0);
-- the search uses the index
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT run_id FROM crm_dashboard.sync_log_chunk
 WHERE to_tsvector('simple'::regconfig, body) @@ websearch_to_tsquery('simple', 'needle');
RESET enable_seqscan;

-- ---- who may read logs
CREATE ROLE logs_viewer IN ROLE crm_dashboard_viewer;
CREATE ROLE logs_nobody;
SET ROLE logs_viewer;
SELECT count(*) FROM crm_api.search_logs('starting');
SELECT count(*) FROM crm_api.sync_log_lines(:deal_run);
SELECT count(*) FROM crm_dashboard.sync_log_chunk;
RESET ROLE;
SET ROLE logs_nobody;
SELECT count(*) FROM crm_api.search_logs('starting');
SELECT crm_api.sync_log(1);
RESET ROLE;
DROP ROLE logs_viewer;
DROP ROLE logs_nobody;

-- deleting a run deletes its log
DELETE FROM crm_dashboard.sync_history WHERE id = :deal_run;
SELECT count(*) FROM crm_dashboard.sync_log_chunk WHERE run_id = :deal_run;
DELETE FROM crm_dashboard.sync_history WHERE id IN (:contact_run, :lead_run, :quiet_run, :long_run);
DROP SCHEMA ingestion CASCADE;
