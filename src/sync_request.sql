-- Asking for syncs (src/sync_request.c): the command registry, and the
-- functions that validate a request, build its argv, queue, preview and stop
-- runs.  The launcher (src/launcher*.c) takes the queued rows from there.

-- Private: the registry values must be an object of string values with
-- environment-variable names.
CREATE FUNCTION crm_dashboard.valid_environment(env jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN jsonb_typeof(env) = 'object'
   AND NOT jsonb_path_exists(env, '$.* ? (@.type() != "string")')
   AND coalesce((SELECT bool_and(k ~ '^[A-Za-z_][A-Za-z0-9_]*$')
                 FROM jsonb_object_keys(CASE WHEN jsonb_typeof(env) = 'object' THEN env ELSE '{}' END) AS k),
                true);
COMMENT ON FUNCTION crm_dashboard.valid_environment(jsonb) IS
    'Private: whether a sync command environment is an object of NAME: "string" pairs.';

-- Private: secret_names must be a list of environment-variable names.
CREATE FUNCTION crm_dashboard.valid_secret_names(names text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN coalesce(array_ndims(names), 1) = 1
   AND NOT EXISTS (SELECT FROM unnest(names) AS n WHERE n IS NULL OR n !~ '^[A-Za-z_][A-Za-z0-9_]*$');
COMMENT ON FUNCTION crm_dashboard.valid_secret_names(text[]) IS
    'Private: whether every secret name of a sync command is an environment-variable name.';

-- The command registry.  argv is an argument vector (never a shell string);
-- elements may contain {crm} and {model}, replaced by catalog names.
CREATE TABLE crm_dashboard.sync_command (
    id                integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    crm               text NOT NULL REFERENCES crm_dashboard.crm_source (name) ON UPDATE CASCADE,
    model             text,
    argv              text[] NOT NULL,
    working_directory text,
    environment       jsonb NOT NULL DEFAULT '{}',
    timeout           interval,
    secret_names      text[] NOT NULL DEFAULT '{}',
    UNIQUE NULLS NOT DISTINCT (crm, model),
    CONSTRAINT sync_command_argv_check CHECK (
        cardinality(argv) >= 1
        AND array_ndims(argv) = 1
        AND array_position(argv, NULL) IS NULL
        AND (argv[1] LIKE '/%' OR (argv[1] <> '' AND strpos(argv[1], '/') = 0))),
    CONSTRAINT sync_command_working_directory_check
        CHECK (working_directory IS NULL OR working_directory LIKE '/%'),
    CONSTRAINT sync_command_environment_check
        CHECK (crm_dashboard.valid_environment(environment)),
    CONSTRAINT sync_command_timeout_check
        CHECK (timeout IS NULL OR (timeout > '0'::interval AND timeout <= '1 day'::interval)),
    CONSTRAINT sync_command_secret_names_check
        CHECK (crm_dashboard.valid_secret_names(secret_names))
);
COMMENT ON TABLE crm_dashboard.sync_command IS
    'Sync commands: argv templates ({crm}, {model}) per CRM, optionally per model (a model row wins). Administrators only.';
COMMENT ON COLUMN crm_dashboard.sync_command.model IS 'NULL: every model of the CRM.';
COMMENT ON COLUMN crm_dashboard.sync_command.argv IS
    'Argument vector; the first element is an absolute path or a program found in PATH=/usr/local/bin:/usr/bin:/bin.';
COMMENT ON COLUMN crm_dashboard.sync_command.environment IS
    'Variables of the command (NAME: "value"), besides the launcher''s own; only administrators read them.';
COMMENT ON COLUMN crm_dashboard.sync_command.timeout IS 'Default timeout of a run; the timeout option overrides it.';
COMMENT ON COLUMN crm_dashboard.sync_command.secret_names IS
    'Environment variables whose values are secret: the launcher replaces each value of 4 bytes or more by *** in everything it keeps of a run (log, error message, metrics).';
-- Operators see what runs, but not the environment, whose values may be secret.
REVOKE ALL ON crm_dashboard.sync_command FROM PUBLIC;
GRANT SELECT (id, crm, model, argv, working_directory, timeout, secret_names)
    ON crm_dashboard.sync_command TO crm_dashboard_operator;
GRANT SELECT, INSERT, UPDATE, DELETE ON crm_dashboard.sync_command TO crm_dashboard_admin;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.sync_command', '');

-- Which registry row a model's runs use: the model's own, else the CRM-wide
-- one (model NULL: the CRM-wide one).  The one place of the rule: start_sync
-- builds argv from it, the launcher takes the environment from it.
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

-- One active run per model, whoever inserts it (the launcher's functions
-- also check first, to name the active run in a clear error).
CREATE UNIQUE INDEX sync_history_one_active
    ON crm_dashboard.sync_history (crm_source, sync_type)
    WHERE status IN ('queued', 'running') AND sync_type <> 'all';

-- The C side.
CREATE FUNCTION crm_dashboard.sync_options() RETURNS json
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sync_options';
COMMENT ON FUNCTION crm_dashboard.sync_options() IS
    'Private: every sync option (name, type, min, max, flag, label, help), as crm_api.capabilities() shows them.';

CREATE FUNCTION crm_dashboard.start_sync(crm text, model text, options jsonb DEFAULT '{}',
                                         via text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_start_sync';
COMMENT ON FUNCTION crm_dashboard.start_sync(text, text, jsonb, text) IS
    'Private: validate and queue a sync run (via: sql, ui, api or schedule; NULL decides from request.jwt.claims).';

CREATE FUNCTION crm_dashboard.command_preview(crm text, model text, options jsonb DEFAULT '{}')
RETURNS text[]
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_command_preview';
COMMENT ON FUNCTION crm_dashboard.command_preview(text, text, jsonb) IS
    'Private: the argv start_sync would run.';

CREATE FUNCTION crm_dashboard.wake_launcher() RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_wake_launcher';
COMMENT ON FUNCTION crm_dashboard.wake_launcher() IS
    'Private: set the sync launcher''s latch when the current transaction commits.';

-- Public API.
CREATE FUNCTION crm_api.start_sync(crm text, model text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN crm_dashboard.start_sync(crm, model, options);
COMMENT ON FUNCTION crm_api.start_sync(text, text, jsonb) IS
    'Queue a sync of one model (or model => ''all'') with options force, full, since, dry_run, max_records, batch_size, debug, timeout, ignore_pause; returns the run id at once.';

CREATE FUNCTION crm_api.command_preview(crm text, model text, options jsonb DEFAULT '{}')
RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN crm_dashboard.command_preview(crm, model, options);
COMMENT ON FUNCTION crm_api.command_preview(text, text, jsonb) IS
    'The exact argument vector start_sync would run (for ''all'': the CRM-wide template, {model} unreplaced).';

-- Stopping: a queued run is cancelled at once, a running one is stopped by
-- the launcher (SIGTERM, then SIGKILL after crm_dashboard.stop_grace).  For
-- "all", queued children are cancelled and the running one is stopped.
-- Stopping a finished run changes nothing and returns it as it is.
CREATE FUNCTION crm_api.stop_sync(id bigint) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history h WHERE h.id = stop_sync.id) THEN
        PERFORM crm_dashboard.unknown_run(id);
    END IF;
    -- the launcher locks a model run before its parent: lock in that order too
    PERFORM 1 FROM crm_dashboard.sync_history h
      WHERE (h.id = stop_sync.id OR h.parent_id = stop_sync.id) AND h.status IN ('queued', 'running')
      ORDER BY h.parent_id IS NULL, h.id
        FOR UPDATE;
    UPDATE crm_dashboard.sync_history h
       SET stop_requested = true,
           status = CASE WHEN h.status = 'queued' THEN 'cancelled' ELSE h.status END,
           end_time = CASE WHEN h.status = 'queued' THEN greatest(clock_timestamp(), h.start_time) END,
           error_message = CASE WHEN h.status = 'queued' THEN 'stopped on request' ELSE h.error_message END
     WHERE (h.id = stop_sync.id OR h.parent_id = stop_sync.id)
       AND h.status IN ('queued', 'running');
    PERFORM crm_dashboard.wake_launcher();
    RETURN crm_dashboard.run_json(id);
END
$$;
COMMENT ON FUNCTION crm_api.stop_sync(bigint) IS
    'Stop a run: cancel it if queued, else SIGTERM then SIGKILL after crm_dashboard.stop_grace; a finished run is returned unchanged.';

REVOKE ALL ON FUNCTION crm_dashboard.sync_options() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.sync_options() TO crm_dashboard_viewer;
REVOKE ALL ON FUNCTION crm_dashboard.start_sync(text, text, jsonb, text),
    crm_dashboard.command_preview(text, text, jsonb), crm_dashboard.wake_launcher() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.start_sync(text, text, jsonb), crm_api.stop_sync(bigint),
    crm_api.command_preview(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.start_sync(text, text, jsonb), crm_api.stop_sync(bigint)
    TO crm_dashboard_operator;
GRANT EXECUTE ON FUNCTION crm_api.command_preview(text, text, jsonb) TO crm_dashboard_viewer;

-- Several models at once: one transaction, one parent run that runs them one
-- after another, one set of options, an outcome row per model.  Each model
-- is judged by the rules of a single start (name, command, active run,
-- pause); one that cannot start is reported, never fails the request.
CREATE FUNCTION crm_dashboard.start_syncs(crm text, models text[], options jsonb DEFAULT '{}')
RETURNS TABLE (model text, outcome text, run_id bigint, parent_id bigint, message text)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_start_syncs';
COMMENT ON FUNCTION crm_dashboard.start_syncs(text, text[], jsonb) IS
    'Private: validate and queue several models of a CRM under one parent run, an outcome per model.';
REVOKE ALL ON FUNCTION crm_dashboard.start_syncs(text, text[], jsonb) FROM PUBLIC;

CREATE FUNCTION crm_api.start_syncs(crm text, models text[], options jsonb DEFAULT '{}')
RETURNS TABLE (model text, outcome text, run_id bigint, parent_id bigint, message text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM crm_dashboard.start_syncs(crm, models, options) $$;
COMMENT ON FUNCTION crm_api.start_syncs(text, text[], jsonb) IS
    'Queue several models of a CRM in one transaction under one parent run (they run one after another) with one set of options (those of start_sync).  One row per model: outcome started (run_id is its run, parent_id the parent), already_running or already_queued (run_id is the active run), paused, unsafe_name, unknown_model, no_command, duplicate or invalid, with a message.';
REVOKE ALL ON FUNCTION crm_api.start_syncs(text, text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.start_syncs(text, text[], jsonb) TO crm_dashboard_operator;

-- Stopping several runs: each as crm_api.stop_sync stops one, an outcome
-- row per run.
CREATE FUNCTION crm_api.stop_syncs(ids bigint[])
RETURNS TABLE (run_id bigint, outcome text, status text, message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    before text;
    after text;
BEGIN
    IF ids IS NULL THEN
        RAISE EXCEPTION 'ids must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF cardinality(ids) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'ids must name 1 to 500 runs, not %', cardinality(ids)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- every run concerned, model runs before their parents, as the launcher locks them
    PERFORM 1 FROM crm_dashboard.sync_history h
      WHERE (h.id = ANY (ids) OR h.parent_id = ANY (ids)) AND h.status IN ('queued', 'running')
      ORDER BY h.parent_id IS NULL, h.id
        FOR UPDATE;
    FOR run_id IN SELECT DISTINCT ON (u.id) u.id FROM unnest(ids) WITH ORDINALITY u(id, n)
                   WHERE u.id IS NOT NULL ORDER BY u.id, u.n LOOP
        SELECT h.status INTO before FROM crm_dashboard.sync_history h WHERE h.id = run_id;
        IF NOT FOUND THEN
            outcome := 'unknown';
            status := NULL;
            message := format('There is no run %s.', run_id);
        ELSIF before NOT IN ('queued', 'running') THEN
            outcome := 'already_finished';
            status := before;
            message := format('Run %s has already finished (%s).', run_id, before);
        ELSE
            after := crm_api.stop_sync(run_id)->>'status';
            outcome := CASE WHEN after = 'cancelled' THEN 'cancelled' ELSE 'stopping' END;
            status := after;
            message := CASE WHEN after = 'cancelled' THEN format('Run %s was queued: it is cancelled.', run_id)
                            ELSE format('Run %s is being stopped.', run_id) END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_api.stop_syncs(bigint[]) IS
    'Stop several runs, each as stop_sync stops one.  One row per distinct id: outcome cancelled (it was queued), stopping (it runs: SIGTERM, then SIGKILL after crm_dashboard.stop_grace), already_finished or unknown, with the status and a message.';
REVOKE ALL ON FUNCTION crm_api.stop_syncs(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.stop_syncs(bigint[]) TO crm_dashboard_operator;
