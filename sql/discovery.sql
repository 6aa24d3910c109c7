-- Discovery: which tables are CRM models, their columns, and the bad names
-- users (or attackers) may pass.
CREATE SCHEMA ingestion;
CREATE TABLE ingestion.hubspot_contact (id text PRIMARY KEY, email text, firstname varchar(80),
    lastmodifieddate timestamptz, archived boolean NOT NULL DEFAULT false, properties jsonb);
CREATE TABLE ingestion.hubspot_deal (id text PRIMARY KEY, dealname text, amount numeric(12,2),
    hs_lastmodifieddate timestamptz);
CREATE TABLE ingestion.genius_appointment_type (id integer PRIMARY KEY, name text);
CREATE TABLE ingestion.genius_lead (lead_id integer PRIMARY KEY, note text);
CREATE TABLE ingestion.gsheet_marketing_spend (spend_date date, cost numeric, sheet_row_number integer);
CREATE TABLE ingestion.five9_contact (number1 text, list_name text, first_name text,
    PRIMARY KEY (list_name, number1));
-- partitioned: the parent is a model, its children (same prefix) are not
CREATE TABLE ingestion.callrail_call (id text, start_time timestamptz NOT NULL, answered boolean,
    PRIMARY KEY (id, start_time)) PARTITION BY RANGE (start_time);
CREATE TABLE ingestion.callrail_call_2025_01 PARTITION OF ingestion.callrail_call
    FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
CREATE TABLE ingestion.callrail_call_2025_02 PARTITION OF ingestion.callrail_call
    FOR VALUES FROM ('2025-02-01') TO ('2025-03-01');
-- not models: other apps' tables, a view with a CRM prefix, a bare prefix,
-- a CRM-named table outside the discovery schemas
CREATE TABLE ingestion.django_migrations (id serial PRIMARY KEY, app text, name text);
CREATE TABLE ingestion.auth_user (id serial PRIMARY KEY, username text);
CREATE VIEW ingestion.hubspot_contact_emails AS SELECT id, email FROM ingestion.hubspot_contact;
CREATE TABLE ingestion.hubspot_ (id integer);
CREATE TABLE public.hubspot_secret (id integer PRIMARY KEY, token text);
CREATE TEMP TABLE hubspot_temp (id integer);

INSERT INTO ingestion.hubspot_contact (id, email, firstname)
    SELECT 'c' || g, 'user' || g || '@example.com', 'Name ' || g FROM generate_series(1, 120) g;
INSERT INTO ingestion.genius_appointment_type VALUES (1, 'Estimate'), (2, 'Follow-up');
ANALYZE ingestion.hubspot_contact, ingestion.genius_appointment_type;

-- every model, and nothing else
SELECT crm, model, table_name, estimated_rows FROM crm_api.crm_models ORDER BY crm, model;
SELECT crm, model_count, estimated_records FROM crm_api.crm_sources;

-- columns, keys and searchability
SELECT "position", name, data_type, is_nullable, is_primary_key, is_searchable
  FROM crm_api.model_columns WHERE crm = 'hubspot' AND model = 'contact' ORDER BY "position";
SELECT name, is_primary_key FROM crm_dashboard.model_columns('five9', 'contact') ORDER BY "position";
SELECT count(*) AS models_with_columns FROM (SELECT DISTINCT crm, model FROM crm_api.model_columns) s;

-- a new table shows up at once, a dropped one disappears
CREATE TABLE ingestion.arrivy_task (id bigint PRIMARY KEY, title text);
SELECT model FROM crm_api.crm_models WHERE crm = 'arrivy';
DROP TABLE ingestion.arrivy_task;
SELECT count(*) FROM crm_api.crm_models WHERE crm = 'arrivy';

-- hidden CRMs and the schema setting
UPDATE crm_dashboard.crm_source SET hidden = true WHERE name = 'five9';
SELECT count(*) FROM crm_api.crm_sources WHERE crm = 'five9';
SELECT count(*) FROM crm_api.crm_models WHERE crm = 'five9';
UPDATE crm_dashboard.crm_source SET hidden = false WHERE name = 'five9';
SET crm_dashboard.schemas = 'public';
SELECT crm, model FROM crm_api.crm_models;
RESET crm_dashboard.schemas;
INSERT INTO crm_dashboard.crm_source (name, display_name, table_prefix, schema_name)
    VALUES ('acme', 'Acme CRM', 'acme_', 'public');
