-- Discovery and sync history: which CRMs and models exist, how their syncs went.
-- The C functions live in crm_dashboard; crm_api wraps them in views for
-- psql, BI tools and PostgREST.  They are SECURITY DEFINER because viewers
-- may not read the history table or the CRM tables themselves.

CREATE FUNCTION crm_dashboard.crm_sources(
    OUT crm text, OUT display_name text, OUT icon text, OUT model_count integer,
    OUT estimated_records bigint, OUT last_sync_at timestamptz, OUT last_status text,
    OUT health text, OUT running_count integer)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_sources';

CREATE FUNCTION crm_dashboard.crm_models(
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
AS 'MODULE_PATHNAME', 'crm_models';

CREATE FUNCTION crm_dashboard.model_columns(
    crm text, model text,
    OUT crm text, OUT model text, OUT "position" integer, OUT name text,
    OUT data_type text, OUT is_nullable boolean, OUT is_primary_key boolean,
    OUT is_searchable boolean)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_model_columns';

REVOKE ALL ON FUNCTION crm_dashboard.crm_sources(), crm_dashboard.crm_models(text),
    crm_dashboard.model_columns(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.crm_sources(), crm_dashboard.crm_models(text),
    crm_dashboard.model_columns(text, text) TO crm_dashboard_viewer;

-- crm_api: the public surface.

CREATE VIEW crm_api.crm_sources AS
    SELECT * FROM crm_dashboard.crm_sources();
COMMENT ON VIEW crm_api.crm_sources IS
    'One row per CRM: model count, estimated records, last sync and health (success, warning, error, running, never).';

CREATE VIEW crm_api.crm_models AS
    SELECT * FROM crm_dashboard.crm_models(NULL);
COMMENT ON VIEW crm_api.crm_models IS
    'One row per model (table <crm>_<model>): estimated rows, latest run and its figures, active run.';

CREATE VIEW crm_api.model_columns AS
    SELECT * FROM crm_dashboard.model_columns(NULL, NULL);
COMMENT ON VIEW crm_api.model_columns IS
    'Columns of every model: type, nullability, primary key membership, whether search looks at it.';

CREATE FUNCTION crm_api.model_detail(crm text, model text, exact_count boolean DEFAULT false)
RETURNS json
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_model_detail';
REVOKE ALL ON FUNCTION crm_api.model_detail(text, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION crm_api.model_detail(text, text, boolean) IS
    'A model''s summary: estimated (and, with exact_count, exact) rows, latest run, last success, last 20 errors.';

CREATE VIEW crm_api.sync_runs AS
    SELECT h.id, h.crm_source::text AS crm, h.sync_type::text AS model, h.status::text AS status,
           h.start_time, h.end_time,
           CASE WHEN h.status = 'queued' THEN NULL
                ELSE extract(epoch FROM coalesce(h.end_time, now()) - h.start_time)::float8
           END AS duration_seconds,
           h.records_processed, h.records_created, h.records_updated, h.records_failed,
           h.records_total, h.error_message, h.requested_by, h.requested_via, h.parent_id,
           h.configuration, h.performance_metrics, h.exit_code, h.exit_signal, h.queued_at
      FROM crm_dashboard.sync_history h
     ORDER BY h.start_time DESC, h.id DESC;
COMMENT ON VIEW crm_api.sync_runs IS
    'Every sync run, newest first; filter by crm, model, status.  The output log is crm_api.sync_log(id).';

CREATE VIEW crm_api.sync_errors AS
    SELECT h.id AS run_id, h.crm_source::text AS crm, h.sync_type::text AS model,
           coalesce(h.end_time, h.start_time) AS "time", h.status::text AS status,
           h.error_message AS message
      FROM crm_dashboard.sync_history h
     WHERE h.error_message IS NOT NULL
     ORDER BY h.start_time DESC, h.id DESC;
COMMENT ON VIEW crm_api.sync_errors IS 'Runs that reported an error, newest first.';

GRANT SELECT ON crm_api.crm_sources, crm_api.crm_models, crm_api.model_columns,
    crm_api.sync_runs, crm_api.sync_errors TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.model_detail(text, text, boolean) TO crm_dashboard_viewer;
