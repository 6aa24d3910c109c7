-- Bulk operations: start_syncs queues several models under one parent run,
-- with an outcome per model (partial failures never fail the request);
-- stop_syncs stops several runs.  Everything happens in transactions that
-- roll back, so the launcher never sees these runs.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS ingestion;
RESET client_min_messages;
CREATE TABLE ingestion.salespro_lead (id integer PRIMARY KEY);
CREATE TABLE ingestion.salespro_job (id integer PRIMARY KEY);
CREATE TABLE ingestion.salespro_quote (id integer PRIMARY KEY);
CREATE TABLE ingestion.salespro_note (id integer PRIMARY KEY);
CREATE TABLE ingestion."salespro_Bad" (id integer PRIMARY KEY);
CREATE TABLE ingestion.salespro_nocmd (id integer PRIMARY KEY);
INSERT INTO crm_dashboard.sync_command (crm, model, argv)
SELECT 'salespro', m, '{/bin/true,"{crm}","{model}"}'
  FROM unnest(ARRAY['lead', 'job', 'quote', 'note', 'Bad']) m;
CREATE ROLE bulk_operator IN ROLE crm_dashboard_operator;
CREATE ROLE bulk_viewer IN ROLE crm_dashboard_viewer;
SET crm_dashboard.request_user = 'alice';

BEGIN;
SET LOCAL ROLE bulk_operator;
-- note is paused; job already has a queued run
SELECT crm_api.pause_sync('salespro', 'note', 'migration') IS NOT NULL AS paused;
SELECT crm_api.start_sync('salespro', 'job') AS job_run \gset
-- one row per model, in the order asked
SELECT model, outcome, run_id = :job_run AS is_job_run, run_id IS NOT NULL AS has_run, parent_id IS NOT NULL AS has_parent,
       regexp_replace(message, 'run [0-9]+', 'run N', 'g') AS message
  FROM crm_api.start_syncs('salespro', ARRAY['lead', 'job', 'note', 'Bad', 'nocmd', 'nosuch', 'lead', 'quote', ''],
                           '{"full": true}');
ROLLBACK;

-- The started models share one parent run, which lists them and runs them
-- one after another; the options reach each model's argv.
BEGIN;
SET LOCAL ROLE bulk_operator;
CREATE TEMP TABLE outcome AS
    SELECT * FROM crm_api.start_syncs('salespro', ARRAY['quote', 'lead'], '{"full": true}');
SELECT model, outcome, message ~ '^Queued as run [0-9]+ of run [0-9]+\.$' AS says_queued FROM outcome;
SELECT count(DISTINCT parent_id) AS parents FROM outcome;
RESET ROLE;
SELECT p.sync_type, p.status, p.configuration->'models' AS models, p.configuration->'options' AS options,
       p.requested_by, p.requested_via
  FROM crm_dashboard.sync_history p WHERE p.id = (SELECT DISTINCT parent_id FROM outcome);
SELECT h.sync_type, h.status, h.configuration->'argv' AS argv, h.parent_id = o.parent_id AS under_parent
  FROM crm_dashboard.sync_history h JOIN outcome o ON o.run_id = h.id ORDER BY h.id;
-- a second request finds them queued
SET LOCAL ROLE bulk_operator;
SELECT model, outcome, run_id IN (SELECT run_id FROM outcome) AS same_run
  FROM crm_api.start_syncs('salespro', ARRAY['lead', 'quote']);
-- nothing startable: outcomes, and no parent run at all
RESET ROLE;
SELECT count(*) AS runs_before FROM crm_dashboard.sync_history WHERE crm_source = 'salespro' \gset
SELECT model, outcome, parent_id FROM crm_api.start_syncs('salespro', ARRAY['nosuch', 'Bad']);
SELECT count(*) = :runs_before AS no_new_run FROM crm_dashboard.sync_history WHERE crm_source = 'salespro';

-- stop_syncs: each distinct id once, queued runs cancelled, the rest said.
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
VALUES ('salespro', 'lead', 'success', now() - interval '1 hour', now() - interval '59 minutes')
RETURNING id AS done_run \gset
SET LOCAL ROLE bulk_operator;
SELECT s.run_id = :done_run AS is_done_run, s.outcome, s.status, regexp_replace(s.message, 'un [0-9]+', 'un N', 'g') AS message
  FROM crm_api.stop_syncs(ARRAY[(SELECT run_id FROM outcome WHERE model = 'quote'), :done_run, -5,
                                (SELECT run_id FROM outcome WHERE model = 'quote'), NULL]) s
 ORDER BY s.run_id;
RESET ROLE;
SELECT h.sync_type, h.status, h.error_message FROM crm_dashboard.sync_history h
  JOIN outcome o ON o.run_id = h.id ORDER BY h.id;
ROLLBACK;

-- ignore_pause starts a paused model, as it does for one.
BEGIN;
SET LOCAL ROLE bulk_operator;
SELECT crm_api.pause_sync('salespro', NULL, 'whole CRM') IS NOT NULL AS paused;
SELECT model, outcome FROM crm_api.start_syncs('salespro', ARRAY['lead', 'job']);
SELECT model, outcome FROM crm_api.start_syncs('salespro', ARRAY['lead', 'job'], '{"ignore_pause": true}');
SELECT model, reason FROM crm_api.sync_skips WHERE crm = 'salespro' ORDER BY model;
ROLLBACK;

-- What is wrong with the request itself is an error.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT * FROM crm_api.start_syncs('nosuchcrm', ARRAY['lead']);
SELECT * FROM crm_api.start_syncs('salespro', NULL);
SELECT * FROM crm_api.start_syncs('salespro', '{}');
SELECT * FROM crm_api.start_syncs('salespro', ARRAY['lead', NULL]);
SELECT * FROM crm_api.start_syncs('salespro', ARRAY[['lead'], ['job']]);
SELECT * FROM crm_api.start_syncs('salespro', (SELECT array_agg('m' || i) FROM generate_series(1, 501) i));
SELECT * FROM crm_api.start_syncs('salespro', ARRAY['lead'], '{"max_records": -1}');
SELECT * FROM crm_api.start_syncs('salespro', ARRAY['lead'], '{"bogus": 1}');
SELECT * FROM crm_api.stop_syncs(NULL);
SELECT * FROM crm_api.stop_syncs('{}');
-- viewers may do neither
SET ROLE bulk_viewer;
SELECT * FROM crm_api.start_syncs('salespro', ARRAY['lead']);
SELECT * FROM crm_api.stop_syncs(ARRAY[1]);
RESET ROLE;
SELECT count(*) AS salespro_runs FROM crm_dashboard.sync_history WHERE crm_source = 'salespro';

DELETE FROM crm_dashboard.sync_command WHERE crm = 'salespro';
DROP TABLE ingestion.salespro_lead, ingestion.salespro_job, ingestion.salespro_quote, ingestion.salespro_note,
    ingestion."salespro_Bad", ingestion.salespro_nocmd;
DROP ROLE bulk_operator, bulk_viewer;
