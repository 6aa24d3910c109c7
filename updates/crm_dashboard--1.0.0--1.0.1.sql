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

-- Hardening: the allowed "via" values live in one C function, which the
-- history's CHECK constraint calls.
CREATE FUNCTION crm_dashboard.valid_via(via text) RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_valid_via';
COMMENT ON FUNCTION crm_dashboard.valid_via(text) IS
    'Private: whether a run''s requested_via is sql, ui, api, schedule or external.';
ALTER TABLE crm_dashboard.sync_history
    DROP CONSTRAINT sync_history_requested_via_check,
    ADD CONSTRAINT sync_history_requested_via_check CHECK (crm_dashboard.valid_via(requested_via));

-- Hardening: names unsafe in a command line are shown, and refused by start_sync.
CREATE FUNCTION crm_dashboard.name_problem(name text) RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_name_problem';
COMMENT ON FUNCTION crm_dashboard.name_problem(text) IS
    'Private: why a CRM or model name is not safe in a command line (it starts with "-", or holds characters beyond a-z, 0-9 and _), or NULL.';
REVOKE ALL ON FUNCTION crm_dashboard.name_problem(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.name_problem(text) TO crm_dashboard_viewer;
CREATE OR REPLACE VIEW crm_api.crm_models AS
    SELECT m.*, crm_dashboard.name_problem(m.model) AS name_problem
      FROM crm_dashboard.crm_models(NULL) m;
COMMENT ON VIEW crm_api.crm_models IS
    'One row per model (table <crm>_<model>): estimated rows, latest run and its figures, active run; name_problem says why a model cannot be synced.';

-- Hardening: cron expressions are checked before pg_cron sees them.
CREATE FUNCTION crm_dashboard.check_schedule(cron text) RETURNS void
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_check_schedule';
COMMENT ON FUNCTION crm_dashboard.check_schedule(text) IS
    'Private: raise invalid_parameter_value unless cron is five cron fields or a macro such as @daily, exactly as pg_cron 1.4 reads them.';
REVOKE ALL ON FUNCTION crm_dashboard.check_schedule(text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION crm_api.schedule_sync(crm text, model text, cron text, options jsonb DEFAULT '{}')
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

-- Hardening: tokens are revocable (a generation per user), login checks its
-- arguments, identities come from a setting only the HTTP server can set.
ALTER TABLE crm_dashboard.dashboard_user ADD COLUMN token_generation bigint NOT NULL DEFAULT 1;
COMMENT ON COLUMN crm_dashboard.dashboard_user.token_generation IS
    'Every token carries the generation it was issued in; a logout, a password or role change bumps it, revoking the user''s tokens.';
CREATE FUNCTION crm_dashboard.revoke_tokens_on_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash OR NEW.role IS DISTINCT FROM OLD.role THEN
        NEW.token_generation := OLD.token_generation + 1;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm_dashboard.revoke_tokens_on_change() IS
    'Private: bump a dashboard user''s token generation when the password or role changes.';
CREATE TRIGGER dashboard_user_revoke_tokens
    BEFORE UPDATE ON crm_dashboard.dashboard_user
    FOR EACH ROW EXECUTE FUNCTION crm_dashboard.revoke_tokens_on_change();
CREATE FUNCTION crm_dashboard.token_is_current(username text, role text, generation bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM crm_dashboard.dashboard_user u
                WHERE u.username = token_is_current.username AND u.role = token_is_current.role
                  AND u.token_generation = token_is_current.generation);
COMMENT ON FUNCTION crm_dashboard.token_is_current(text, text, bigint) IS
    'Private: whether a dashboard user''s token is still valid (the user exists, with that role and token generation).';
CREATE OR REPLACE FUNCTION crm_dashboard.login(username text, password text) RETURNS json
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_login';
REVOKE ALL ON FUNCTION crm_dashboard.revoke_tokens_on_change(),
    crm_dashboard.token_is_current(text, text, bigint) FROM PUBLIC;
CREATE OR REPLACE FUNCTION crm_api.whoami() RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'username', coalesce(nullif(current_setting('crm_dashboard.request_user', true), ''),
                             session_user::text),
        'role', current_user::text)
$$;
COMMENT ON FUNCTION crm_api.whoami() IS
    'The signed-in dashboard user and role (over the bundled HTTP server), or the session user and current role (SQL).';
CREATE FUNCTION crm_api.logout() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who text := nullif(current_setting('crm_dashboard.request_user', true), '');
BEGIN
    IF who IS NULL THEN
        RAISE EXCEPTION 'no dashboard user is signed in here'
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'Log out through the HTTP server (POST /api/rpc/logout) with the session''s token.';
    END IF;
    UPDATE crm_dashboard.dashboard_user u SET token_generation = u.token_generation + 1
     WHERE u.username = who;
END
$$;
COMMENT ON FUNCTION crm_api.logout() IS
    'End the signed-in dashboard user''s sessions: every token issued to them stops working at once.';
CREATE FUNCTION crm_api.check_token() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims json := nullif(current_setting('request.jwt.claims', true), '')::json;
BEGIN
    IF claims ->> 'username' IS NOT NULL
       AND NOT crm_dashboard.token_is_current(claims ->> 'username', claims ->> 'role',
                                              (claims ->> 'gen')::bigint) THEN
        RAISE EXCEPTION 'JWT has been revoked'
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'Log in again.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_api.check_token() IS
    'For PostgREST''s db-pre-request: refuse a dashboard user''s token revoked by logout, a password or role change, or deletion.';
COMMENT ON FUNCTION crm_api.set_password(text, text) IS 'Admin: change a dashboard user''s password (their tokens stop working).';
CREATE FUNCTION crm_api.set_user_role(username text, role text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_role text := crm_dashboard.dashboard_role(role);
    old_role text;
    result json;
BEGIN
    -- lock the admins so that the last one cannot be demoted concurrently
    PERFORM 1 FROM crm_dashboard.dashboard_user WHERE dashboard_user.role = 'crm_dashboard_admin' FOR UPDATE;
    SELECT u.role INTO old_role FROM crm_dashboard.dashboard_user u WHERE u.username = set_user_role.username;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dashboard user "%" does not exist', username
            USING ERRCODE = 'PT404', HINT = 'crm_api.users lists the users.';
    END IF;
    IF old_role = 'crm_dashboard_admin' AND new_role <> old_role
       AND (SELECT count(*) FROM crm_dashboard.dashboard_user WHERE dashboard_user.role = 'crm_dashboard_admin') = 1 THEN
        RAISE EXCEPTION 'cannot change the role of "%", the last dashboard admin', username
            USING ERRCODE = 'object_in_use', HINT = 'Make another user an admin first.';
    END IF;
    UPDATE crm_dashboard.dashboard_user u SET role = new_role WHERE u.username = set_user_role.username
    RETURNING json_build_object('username', u.username, 'role', u.role) INTO result;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION crm_api.set_user_role(text, text) IS
    'Admin: give a dashboard user another role (viewer, operator or admin); their tokens stop working.';
REVOKE ALL ON FUNCTION crm_api.logout(), crm_api.check_token(), crm_api.set_user_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.logout() TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.check_token() TO crm_dashboard_anon, crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.set_user_role(text, text) TO crm_dashboard_admin;

-- The house: the sync options are one table in C, which capabilities()
-- describes to clients; the library reports its own version.
CREATE FUNCTION crm_dashboard.sync_options() RETURNS json
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sync_options';
COMMENT ON FUNCTION crm_dashboard.sync_options() IS
    'Private: every sync option (name, type, min, max, flag, label, help), as crm_api.capabilities() shows them.';
REVOKE ALL ON FUNCTION crm_dashboard.sync_options() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.sync_options() TO crm_dashboard_viewer;
CREATE FUNCTION crm_dashboard.library_version() RETURNS text
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_library_version';
COMMENT ON FUNCTION crm_dashboard.library_version() IS 'Private: the version of the loaded crm_dashboard library.';
REVOKE ALL ON FUNCTION crm_dashboard.library_version() FROM PUBLIC;
CREATE OR REPLACE FUNCTION crm_api.capabilities() RETURNS json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'version', (SELECT extversion FROM pg_extension WHERE extname = 'crm_dashboard'),
        'library_version', crm_dashboard.library_version(),
        'pg_cron', to_regprocedure('cron.schedule(text, text, text)') IS NOT NULL,
        'launcher', 'crm_dashboard' = ANY (string_to_array(
                        replace(current_setting('shared_preload_libraries'), ' ', ''), ',')),
        'sync_options', crm_dashboard.sync_options())
$$;
COMMENT ON FUNCTION crm_api.capabilities() IS
    'What this installation offers: extension and library versions, whether pg_cron schedules and the sync launcher are available, and the sync options with their types, ranges, flags and help.';

-- The house: health and duration are each one SQL function.
CREATE FUNCTION crm_dashboard.health_of(status text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN status IS NULL THEN 'never'
            WHEN status = 'failed' THEN 'error'
            WHEN status IN ('partial', 'cancelled') THEN 'warning'
            WHEN status IN ('queued', 'running') THEN 'running'
            ELSE 'success' END;
COMMENT ON FUNCTION crm_dashboard.health_of(text) IS
    'Private: health of a run status: failed -> error; partial, cancelled -> warning; queued, running -> running; success -> success; none -> never.';
CREATE FUNCTION crm_dashboard.worst_health(healths text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((SELECT h FROM unnest(healths) h
                  ORDER BY array_position(ARRAY['error', 'warning', 'running', 'success', 'never'], h)
                  LIMIT 1), 'never');
COMMENT ON FUNCTION crm_dashboard.worst_health(text[]) IS
    'Private: the worst of several healths (error, warning, running, success, never); never for none.';
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
CREATE OR REPLACE VIEW crm_api.sync_runs AS
    SELECT h.id, h.crm_source::text AS crm, h.sync_type::text AS model, h.status::text AS status,
           h.start_time, h.end_time,
           crm_dashboard.run_duration(h.status, h.start_time, h.end_time) AS duration_seconds,
           h.records_processed, h.records_created, h.records_updated, h.records_failed,
           h.records_total, h.error_message, h.requested_by, h.requested_via, h.parent_id,
           h.configuration, h.performance_metrics, h.exit_code, h.exit_signal, h.queued_at
      FROM crm_dashboard.sync_history h
     ORDER BY h.start_time DESC, h.id DESC;
CREATE OR REPLACE FUNCTION crm_dashboard.run_json(run_id bigint) RETURNS json
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

-- Hardening: secrets stay secret.  Operators no longer read the registry's
-- environment values; the values of the variables named in secret_names
-- are masked in everything the launcher keeps of a run.
CREATE FUNCTION crm_dashboard.valid_secret_names(names text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN coalesce(array_ndims(names), 1) = 1
   AND NOT EXISTS (SELECT FROM unnest(names) AS n WHERE n IS NULL OR n !~ '^[A-Za-z_][A-Za-z0-9_]*$');
COMMENT ON FUNCTION crm_dashboard.valid_secret_names(text[]) IS
    'Private: whether every secret name of a sync command is an environment-variable name.';
ALTER TABLE crm_dashboard.sync_command
    ADD COLUMN secret_names text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT sync_command_secret_names_check
        CHECK (crm_dashboard.valid_secret_names(secret_names));
COMMENT ON COLUMN crm_dashboard.sync_command.environment IS
    'Variables of the command (NAME: "value"), besides the launcher''s own; only administrators read them.';
COMMENT ON COLUMN crm_dashboard.sync_command.secret_names IS
    'Environment variables whose values are secret: the launcher replaces each value of 4 bytes or more by *** in everything it keeps of a run (log, error message, metrics).';
REVOKE SELECT ON crm_dashboard.sync_command FROM crm_dashboard_operator;
GRANT SELECT (id, crm, model, argv, working_directory, timeout, secret_names)
    ON crm_dashboard.sync_command TO crm_dashboard_operator;

-- The house: one rule says which registry row applies to a model.
CREATE FUNCTION crm_dashboard.command_for(crm text, model text)
RETURNS SETOF crm_dashboard.sync_command
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.* FROM crm_dashboard.sync_command c
     WHERE c.crm = command_for.crm AND (c.model = command_for.model OR c.model IS NULL)
     ORDER BY c.model IS NULL, c.model
     LIMIT 1
$$;
COMMENT ON FUNCTION crm_dashboard.command_for(text, text) IS
    'Private: the registry row that applies to a model (its own, else the CRM-wide one).';
REVOKE ALL ON FUNCTION crm_dashboard.command_for(text, text) FROM PUBLIC;
