-- Sync history: the latest run of every model and CRM aggregated into
-- health (src/history.c), and the views and functions that read runs.  They
-- are SECURITY DEFINER because viewers may not read the history table
-- itself.

-- The two rules of health and duration, each written once: the C queries
-- (src/history.c), the views and run_json all call these.

-- A model's health from its latest run's status (NULL: never synced).
CREATE FUNCTION crm_dashboard.health_of(status text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN status IS NULL THEN 'never'
            WHEN status = 'failed' THEN 'error'
            WHEN status IN ('partial', 'cancelled') THEN 'warning'
            WHEN status IN ('queued', 'running') THEN 'running'
            ELSE 'success' END;
COMMENT ON FUNCTION crm_dashboard.health_of(text) IS
    'Private: health of a run status: failed -> error; partial, cancelled -> warning; queued, running -> running; success -> success; none -> never.';

-- A CRM's health: the worst of its models', in the order error, warning, running, success, never.
CREATE FUNCTION crm_dashboard.worst_health(healths text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((SELECT h FROM unnest(healths) h
                  ORDER BY array_position(ARRAY['error', 'warning', 'running', 'success', 'never'], h)
                  LIMIT 1), 'never');
COMMENT ON FUNCTION crm_dashboard.worst_health(text[]) IS
    'Private: the worst of several healths (error, warning, running, success, never); never for none.';

-- Seconds a run took, or has taken so far; NULL while it is queued.
CREATE FUNCTION crm_dashboard.run_duration(status text, start_time timestamptz, end_time timestamptz)
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN status = 'queued' THEN NULL
            ELSE extract(epoch FROM coalesce(end_time, now()) - start_time)::float8 END;
COMMENT ON FUNCTION crm_dashboard.run_duration(text, timestamptz, timestamptz) IS
    'Private: seconds a run took (finished), or has taken so far (running); NULL while queued.';
REVOKE ALL ON FUNCTION crm_dashboard.health_of(text), crm_dashboard.worst_health(text[]),
    crm_dashboard.run_duration(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.health_of(text), crm_dashboard.worst_health(text[]),
    crm_dashboard.run_duration(text, timestamptz, timestamptz) TO crm_dashboard_viewer;

CREATE FUNCTION crm_dashboard.crm_sources(
    OUT crm text, OUT display_name text, OUT icon text, OUT model_count integer,
    OUT estimated_records bigint, OUT last_sync_at timestamptz, OUT last_status text,
    OUT health text, OUT running_count integer)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_crm_sources';

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
AS 'MODULE_PATHNAME', 'crm_dashboard_crm_models';
REVOKE ALL ON FUNCTION crm_dashboard.crm_sources(), crm_dashboard.crm_models(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.crm_sources(), crm_dashboard.crm_models(text) TO crm_dashboard_viewer;

-- crm_api: the public surface.

CREATE VIEW crm_api.crm_sources AS
    SELECT * FROM crm_dashboard.crm_sources();
COMMENT ON VIEW crm_api.crm_sources IS
    'One row per CRM: model count, estimated records, last sync and health (success, warning, error, running, never).';

CREATE VIEW crm_api.crm_models AS
    SELECT m.*, crm_dashboard.name_problem(m.model) AS name_problem
      FROM crm_dashboard.crm_models(NULL) m;
COMMENT ON VIEW crm_api.crm_models IS
    'One row per model (table <crm>_<model>): estimated rows, latest run and its figures, active run; name_problem says why a model cannot be synced.';

CREATE FUNCTION crm_api.model_detail(crm text, model text, exact_count boolean DEFAULT false)
RETURNS json
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_model_detail';
REVOKE ALL ON FUNCTION crm_api.model_detail(text, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION crm_api.model_detail(text, text, boolean) IS
    'A model''s summary: estimated (and, with exact_count, exact) rows, latest run, last success, last 20 errors.';

CREATE VIEW crm_api.sync_runs AS
    SELECT h.id, h.crm_source::text AS crm, h.sync_type::text AS model, h.status::text AS status,
           h.start_time, h.end_time,
           crm_dashboard.run_duration(h.status, h.start_time, h.end_time) AS duration_seconds,
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

GRANT SELECT ON crm_api.crm_sources, crm_api.crm_models,
    crm_api.sync_runs, crm_api.sync_errors TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.model_detail(text, text, boolean) TO crm_dashboard_viewer;

-- A run as JSON (everything but the log, which sync_log returns).
CREATE FUNCTION crm_dashboard.run_json(run_id bigint) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT json_build_object(
        'id', h.id, 'crm', h.crm_source, 'model', h.sync_type, 'status', h.status,
        'start_time', h.start_time, 'end_time', h.end_time,
        'duration_seconds', round(crm_dashboard.run_duration(h.status, h.start_time, h.end_time)::numeric, 3),
        'records_processed', h.records_processed, 'records_created', h.records_created,
        'records_updated', h.records_updated, 'records_failed', h.records_failed,
        'records_total', h.records_total, 'error_message', h.error_message,
        'configuration', h.configuration, 'performance_metrics', h.performance_metrics,
        'parent_id', h.parent_id, 'requested_by', h.requested_by, 'requested_via', h.requested_via,
        'queued_at', h.queued_at, 'pid', h.pid, 'heartbeat', h.heartbeat,
        'exit_code', h.exit_code, 'exit_signal', h.exit_signal,
        'stop_requested', h.stop_requested,
        'children', (SELECT coalesce(json_agg(c.id ORDER BY c.id), '[]'::json)
                     FROM crm_dashboard.sync_history c WHERE c.parent_id = h.id))
    FROM crm_dashboard.sync_history h WHERE h.id = run_id;
END;
COMMENT ON FUNCTION crm_dashboard.run_json(bigint) IS 'Private: a run as JSON, without its log.';

-- Private: the one error for a run id that does not exist.
CREATE FUNCTION crm_dashboard.unknown_run(id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'sync run % does not exist', id
        USING ERRCODE = 'undefined_object',
              HINT = 'Recent runs are listed in crm_api.sync_runs.';
END
$$;
COMMENT ON FUNCTION crm_dashboard.unknown_run(bigint) IS 'Private: raise the error for an unknown run id.';
REVOKE ALL ON FUNCTION crm_dashboard.unknown_run(bigint) FROM PUBLIC;

CREATE FUNCTION crm_api.sync_status(id bigint) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json := crm_dashboard.run_json(id);
BEGIN
    IF result IS NULL THEN
        PERFORM crm_dashboard.unknown_run(id);
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_api.sync_status(bigint) IS 'The live state of a run as JSON (counters, status, configuration, metrics).';

CREATE FUNCTION crm_api.sync_log(id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    SELECT h.log INTO result FROM crm_dashboard.sync_history h WHERE h.id = sync_log.id;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_run(id);
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_api.sync_log(bigint) IS
    'The kept output of a run (the last crm_dashboard.log_limit bytes; refreshed while running: every 2 s, up to every 10 s when it is large).';

REVOKE ALL ON FUNCTION crm_dashboard.run_json(bigint), crm_api.sync_status(bigint), crm_api.sync_log(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.sync_status(bigint), crm_api.sync_log(bigint) TO crm_dashboard_viewer;
