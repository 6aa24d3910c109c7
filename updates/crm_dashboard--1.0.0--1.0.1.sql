-- crm_dashboard 1.0.0 -> 1.0.1: hardening and the house.
\echo Use "ALTER EXTENSION crm_dashboard UPDATE TO '1.0.1'" to load this file. \quit

-- Every SQL-callable C function is now named crm_dashboard_<sqlname>.  The
-- library keeps the 1.0.0 names as aliases (src/compat.c), so a database
-- not yet updated keeps working; these definitions switch to the new names.

CREATE OR REPLACE FUNCTION crm_dashboard.crm_sources(
    OUT crm text, OUT display_name text, OUT icon text, OUT model_count integer,
    OUT estimated_records bigint, OUT last_sync_at timestamptz, OUT last_status text,
    OUT health text, OUT running_count integer)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_crm_sources';

CREATE OR REPLACE FUNCTION crm_dashboard.crm_models(
    crm text,
    OUT crm text, OUT model text, OUT table_name text, OUT estimated_rows bigint,
    OUT last_run_id bigint, OUT last_started_at timestamptz, OUT last_ended_at timestamptz,
    OUT last_duration_seconds float8, OUT last_status text,
    OUT records_processed integer, OUT records_created integer,
    OUT records_updated integer, OUT records_failed integer,
    OUT health text, OUT active_run_id bigint, OUT is_active boolean)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_crm_models';

CREATE OR REPLACE FUNCTION crm_dashboard.model_columns(
    crm text, model text,
    OUT crm text, OUT model text, OUT "position" integer, OUT name text,
    OUT data_type text, OUT is_nullable boolean, OUT is_primary_key boolean,
    OUT is_searchable boolean)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_model_columns';

CREATE OR REPLACE FUNCTION crm_api.model_detail(crm text, model text, exact_count boolean DEFAULT false)
RETURNS json
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_model_detail';

CREATE OR REPLACE FUNCTION crm_dashboard.model_rows(crm text, model text, after text, per_page integer,
    search text, sort text, descending boolean)
RETURNS json
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_model_rows';

CREATE OR REPLACE FUNCTION crm_dashboard.export_rows(crm text, model text, search text, sort text,
    descending boolean)
RETURNS SETOF json
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_export_rows';

CREATE OR REPLACE FUNCTION crm_dashboard.count_rows(crm text, model text)
RETURNS bigint
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_count_rows';

CREATE OR REPLACE FUNCTION crm_dashboard.start_sync(crm text, model text, options jsonb DEFAULT '{}',
                                         via text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_start_sync';

CREATE OR REPLACE FUNCTION crm_dashboard.command_preview(crm text, model text, options jsonb DEFAULT '{}')
RETURNS text[]
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_command_preview';

CREATE OR REPLACE FUNCTION crm_dashboard.wake_launcher() RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_wake_launcher';

CREATE OR REPLACE FUNCTION crm_dashboard.announce_sync_change() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'crm_dashboard_announce_sync_change';

CREATE OR REPLACE FUNCTION crm_dashboard.recent_announcements(after bigint DEFAULT 0)
RETURNS TABLE (seq bigint, payload json)
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_recent_announcements';

-- A typed interface for exports that need the rows' own columns (CSV): a
-- cursor, opened with the definer's rights, that the caller fetches from in
-- the same transaction.

CREATE FUNCTION crm_dashboard.export_cursor(crm text, model text, search text, sort text,
    descending boolean)
RETURNS refcursor
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_export_cursor';
REVOKE ALL ON FUNCTION crm_dashboard.export_cursor(text, text, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION crm_api.export_cursor(crm text, model text, search text DEFAULT NULL,
    sort text DEFAULT NULL, descending boolean DEFAULT false)
RETURNS refcursor
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.export_cursor(crm, model, search, sort, descending) $$;
COMMENT ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean) IS
    'Opens a cursor over every row of a model matching search, its columns only, in the order of model_rows '
    '(sort, NULLs last in either direction, then the primary key), and returns its name: FETCH from it in the '
    'same transaction.  The CSV export (export_rows with Accept: text/csv) reads through it.';
REVOKE ALL ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean) TO crm_dashboard_viewer;
