-- What this installation can do, so clients (the web UI, scripts) can adapt
-- before trying: schedules need pg_cron here, syncs need the preloaded
-- launcher; and the sync options with their ranges, so that no client keeps
-- its own copy of them.

-- The version of the installed library (a database may lag behind it until
-- ALTER EXTENSION crm_dashboard UPDATE).
CREATE FUNCTION crm_dashboard.library_version() RETURNS text
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_library_version';
COMMENT ON FUNCTION crm_dashboard.library_version() IS 'Private: the version of the loaded crm_dashboard library.';
REVOKE ALL ON FUNCTION crm_dashboard.library_version() FROM PUBLIC;

CREATE FUNCTION crm_api.capabilities() RETURNS json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'version', (SELECT extversion FROM pg_extension WHERE extname = 'crm_dashboard'),
        'library_version', crm_dashboard.library_version(),
        'pg_cron', to_regprocedure('cron.schedule(text, text, text)') IS NOT NULL,
        'launcher', 'crm_dashboard' = ANY (string_to_array(
                        replace(current_setting('shared_preload_libraries'), ' ', ''), ',')),
        'sync_options', crm_dashboard.sync_options(),
        'filters', crm_dashboard.filter_syntax())
$$;
REVOKE ALL ON FUNCTION crm_api.capabilities() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.capabilities() TO crm_dashboard_viewer;
COMMENT ON FUNCTION crm_api.capabilities() IS
    'What this installation offers: extension and library versions, whether pg_cron schedules and the sync launcher are available, the sync options with their types, ranges, flags and help, and the filter operators and limits of model_rows.';