CREATE TABLE public.acme_widget (id integer PRIMARY KEY);
SELECT crm, model, table_name FROM crm_api.crm_models WHERE crm = 'acme';
DROP TABLE public.acme_widget;
DELETE FROM crm_dashboard.crm_source WHERE name = 'acme';

-- detail of a model with no runs
SELECT d->>'table_name' AS table_name, d->>'estimated_rows' AS estimated, d->>'exact_rows' AS exact,
       d->>'updated_column' AS updated_column, d->>'health' AS health, d->'latest_run' AS latest_run,
       d->'errors' AS errors
  FROM crm_api.model_detail('hubspot', 'contact', true) d;
SELECT crm_api.model_detail('genius', 'lead')->>'exact_rows' AS exact_not_asked;

-- bad names: unknown, empty, oversized, hostile
SELECT * FROM crm_api.model_detail('salesforce', 'contact');
SELECT * FROM crm_api.model_detail('hubspot', 'contacts');
SELECT * FROM crm_api.model_detail('hubspot', 'contact; drop table x');
SELECT * FROM crm_api.model_detail('hubspot', 'contact" OR "1"="1');
SELECT * FROM crm_api.model_detail('hubspot''; DROP TABLE ingestion.hubspot_contact; --', 'x');
SELECT * FROM crm_api.model_detail('hubspot', '%I');
SELECT * FROM crm_api.model_detail('hubspot', '');
SELECT * FROM crm_api.model_detail('hubspot', repeat('x', 64));
SELECT * FROM crm_api.model_detail('hubspot', NULL);
SELECT * FROM crm_api.model_detail('hubspot', 'secret');
SELECT * FROM crm_api.model_detail('callrail', 'call_2025_01');
SELECT * FROM crm_api.model_detail('hubspot', 'contact_emails');
SELECT * FROM crm_dashboard.crm_models('nope');
SELECT * FROM crm_dashboard.model_columns('hubspot', 'nope');
SELECT count(*) AS contact_table_survived FROM ingestion.hubspot_contact;

-- constraints reject impossible rows
\set VERBOSITY terse
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, end_time) VALUES ('hubspot', 'contact', 'done', now());
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
    VALUES ('hubspot', 'contact', 'success', now(), now() - interval '1 hour');
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, end_time, records_processed)
    VALUES ('hubspot', 'contact', 'success', now(), -1);
INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status) VALUES ('hubspot', 'contact', 'failed');
INSERT INTO crm_dashboard.crm_source (name, display_name, table_prefix) VALUES ('Bad Name', 'x', 'bad_');
INSERT INTO crm_dashboard.crm_source (name, display_name, table_prefix) VALUES ('ok', 'x', 'ok');
\set VERBOSITY default

-- viewers read through crm_api only
CREATE ROLE regress_viewer IN ROLE crm_dashboard_viewer;
SET ROLE regress_viewer;
SELECT count(*) > 0 AS viewer_sees_models FROM crm_api.crm_models;
SELECT crm_api.model_detail('hubspot', 'contact')->>'table_name' AS viewer_detail;
SELECT count(*) FROM ingestion.hubspot_contact;
SELECT count(*) FROM crm_dashboard.sync_history;
INSERT INTO crm_dashboard.crm_source (name, display_name, table_prefix) VALUES ('evil', 'Evil', 'evil_');
RESET ROLE;
CREATE ROLE regress_nobody;
SET ROLE regress_nobody;
SELECT count(*) FROM crm_api.crm_sources;
RESET ROLE;
DROP ROLE regress_viewer, regress_nobody;

-- what this installation offers (no pg_cron, no preloading here)
SELECT c->>'version' IS NOT NULL AS has_version, c->>'pg_cron' AS pg_cron, c->>'launcher' AS launcher
  FROM crm_api.capabilities() c;
