-- Scheduled syncs, built on pg_cron when it is installed in this database.
-- The extension installs and the schedules view answers (with no rows)
-- without pg_cron; only scheduling itself then reports that pg_cron is
-- missing.  Each schedule is a pg_cron job named crm_dashboard:<crm>:<model>:<suffix>
-- whose command calls crm_dashboard.start_sync(..., via => 'schedule').

-- Which jobs are ours, with what they run (pg_cron keeps only the command text).
-- A row matches its job by id AND name: when pg_cron is dropped and created
-- again its job ids start over, and a left-over row must never claim (show,
-- or unschedule) another job that got the same id.
CREATE TABLE crm_dashboard.sync_schedule (
    jobid      bigint PRIMARY KEY,
    jobname    text NOT NULL,
    crm        text NOT NULL,
    model      text NOT NULL,
    options    jsonb NOT NULL DEFAULT '{}',
    created_by text NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crm_dashboard.sync_schedule IS
    'Private: the pg_cron jobs created by crm_api.schedule_sync.';
REVOKE ALL ON crm_dashboard.sync_schedule FROM PUBLIC;
GRANT SELECT ON crm_dashboard.sync_schedule TO crm_dashboard_viewer;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.sync_schedule', '');

-- Private: refuse a cron expression pg_cron would not run as written (src/schedules_cron.c).
CREATE FUNCTION crm_dashboard.check_schedule(cron text) RETURNS void
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_check_schedule';
COMMENT ON FUNCTION crm_dashboard.check_schedule(text) IS
    'Private: raise invalid_parameter_value unless cron is five cron fields or a macro such as @daily, exactly as pg_cron 1.4 reads them.';

-- Private: fail clearly when pg_cron is not installed here.
CREATE FUNCTION crm_dashboard.require_pg_cron() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regnamespace('cron') IS NULL OR to_regprocedure('cron.schedule(text, text, text)') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, and run CREATE EXTENSION pg_cron.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.require_pg_cron() IS 'Private: raise feature_not_supported unless pg_cron is installed.';

-- Private: forget rows whose job is gone (pg_cron dropped, or the job
-- removed with cron.unschedule); call only when pg_cron is installed.
CREATE FUNCTION crm_dashboard.prune_schedules() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE 'DELETE FROM crm_dashboard.sync_schedule s
             WHERE NOT EXISTS (SELECT 1 FROM cron.job j
                               WHERE j.jobid = s.jobid AND j.jobname = s.jobname)';
END
$$;
COMMENT ON FUNCTION crm_dashboard.prune_schedules() IS 'Private: delete schedules whose pg_cron job no longer exists.';

-- Private: our jobs with their last run; no rows without pg_cron.  Dynamic
-- SQL, because the cron schema may not exist when this is created.
CREATE FUNCTION crm_dashboard.schedule_list()
RETURNS TABLE (id bigint, name text, crm text, model text, cron text, options jsonb,
               active boolean, last_run_at timestamptz, last_run_status text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    IF to_regclass('cron.job_run_details') IS NULL THEN
        RETURN QUERY
            SELECT j.jobid, j.jobname::text, s.crm, s.model, j.schedule::text, s.options, j.active,
                   NULL::timestamptz, NULL::text
            FROM crm_dashboard.sync_schedule s JOIN cron.job j ON j.jobid = s.jobid AND j.jobname = s.jobname
            ORDER BY j.jobid;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT j.jobid, j.jobname::text, s.crm, s.model, j.schedule::text, s.options, j.active,
                d.start_time, d.status::text
         FROM crm_dashboard.sync_schedule s
         JOIN cron.job j ON j.jobid = s.jobid AND j.jobname = s.jobname
         LEFT JOIN LATERAL (SELECT r.start_time, r.status FROM cron.job_run_details r
                            WHERE r.jobid = j.jobid ORDER BY r.runid DESC LIMIT 1) d ON true
         ORDER BY j.jobid';
END
$$;
COMMENT ON FUNCTION crm_dashboard.schedule_list() IS 'Private: rows of crm_api.schedules.';

CREATE VIEW crm_api.schedules AS
    SELECT s.id, s.name, s.crm, s.model, s.cron, s.options, s.active, s.last_run_at, s.last_run_status,
           (SELECT max(k.skipped_at) FROM crm_dashboard.sync_skip k
             WHERE k.crm = s.crm AND k.model = s.model AND k.requested_via = 'schedule') AS last_skipped_at
    FROM crm_dashboard.schedule_list() s;
COMMENT ON VIEW crm_api.schedules IS
    'Scheduled syncs (pg_cron jobs made by schedule_sync) with their last run, and when a pause last skipped one; empty without pg_cron.';

-- When a schedule fires next (src/schedules_cron.c), for freshness.
CREATE FUNCTION crm_dashboard.cron_next(cron text, after timestamptz) RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_cron_next';
COMMENT ON FUNCTION crm_dashboard.cron_next(text, timestamptz) IS
    'Private: the first time after "after" at which a cron schedule fires, in UTC as pg_cron reads it; NULL for @reboot, invalid or never-firing schedules.';

-- The active schedules of our jobs (what freshness expects); no rows without pg_cron.
CREATE FUNCTION crm_dashboard.active_schedules()
RETURNS TABLE (crm text, model text, cron text, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT s.crm, s.model, j.schedule::text, s.created_at
           FROM crm_dashboard.sync_schedule s
           JOIN cron.job j ON j.jobid = s.jobid AND j.jobname = s.jobname
          WHERE j.active';
END
$$;
COMMENT ON FUNCTION crm_dashboard.active_schedules() IS
    'Private: crm, model (or all), cron expression and creation time of every active schedule; empty without pg_cron.';

CREATE FUNCTION crm_api.schedule_sync(crm text, model text, cron text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_name text;
    command text;
    job bigint;
BEGIN
    PERFORM crm_dashboard.require_pg_cron();
    -- the same validation as start_sync: CRM, model, options, a registered command
    PERFORM crm_dashboard.command_preview(crm, model, options);
    -- a pause holds schedules whatever their options: ignore_pause is a person's
    IF options ? 'ignore_pause' THEN
        RAISE EXCEPTION 'sync option "ignore_pause" is for a person''s start, not for a schedule'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'ignore_pause',
                  HINT = 'While a model or CRM is paused its schedules skip it; resume it, or start a run by hand.';
    END IF;
    -- the syntax pg_cron runs as written: it would ignore extra fields
    PERFORM crm_dashboard.check_schedule(cron);
    job_name := format('crm_dashboard:%s:%s:%s', crm, model,
                       substr(md5(clock_timestamp()::text || random()::text), 1, 8));
    command := format('SELECT crm_dashboard.start_sync(%L, %L, %L::jsonb, via => %L)',
                      crm, model, coalesce(options, '{}')::text, 'schedule');
    BEGIN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job USING job_name, cron, command;
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'invalid schedule "%"', cron
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = SQLERRM,
                  HINT = 'Use cron syntax such as ''*/15 * * * *''.';
    END;
    -- a left-over row of an earlier pg_cron installation may hold this id
    PERFORM crm_dashboard.prune_schedules();
    INSERT INTO crm_dashboard.sync_schedule (jobid, jobname, crm, model, options)
    VALUES (job, job_name, crm, model, coalesce(options, '{}'));
    RETURN job;
END
$$;
COMMENT ON FUNCTION crm_api.schedule_sync(text, text, text, jsonb) IS
    'Schedule a sync with pg_cron (validated like start_sync); returns the schedule id (the pg_cron job id).';

CREATE FUNCTION crm_api.unschedule_sync(id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.require_pg_cron();
    PERFORM crm_dashboard.prune_schedules();
    IF NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_schedule s WHERE s.jobid = unschedule_sync.id) THEN
        RETURN false;
    END IF;
    PERFORM cron.unschedule(id);
    DELETE FROM crm_dashboard.sync_schedule s WHERE s.jobid = unschedule_sync.id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_api.unschedule_sync(bigint) IS
    'Remove a schedule made by schedule_sync; false when there is no such schedule.';

REVOKE ALL ON FUNCTION crm_dashboard.check_schedule(text), crm_dashboard.require_pg_cron(), crm_dashboard.schedule_list(),
    crm_dashboard.prune_schedules(), crm_dashboard.cron_next(text, timestamptz),
    crm_dashboard.active_schedules() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.schedule_sync(text, text, text, jsonb), crm_api.unschedule_sync(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.schedule_list(), crm_dashboard.active_schedules() TO crm_dashboard_viewer;
GRANT SELECT ON crm_api.schedules TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.schedule_sync(text, text, text, jsonb), crm_api.unschedule_sync(bigint)
    TO crm_dashboard_operator;
