-- Data-quality checks: every kind, every definition mistake, results kept
-- per run and check (failing rows, sample keys, sampling), the refusal of a
-- sync before it starts (and force), and a run made partial after it.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS ingestion;
RESET client_min_messages;
CREATE TABLE ingestion.leadconduit_company (id integer PRIMARY KEY, name text);
INSERT INTO ingestion.leadconduit_company SELECT i, 'company ' || i FROM generate_series(1, 5) i;
CREATE TABLE ingestion.leadconduit_lead (
    id integer PRIMARY KEY, email text, status text, score integer, created date,
    updated_at timestamptz, company_id integer);
INSERT INTO ingestion.leadconduit_lead
SELECT i, CASE WHEN i IN (3, 7) THEN NULL WHEN i = 9 THEN 'not-an-email' WHEN i = 10 THEN 'user1@example.com'
               ELSE 'user' || i || '@example.com' END,
       (ARRAY['new', 'won', 'lost'])[i % 3 + 1], i * 10, date '2024-01-01' + i, now() - interval '1 hour',
       CASE WHEN i = 4 THEN 99 ELSE i % 5 + 1 END
  FROM generate_series(1, 12) i;
UPDATE ingestion.leadconduit_lead SET status = 'spam' WHERE id = 5;
CREATE TABLE ingestion.leadconduit_event (id integer PRIMARY KEY, kind text);
INSERT INTO ingestion.leadconduit_event SELECT i, CASE WHEN i % 100 = 0 THEN NULL ELSE 'k' END FROM generate_series(1, 20000) i;
ANALYZE ingestion.leadconduit_company, ingestion.leadconduit_lead, ingestion.leadconduit_event;
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('leadconduit', '{/bin/true}');
CREATE ROLE dq_operator IN ROLE crm_dashboard_operator;
CREATE ROLE dq_viewer IN ROLE crm_dashboard_viewer;
SET crm_dashboard.request_user = 'alice';

-- Operators define checks of every kind.
SET ROLE dq_operator;
SELECT c->>'name' AS name, c->>'kind' AS kind, c->>'column_name' AS col, c->'params' AS params, c->>'severity' AS severity,
       c->>'created_by' AS created_by
  FROM (VALUES
    (crm_api.add_check('leadconduit', 'lead', 'email_present', 'not_null', 'email')),
    (crm_api.add_check('leadconduit', 'lead', 'email_unique', 'unique', 'email', severity => 'warn')),
    (crm_api.add_check('leadconduit', 'lead', 'known_status', 'accepted_values', 'status', '{"values": ["new", "won", "lost"]}')),
    (crm_api.add_check('leadconduit', 'lead', 'email_shape', 'regex', 'email', '{"pattern": "^[^@]+@[^@]+$"}', 'warn')),
    (crm_api.add_check('leadconduit', 'lead', 'score_range', 'range', 'score', '{"min": 0, "max": 100}')),
    (crm_api.add_check('leadconduit', 'lead', 'created_range', 'range', 'created', '{"min": "2024-01-01"}')),
    (crm_api.add_check('leadconduit', 'lead', 'company_exists', 'referential', 'company_id', '{"model": "company", "column": "id"}')),
    (crm_api.add_check('leadconduit', 'lead', 'fresh', 'freshness', 'updated_at', '{"max_age": "1 day"}')),
    (crm_api.add_check('leadconduit', 'lead', 'steady', 'row_count_change', NULL, '{"max_change_percent": 10}', 'warn'))
  ) v(c);
-- On demand: every check runs and keeps its result.
SELECT c.name, r.phase, r.passed, r.failing_rows, r.sample_keys, r.sampled,
       regexp_replace(r.summary, '\(.*\)', '(...)') AS summary, r.error,
       r.duration_ms >= 0 AS timed, r.checked_by
  FROM crm_api.run_checks('leadconduit', 'lead') r JOIN crm_api.quality_checks c ON c.id = r.check_id
 ORDER BY r.check_id;
RESET ROLE;
-- A row-count change beyond its bound fails against the previous count.
INSERT INTO ingestion.leadconduit_lead (id, email, status, score, created, updated_at, company_id)
SELECT i, 'x' || i || '@example.com', 'new', 1, date '2024-02-01', now(), 1 FROM generate_series(13, 14) i;
SET ROLE dq_operator;
SELECT r.passed, r.failing_rows, r.summary
  FROM crm_api.run_checks('leadconduit', 'lead') r JOIN crm_api.quality_checks c ON c.id = r.check_id
 WHERE c.name = 'steady';
RESET ROLE;
DELETE FROM ingestion.leadconduit_lead WHERE id > 12;
-- Viewers read checks and results; they may not define or run them.
SET ROLE dq_viewer;
SELECT name, last_passed, regexp_replace(last_summary, '\(.*\)', '(...)') AS last_summary, last_phase
  FROM crm_api.quality_checks ORDER BY id;
SELECT count(*) AS results, count(DISTINCT check_id) AS checks FROM crm_api.quality_results;
SELECT crm_api.add_check('leadconduit', 'lead', 'x', 'not_null', 'id');
SELECT * FROM crm_api.run_checks('leadconduit', 'lead');
RESET ROLE;

