-- What this installation can do, so clients (the web UI, scripts) can adapt
-- before trying: schedules need pg_cron here, syncs need the preloaded
-- launcher.
CREATE FUNCTION crm_api.capabilities() RETURNS json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'version', (SELECT extversion FROM pg_extension WHERE extname = 'crm_dashboard'),
        'pg_cron', to_regprocedure('cron.schedule(text, text, text)') IS NOT NULL,
        'launcher', 'crm_dashboard' = ANY (string_to_array(
                        replace(current_setting('shared_preload_libraries'), ' ', ''), ',')))
$$;
REVOKE ALL ON FUNCTION crm_api.capabilities() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.capabilities() TO crm_dashboard_viewer;
COMMENT ON FUNCTION crm_api.capabilities() IS
    'What this installation offers: extension version, whether pg_cron schedules and the sync launcher are available.';