-- A huge table is checked on a sample, and says so.
SET crm_dashboard.check_sample_rows = 1000;
SELECT crm_api.add_check('leadconduit', 'event', 'kind_present', 'not_null', 'kind', severity => 'warn')->>'name' AS added;
SELECT r.sampled, r.summary ~ '^[0-9]+ failing rows? in a sample$|^no failing rows in a sample$' AS says_sampled,
       r.failing_rows < 200 AS fewer_than_all
  FROM crm_api.run_checks('leadconduit', 'event') r;
RESET crm_dashboard.check_sample_rows;
SELECT r.sampled, r.failing_rows, r.summary FROM crm_api.run_checks('leadconduit', 'event') r;

-- A unique check on a column a unique index covers (the primary key) is
-- guaranteed by the index: no scan.
SELECT crm_api.add_check('leadconduit', 'company', 'id_unique', 'unique', 'id')->>'name' AS added;
SELECT r.passed, r.failing_rows, r.summary FROM crm_api.run_checks('leadconduit', 'company') r;

-- Before a sync: a failing error-severity check refuses it, listing the
-- failing checks; force starts it anyway, and the results belong to its run.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT crm_api.start_sync('leadconduit', 'lead');
BEGIN;
SELECT crm_api.start_sync('leadconduit', 'lead', '{"force": true}') AS run \gset
SELECT c.name, r.phase, r.passed FROM crm_api.quality_results r JOIN crm_api.quality_checks c ON c.id = r.check_id
 WHERE r.run_id = :run ORDER BY r.check_id;
ROLLBACK;
-- start_syncs reports the model as failing_checks and starts the others.
CREATE TABLE ingestion.leadconduit_source (id integer PRIMARY KEY);
BEGIN;
SELECT model, outcome, regexp_replace(message, 'run [0-9]+', 'run N', 'g') AS message
  FROM crm_api.start_syncs('leadconduit', ARRAY['source', 'lead']);
SELECT model, outcome FROM crm_api.start_syncs('leadconduit', ARRAY['lead'], '{"force": true}');
ROLLBACK;
DROP TABLE ingestion.leadconduit_source;

-- After a sync: an error-severity failure makes a successful run partial.
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
VALUES ('leadconduit', 'lead', 'success', now() - interval '1 minute', now(), NULL),
       ('leadconduit', 'company', 'success', now() - interval '1 minute', now(), NULL);
SELECT crm_dashboard.after_sync_checks(id) AS failed_checks, sync_type FROM crm_dashboard.sync_history
 WHERE crm_source = 'leadconduit' ORDER BY id;
SELECT sync_type, status, error_message FROM crm_dashboard.sync_history WHERE crm_source = 'leadconduit' ORDER BY id;
SELECT count(*) FILTER (WHERE phase = 'after') AS after_results,
       count(*) FILTER (WHERE phase = 'after' AND run_id IS NOT NULL) AS with_run
  FROM crm_api.quality_results WHERE model = 'lead';

-- Every mistake in a definition is an error naming it.
SET ROLE dq_operator;
SELECT crm_api.add_check('leadconduit', 'nosuch', 'a', 'not_null', 'id');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'nonsense', 'id');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'not_null', 'nosuch');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'not_null', NULL);
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'not_null', 'id', '{"values": [1]}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'not_null', 'id', '[]');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'accepted_values', 'status');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'accepted_values', 'score', '{"values": [1, "two"]}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'accepted_values', 'score', '{"values": [1, null]}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'regex', 'email', '{"pattern": "(["}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'regex', 'email', '{"pattern": 5}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'range', 'email', '{"min": 1}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'range', 'score', '{}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'range', 'created', '{"max": "someday"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'referential', 'company_id', '{"model": "nosuch", "column": "id"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'referential', 'company_id', '{"model": "company", "column": "nosuch"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'referential', 'company_id', '{"model": "company", "column": "name"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'referential', 'company_id', '{"model": "company"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'freshness', 'score', '{"max_age": "1 day"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'freshness', 'updated_at', '{"max_age": "-1 day"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'freshness', 'updated_at', '{"max_age": "soon"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'row_count_change', 'id', '{"max_change_percent": 5}');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'row_count_change', NULL, '{"max_change_percent": "5"}');
SELECT crm_api.add_check('leadconduit', 'lead', 'Bad Name', 'not_null', 'id');
SELECT crm_api.add_check('leadconduit', 'lead', 'a', 'not_null', 'id', severity => 'fatal');
SELECT crm_api.add_check('leadconduit', 'lead', 'email_present', 'not_null', 'id');
SELECT crm_api.drop_check(-1);
SELECT crm_api.drop_check(NULL);
-- dropping a check drops its results
SELECT crm_api.drop_check(id) FROM crm_api.quality_checks WHERE name = 'email_unique';
RESET ROLE;
SELECT count(*) AS left_over FROM crm_dashboard.quality_result r
 WHERE NOT EXISTS (SELECT 1 FROM crm_dashboard.quality_check c WHERE c.id = r.check_id);

DELETE FROM crm_dashboard.quality_check WHERE crm = 'leadconduit';
DELETE FROM crm_dashboard.sync_history WHERE crm_source = 'leadconduit';
DELETE FROM crm_dashboard.sync_command WHERE crm = 'leadconduit';
DROP TABLE ingestion.leadconduit_company, ingestion.leadconduit_lead, ingestion.leadconduit_event;
DROP ROLE dq_operator, dq_viewer;
