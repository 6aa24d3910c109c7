-- crm_dashboard 1.0.1 -> 1.1.0: wave 2.
\echo Use "ALTER EXTENSION crm_dashboard UPDATE TO '1.1.0'" to load this file. \quit

-- Runs that take care of themselves: retry policies, pauses, skips, the claim step,
-- freshness, live parent sums (src/launcher.sql, src/history.sql, src/schedules.sql).

ALTER TABLE crm_dashboard.sync_history
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN max_attempts integer,
    ADD COLUMN first_attempt_id bigint,
    ADD COLUMN not_before timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    ADD COLUMN error_class text,
    ADD COLUMN rate_limited_until timestamptz,
    ADD COLUMN last_output_at timestamptz,
    ADD CONSTRAINT sync_history_attempt_check
        CHECK (attempt >= 1 AND (max_attempts IS NULL OR max_attempts >= 1)),
    ADD CONSTRAINT sync_history_first_attempt_fkey
        FOREIGN KEY (first_attempt_id) REFERENCES crm_dashboard.sync_history (id) ON DELETE SET NULL,
    ADD CONSTRAINT sync_history_priority_check
        CHECK (priority BETWEEN 0 AND 2),
    ADD CONSTRAINT sync_history_error_class_check
        CHECK (error_class IN ('temporary', 'permanent', 'rate_limited', 'stalled', 'timeout', 'lost'));
-- runs queued before the update wait for nothing
UPDATE crm_dashboard.sync_history SET not_before = queued_at WHERE status = 'queued';

-- src/sync_request.sql: the new option in start_sync's comment
COMMENT ON FUNCTION crm_api.start_sync(text, text, jsonb) IS
    'Queue a sync of one model (or model => ''all'') with options force, full, since, dry_run, max_records, batch_size, debug, timeout, ignore_pause; returns the run id at once.';

-- src/launcher.sql, all new
-- Runs that take care of themselves: retry policies, pauses, recorded skips,
-- the events alerts will watch, retries as queued rows with a not-before
-- time, and the launcher's claim step (src/launcher*.c calls it), which
-- decides what runs next from the queue, per-CRM pools, priorities, pauses
-- and retry times.
--
-- Nothing here keeps time in memory: a retry is a row, a pause is a row, so
-- a launcher that restarts finds them as data.

COMMENT ON COLUMN crm_dashboard.sync_history.attempt IS
    'Which attempt of its request this run is (1 for the first); a retry after a rate limit keeps the number.';
COMMENT ON COLUMN crm_dashboard.sync_history.max_attempts IS
    'Attempts the retry policy allowed when the request was queued (attempt n of m).';
COMMENT ON COLUMN crm_dashboard.sync_history.first_attempt_id IS
    'The first attempt of the request this run retries; NULL for a first attempt.';
COMMENT ON COLUMN crm_dashboard.sync_history.not_before IS
    'A queued run does not start before this time (a retry''s backoff, a rate limit).';
COMMENT ON COLUMN crm_dashboard.sync_history.priority IS
    '0: a person''s start (sql, ui, api); 1: a schedule; 2: a retry.  A waiting run climbs one level per crm_dashboard.priority_aging.';
COMMENT ON COLUMN crm_dashboard.sync_history.error_class IS
    'Why a run failed: temporary, rate_limited, stalled, timeout, lost (retried by policy) or permanent (not retried: action required).';
COMMENT ON COLUMN crm_dashboard.sync_history.rate_limited_until IS
    'The CRM''s rate limit holds the run until then: the command said so (rate_limited event), or a retry waits for it.';
COMMENT ON COLUMN crm_dashboard.sync_history.last_output_at IS
    'When the command last printed anything (the stall detector''s clock).';

-- The claim step's indexes: the queue per CRM and priority in order of
-- eligibility, the running runs per CRM (pools), the next retry due, the
-- attempts of a request, and the active "all" runs (finished when their
-- models are).
CREATE INDEX sync_history_queue
    ON crm_dashboard.sync_history (crm_source, priority, not_before, id)
    WHERE status = 'queued';
CREATE INDEX sync_history_running
    ON crm_dashboard.sync_history (crm_source)
    WHERE status = 'running';
CREATE INDEX sync_history_due
    ON crm_dashboard.sync_history (not_before)
    WHERE status = 'queued';
CREATE INDEX sync_history_attempts
    ON crm_dashboard.sync_history (first_attempt_id)
    WHERE first_attempt_id IS NOT NULL;
CREATE INDEX sync_history_active_all
    ON crm_dashboard.sync_history (id)
    WHERE sync_type = 'all' AND status IN ('queued', 'running');

-- The launcher's settings, for SQL (src/launcher.c).
CREATE FUNCTION crm_dashboard.max_running_syncs() RETURNS integer
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_max_running_syncs';
COMMENT ON FUNCTION crm_dashboard.max_running_syncs() IS 'Private: the value of crm_dashboard.max_running_syncs.';
CREATE FUNCTION crm_dashboard.priority_aging() RETURNS interval
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_priority_aging';
COMMENT ON FUNCTION crm_dashboard.priority_aging() IS 'Private: the value of crm_dashboard.priority_aging.';

-- Who is acting, as start_sync records it (src/sync_request.c), and the
-- check that a CRM (model NULL) or one of its models exists.
CREATE FUNCTION crm_dashboard.requester_name() RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_requester_name';
COMMENT ON FUNCTION crm_dashboard.requester_name() IS
    'Private: the dashboard user of an HTTP request (crm_dashboard.request_user), else the session user.';
CREATE FUNCTION crm_dashboard.check_target(crm text, model text) RETURNS void
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_check_target';
COMMENT ON FUNCTION crm_dashboard.check_target(text, text) IS
    'Private: raise undefined_object unless the CRM (and, when model is not NULL, its model) exists.';

-- ---- Retry policies --------------------------------------------------------

-- One row per CRM (model NULL) and per model that overrides it; a NULL
-- value inherits (the model's row from the CRM's, the CRM's from the
-- defaults of crm_dashboard.policy_defaults()).
CREATE TABLE crm_dashboard.run_policy (
    crm                  text NOT NULL REFERENCES crm_dashboard.crm_source (name)
                         ON UPDATE CASCADE ON DELETE CASCADE,
    model                text,
    max_attempts         integer CHECK (max_attempts BETWEEN 1 AND 100),
    backoff_base         interval CHECK (backoff_base BETWEEN '1 second' AND '1 hour'),
    backoff_cap          interval CHECK (backoff_cap BETWEEN '1 second' AND '1 day'),
    stall_timeout        interval CHECK (stall_timeout = '0' OR stall_timeout BETWEEN '1 second' AND '1 day'),
    pause_after_failures integer CHECK (pause_after_failures BETWEEN 0 AND 1000),
    max_running          integer CHECK (max_running BETWEEN 1 AND 1000),
    updated_by           text NOT NULL DEFAULT session_user,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (crm, model),
    CONSTRAINT run_policy_pool_per_crm CHECK (model IS NULL OR max_running IS NULL)
);
COMMENT ON TABLE crm_dashboard.run_policy IS
    'Private: retry policies per CRM (model NULL) and per model; write them with crm_api.set_run_policy.';
REVOKE ALL ON crm_dashboard.run_policy FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.run_policy', '');

-- The documented defaults, written once.
CREATE FUNCTION crm_dashboard.policy_defaults(
    OUT max_attempts integer, OUT backoff_base interval, OUT backoff_cap interval,
    OUT stall_timeout interval, OUT pause_after_failures integer, OUT max_running integer)
LANGUAGE sql IMMUTABLE
RETURN ROW(3, interval '30 seconds', interval '15 minutes', interval '30 minutes', 5, NULL::integer);
COMMENT ON FUNCTION crm_dashboard.policy_defaults() IS
    'Private: the default retry policy: 3 attempts, exponential backoff with full jitter from 30 s capped at 15 min, stalled after 30 min without output, paused after 5 consecutive failures, no pool limit beyond crm_dashboard.max_running_syncs.';

-- The policy that applies to a model (model NULL: to the CRM as a whole).
-- The cap is never below the base, whichever rows they come from.
CREATE FUNCTION crm_dashboard.policy_for(crm text, model text)
RETURNS TABLE (max_attempts integer, backoff_base interval, backoff_cap interval,
               stall_timeout interval, pause_after_failures integer, max_running integer)
LANGUAGE sql STABLE
ROWS 1
AS $$
    SELECT coalesce(m.max_attempts, c.max_attempts, d.max_attempts),
           coalesce(m.backoff_base, c.backoff_base, d.backoff_base),
           greatest(coalesce(m.backoff_cap, c.backoff_cap, d.backoff_cap),
                    coalesce(m.backoff_base, c.backoff_base, d.backoff_base)),
           coalesce(m.stall_timeout, c.stall_timeout, d.stall_timeout),
           coalesce(m.pause_after_failures, c.pause_after_failures, d.pause_after_failures),
           coalesce(c.max_running, d.max_running)
      FROM crm_dashboard.policy_defaults() d
      LEFT JOIN crm_dashboard.run_policy c ON c.crm = policy_for.crm AND c.model IS NULL
      LEFT JOIN crm_dashboard.run_policy m ON m.crm = policy_for.crm AND m.model = policy_for.model
$$;
COMMENT ON FUNCTION crm_dashboard.policy_for(text, text) IS
    'Private: the effective retry policy of a model (its row, else its CRM''s, else the defaults).';

-- Raise the error for a policy value out of its range.
CREATE FUNCTION crm_dashboard.policy_value_error(field text, value text, expected text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% must be %, not %', field, expected, value
        USING ERRCODE = 'invalid_parameter_value', DETAIL = field, HINT = hint;
END
$$;
COMMENT ON FUNCTION crm_dashboard.policy_value_error(text, text, text, text) IS
    'Private: raise invalid_parameter_value for a retry policy value out of range (the detail names the field).';

-- Check the values set_run_policy was given (NULL: not given), with errors
-- that name the value; the table's CHECKs are the last line of defence.
CREATE FUNCTION crm_dashboard.check_policy(model text, max_attempts integer, backoff_base interval,
                                           backoff_cap interval, stall_timeout interval,
                                           pause_after_failures integer, max_running integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_attempts NOT BETWEEN 1 AND 100 THEN
        PERFORM crm_dashboard.policy_value_error('max_attempts', max_attempts::text, 'between 1 and 100',
            'Use 1 for no retries; the default is 3.');
    END IF;
    IF backoff_base NOT BETWEEN interval '1 second' AND interval '1 hour' THEN
        PERFORM crm_dashboard.policy_value_error('backoff_base', quote_literal(backoff_base), 'between 1 second and 1 hour',
            'The first retry waits a random time up to the base, e.g. ''30 seconds'' (the default).');
    END IF;
    IF backoff_cap NOT BETWEEN interval '1 second' AND interval '1 day' THEN
        PERFORM crm_dashboard.policy_value_error('backoff_cap', quote_literal(backoff_cap), 'between 1 second and 1 day',
            'The cap bounds the exponential backoff, e.g. ''15 minutes'' (the default).');
    END IF;
    IF backoff_cap < backoff_base THEN
        PERFORM crm_dashboard.policy_value_error('backoff_cap', quote_literal(backoff_cap),
            format('at least backoff_base (%s)', quote_literal(backoff_base)),
            'Give a cap no shorter than the base.');
    END IF;
    IF stall_timeout <> interval '0' AND stall_timeout NOT BETWEEN interval '1 second' AND interval '1 day' THEN
        PERFORM crm_dashboard.policy_value_error('stall_timeout', quote_literal(stall_timeout),
            '''0'' (never stalled) or between 1 second and 1 day',
            'A run that prints nothing for this long is stopped; the default is ''30 minutes''.');
    END IF;
    IF pause_after_failures NOT BETWEEN 0 AND 1000 THEN
        PERFORM crm_dashboard.policy_value_error('pause_after_failures', pause_after_failures::text,
            'between 0 (never) and 1000', 'The default is 5 consecutive failures.');
    END IF;
    IF max_running NOT BETWEEN 1 AND 1000 THEN
        PERFORM crm_dashboard.policy_value_error('max_running', max_running::text, 'between 1 and 1000',
            'It is the most runs of this CRM at once, beside crm_dashboard.max_running_syncs.');
    END IF;
    IF max_running IS NOT NULL AND model IS NOT NULL THEN
        RAISE EXCEPTION 'max_running is a limit of a whole CRM, not of model "%"', model
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_running',
                  HINT = 'Set it without a model: a model never runs twice at once anyway.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_policy(text, integer, interval, interval, interval, integer, integer) IS
    'Private: raise invalid_parameter_value, naming the value, for a retry policy value out of range.';

CREATE FUNCTION crm_api.set_run_policy(crm text, model text DEFAULT NULL, max_attempts integer DEFAULT NULL,
                                       backoff_base interval DEFAULT NULL, backoff_cap interval DEFAULT NULL,
                                       stall_timeout interval DEFAULT NULL, pause_after_failures integer DEFAULT NULL,
                                       max_running integer DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
    merged record;
BEGIN
    PERFORM crm_dashboard.check_target(crm, model);
    IF num_nonnulls(max_attempts, backoff_base, backoff_cap, stall_timeout, pause_after_failures, max_running) = 0 THEN
        RAISE EXCEPTION 'set_run_policy needs a value to set'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give max_attempts, backoff_base, backoff_cap, stall_timeout, pause_after_failures or max_running; crm_api.clear_run_policy goes back to the defaults.';
    END IF;
    PERFORM crm_dashboard.check_policy(model, max_attempts, backoff_base, backoff_cap, stall_timeout,
                                       pause_after_failures, max_running);
    INSERT INTO crm_dashboard.run_policy AS p (crm, model, max_attempts, backoff_base, backoff_cap, stall_timeout,
                                               pause_after_failures, max_running, updated_by)
    VALUES (crm, model, max_attempts, backoff_base, backoff_cap, stall_timeout, pause_after_failures, max_running,
            crm_dashboard.requester_name())
    ON CONFLICT ON CONSTRAINT run_policy_crm_model_key DO UPDATE
       SET max_attempts = coalesce(EXCLUDED.max_attempts, p.max_attempts),
           backoff_base = coalesce(EXCLUDED.backoff_base, p.backoff_base),
           backoff_cap = coalesce(EXCLUDED.backoff_cap, p.backoff_cap),
           stall_timeout = coalesce(EXCLUDED.stall_timeout, p.stall_timeout),
           pause_after_failures = coalesce(EXCLUDED.pause_after_failures, p.pause_after_failures),
           max_running = coalesce(EXCLUDED.max_running, p.max_running),
           updated_by = EXCLUDED.updated_by, updated_at = now();
    -- the row as a whole must still make sense (a new base above the cap it had)
    SELECT p.backoff_base, p.backoff_cap INTO merged FROM crm_dashboard.run_policy p
     WHERE p.crm = set_run_policy.crm AND p.model IS NOT DISTINCT FROM set_run_policy.model;
    IF merged.backoff_base > merged.backoff_cap THEN
        IF set_run_policy.backoff_base IS NOT NULL THEN
            PERFORM crm_dashboard.policy_value_error('backoff_base', quote_literal(merged.backoff_base),
                format('at most its backoff_cap (%s)', quote_literal(merged.backoff_cap)),
                'Give a base no longer than the cap, or a new cap with it.');
        END IF;
        PERFORM crm_dashboard.policy_value_error('backoff_cap', quote_literal(merged.backoff_cap),
            format('at least its backoff_base (%s)', quote_literal(merged.backoff_base)),
            'Give a cap no shorter than the base, or a new base with it.');
    END IF;
    SELECT row_to_json(e) INTO result FROM crm_dashboard.policy_for(crm, model) e;
    -- a larger pool may let queued runs start
    PERFORM crm_dashboard.wake_launcher();
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_api.set_run_policy(text, text, integer, interval, interval, interval, integer, integer) IS
    'Set a CRM''s retry policy (model NULL) or a model''s override: max_attempts, backoff_base, backoff_cap, stall_timeout, pause_after_failures, max_running (CRM only); values not given stay as they are.  Returns the effective policy.';

CREATE FUNCTION crm_api.clear_run_policy(crm text, model text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.check_target(crm, model);
    DELETE FROM crm_dashboard.run_policy p
     WHERE p.crm = clear_run_policy.crm AND p.model IS NOT DISTINCT FROM clear_run_policy.model;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION crm_api.clear_run_policy(text, text) IS
    'Remove a CRM''s policy (model NULL) or a model''s override, so that it inherits again; false when there was none.';

-- The effective policy of every CRM, and of every model with an override.
CREATE FUNCTION crm_dashboard.run_policies()
RETURNS TABLE (crm text, model text, max_attempts integer, backoff_base interval, backoff_cap interval,
               stall_timeout interval, pause_after_failures integer, max_running integer,
               overrides text[], updated_by text, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 20
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.crm, t.model, e.*,
           ARRAY(SELECT f FROM unnest(ARRAY['max_attempts', 'backoff_base', 'backoff_cap', 'stall_timeout',
                                           'pause_after_failures', 'max_running'],
                                     ARRAY[p.max_attempts IS NOT NULL, p.backoff_base IS NOT NULL,
                                           p.backoff_cap IS NOT NULL, p.stall_timeout IS NOT NULL,
                                           p.pause_after_failures IS NOT NULL, p.max_running IS NOT NULL]) AS o(f, given)
                  WHERE o.given),
           p.updated_by, p.updated_at
      FROM (SELECT c.name AS crm, NULL::text AS model, c.sort_order FROM crm_dashboard.crm_source c WHERE NOT c.hidden
            UNION ALL
            SELECT r.crm, r.model, c.sort_order FROM crm_dashboard.run_policy r
              JOIN crm_dashboard.crm_source c ON c.name = r.crm WHERE r.model IS NOT NULL) t
      LEFT JOIN crm_dashboard.run_policy p ON p.crm = t.crm AND p.model IS NOT DISTINCT FROM t.model
      CROSS JOIN LATERAL crm_dashboard.policy_for(t.crm, t.model) e
     ORDER BY t.sort_order, t.crm, t.model NULLS FIRST
$$;
COMMENT ON FUNCTION crm_dashboard.run_policies() IS 'Private: rows of crm_api.run_policies.';

CREATE VIEW crm_api.run_policies AS SELECT * FROM crm_dashboard.run_policies();
COMMENT ON VIEW crm_api.run_policies IS
    'The retry policy of every CRM (model NULL) and of each model with an override: effective values, which of them the row sets, who set them.';

-- ---- Pauses ----------------------------------------------------------------
-- A request the state of a pause is in the way of ("is paused", "is already
-- paused", "is not paused") fails with SQLSTATE PT409: HTTP 409 Conflict
-- through the bundled server and PostgREST.

-- Pauses of a model or a whole CRM (model NULL), kept after they end.
CREATE TABLE crm_dashboard.run_pause (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    crm        text NOT NULL REFERENCES crm_dashboard.crm_source (name) ON UPDATE CASCADE ON DELETE CASCADE,
    model      text,
    reason     text NOT NULL CHECK (reason <> '' AND length(reason) <= 500),
    paused_by  text NOT NULL,
    paused_at  timestamptz NOT NULL DEFAULT now(),
    automatic  boolean NOT NULL DEFAULT false,
    resumed_by text,
    resumed_at timestamptz,
    CONSTRAINT run_pause_resumed_check CHECK ((resumed_by IS NULL) = (resumed_at IS NULL))
);
COMMENT ON TABLE crm_dashboard.run_pause IS
    'Private: pauses of models and CRMs (model NULL), with who paused and resumed them; crm_api.pause_sync writes them.';
CREATE UNIQUE INDEX run_pause_active ON crm_dashboard.run_pause (crm, model) NULLS NOT DISTINCT
    WHERE resumed_at IS NULL;
REVOKE ALL ON crm_dashboard.run_pause FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.run_pause', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.run_pause_id_seq', '');

-- The pause holding a model: its CRM's, else its own; none for model NULL
-- but the CRM's.
CREATE FUNCTION crm_dashboard.pause_of(crm text, model text)
RETURNS SETOF crm_dashboard.run_pause
LANGUAGE sql STABLE
ROWS 1
AS $$
    SELECT p.* FROM crm_dashboard.run_pause p
     WHERE p.crm = pause_of.crm AND p.resumed_at IS NULL
       AND (p.model IS NULL OR p.model = pause_of.model)
     ORDER BY p.model NULLS FIRST
     LIMIT 1
$$;
COMMENT ON FUNCTION crm_dashboard.pause_of(text, text) IS
    'Private: the active pause holding a model (its CRM''s first), or none.';

-- How a pause reads in messages: "model paused by alice: API migration".
CREATE FUNCTION crm_dashboard.pause_text(p crm_dashboard.run_pause) RETURNS text
LANGUAGE sql STABLE
RETURN format('%s paused by %s: %s', CASE WHEN p.model IS NULL THEN 'CRM' ELSE 'model' END,
              p.paused_by, p.reason);
COMMENT ON FUNCTION crm_dashboard.pause_text(crm_dashboard.run_pause) IS
    'Private: a pause in words, e.g. "model paused by alice: API migration".';

-- Events that alerts will watch, sent with NOTIFY crm_dashboard_event in the
-- transaction of the change they describe (kind: run_failed, stalled,
-- action_required, retry_scheduled, auto_paused, paused, resumed,
-- freshness).  The one place they are sent from.
CREATE FUNCTION crm_dashboard.emit_event(kind text, crm text, model text, run_id bigint,
                                         detail jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT pg_notify('crm_dashboard_event',
                     json_build_object('event', kind, 'crm', crm, 'model', model, 'run_id', run_id,
                                       'at', now(), 'detail', coalesce(detail, '{}'))::text);
END;
COMMENT ON FUNCTION crm_dashboard.emit_event(text, text, text, bigint, jsonb) IS
    'Private: NOTIFY crm_dashboard_event with {event, crm, model, run_id, at, detail}, at commit of the change it describes.';

-- A pause as the API shows it.
CREATE FUNCTION crm_dashboard.pause_json(pause_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object('id', p.id, 'crm', p.crm, 'model', p.model, 'reason', p.reason,
                             'paused_by', p.paused_by, 'paused_at', p.paused_at, 'automatic', p.automatic,
                             'resumed_by', p.resumed_by, 'resumed_at', p.resumed_at,
                             'text', crm_dashboard.pause_text(p))
      FROM crm_dashboard.run_pause p WHERE p.id = pause_id
$$;
COMMENT ON FUNCTION crm_dashboard.pause_json(bigint) IS 'Private: a pause as JSON.';

-- The state change "paused": one row, one event.
CREATE FUNCTION crm_dashboard.pause(crm text, model text, reason text, paused_by text, automatic boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pause_id bigint;
BEGIN
    INSERT INTO crm_dashboard.run_pause (crm, model, reason, paused_by, automatic)
    VALUES (crm, model, reason, paused_by, automatic)
    RETURNING id INTO pause_id;
    PERFORM crm_dashboard.emit_event(CASE WHEN automatic THEN 'auto_paused' ELSE 'paused' END, crm, model, NULL,
                                     jsonb_build_object('pause_id', pause_id, 'reason', reason, 'by', paused_by));
    RETURN pause_id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.pause(text, text, text, text, boolean) IS
    'Private: pause a model or CRM (model NULL) and announce it (event paused or auto_paused).';

CREATE FUNCTION crm_api.pause_sync(crm text, model text DEFAULT NULL, reason text DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    held crm_dashboard.run_pause;
    pause_id bigint;
BEGIN
    IF model = 'all' THEN
        RAISE EXCEPTION 'pause a whole CRM without a model, not with model "all"'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'model',
                  HINT = format('Call crm_api.pause_sync(%L, reason => ''…'').', crm);
    END IF;
    PERFORM crm_dashboard.check_target(crm, model);
    IF coalesce(btrim(reason), '') = '' THEN
        RAISE EXCEPTION 'a pause needs a reason'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'reason',
                  HINT = 'Say why, e.g. reason => ''API migration''; it is shown wherever the pause holds runs.';
    END IF;
    IF length(reason) > 500 THEN
        RAISE EXCEPTION 'the reason of a pause is too long (% characters)', length(reason)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'reason', HINT = 'Keep it under 500 characters.';
    END IF;
    SELECT p.* INTO held FROM crm_dashboard.run_pause p
     WHERE p.crm = pause_sync.crm AND p.model IS NOT DISTINCT FROM pause_sync.model AND p.resumed_at IS NULL;
    IF FOUND THEN
        RAISE EXCEPTION '% is already paused', coalesce(crm || ' ' || model, 'CRM ' || crm)
            USING ERRCODE = 'PT409',
                  DETAIL = format('Paused by %s: %s.', held.paused_by, held.reason),
                  HINT = 'Resume it first to pause it with another reason.';
    END IF;
    pause_id := crm_dashboard.pause(crm, model, btrim(reason), crm_dashboard.requester_name(), false);
    -- a statement of its own, so that it sees the new row
    RETURN crm_dashboard.pause_json(pause_id);
END
$$;
COMMENT ON FUNCTION crm_api.pause_sync(text, text, text) IS
    'Pause a model, or a whole CRM (model NULL), with a reason: its queued runs wait, schedules skip it (recorded in crm_api.sync_skips), start_sync refuses unless given {"ignore_pause": true}.';

CREATE FUNCTION crm_api.resume_sync(crm text, model text DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pause_id bigint;
    who text := crm_dashboard.requester_name();
BEGIN
    PERFORM crm_dashboard.check_target(crm, model);
    UPDATE crm_dashboard.run_pause p SET resumed_by = who, resumed_at = now()
     WHERE p.crm = resume_sync.crm AND p.model IS NOT DISTINCT FROM resume_sync.model AND p.resumed_at IS NULL
    RETURNING p.id INTO pause_id;
    IF pause_id IS NULL THEN
        RAISE EXCEPTION '% is not paused', coalesce(crm || ' ' || model, 'CRM ' || crm)
            USING ERRCODE = 'PT409',
                  HINT = CASE WHEN model IS NOT NULL AND EXISTS (SELECT 1 FROM crm_dashboard.pause_of(crm, model))
                              THEN format('Its CRM is paused: crm_api.resume_sync(%L) resumes it.', crm)
                              ELSE 'Paused models and CRMs are listed in crm_api.pauses.' END;
    END IF;
    PERFORM crm_dashboard.emit_event('resumed', crm, model, NULL, jsonb_build_object('pause_id', pause_id, 'by', who));
    PERFORM crm_dashboard.wake_launcher();
    RETURN crm_dashboard.pause_json(pause_id);
END
$$;
COMMENT ON FUNCTION crm_api.resume_sync(text, text) IS
    'End the pause of a model or CRM (model NULL): its queued runs may start, schedules run it again.';

CREATE VIEW crm_api.pauses AS
    SELECT p.id, p.crm, p.model, p.reason, p.paused_by, p.paused_at, p.automatic, p.resumed_by, p.resumed_at,
           p.resumed_at IS NULL AS active
      FROM crm_dashboard.run_pause p
     ORDER BY p.paused_at DESC, p.id DESC;
COMMENT ON VIEW crm_api.pauses IS 'Pauses of models and CRMs (model NULL), newest first; active ones hold runs.';

-- ---- Skips -----------------------------------------------------------------

-- Requests not run because of a pause.  A skip is not a run: it is kept
-- here rather than as a sync_history status, so that the ingestion app's
-- history, every "latest run", health and freshness stay as they were.
CREATE TABLE crm_dashboard.sync_skip (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    skipped_at    timestamptz NOT NULL DEFAULT now(),
    crm           text NOT NULL,
    model         text NOT NULL,
    requested_by  text NOT NULL,
    requested_via text NOT NULL CHECK (crm_dashboard.valid_via(requested_via)),
    reason        text NOT NULL,
    pause_id      bigint REFERENCES crm_dashboard.run_pause (id) ON DELETE SET NULL,
    options       jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE crm_dashboard.sync_skip IS
    'Private: syncs a schedule (or an "all" request) asked for but a pause skipped.';
CREATE INDEX sync_skip_model ON crm_dashboard.sync_skip (crm, model, skipped_at DESC);
REVOKE ALL ON crm_dashboard.sync_skip FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.sync_skip', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.sync_skip_id_seq', '');

CREATE VIEW crm_api.sync_skips AS
    SELECT s.id, s.skipped_at, s.crm, s.model, s.requested_by, s.requested_via, s.reason, s.pause_id, s.options
      FROM crm_dashboard.sync_skip s
     ORDER BY s.skipped_at DESC, s.id DESC;
COMMENT ON VIEW crm_api.sync_skips IS 'Syncs skipped because their model or CRM was paused, newest first.';

-- ---- Retries ---------------------------------------------------------------

-- Exponential backoff with full jitter: a random time up to
-- min(cap, base * 2^(attempt - 1)) after the attempt-th failure.
CREATE FUNCTION crm_dashboard.retry_delay(base interval, cap interval, attempt integer)
RETURNS interval
LANGUAGE sql VOLATILE
RETURN random() * least(cap, base * power(2, least(greatest(attempt, 1) - 1, 30)));
COMMENT ON FUNCTION crm_dashboard.retry_delay(interval, interval, integer) IS
    'Private: the wait before retrying after the attempt-th failure: full jitter over min(cap, base * 2^(attempt-1)).';

-- The priority of a run: a person's start, a schedule, a retry.
CREATE FUNCTION crm_dashboard.priority_of(via text, retry boolean) RETURNS smallint
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN retry THEN 2 WHEN via = 'schedule' THEN 1 ELSE 0 END::smallint;
COMMENT ON FUNCTION crm_dashboard.priority_of(text, boolean) IS
    'Private: 0 for a person''s start (sql, ui, api), 1 for a schedule, 2 for a retry.';

-- Rate-limit waits a request may take without using up an attempt.
CREATE FUNCTION crm_dashboard.max_rate_limit_waits() RETURNS integer
LANGUAGE sql IMMUTABLE
RETURN 20;
COMMENT ON FUNCTION crm_dashboard.max_rate_limit_waits() IS
    'Private: how many times one request is retried after a rate limit without using an attempt (20).';

-- The state change "retry scheduled": queue the next attempt of a failed
-- run as a new row with a not-before time, or nothing when the policy says
-- no (attempts used up, stopped, its "all" run stopping).  Returns its id.
CREATE FUNCTION crm_dashboard.schedule_retry(run_id bigint) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.sync_history;
    pol record;
    first_id bigint;
    rate_limited boolean;
    due timestamptz;
    retry_id bigint;
BEGIN
    SELECT * INTO r FROM crm_dashboard.sync_history h WHERE h.id = run_id;
    IF NOT FOUND OR r.status <> 'failed' OR r.error_class = 'permanent' OR r.stop_requested
       OR NOT coalesce(r.configuration ? 'argv', false)
       OR EXISTS (SELECT 1 FROM crm_dashboard.sync_history p WHERE p.id = r.parent_id AND p.stop_requested) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO pol FROM crm_dashboard.policy_for(r.crm_source, r.sync_type);
    first_id := coalesce(r.first_attempt_id, r.id);
    rate_limited := r.error_class = 'rate_limited' AND r.rate_limited_until IS NOT NULL
        AND (SELECT count(*) FROM crm_dashboard.sync_history a
              WHERE (a.id = first_id OR a.first_attempt_id = first_id) AND a.error_class = 'rate_limited')
            <= crm_dashboard.max_rate_limit_waits();
    IF rate_limited THEN
        due := greatest(r.rate_limited_until, now());
    ELSIF r.attempt >= coalesce(r.max_attempts, pol.max_attempts) THEN
        RETURN NULL;
    ELSE
        due := now() + crm_dashboard.retry_delay(pol.backoff_base, pol.backoff_cap, r.attempt);
    END IF;
    INSERT INTO crm_dashboard.sync_history AS h
        (crm_source, sync_type, status, parent_id, requested_by, requested_via, configuration, queued_at,
         attempt, max_attempts, first_attempt_id, not_before, priority, rate_limited_until)
    VALUES (r.crm_source, r.sync_type, 'queued', r.parent_id, r.requested_by, r.requested_via, r.configuration, now(),
            r.attempt + CASE WHEN rate_limited THEN 0 ELSE 1 END, coalesce(r.max_attempts, pol.max_attempts),
            first_id, due, crm_dashboard.priority_of(r.requested_via, true),
            CASE WHEN rate_limited THEN due END)
    ON CONFLICT (crm_source, sync_type) WHERE status IN ('queued', 'running') AND sync_type <> 'all' DO NOTHING
    RETURNING h.id INTO retry_id;
    IF retry_id IS NOT NULL THEN
        PERFORM crm_dashboard.emit_event('retry_scheduled', r.crm_source, r.sync_type, retry_id,
            jsonb_build_object('retry_of', r.id, 'first_attempt_id', first_id, 'not_before', due,
                               'attempt', r.attempt + CASE WHEN rate_limited THEN 0 ELSE 1 END,
                               'max_attempts', coalesce(r.max_attempts, pol.max_attempts),
                               'rate_limited', rate_limited));
        PERFORM crm_dashboard.wake_launcher();
    END IF;
    RETURN retry_id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.schedule_retry(bigint) IS
    'Private: queue the next attempt of a failed run per its policy (full-jitter backoff; at the rate limit''s end, without using an attempt, after a rate limit); NULL when it is not retried.';

-- The state change "auto-paused": when the model's last N finished runs
-- since it was last resumed all failed (N: the policy's
-- pause_after_failures; rate-limit waits do not count), pause it.
-- Returns whether it paused the model.
CREATE FUNCTION crm_dashboard.pause_if_failing(crm text, model text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := (SELECT p.pause_after_failures FROM crm_dashboard.policy_for(crm, model) p);
    since timestamptz := (SELECT max(p.resumed_at) FROM crm_dashboard.run_pause p
                           WHERE p.crm = pause_if_failing.crm AND (p.model IS NULL OR p.model = pause_if_failing.model));
    failing boolean;
BEGIN
    IF n = 0 OR EXISTS (SELECT 1 FROM crm_dashboard.pause_of(crm, model)) THEN
        RETURN false;
    END IF;
    SELECT count(*) = n AND bool_and(s.status = 'failed') INTO failing
      FROM (SELECT h.status FROM crm_dashboard.sync_history h
             WHERE h.crm_source = pause_if_failing.crm AND h.sync_type = pause_if_failing.model
               AND h.status IN ('success', 'partial', 'failed')
               AND h.error_class IS DISTINCT FROM 'rate_limited'
               AND h.start_time > coalesce(since, '-infinity')
             ORDER BY h.start_time DESC, h.id DESC
             LIMIT n) s;
    IF NOT failing THEN
        RETURN false;
    END IF;
    PERFORM crm_dashboard.pause(crm, model, format('paused after %s consecutive failures', n),
                                'crm_dashboard', true);
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_dashboard.pause_if_failing(text, text) IS
    'Private: pause a model after the policy''s number of consecutive failures ("paused after N consecutive failures", event auto_paused); true when it did.';

-- What follows a failed run, in the transaction that marked it failed: the
-- run_failed (or stalled) event, then action required (permanent errors),
-- automatic pause, or a retry.  Returns the retry's id, if any.
CREATE FUNCTION crm_dashboard.after_failure(run_id bigint) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.sync_history;
    retry_id bigint;
    paused boolean := false;
BEGIN
    SELECT * INTO r FROM crm_dashboard.sync_history h WHERE h.id = run_id;
    IF NOT FOUND OR r.status <> 'failed' OR r.sync_type = 'all' THEN
        RETURN NULL;
    END IF;
    PERFORM crm_dashboard.emit_event(CASE WHEN r.error_class = 'stalled' THEN 'stalled' ELSE 'run_failed' END,
        r.crm_source, r.sync_type, r.id,
        jsonb_build_object('error_class', r.error_class, 'message', left(r.error_message, 500),
                           'attempt', r.attempt, 'max_attempts', r.max_attempts));
    IF r.error_class = 'permanent' THEN
        -- "action required": the model shows it until a run succeeds
        PERFORM crm_dashboard.emit_event('action_required', r.crm_source, r.sync_type, r.id,
            jsonb_build_object('message', left(r.error_message, 500)));
    END IF;
    IF r.error_class IS DISTINCT FROM 'rate_limited' THEN
        paused := crm_dashboard.pause_if_failing(r.crm_source, r.sync_type);
    END IF;
    IF NOT paused THEN
        retry_id := crm_dashboard.schedule_retry(r.id);
    END IF;
    RETURN retry_id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.after_failure(bigint) IS
    'Private: after a run failed: announce it (run_failed or stalled, and action_required for permanent errors), pause the model after too many consecutive failures, else schedule a retry by policy.';

-- ---- Deciding what runs next -------------------------------------------------

-- Why a queued run may not start whatever the capacity, or NULL: not ours
-- to start, a retry or rate limit not due, a pause (unless the run was
-- started with ignore_pause), a sibling of its "all" run running.
CREATE FUNCTION crm_dashboard.run_hold(h crm_dashboard.sync_history) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN h.status <> 'queued' THEN NULL
        WHEN h.stop_requested THEN 'being cancelled'
        WHEN NOT coalesce(h.configuration ? 'argv', false)
            THEN 'written by another application: the launcher does not start it'
        WHEN h.sync_type = 'all' THEN 'runs its models one after another'
        WHEN h.not_before > now() AND h.rate_limited_until IS NOT NULL
            THEN format('rate limit until %s', to_char(h.not_before, 'HH24:MI:SS'))
        WHEN h.not_before > now()
            THEN format('retry at %s (attempt %s of %s)', to_char(h.not_before, 'HH24:MI:SS'),
                        h.attempt, coalesce(h.max_attempts, h.attempt))
        ELSE coalesce(
            (SELECT crm_dashboard.pause_text(p) FROM crm_dashboard.pause_of(h.crm_source, h.sync_type) p
              WHERE NOT coalesce(jsonb_typeof(h.configuration #> '{options,ignore_pause}') = 'boolean'
                                 AND (h.configuration #>> '{options,ignore_pause}')::boolean, false)),
            (SELECT format('after %s (run %s) of the same sync of all models', s.sync_type, s.id)
               FROM crm_dashboard.sync_history s
              WHERE h.parent_id IS NOT NULL AND s.parent_id = h.parent_id AND s.status = 'running'
              ORDER BY s.id LIMIT 1))
    END
$$;
COMMENT ON FUNCTION crm_dashboard.run_hold(crm_dashboard.sync_history) IS
    'Private: why a queued run may not start whatever the free capacity (retry or rate limit not due, paused, a sibling running), or NULL.';

-- Whether a queued run may start as far as it alone goes (run_hold says
-- nothing).  Its support function tells the planner that most rows pass,
-- so that the claim step walks the queue's index in order.  PL/pgSQL keeps
-- run_hold's plan for the session: an SQL function calling another would
-- plan the inner one on every call.
CREATE FUNCTION crm_dashboard.mostly_true_support(internal) RETURNS internal
LANGUAGE C IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_mostly_true_support';
COMMENT ON FUNCTION crm_dashboard.mostly_true_support(internal) IS
    'Private: planner support of run_may_start: it is true for most rows.';
CREATE FUNCTION crm_dashboard.run_may_start(h crm_dashboard.sync_history) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT SUPPORT crm_dashboard.mostly_true_support
AS $$
BEGIN
    RETURN crm_dashboard.run_hold(h) IS NULL;
END
$$;
COMMENT ON FUNCTION crm_dashboard.run_may_start(crm_dashboard.sync_history) IS
    'Private: whether nothing but capacity keeps a queued run from starting.';

-- The runs the launcher supervises now, per CRM (the pools).
CREATE FUNCTION crm_dashboard.running_runs()
RETURNS TABLE (crm text, ids bigint[])
LANGUAGE sql STABLE
ROWS 10
AS $$
    SELECT h.crm_source::text, array_agg(h.id ORDER BY h.id)
      FROM crm_dashboard.sync_history h
     WHERE h.status = 'running' AND h.sync_type <> 'all' AND h.configuration ? 'argv'
     GROUP BY h.crm_source
$$;
COMMENT ON FUNCTION crm_dashboard.running_runs() IS 'Private: the launcher''s running runs, per CRM.';

-- Why a run of crm that could start waits for capacity: its CRM's pool
-- ("hubspot pool 2/2 busy (runs 41, 42)") or the global limit ("global
-- limit 4/4"); NULL when there is room.
CREATE FUNCTION crm_dashboard.capacity_hold(crm text) RETURNS text
LANGUAGE sql STABLE
AS $$
    WITH r AS (SELECT * FROM crm_dashboard.running_runs()),
         pool AS (SELECT (SELECT p.max_running FROM crm_dashboard.policy_for(capacity_hold.crm, NULL) p) AS size,
                         coalesce((SELECT r.ids FROM r WHERE r.crm = capacity_hold.crm), '{}') AS ids),
         total AS (SELECT coalesce(sum(cardinality(r.ids)), 0)::integer AS n FROM r)
    SELECT CASE
        WHEN pool.size IS NOT NULL AND cardinality(pool.ids) >= pool.size
            THEN format('%s pool %s/%s busy (%s %s)', capacity_hold.crm, cardinality(pool.ids), pool.size,
                        CASE WHEN cardinality(pool.ids) = 1 THEN 'run' ELSE 'runs' END,
                        array_to_string(pool.ids, ', '))
        WHEN total.n >= crm_dashboard.max_running_syncs()
            THEN format('global limit %s/%s', total.n, crm_dashboard.max_running_syncs())
        END
      FROM pool, total
$$;
COMMENT ON FUNCTION crm_dashboard.capacity_hold(text) IS
    'Private: the pool or global limit a startable run of a CRM waits for, in words, or NULL.';

-- Why a queued run waits, in words (crm_api.sync_runs.wait_reason): what
-- holds it, else the capacity it waits for, else "next in line".  An "all"
-- run waits for its first model.
CREATE FUNCTION crm_dashboard.wait_reason(h crm_dashboard.sync_history) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN h.status <> 'queued' THEN NULL
        WHEN h.sync_type = 'all' AND NOT h.stop_requested
            THEN coalesce((SELECT format('first model %s: %s', c.sync_type, crm_dashboard.wait_reason(c))
                             FROM crm_dashboard.sync_history c
                            WHERE c.parent_id = h.id AND c.status = 'queued' ORDER BY c.id LIMIT 1),
                          'starting its models')
        ELSE coalesce(crm_dashboard.run_hold(h), crm_dashboard.capacity_hold(h.crm_source), 'next in line')
    END
$$;
COMMENT ON FUNCTION crm_dashboard.wait_reason(crm_dashboard.sync_history) IS
    'Private: why a queued run waits ("retry at 10:42:05 (attempt 2 of 3)", "model paused by alice: API migration", "hubspot pool 2/2 busy (runs 41, 42)", "global limit 4/4", ...); NULL unless queued.';

-- The launcher's claim step: lock and return up to slots queued runs to
-- start now, best first.  Per CRM with room in its pool, the front of the
-- queue of each priority (an index scan each, ordered by eligibility,
-- skipping held runs); then one model per "all" run, at most the pool's
-- room per CRM, ranked by eligibility time plus priority_aging per
-- priority level, so that a waiting run climbs one level per
-- priority_aging and nothing starves; first in first out within a level.
-- Runs another runner holds are skipped (SKIP LOCKED).
CREATE FUNCTION crm_dashboard.claim_runs(slots integer) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE
ROWS 4
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aging interval := crm_dashboard.priority_aging();
BEGIN
    IF coalesce(slots, 0) <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH pools AS (
        SELECT c.name AS crm,
               CASE WHEN p.max_running IS NULL THEN claim_runs.slots
                    ELSE least(claim_runs.slots, p.max_running - coalesce(cardinality(r.ids), 0)) END AS room
          FROM crm_dashboard.crm_source c
          LEFT JOIN crm_dashboard.run_policy p ON p.crm = c.name AND p.model IS NULL
          LEFT JOIN crm_dashboard.running_runs() r ON r.crm = c.name),
    candidates AS (
        SELECT q.id, pl.crm, q.parent_id, q.not_before + q.priority * aging AS rank_time, pl.room
          FROM pools pl
         CROSS JOIN (VALUES (0::smallint), (1::smallint), (2::smallint)) AS k(priority)
         CROSS JOIN LATERAL (
               SELECT h.id, h.parent_id, h.not_before, h.priority
                 FROM crm_dashboard.sync_history h
                WHERE h.crm_source = pl.crm AND h.status = 'queued' AND h.priority = k.priority
                  AND h.not_before <= now() AND h.sync_type <> 'all'
                  AND crm_dashboard.run_may_start(h)
                ORDER BY h.not_before, h.id
                -- one more: a second model of one "all" run is dropped below
                LIMIT pl.room + 1) q
         WHERE pl.room > 0),
    one_per_parent AS (
        SELECT c.*, row_number() OVER (PARTITION BY coalesce(c.parent_id, -c.id) ORDER BY c.rank_time, c.id) AS nth
          FROM candidates c),
    within_pool AS (
        SELECT o.*, row_number() OVER (PARTITION BY o.crm ORDER BY o.rank_time, o.id) AS place
          FROM one_per_parent o
         WHERE o.nth = 1),
    picked AS (
        SELECT w.id, w.rank_time FROM within_pool w
         WHERE w.place <= w.room
         ORDER BY w.rank_time, w.id
         LIMIT claim_runs.slots)
    SELECT h.id
      FROM crm_dashboard.sync_history h
      JOIN picked ON picked.id = h.id
     WHERE h.status = 'queued'
     ORDER BY picked.rank_time, picked.id
       FOR UPDATE OF h SKIP LOCKED;
END
$$;
COMMENT ON FUNCTION crm_dashboard.claim_runs(integer) IS
    'The claim step of a runner: lock and return up to slots queued runs to start now, best first (per-CRM pools, pauses, retry times, one model at a time per "all" run, priority with aging, FIFO).  The caller marks them running in the same transaction.';

-- When the launcher must look at the queue again without being woken: the
-- earliest not-before time still ahead.
CREATE FUNCTION crm_dashboard.next_due() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT h.not_before FROM crm_dashboard.sync_history h
     WHERE h.status = 'queued' AND h.not_before > now()
     ORDER BY h.not_before LIMIT 1
$$;
COMMENT ON FUNCTION crm_dashboard.next_due() IS 'Private: the earliest time a queued run becomes due, if one is ahead.';

-- ---- Parent runs -------------------------------------------------------------

-- The figures of an "all" run's model runs: the latest attempt of each
-- model (a failed attempt followed by a retry counts once, as the retry).
CREATE FUNCTION crm_dashboard.children_totals(parent_id bigint)
RETURNS TABLE (n bigint, n_active bigint, n_failed bigint, n_other bigint, processed bigint, created bigint,
               updated bigint, failed bigint, total bigint)
LANGUAGE sql STABLE
ROWS 1
AS $$
    SELECT count(*), count(*) FILTER (WHERE c.status IN ('queued', 'running')),
           count(*) FILTER (WHERE c.status = 'failed'),
           count(*) FILTER (WHERE c.status IN ('partial', 'cancelled')),
           coalesce(sum(c.records_processed), 0), coalesce(sum(c.records_created), 0),
           coalesce(sum(c.records_updated), 0), coalesce(sum(c.records_failed), 0), sum(c.records_total)
      FROM crm_dashboard.sync_history c
     WHERE c.parent_id = children_totals.parent_id
       AND NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history l
                        WHERE l.parent_id = c.parent_id AND l.id > c.id
                          AND coalesce(l.first_attempt_id, l.id) = coalesce(c.first_attempt_id, c.id))
$$;
COMMENT ON FUNCTION crm_dashboard.children_totals(bigint) IS
    'Private: counts and summed figures of the latest attempt of each model run of an "all" run.';

-- Keep an active "all" run's figures the live sum of its model runs,
-- including the one running now.
CREATE FUNCTION crm_dashboard.refresh_parent(parent_id bigint) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    UPDATE crm_dashboard.sync_history p
       SET records_processed = least(t.processed, 2147483647), records_created = least(t.created, 2147483647),
           records_updated = least(t.updated, 2147483647), records_failed = least(t.failed, 2147483647),
           records_total = t.total
      FROM crm_dashboard.children_totals(refresh_parent.parent_id) t
     WHERE p.id = refresh_parent.parent_id AND p.status IN ('queued', 'running');
END;
COMMENT ON FUNCTION crm_dashboard.refresh_parent(bigint) IS
    'Private: set an active "all" run''s counters to the live sums of its model runs.';

-- Seconds a running run still needs: what is left at its rate, plus a
-- rate-limit wait still ahead; for an "all" run, also the models still to
-- run (each as long as its last success, else as the models done so far).
-- NULL when unknown.
CREATE FUNCTION crm_dashboard.run_eta(h crm_dashboard.sync_history) RETURNS float8
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN h.status <> 'running' THEN NULL
        WHEN h.sync_type <> 'all' THEN
            (SELECT greatest(0, extract(epoch FROM coalesce(h.rate_limited_until, now()) - now()))::float8
                    + CASE WHEN h.records_total IS NULL THEN NULL
                           WHEN h.records_processed >= h.records_total THEN 0
                           WHEN rate > 0 THEN (h.records_total - h.records_processed) / rate END
               FROM (SELECT coalesce((h.performance_metrics ->> 'records_per_second')::float8,
                                     h.records_processed / nullif(extract(epoch FROM now() - h.start_time)::float8, 0))
                            AS rate) r)
        ELSE
            -- unknown for one model: unknown for all
            (SELECT CASE WHEN bool_and(e.seconds IS NOT NULL) THEN sum(e.seconds) END
               FROM crm_dashboard.sync_history c
              CROSS JOIN LATERAL (SELECT CASE WHEN c.status = 'running' THEN crm_dashboard.run_eta(c)
                  ELSE coalesce(
                      (SELECT extract(epoch FROM s.end_time - s.start_time)::float8
                         FROM crm_dashboard.sync_history s
                        WHERE s.crm_source = c.crm_source AND s.sync_type = c.sync_type AND s.status = 'success'
                        ORDER BY s.end_time DESC LIMIT 1),
                      (SELECT avg(extract(epoch FROM d.end_time - d.start_time))::float8
                         FROM crm_dashboard.sync_history d
                        WHERE d.parent_id = h.id AND d.status NOT IN ('queued', 'running'))) END AS seconds) e
              WHERE c.parent_id = h.id AND c.status IN ('queued', 'running'))
    END
$$;
COMMENT ON FUNCTION crm_dashboard.run_eta(crm_dashboard.sync_history) IS
    'Private: estimated seconds until a running run ends (including a rate-limit wait, and for "all" the models still to run), or NULL.';

REVOKE ALL ON FUNCTION crm_dashboard.max_running_syncs(), crm_dashboard.priority_aging(),
    crm_dashboard.requester_name(), crm_dashboard.check_target(text, text),
    crm_dashboard.policy_defaults(), crm_dashboard.policy_for(text, text),
    crm_dashboard.policy_value_error(text, text, text, text),
    crm_dashboard.check_policy(text, integer, interval, interval, interval, integer, integer),
    crm_dashboard.run_policies(), crm_dashboard.pause_of(text, text),
    crm_dashboard.pause_text(crm_dashboard.run_pause), crm_dashboard.emit_event(text, text, text, bigint, jsonb),
    crm_dashboard.pause_json(bigint), crm_dashboard.pause(text, text, text, text, boolean),
    crm_dashboard.retry_delay(interval, interval, integer), crm_dashboard.priority_of(text, boolean),
    crm_dashboard.max_rate_limit_waits(), crm_dashboard.schedule_retry(bigint),
    crm_dashboard.pause_if_failing(text, text), crm_dashboard.after_failure(bigint),
    crm_dashboard.run_hold(crm_dashboard.sync_history), crm_dashboard.mostly_true_support(internal),
    crm_dashboard.run_may_start(crm_dashboard.sync_history), crm_dashboard.running_runs(),
    crm_dashboard.capacity_hold(text), crm_dashboard.wait_reason(crm_dashboard.sync_history),
    crm_dashboard.claim_runs(integer), crm_dashboard.next_due(), crm_dashboard.children_totals(bigint),
    crm_dashboard.refresh_parent(bigint), crm_dashboard.run_eta(crm_dashboard.sync_history) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.set_run_policy(text, text, integer, interval, interval, interval, integer, integer),
    crm_api.clear_run_policy(text, text), crm_api.pause_sync(text, text, text),
    crm_api.resume_sync(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.run_policies(), crm_dashboard.wait_reason(crm_dashboard.sync_history),
    crm_dashboard.run_eta(crm_dashboard.sync_history) TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.pause_sync(text, text, text), crm_api.resume_sync(text, text)
    TO crm_dashboard_operator;
GRANT EXECUTE ON FUNCTION crm_api.set_run_policy(text, text, integer, interval, interval, interval, integer, integer),
    crm_api.clear_run_policy(text, text) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.run_policies, crm_api.pauses, crm_api.sync_skips TO crm_dashboard_viewer;

-- src/schedules.sql: the schedules view gains last_skipped_at; cron_next, active_schedules; schedule_sync refuses ignore_pause
CREATE OR REPLACE VIEW crm_api.schedules AS
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
REVOKE ALL ON FUNCTION crm_dashboard.cron_next(text, timestamptz), crm_dashboard.active_schedules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.active_schedules() TO crm_dashboard_viewer;

-- src/history.sql: freshness, model state, the data watermark (new)
-- ---- Freshness: is the data as new as it should be? ---------------------

-- A model's successes, newest first: last success and learned cadence.
CREATE INDEX sync_history_successes
    ON crm_dashboard.sync_history (crm_source, sync_type, end_time DESC)
    WHERE status = 'success';

-- An administrator's promise of how fresh a model is kept.
CREATE TABLE crm_dashboard.freshness_sla (
    crm            text NOT NULL REFERENCES crm_dashboard.crm_source (name) ON UPDATE CASCADE ON DELETE CASCADE,
    model          text NOT NULL,
    expected_every interval NOT NULL CHECK (expected_every BETWEEN '1 minute' AND '90 days'),
    grace          interval CHECK (grace >= '0' AND grace < expected_every),
    set_by         text NOT NULL DEFAULT session_user,
    set_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (crm, model)
);
COMMENT ON TABLE crm_dashboard.freshness_sla IS
    'Private: how often a model is expected to sync successfully, set by an administrator with crm_api.set_freshness_sla.';
REVOKE ALL ON crm_dashboard.freshness_sla FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.freshness_sla', '');

-- The column to show as "updated" (and whose maximum is the data
-- watermark): the first timestamp-like column whose name says it holds the
-- source's modification time.
CREATE FUNCTION crm_dashboard.updated_column(rel oid) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT a.attname::text FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
       AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
     ORDER BY array_position(ARRAY['updated_at', 'lastmodifieddate', 'hs_lastmodifieddate',
              'last_update', 'date_modified', 'updated', 'modified_at', 'status_modified',
              'sync_updated_at']::text[], a.attname::text) NULLS LAST, a.attnum
     LIMIT 1
$$;
COMMENT ON FUNCTION crm_dashboard.updated_column(oid) IS
    'Private: the "updated" column of a model''s table (timestamp-like, named like updated_at or lastmodifieddate), or NULL.';

-- How new the data itself is: the maximum of the model's "updated" column,
-- read from an index leading with it (src/history.c), never by scanning.
CREATE FUNCTION crm_dashboard.data_watermark(crm text, model text, OUT watermark timestamptz, OUT note text)
RETURNS record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_data_watermark';
COMMENT ON FUNCTION crm_dashboard.data_watermark(text, text) IS
    'Private: the newest value of a model''s "updated" column, read from a btree index leading with it; otherwise NULL with a note: not indexed, no updated column.';
CREATE FUNCTION crm_dashboard.model_watermarks(crm text,
    OUT crm text, OUT model text, OUT watermark timestamptz, OUT note text)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
ROWS 100
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_model_watermarks';
COMMENT ON FUNCTION crm_dashboard.model_watermarks(text) IS
    'Private: data_watermark of every model of a CRM (NULL: of every CRM), with one discovery for all.';

-- The freshness rule, written once.  The expected cadence comes from the
-- SLA, else the model's (or its CRM's "all") schedules, else the median gap
-- between its last ten successes.  Late: past the expected time plus the
-- grace (the SLA's, else a tenth of the cadence).  Overdue: past twice the
-- cadence since the last success (for a schedule: its second fire time
-- since, plus the grace); a never-synced model with an SLA is overdue, one
-- with a schedule counts from the schedule's creation.  Unknown: no cadence.
CREATE FUNCTION crm_dashboard.freshness_of(crm text, model text, crons text[] DEFAULT NULL,
                                           scheduled_since timestamptz DEFAULT NULL)
RETURNS TABLE (freshness text, expected_by timestamptz, last_success_at timestamptz, cadence interval,
               cadence_source text, grace interval, overdue_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    WITH last AS (
        SELECT (SELECT h.end_time FROM crm_dashboard.sync_history h
                 WHERE h.crm_source = freshness_of.crm AND h.sync_type = freshness_of.model AND h.status = 'success'
                 ORDER BY h.end_time DESC LIMIT 1) AS at),
    sla AS (
        SELECT s.expected_every, s.grace FROM crm_dashboard.freshness_sla s
         WHERE s.crm = freshness_of.crm AND s.model = freshness_of.model),
    fires AS (
        SELECT min(n1) AS n1, min(n2) AS n2
          FROM last, unnest(freshness_of.crons) AS c(cron)
         CROSS JOIN LATERAL crm_dashboard.cron_next(c.cron, coalesce(last.at, freshness_of.scheduled_since)) AS n1
         CROSS JOIN LATERAL crm_dashboard.cron_next(c.cron, n1) AS n2),
    learned AS (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY g.gap) AS cadence
          FROM (SELECT r.end_time - lag(r.end_time) OVER (ORDER BY r.end_time) AS gap
                  FROM (SELECT h.end_time FROM crm_dashboard.sync_history h
                         WHERE h.crm_source = freshness_of.crm AND h.sync_type = freshness_of.model
                           AND h.status = 'success'
                         ORDER BY h.end_time DESC LIMIT 10) r) g
         WHERE g.gap IS NOT NULL
        HAVING count(*) >= 2),
    rule AS (
        SELECT CASE WHEN sla.expected_every IS NOT NULL THEN 'sla'
                    WHEN fires.n2 IS NOT NULL THEN 'schedule'
                    WHEN learned.cadence > interval '0' THEN 'learned' END AS source,
               last.at, sla.expected_every, sla.grace AS sla_grace, fires.n1, fires.n2, learned.cadence AS learned
          FROM last
          LEFT JOIN sla ON true
          LEFT JOIN fires ON true
          LEFT JOIN learned ON true),
    expect AS (
        SELECT r.source, r.at,
               CASE r.source WHEN 'sla' THEN r.expected_every WHEN 'schedule' THEN r.n2 - r.n1
                             WHEN 'learned' THEN r.learned END AS cadence,
               CASE r.source WHEN 'sla' THEN r.at + r.expected_every WHEN 'schedule' THEN r.n1
                             WHEN 'learned' THEN r.at + r.learned END AS expected_by,
               r.sla_grace, r.n2
          FROM rule r),
    graced AS (
        SELECT e.*, coalesce(e.sla_grace, e.cadence * 0.1) AS grace FROM expect e)
    SELECT CASE WHEN g.source IS NULL THEN 'unknown'
                WHEN g.at IS NULL AND g.source = 'sla' THEN 'overdue'
                WHEN now() > CASE WHEN g.source = 'schedule' THEN g.n2 + g.grace ELSE g.at + 2 * g.cadence END
                    THEN 'overdue'
                WHEN now() > g.expected_by + g.grace THEN 'late'
                ELSE 'on_time' END,
           g.expected_by, g.at, g.cadence, g.source, g.grace,
           CASE WHEN g.source = 'schedule' THEN g.n2 + g.grace ELSE g.at + 2 * g.cadence END
      FROM graced g
$$;
COMMENT ON FUNCTION crm_dashboard.freshness_of(text, text, text[], timestamptz) IS
    'Private: a model''s freshness (on_time, late, overdue, unknown), expected-by time, last success, cadence and where it comes from (sla, schedule, learned), given its schedules'' cron expressions.';

-- The worst of several freshness states: overdue, late, on_time, unknown.
CREATE FUNCTION crm_dashboard.worst_freshness(states text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((SELECT f FROM unnest(states) f
                  ORDER BY array_position(ARRAY['overdue', 'late', 'on_time', 'unknown'], f) LIMIT 1), 'unknown');
COMMENT ON FUNCTION crm_dashboard.worst_freshness(text[]) IS
    'Private: the worst of several freshness states (overdue, late, on_time, unknown); unknown for none.';

-- What holds a model or asks for attention: its pause (its own or its
-- CRM's), and "action required" when its latest finished run failed for a
-- reason retrying cannot fix (a revoked key, a configuration error).
CREATE FUNCTION crm_dashboard.model_state(crm text, model text)
RETURNS TABLE (paused boolean, pause_scope text, paused_by text, pause_reason text, paused_at timestamptz,
               pause_automatic boolean, action_required boolean, action_required_run_id bigint,
               action_required_error text)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.id IS NOT NULL, CASE WHEN p.id IS NULL THEN NULL WHEN p.model IS NULL THEN 'crm' ELSE 'model' END,
           p.paused_by, p.reason, p.paused_at, p.automatic,
           coalesce(f.error_class = 'permanent', false),
           CASE WHEN f.error_class = 'permanent' THEN f.id END,
           CASE WHEN f.error_class = 'permanent' THEN f.error_message END
      FROM (SELECT 1) one
      LEFT JOIN LATERAL crm_dashboard.pause_of(model_state.crm, model_state.model) p ON true
      LEFT JOIN LATERAL (SELECT h.id, h.status, h.error_class, h.error_message
                           FROM crm_dashboard.sync_history h
                          WHERE h.crm_source = model_state.crm AND h.sync_type = model_state.model
                            AND h.status IN ('success', 'partial', 'failed')
                          ORDER BY h.start_time DESC, h.id DESC LIMIT 1) f ON f.status = 'failed'
$$;
COMMENT ON FUNCTION crm_dashboard.model_state(text, text) IS
    'Private: a model''s pause (scope model or crm, by whom, why) and whether it needs action (its latest finished run failed permanently), with that run''s error.';

-- A CRM's own pause, for crm_api.crm_sources.
CREATE FUNCTION crm_dashboard.crm_pause(crm text)
RETURNS TABLE (paused_by text, pause_reason text, paused_at timestamptz, pause_automatic boolean)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.paused_by, p.reason, p.paused_at, p.automatic FROM crm_dashboard.pause_of(crm_pause.crm, NULL) p
$$;
COMMENT ON FUNCTION crm_dashboard.crm_pause(text) IS 'Private: the active pause of a whole CRM, if any.';

-- Every model's freshness and state: crm_api.crm_models, crm_sources and
-- note_freshness read them from here.
CREATE FUNCTION crm_dashboard.model_health_details()
RETURNS TABLE (crm text, model text, freshness text, expected_by timestamptz, last_success_at timestamptz,
               cadence interval, cadence_source text, paused boolean, action_required boolean)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
    WITH schedules AS MATERIALIZED (SELECT * FROM crm_dashboard.active_schedules())
    SELECT m.crm, m.model, f.freshness, f.expected_by, f.last_success_at, f.cadence, f.cadence_source,
           st.paused, st.action_required
      FROM crm_dashboard.crm_models(NULL) m
      LEFT JOIN LATERAL (SELECT array_agg(s.cron) AS crons, min(s.created_at) AS since FROM schedules s
                          WHERE s.crm = m.crm AND s.model IN (m.model, 'all')) sc ON true
      LEFT JOIN LATERAL crm_dashboard.freshness_of(m.crm, m.model, sc.crons, sc.since) f ON true
      LEFT JOIN LATERAL crm_dashboard.model_state(m.crm, m.model) st ON true
$$;
COMMENT ON FUNCTION crm_dashboard.model_health_details() IS
    'Private: freshness, pause and action-required state of every model.';

-- The freshness alerts watch: one row per model with its current state and
-- since when, changed only by note_freshness.
CREATE TABLE crm_dashboard.freshness_state (
    crm         text NOT NULL,
    model       text NOT NULL,
    freshness   text NOT NULL,
    since       timestamptz NOT NULL DEFAULT now(),
    expected_by timestamptz,
    PRIMARY KEY (crm, model)
);
COMMENT ON TABLE crm_dashboard.freshness_state IS
    'Private: each model''s freshness as last recorded by crm_dashboard.note_freshness, and since when.';
REVOKE ALL ON crm_dashboard.freshness_state FROM PUBLIC;

-- The state change "late" / "overdue" (and back to "on_time"): record each
-- model's freshness where it changed, with the event freshness.  The
-- launcher calls it every 30 s; returns how many models changed.
CREATE FUNCTION crm_dashboard.note_freshness() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    changed integer := 0;
BEGIN
    FOR r IN SELECT d.crm, d.model, d.freshness, d.expected_by, s.freshness AS was
               FROM crm_dashboard.model_health_details() d
               LEFT JOIN crm_dashboard.freshness_state s ON s.crm = d.crm AND s.model = d.model
              WHERE s.freshness IS DISTINCT FROM d.freshness
    LOOP
        INSERT INTO crm_dashboard.freshness_state AS s (crm, model, freshness, expected_by)
        VALUES (r.crm, r.model, r.freshness, r.expected_by)
        ON CONFLICT (crm, model) DO UPDATE SET freshness = EXCLUDED.freshness, since = now(),
                                               expected_by = EXCLUDED.expected_by;
        IF r.was IS NOT NULL OR r.freshness IN ('late', 'overdue') THEN
            PERFORM crm_dashboard.emit_event('freshness', r.crm, r.model, NULL,
                jsonb_build_object('from', r.was, 'to', r.freshness, 'expected_by', r.expected_by));
        END IF;
        changed := changed + 1;
    END LOOP;
    DELETE FROM crm_dashboard.freshness_state s
     WHERE NOT EXISTS (SELECT 1 FROM crm_dashboard.crm_models(NULL) m WHERE m.crm = s.crm AND m.model = s.model);
    RETURN changed;
END
$$;
COMMENT ON FUNCTION crm_dashboard.note_freshness() IS
    'Private: record models whose freshness changed (event freshness with from, to, expected_by); the launcher calls it every 30 s.';

CREATE FUNCTION crm_api.set_freshness_sla(crm text, model text, expected_every interval, grace interval DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    PERFORM crm_dashboard.check_target(crm, model);
    IF expected_every IS NULL OR expected_every NOT BETWEEN interval '1 minute' AND interval '90 days' THEN
        PERFORM crm_dashboard.policy_value_error('expected_every', coalesce(quote_literal(expected_every), 'NULL'),
            'between 1 minute and 90 days', 'Say how often the model must sync successfully, e.g. ''6 hours''.');
    END IF;
    IF grace < interval '0' OR grace >= expected_every THEN
        PERFORM crm_dashboard.policy_value_error('grace', quote_literal(grace),
            format('at least 0 and shorter than expected_every (%s)', quote_literal(expected_every)),
            'The grace is how long past the expected time a model is still on time; by default a tenth of expected_every.');
    END IF;
    INSERT INTO crm_dashboard.freshness_sla AS s (crm, model, expected_every, grace, set_by)
    VALUES (crm, model, expected_every, grace, crm_dashboard.requester_name())
    ON CONFLICT ON CONSTRAINT freshness_sla_pkey DO UPDATE
       SET expected_every = EXCLUDED.expected_every, grace = EXCLUDED.grace,
           set_by = EXCLUDED.set_by, set_at = now();
    SELECT row_to_json(f) INTO result FROM crm_dashboard.freshness_of(crm, model) f;
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_api.set_freshness_sla(text, text, interval, interval) IS
    'Promise how fresh a model is kept: a successful sync every expected_every (late after it plus grace, by default a tenth of it; overdue after twice it).  Returns the model''s freshness.';

CREATE FUNCTION crm_api.clear_freshness_sla(crm text, model text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.check_target(crm, model);
    DELETE FROM crm_dashboard.freshness_sla s WHERE s.crm = clear_freshness_sla.crm AND s.model = clear_freshness_sla.model;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION crm_api.clear_freshness_sla(text, text) IS
    'Remove a model''s freshness SLA (its cadence then comes from its schedules or its history); false when it had none.';

CREATE VIEW crm_api.freshness_slas AS
    SELECT s.crm, s.model, s.expected_every, s.grace, s.set_by, s.set_at
      FROM crm_dashboard.freshness_sla s ORDER BY s.crm, s.model;
COMMENT ON VIEW crm_api.freshness_slas IS 'The freshness promises administrators made, per model.';

REVOKE ALL ON FUNCTION crm_dashboard.updated_column(oid), crm_dashboard.data_watermark(text, text),
    crm_dashboard.model_watermarks(text),
    crm_dashboard.freshness_of(text, text, text[], timestamptz), crm_dashboard.worst_freshness(text[]),
    crm_dashboard.model_state(text, text), crm_dashboard.crm_pause(text), crm_dashboard.model_health_details(),
    crm_dashboard.note_freshness(), crm_api.set_freshness_sla(text, text, interval, interval),
    crm_api.clear_freshness_sla(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.data_watermark(text, text), crm_dashboard.model_watermarks(text),
    crm_dashboard.freshness_of(text, text, text[], timestamptz), crm_dashboard.worst_freshness(text[]),
    crm_dashboard.model_state(text, text), crm_dashboard.crm_pause(text), crm_dashboard.model_health_details()
    TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.set_freshness_sla(text, text, interval, interval),
    crm_api.clear_freshness_sla(text, text) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.freshness_slas TO crm_dashboard_viewer;

-- src/history.sql: row estimates near the truth (no JIT for the views of many models)
ALTER FUNCTION crm_dashboard.crm_sources() ROWS 20;
ALTER FUNCTION crm_dashboard.crm_models(text) ROWS 100;
-- src/history.sql: new columns at the end of the views, run_json's new keys
CREATE OR REPLACE VIEW crm_api.crm_sources AS
    SELECT s.*, cp.paused_by IS NOT NULL AS paused, cp.paused_by, cp.pause_reason, cp.paused_at,
           coalesce(d.paused_models, 0) AS paused_models,
           coalesce(d.action_required_models, 0) AS action_required_models,
           coalesce(d.freshness, 'unknown') AS freshness,
           coalesce(d.late_models, 0) AS late_models, coalesce(d.overdue_models, 0) AS overdue_models
      FROM crm_dashboard.crm_sources() s
      LEFT JOIN LATERAL crm_dashboard.crm_pause(s.crm) cp ON true
      LEFT JOIN (SELECT m.crm, count(*) FILTER (WHERE m.paused)::integer AS paused_models,
                        count(*) FILTER (WHERE m.action_required)::integer AS action_required_models,
                        crm_dashboard.worst_freshness(array_agg(m.freshness)) AS freshness,
                        count(*) FILTER (WHERE m.freshness = 'late')::integer AS late_models,
                        count(*) FILTER (WHERE m.freshness = 'overdue')::integer AS overdue_models
                   FROM crm_dashboard.model_health_details() m GROUP BY m.crm) d ON d.crm = s.crm;
COMMENT ON VIEW crm_api.crm_sources IS
    'One row per CRM: model count, estimated records, last sync and health (success, warning, error, running, never); its pause; models paused or needing action; freshness (the worst of its models: overdue, late, on_time, unknown).';
CREATE OR REPLACE VIEW crm_api.crm_models AS
    WITH schedules AS MATERIALIZED (SELECT * FROM crm_dashboard.active_schedules())
    SELECT m.*, crm_dashboard.name_problem(m.model) AS name_problem,
           st.paused, st.pause_scope, st.paused_by, st.pause_reason, st.paused_at,
           st.action_required, st.action_required_run_id, st.action_required_error,
           f.freshness, f.expected_by, f.last_success_at,
           extract(epoch FROM f.cadence)::float8 AS cadence_seconds, f.cadence_source,
           w.watermark AS data_watermark, w.note AS watermark_note
      FROM crm_dashboard.crm_models(NULL) m
      LEFT JOIN LATERAL crm_dashboard.model_state(m.crm, m.model) st ON true
      LEFT JOIN LATERAL (SELECT array_agg(s.cron) AS crons, min(s.created_at) AS since FROM schedules s
                          WHERE s.crm = m.crm AND s.model IN (m.model, 'all')) sc ON true
      LEFT JOIN LATERAL crm_dashboard.freshness_of(m.crm, m.model, sc.crons, sc.since) f ON true
      LEFT JOIN crm_dashboard.model_watermarks(NULL) w ON w.crm = m.crm AND w.model = m.model;
COMMENT ON VIEW crm_api.crm_models IS
    'One row per model (table <crm>_<model>): estimated rows, latest run and its figures, active run; name_problem says why a model cannot be synced; its pause; action required (with the error); freshness (on_time, late, overdue, unknown), expected by, last success, cadence and its source (sla, schedule, learned); data watermark (newest "updated" value) or why there is none (not indexed).';
CREATE OR REPLACE VIEW crm_api.sync_runs AS
    SELECT h.id, h.crm_source::text AS crm, h.sync_type::text AS model, h.status::text AS status,
           h.start_time, h.end_time,
           crm_dashboard.run_duration(h.status, h.start_time, h.end_time) AS duration_seconds,
           h.records_processed, h.records_created, h.records_updated, h.records_failed,
           h.records_total, h.error_message, h.requested_by, h.requested_via, h.parent_id,
           h.configuration, h.performance_metrics, h.exit_code, h.exit_signal, h.queued_at,
           h.attempt, h.max_attempts, h.first_attempt_id, h.not_before, h.priority, h.error_class,
           h.rate_limited_until, h.last_output_at,
           CASE WHEN h.status = 'queued' THEN crm_dashboard.wait_reason(h) END AS wait_reason,
           CASE WHEN h.status = 'running' THEN crm_dashboard.run_eta(h) END AS eta_seconds
      FROM crm_dashboard.sync_history h
     ORDER BY h.start_time DESC, h.id DESC;
COMMENT ON VIEW crm_api.sync_runs IS
    'Every sync run, newest first; filter by crm, model, status.  attempt n of max_attempts (first_attempt_id links retries to the first); a queued run says why it waits (wait_reason) and does not start before not_before; error_class says why one failed; eta_seconds estimates what is left.  The output log is crm_api.sync_log(id).';
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
                     FROM crm_dashboard.sync_history c WHERE c.parent_id = h.id),
        'attempt', h.attempt, 'max_attempts', h.max_attempts, 'first_attempt_id', h.first_attempt_id,
        'not_before', h.not_before, 'priority', h.priority, 'error_class', h.error_class,
        'rate_limited_until', h.rate_limited_until, 'last_output_at', h.last_output_at,
        'wait_reason', CASE WHEN h.status = 'queued' THEN crm_dashboard.wait_reason(h) END,
        'eta_seconds', CASE WHEN h.status = 'running' THEN round(crm_dashboard.run_eta(h)::numeric, 1) END,
        'attempts', (SELECT json_agg(json_build_object('id', a.id, 'attempt', a.attempt, 'status', a.status,
                                                       'error_class', a.error_class, 'start_time', a.start_time,
                                                       'not_before', a.not_before) ORDER BY a.id)
                       FROM crm_dashboard.sync_history a
                      WHERE a.id = coalesce(h.first_attempt_id, h.id)
                         OR a.first_attempt_id = coalesce(h.first_attempt_id, h.id)))
    FROM crm_dashboard.sync_history h WHERE h.id = run_id;
END;

-- An HTTP server that never waits: the request engine its pooled connections run.
CREATE FUNCTION crm_dashboard.http_serve(request text,
    OUT status integer, OUT content_type text, OUT headers json, OUT body text,
    OUT file text, OUT file_size bigint)
RETURNS record
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_http_serve';
COMMENT ON FUNCTION crm_dashboard.http_serve(text) IS
    'Private: serve one request of the bundled HTTP server, described as JSON by its worker (authorisation, settings, the read or call); the reply as a row.';
REVOKE ALL ON FUNCTION crm_dashboard.http_serve(text) FROM PUBLIC;

-- Filters: model_rows, count_rows and the exports take a JSON filter
-- (src/paging.sql, src/paging_filter.c).  A new argument makes a new
-- function, so the old signatures go first.
DROP FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean);
DROP FUNCTION crm_api.export_rows(text, text, text, text, boolean);
DROP FUNCTION crm_api.count_rows(text, text);
DROP FUNCTION crm_api.export_cursor(text, text, text, text, boolean);
DROP FUNCTION crm_dashboard.model_rows(text, text, text, integer, text, text, boolean);
DROP FUNCTION crm_dashboard.export_rows(text, text, text, text, boolean);
DROP FUNCTION crm_dashboard.count_rows(text, text);
DROP FUNCTION crm_dashboard.export_cursor(text, text, text, text, boolean);


CREATE FUNCTION crm_dashboard.model_rows(crm text, model text, after text, per_page integer,
    search text, sort text, descending boolean, filter jsonb)
RETURNS json
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_model_rows';

CREATE FUNCTION crm_dashboard.export_rows(crm text, model text, search text, sort text,
    descending boolean, filter jsonb)
RETURNS SETOF json
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_export_rows';

CREATE FUNCTION crm_dashboard.count_rows(crm text, model text, search text, filter jsonb)
RETURNS bigint
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_count_rows';

-- The filter form for clients: operators (name, label, value, the column
-- classes they fit) and limits.
CREATE FUNCTION crm_dashboard.filter_syntax() RETURNS json
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_filter_syntax';
COMMENT ON FUNCTION crm_dashboard.filter_syntax() IS
    'Private: the filter operators (name, label, value: none, one, pair, list or interval; column classes) and limits, as crm_api.capabilities() shows them.';

REVOKE ALL ON FUNCTION crm_dashboard.model_rows(text, text, text, integer, text, text, boolean, jsonb),
    crm_dashboard.export_rows(text, text, text, text, boolean, jsonb),
    crm_dashboard.count_rows(text, text, text, jsonb), crm_dashboard.filter_syntax() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.filter_syntax() TO crm_dashboard_viewer;

-- crm_api: the public surface.

CREATE FUNCTION crm_api.model_rows(crm text, model text, after text DEFAULT NULL,
    per_page integer DEFAULT 25, search text DEFAULT NULL, sort text DEFAULT NULL,
    descending boolean DEFAULT false, filter jsonb DEFAULT NULL)
RETURNS json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.model_rows(crm, model, after, per_page, search, sort, descending, filter) $$;
COMMENT ON FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean, jsonb) IS
    'One page of a model''s rows as JSON: columns (with the filter operators each takes), rows, next/previous cursors (pass one as after), estimated_total, note, scan (set when no index serves the search or filter of a large table).  '
    'Keyset order on sort (default: the primary key) then the primary key; NULL sort values come last in either direction.  '
    'search matches text columns case-insensitively; filter is a condition {"column", "op", "value"} or a group {"and"|"or": [...]}; per_page 1..1000.';

CREATE FUNCTION crm_api.export_rows(crm text, model text, search text DEFAULT NULL,
    sort text DEFAULT NULL, descending boolean DEFAULT false, filter jsonb DEFAULT NULL)
RETURNS SETOF json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM crm_dashboard.export_rows(crm, model, search, sort, descending, filter) $$;
COMMENT ON FUNCTION crm_api.export_rows(text, text, text, text, boolean, jsonb) IS
    'Every row of a model matching search and filter, one JSON object per row, in the order of model_rows (CSV with Accept: text/csv, Excel with Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet).';

CREATE FUNCTION crm_api.count_rows(crm text, model text, search text DEFAULT NULL,
    filter jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.count_rows(crm, model, search, filter) $$;
COMMENT ON FUNCTION crm_api.count_rows(text, text, text, jsonb) IS
    'The exact number of rows of a model matching search and filter, every row without them (a full count: slow on big tables; crm_models has the estimate).';

REVOKE ALL ON FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean, jsonb),
    crm_api.export_rows(text, text, text, text, boolean, jsonb),
    crm_api.count_rows(text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean, jsonb),
    crm_api.export_rows(text, text, text, text, boolean, jsonb),
    crm_api.count_rows(text, text, text, jsonb) TO crm_dashboard_viewer;

-- A typed interface for exports that need the rows' own columns (CSV,
-- Excel): a cursor, opened with the definer's rights, that the caller
-- fetches from in the same transaction.

CREATE FUNCTION crm_dashboard.export_cursor(crm text, model text, search text, sort text,
    descending boolean, filter jsonb)
RETURNS refcursor
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_export_cursor';
REVOKE ALL ON FUNCTION crm_dashboard.export_cursor(text, text, text, text, boolean, jsonb) FROM PUBLIC;

CREATE FUNCTION crm_api.export_cursor(crm text, model text, search text DEFAULT NULL,
    sort text DEFAULT NULL, descending boolean DEFAULT false, filter jsonb DEFAULT NULL)
RETURNS refcursor
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.export_cursor(crm, model, search, sort, descending, filter) $$;
COMMENT ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean, jsonb) IS
    'Opens a cursor over every row of a model matching search and filter, its columns only, in the order of model_rows '
    '(sort, NULLs last in either direction, then the primary key), and returns its name: FETCH from it in the '
    'same transaction.  The CSV and Excel exports (export_rows with Accept: text/csv or the xlsx media type) read through it.';
REVOKE ALL ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean, jsonb) TO crm_dashboard_viewer;

-- capabilities() lists the filter operators (src/capabilities.sql).
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
        'sync_options', crm_dashboard.sync_options(),
        'filters', crm_dashboard.filter_syntax())
$$;
REVOKE ALL ON FUNCTION crm_api.capabilities() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.capabilities() TO crm_dashboard_viewer;
COMMENT ON FUNCTION crm_api.capabilities() IS
    'What this installation offers: extension and library versions, whether pg_cron schedules and the sync launcher are available, the sync options with their types, ranges, flags and help, and the filter operators and limits of model_rows.';

-- Bulk operations: start_syncs and stop_syncs (src/sync_request.sql, src/sync_request.c).

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

-- stop_sync locks model runs before their parent, as the launcher does (src/sync_request.sql).
-- Stopping: a queued run is cancelled at once, a running one is stopped by
-- the launcher (SIGTERM, then SIGKILL after crm_dashboard.stop_grace).  For
-- "all", queued children are cancelled and the running one is stopped.
-- Stopping a finished run changes nothing and returns it as it is.
CREATE OR REPLACE FUNCTION crm_api.stop_sync(id bigint) RETURNS json
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

-- Data-quality checks per model (src/quality.sql, src/quality.c), all new.
-- Data-quality checks per model, in the spirit of dbt tests and Soda:
-- operators define them through crm_api, they run before a sync (an
-- error-severity failure refuses the sync unless started with force), after
-- a sync (the run becomes partial: "checks failed") and on demand, and every
-- result is kept per run and check: passed or not, failing rows, up to 20
-- sample keys, whether it sampled, how long it took.  Each check's query
-- runs read-only within crm_dashboard.check_timeout (src/quality.c), so a
-- check never locks out writers.

-- The table of a model (the usual errors for an unknown CRM or model).
CREATE FUNCTION crm_dashboard.model_table(crm text, model text) RETURNS regclass
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_model_table';
COMMENT ON FUNCTION crm_dashboard.model_table(text, text) IS 'Private: the table of a model.';
REVOKE ALL ON FUNCTION crm_dashboard.model_table(text, text) FROM PUBLIC;

-- Run one check query (failing bigint, samples jsonb) read-only within the
-- check time limit; the error that stopped it instead of raising it.
CREATE FUNCTION crm_dashboard.check_query(sql text, args text[],
    OUT failing bigint, OUT samples jsonb, OUT error text, OUT duration_ms float8)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_check_query';
COMMENT ON FUNCTION crm_dashboard.check_query(text, text[]) IS
    'Private: run one check query read-only within crm_dashboard.check_timeout; its error, if any, as a value.';
REVOKE ALL ON FUNCTION crm_dashboard.check_query(text, text[]) FROM PUBLIC;

CREATE TABLE crm_dashboard.quality_check (
    id          bigserial PRIMARY KEY,
    crm         text NOT NULL,
    model       text NOT NULL,
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('not_null', 'unique', 'accepted_values', 'regex', 'range',
                                              'referential', 'freshness', 'row_count_change')),
    column_name text,
    params      jsonb NOT NULL DEFAULT '{}',
    severity    text NOT NULL DEFAULT 'error' CHECK (severity IN ('warn', 'error')),
    created_by  text NOT NULL DEFAULT session_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (crm, model, name)
);
COMMENT ON TABLE crm_dashboard.quality_check IS
    'Data-quality checks per model (crm_api.add_check): kind, column, parameters, severity.';
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.quality_check', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.quality_check_id_seq', '');

CREATE TABLE crm_dashboard.quality_result (
    id           bigserial PRIMARY KEY,
    check_id     bigint NOT NULL REFERENCES crm_dashboard.quality_check (id) ON DELETE CASCADE,
    run_id       bigint,         -- no foreign key: results outlive pruned or truncated history
    phase        text NOT NULL CHECK (phase IN ('before', 'after', 'on_demand')),
    passed       boolean NOT NULL,
    failing_rows bigint,
    sample_keys  jsonb NOT NULL DEFAULT '[]',
    sampled      boolean NOT NULL DEFAULT false,
    row_count    bigint,
    error        text,
    summary      text NOT NULL,
    duration_ms  float8 NOT NULL,
    checked_at   timestamptz NOT NULL DEFAULT now(),
    checked_by   text NOT NULL DEFAULT session_user
);
CREATE INDEX quality_result_check ON crm_dashboard.quality_result (check_id, id DESC);
CREATE INDEX quality_result_run ON crm_dashboard.quality_result (run_id) WHERE run_id IS NOT NULL;
COMMENT ON TABLE crm_dashboard.quality_result IS
    'Every result of a check: passed, failing rows, up to 20 sample keys, sampled, the time taken; per run (before or after it) or on demand.';
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.quality_result', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.quality_result_id_seq', '');

-- Raise the error of a check definition that cannot work, naming what.
CREATE FUNCTION crm_dashboard.check_error(message text, hint text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF hint IS NULL THEN
        RAISE EXCEPTION '%', message USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RAISE EXCEPTION '%', message USING ERRCODE = 'invalid_parameter_value', HINT = hint;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_error(text, text) IS 'Private: raise a check definition error.';

-- A column of a table: its type and type category, or an error naming it.
CREATE FUNCTION crm_dashboard.check_column(tbl regclass, col text, OUT typ text, OUT category "char")
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod), t.typcategory INTO typ, category
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.check_error(format('column "%s" does not exist in %s', col, tbl),
            format('Columns of %s: %s.', tbl, (SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
                                              WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped)));
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_column(regclass, text) IS 'Private: a column''s type and category, or an error.';

-- Whether a text parses as a type (so a check's values are checked when it is defined).
CREATE FUNCTION crm_dashboard.parses_as(value text, typ text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT $1::%s', typ) USING value;
    RETURN true;
EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION crm_dashboard.parses_as(text, text) IS 'Private: whether a text is a valid value of a type.';

-- Check a definition against the model and its columns; returns the
-- parameters as kept (values as text).  Every mistake is an error naming
-- the kind, column or parameter.
CREATE FUNCTION crm_dashboard.check_definition(crm text, model text, kind text, column_name text, params jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass := crm_dashboard.model_table(crm, model);
    allowed text[] := CASE kind
        WHEN 'not_null' THEN '{}' WHEN 'unique' THEN '{}'
        WHEN 'accepted_values' THEN '{values}' WHEN 'regex' THEN '{pattern}'
        WHEN 'range' THEN '{min,max}' WHEN 'referential' THEN '{model,column}'
        WHEN 'freshness' THEN '{max_age}' WHEN 'row_count_change' THEN '{max_change_percent}' END;
    col record;
    ref record;
    k text;
    v text;
BEGIN
    params := coalesce(params, '{}');
    IF allowed IS NULL THEN
        PERFORM crm_dashboard.check_error(format('unknown check kind "%s"', kind),
            'Kinds: not_null, unique, accepted_values, regex, range, referential, freshness, row_count_change.');
    END IF;
    IF jsonb_typeof(params) <> 'object' THEN
        PERFORM crm_dashboard.check_error('check parameters must be a JSON object', NULL);
    END IF;
    FOR k IN SELECT jsonb_object_keys(params) LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM crm_dashboard.check_error(format('unknown parameter "%s" for a %s check', k, kind),
                CASE WHEN cardinality(allowed) = 0 THEN format('A %s check takes no parameters.', kind)
                     ELSE format('A %s check takes: %s.', kind, array_to_string(allowed, ', ')) END);
        END IF;
    END LOOP;
    IF kind = 'row_count_change' THEN
        IF column_name IS NOT NULL THEN
            PERFORM crm_dashboard.check_error('a row_count_change check takes no column', 'Leave column_name NULL.');
        END IF;
    ELSIF column_name IS NULL THEN
        PERFORM crm_dashboard.check_error(format('a %s check needs a column', kind), 'Name one of the model''s columns.');
    ELSE
        col := crm_dashboard.check_column(tbl, column_name);
    END IF;
    CASE kind
    WHEN 'accepted_values' THEN
        IF jsonb_typeof(params->'values') IS DISTINCT FROM 'array' OR jsonb_array_length(params->'values') NOT BETWEEN 1 AND 1000 THEN
            PERFORM crm_dashboard.check_error('an accepted_values check needs "values": an array of 1 to 1000 values', NULL);
        END IF;
        FOR v IN SELECT e #>> '{}' FROM jsonb_array_elements(params->'values') e LOOP
            IF v IS NULL OR NOT crm_dashboard.parses_as(v, col.typ) THEN
                PERFORM crm_dashboard.check_error(format('accepted value %s is not a valid %s for column "%s"',
                                                         coalesce(quote_literal(v), 'null'), col.typ, column_name), NULL);
            END IF;
        END LOOP;
        params := jsonb_build_object('values', (SELECT jsonb_agg(e #>> '{}') FROM jsonb_array_elements(params->'values') e));
    WHEN 'regex' THEN
        IF jsonb_typeof(params->'pattern') IS DISTINCT FROM 'string' THEN
            PERFORM crm_dashboard.check_error('a regex check needs "pattern": a regular expression', NULL);
        END IF;
        BEGIN
            PERFORM '' ~ (params->>'pattern');
        EXCEPTION WHEN invalid_regular_expression THEN
            PERFORM crm_dashboard.check_error(format('invalid regular expression %s: %s', quote_literal(params->>'pattern'), SQLERRM), NULL);
        END;
    WHEN 'range' THEN
        IF col.category NOT IN ('N', 'D') THEN
            PERFORM crm_dashboard.check_error(format('a range check needs a number or date column, and "%s" is %s', column_name, col.typ), NULL);
        END IF;
        IF params->'min' IS NULL AND params->'max' IS NULL THEN
            PERFORM crm_dashboard.check_error('a range check needs "min", "max" or both', NULL);
        END IF;
        FOREACH k IN ARRAY ARRAY['min', 'max'] LOOP
            IF params ? k AND NOT crm_dashboard.parses_as(params->>k, col.typ) THEN
                PERFORM crm_dashboard.check_error(format('"%s" %s is not a valid %s for column "%s"', k,
                                                         coalesce(quote_literal(params->>k), 'null'), col.typ, column_name), NULL);
            END IF;
        END LOOP;
        params := jsonb_strip_nulls(jsonb_build_object('min', params->>'min', 'max', params->>'max'));
    WHEN 'referential' THEN
        IF jsonb_typeof(params->'model') IS DISTINCT FROM 'string' OR jsonb_typeof(params->'column') IS DISTINCT FROM 'string' THEN
            PERFORM crm_dashboard.check_error('a referential check needs "model" and "column": the model and column whose values must hold this column''s', NULL);
        END IF;
        ref := crm_dashboard.check_column(crm_dashboard.model_table(crm, params->>'model'), params->>'column');
        IF ref.typ <> col.typ AND NOT (ref.category = col.category AND col.category IN ('N', 'S')) THEN
            PERFORM crm_dashboard.check_error(format('column "%s" (%s) cannot be compared with %s.%s (%s)',
                                                     column_name, col.typ, params->>'model', params->>'column', ref.typ), NULL);
        END IF;
    WHEN 'freshness' THEN
        IF col.category <> 'D' THEN
            PERFORM crm_dashboard.check_error(format('a freshness check needs a date or timestamp column, and "%s" is %s', column_name, col.typ), NULL);
        END IF;
        IF NOT crm_dashboard.parses_as(params->>'max_age', 'interval')
           OR (params->>'max_age')::interval <= interval '0' THEN
            PERFORM crm_dashboard.check_error('a freshness check needs "max_age": a positive interval such as "1 day"', NULL);
        END IF;
    WHEN 'row_count_change' THEN
        IF jsonb_typeof(params->'max_change_percent') IS DISTINCT FROM 'number'
           OR (params->>'max_change_percent')::numeric NOT BETWEEN 0 AND 1000000 THEN
            PERFORM crm_dashboard.check_error('a row_count_change check needs "max_change_percent": a number from 0', NULL);
        END IF;
    ELSE
        NULL;
    END CASE;
    RETURN params;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_definition(text, text, text, text, jsonb) IS
    'Private: check a check definition against the model; the parameters as kept.';

-- The keys that identify a row in samples: the primary key's columns as a
-- JSON object, else the row's ctid.
CREATE FUNCTION crm_dashboard.row_key_sql(tbl regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT format('pg_catalog.jsonb_build_object(%s)',
                       string_agg(format('%L, t.%I', a.attname, a.attname), ', ' ORDER BY k.n))
           FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = tbl AND i.indisprimary),
        'pg_catalog.to_jsonb(t.ctid::text)')
$$;
COMMENT ON FUNCTION crm_dashboard.row_key_sql(regclass) IS 'Private: SQL of a row''s key in samples.';

-- The query of a check: one row (failing rows, up to 20 sample keys), its
-- values in $1 (text[]); sample says whether it reads a sample.
CREATE FUNCTION crm_dashboard.check_sql(c crm_dashboard.quality_check, sample boolean,
                                        OUT sql text, OUT args text[], OUT guaranteed_by text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass := crm_dashboard.model_table(c.crm, c.model);
    rows float8 := greatest((SELECT reltuples FROM pg_class WHERE oid = tbl), 1);
    src text := format('%s t', tbl);
    col text := CASE WHEN c.column_name IS NOT NULL THEN format('t.%I', c.column_name) END;
    typ text;
    bad text;
BEGIN
    IF c.column_name IS NOT NULL THEN
        typ := (crm_dashboard.check_column(tbl, c.column_name)).typ;
    END IF;
    IF sample THEN
        src := format('%s t TABLESAMPLE SYSTEM (%s)', tbl,
                      least(100, 100 * current_setting('crm_dashboard.check_sample_rows')::float8 / rows));
    END IF;
    args := '{}';
    CASE c.kind
    WHEN 'not_null' THEN bad := format('%s IS NULL', col);
    WHEN 'accepted_values' THEN
        bad := format('%s IS NOT NULL AND NOT %s = ANY ($1::%s[])', col, col, typ);
        args := ARRAY(SELECT jsonb_array_elements_text(c.params->'values'));
    WHEN 'regex' THEN
        bad := format('%s IS NOT NULL AND %s::pg_catalog.text OPERATOR(pg_catalog.!~) $1[1]', col, col);
        args := ARRAY[c.params->>'pattern'];
    WHEN 'range' THEN
        bad := format('%s < $1[1]::%s OR %s > $1[2]::%s', col, typ, col, typ);
        args := ARRAY[c.params->>'min', c.params->>'max'];
    WHEN 'referential' THEN
        bad := format('%s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s r WHERE r.%I = %s)', col,
                      crm_dashboard.model_table(c.crm, c.params->>'model'), c.params->>'column', col);
    WHEN 'unique' THEN
        -- a valid unique index on the column alone (the primary key) already guarantees it
        SELECT i.indexrelid::regclass::text INTO guaranteed_by
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = c.column_name
         WHERE i.indrelid = tbl AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1
           AND i.indkey[0] = a.attnum AND i.indpred IS NULL AND i.indexprs IS NULL
         LIMIT 1;
        IF guaranteed_by IS NOT NULL THEN
            sql := 'SELECT 0::pg_catalog.int8, ''[]''::pg_catalog.jsonb';
            RETURN;
        END IF;
        sql := format('WITH d AS (SELECT %s AS v, pg_catalog.count(*) AS n FROM %s WHERE %s IS NOT NULL '
                      'GROUP BY 1 HAVING pg_catalog.count(*) > 1) '
                      'SELECT coalesce(pg_catalog.sum(n), 0)::bigint, '
                      '  (SELECT coalesce(pg_catalog.jsonb_agg(s.v), ''[]'') FROM (SELECT pg_catalog.to_jsonb(v) AS v FROM d LIMIT 20) s) '
                      'FROM d', col, src, col);
        RETURN;
    WHEN 'freshness' THEN
        sql := format('SELECT CASE WHEN m IS NULL OR m < pg_catalog.now() - $1[1]::pg_catalog.interval THEN 1 ELSE 0 END::bigint, '
                      '  pg_catalog.jsonb_build_array(m) FROM (SELECT pg_catalog.max(%s) AS m FROM %s t) x', col, tbl);
        args := ARRAY[c.params->>'max_age'];
        RETURN;
    WHEN 'row_count_change' THEN
        sql := format('SELECT pg_catalog.count(*), NULL::pg_catalog.jsonb FROM %s t', tbl);
        RETURN;
    END CASE;
    sql := format('WITH b AS (SELECT %s AS k FROM %s WHERE %s) '
                  'SELECT pg_catalog.count(*), '
                  '  (SELECT coalesce(pg_catalog.jsonb_agg(s.k), ''[]'') FROM (SELECT k FROM b LIMIT 20) s) FROM b',
                  crm_dashboard.row_key_sql(tbl), src, bad);
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_sql(crm_dashboard.quality_check, boolean) IS
    'Private: the query of a check and its values.';

-- Run one check and keep its result.
CREATE FUNCTION crm_dashboard.run_check(c crm_dashboard.quality_check, phase text, run_id bigint)
RETURNS crm_dashboard.quality_result
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
    r_failing bigint;
    r_samples jsonb;
    r_error text;
    r_ms float8 := 0;
    res crm_dashboard.quality_result;
    rows float8;
    sampled boolean := false;
    prev bigint;
    passed boolean;
    summary text;
    failing bigint;
    row_count bigint;
BEGIN
    BEGIN
        rows := (SELECT reltuples FROM pg_class WHERE oid = crm_dashboard.model_table(c.crm, c.model));
        sampled := c.kind NOT IN ('freshness', 'row_count_change')
                   AND rows > current_setting('crm_dashboard.check_sample_rows')::float8;
        q := crm_dashboard.check_sql(c, sampled);
        SELECT x.failing, x.samples, x.error, x.duration_ms INTO r_failing, r_samples, r_error, r_ms
          FROM crm_dashboard.check_query(q.sql, q.args) x;
    EXCEPTION WHEN OTHERS THEN
        -- the model or a column went away since the check was defined
        r_error := SQLERRM;
    END;
    failing := r_failing;
    IF r_error IS NOT NULL THEN
        passed := false;
        summary := format('could not run: %s', r_error);
    ELSIF c.kind = 'row_count_change' THEN
        row_count := r_failing;
        SELECT x.row_count INTO prev FROM crm_dashboard.quality_result x
         WHERE x.check_id = c.id AND x.row_count IS NOT NULL ORDER BY x.id DESC LIMIT 1;
        IF prev IS NULL THEN
            passed := true;
            failing := 0;
            summary := format('%s rows; no earlier count to compare with', row_count);
        ELSE
            passed := abs(row_count - prev) <= prev * (c.params->>'max_change_percent')::numeric / 100;
            failing := CASE WHEN passed THEN 0 ELSE abs(row_count - prev) END;
            summary := format('%s rows, %s before (%s%%; at most ±%s%%)', row_count, prev,
                              CASE WHEN prev = 0 THEN 'new' ELSE round((row_count - prev) * 100.0 / prev, 1)::text END,
                              c.params->>'max_change_percent');
        END IF;
    ELSIF c.kind = 'freshness' THEN
        passed := r_failing = 0;
        summary := CASE WHEN passed THEN format('newest %s (%s) is within %s', c.column_name, r_samples->>0,
                                                c.params->>'max_age')
                        ELSE format('newest %s is %s, older than %s', c.column_name,
                                    coalesce(r_samples->>0, 'missing'), c.params->>'max_age') END;
    ELSIF q.guaranteed_by IS NOT NULL THEN
        passed := true;
        sampled := false;
        summary := format('no failing rows: unique index %s guarantees it', q.guaranteed_by);
    ELSE
        passed := r_failing = 0;
        summary := CASE WHEN passed THEN 'no failing rows'
                        ELSE format('%s failing row%s', r_failing, CASE WHEN r_failing = 1 THEN '' ELSE 's' END) END
                   || CASE WHEN sampled THEN ' in a sample' ELSE '' END;
    END IF;
    INSERT INTO crm_dashboard.quality_result AS x
        (check_id, run_id, phase, passed, failing_rows, sample_keys, sampled, row_count, error, summary,
         duration_ms, checked_by)
    VALUES (c.id, run_id, phase, passed, failing, coalesce(CASE WHEN c.kind <> 'freshness' THEN r_samples END, '[]'),
            sampled, row_count, r_error, summary, r_ms, crm_dashboard.requester_name())
    RETURNING x.* INTO res;
    RETURN res;
END
$$;
COMMENT ON FUNCTION crm_dashboard.run_check(crm_dashboard.quality_check, text, bigint) IS
    'Private: run a check, keep and return its result.';

-- Run every check of a model; the results.
CREATE FUNCTION crm_dashboard.run_checks(crm text, model text, phase text, run_id bigint)
RETURNS SETOF crm_dashboard.quality_result
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    -- LATERAL: (f(c)).* would call the function once per column
    SELECT r.*
      FROM crm_dashboard.quality_check c
     CROSS JOIN LATERAL crm_dashboard.run_check(c, run_checks.phase, run_checks.run_id) r
     WHERE c.crm = run_checks.crm AND c.model = run_checks.model
     ORDER BY c.id
$$;
COMMENT ON FUNCTION crm_dashboard.run_checks(text, text, text, bigint) IS 'Private: run and record every check of a model.';

-- Before a sync (start_sync calls it): the error-severity checks that
-- failed, one line each, and the ids of every result to attach to the run.
CREATE FUNCTION crm_dashboard.pre_sync_checks(crm text, model text, OUT failures text[], OUT result_ids bigint[])
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH r AS (SELECT * FROM crm_dashboard.run_checks(crm, model, 'before', NULL))
    SELECT coalesce(array_agg(format('%s (%s): %s%s', c.name, c.kind, r.summary,
                                     CASE WHEN jsonb_array_length(r.sample_keys) > 0
                                          THEN ', e.g. ' || left((SELECT string_agg(k::text, ', ')
                                                                   FROM (SELECT k FROM jsonb_array_elements(r.sample_keys) k LIMIT 3) s), 200)
                                          ELSE '' END) ORDER BY c.id)
                    FILTER (WHERE NOT r.passed AND c.severity = 'error'), '{}'),
           coalesce(array_agg(r.id), '{}')
      FROM r JOIN crm_dashboard.quality_check c ON c.id = r.check_id
$$;
COMMENT ON FUNCTION crm_dashboard.pre_sync_checks(text, text) IS
    'Private: run a model''s checks before a sync; the failing error-severity checks, and the results to attach to the run.';

-- Attach results to the run they were run for.
CREATE FUNCTION crm_dashboard.attach_results(result_ids bigint[], run_id bigint) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE crm_dashboard.quality_result SET run_id = attach_results.run_id WHERE id = ANY (result_ids);
END;
COMMENT ON FUNCTION crm_dashboard.attach_results(bigint[], bigint) IS 'Private: attach pre-sync results to their run.';

-- After a sync that succeeded (the launcher calls it): run the model's
-- checks; an error-severity failure makes the run partial with "checks
-- failed".  It never raises: the launcher must go on.
CREATE FUNCTION crm_dashboard.after_sync_checks(run_id bigint) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h crm_dashboard.sync_history;
    failed text[];
BEGIN
    SELECT * INTO h FROM crm_dashboard.sync_history s WHERE s.id = run_id;
    IF NOT FOUND OR h.sync_type = 'all' OR h.status NOT IN ('success', 'partial')
       OR NOT EXISTS (SELECT 1 FROM crm_dashboard.quality_check c WHERE c.crm = h.crm_source AND c.model = h.sync_type) THEN
        RETURN 0;
    END IF;
    SELECT coalesce(array_agg(c.name ORDER BY c.id), '{}') INTO failed
      FROM crm_dashboard.run_checks(h.crm_source, h.sync_type, 'after', run_id) r
      JOIN crm_dashboard.quality_check c ON c.id = r.check_id
     WHERE NOT r.passed AND c.severity = 'error';
    IF cardinality(failed) > 0 THEN
        UPDATE crm_dashboard.sync_history s
           SET status = 'partial',
               error_message = concat_ws('; ', s.error_message, 'checks failed: ' || array_to_string(failed, ', '))
         WHERE s.id = run_id;
    END IF;
    RETURN cardinality(failed);
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'crm_dashboard: the checks after run % could not run: %', run_id, SQLERRM;
    RETURN 0;
END
$$;
COMMENT ON FUNCTION crm_dashboard.after_sync_checks(bigint) IS
    'Private: run a model''s checks after a successful sync; the run becomes partial ("checks failed") when an error-severity check fails.';

-- ---- crm_api ------------------------------------------------------------------

CREATE FUNCTION crm_api.add_check(crm text, model text, name text, kind text, column_name text DEFAULT NULL,
                                  params jsonb DEFAULT '{}', severity text DEFAULT 'error')
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kept jsonb := crm_dashboard.check_definition(crm, model, kind, column_name, params);
    new_id bigint;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        PERFORM crm_dashboard.check_error(format('invalid check name %s', coalesce(quote_literal(name), 'null')),
                                          'A check name is a-z, 0-9 and _, starting with a letter, at most 63 characters.');
    END IF;
    IF severity IS NULL OR severity NOT IN ('warn', 'error') THEN
        PERFORM crm_dashboard.check_error(format('invalid severity %s', coalesce(quote_literal(severity), 'null')),
                                          'Severity is warn or error: an error-severity failure refuses a sync.');
    END IF;
    IF EXISTS (SELECT 1 FROM crm_dashboard.quality_check c
                WHERE c.crm = add_check.crm AND c.model = add_check.model AND c.name = add_check.name) THEN
        RAISE EXCEPTION 'model % % already has a check named "%"', crm, model, name
            USING ERRCODE = 'unique_violation', HINT = 'Drop it first with crm_api.drop_check, or choose another name.';
    END IF;
    INSERT INTO crm_dashboard.quality_check AS c (crm, model, name, kind, column_name, params, severity, created_by)
    VALUES (crm, model, name, kind, column_name, kept, severity, crm_dashboard.requester_name())
    RETURNING c.id INTO new_id;
    RETURN (SELECT row_to_json(q) FROM crm_api.quality_checks q WHERE q.id = new_id);
END
$$;
COMMENT ON FUNCTION crm_api.add_check(text, text, text, text, text, jsonb, text) IS
    'Define a data-quality check of a model: kind not_null, unique, accepted_values {"values": [...]}, regex {"pattern"}, range {"min", "max"}, referential {"model", "column"}, freshness {"max_age": "1 day"} or row_count_change {"max_change_percent": 20}; severity warn or error (an error refuses a sync unless started with force).';

CREATE FUNCTION crm_api.drop_check(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'crm_api.quality_checks lists the checks and their ids.';
    END IF;
    DELETE FROM crm_dashboard.quality_check c WHERE c.id = drop_check.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no check has id %', id USING ERRCODE = 'undefined_object',
            HINT = 'crm_api.quality_checks lists the checks.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_api.drop_check(bigint) IS 'Drop a data-quality check and its results.';

CREATE FUNCTION crm_api.run_checks(crm text, model text)
RETURNS SETOF crm_dashboard.quality_result
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT crm_dashboard.model_table(crm, model);
    SELECT * FROM crm_dashboard.run_checks(crm, model, 'on_demand', NULL);
$$;
COMMENT ON FUNCTION crm_api.run_checks(text, text) IS 'Run every check of a model now; their results (also kept).';

CREATE VIEW crm_api.quality_checks AS
    SELECT c.id, c.crm, c.model, c.name, c.kind, c.column_name, c.params, c.severity, c.created_by, c.created_at,
           l.passed AS last_passed, l.summary AS last_summary, l.failing_rows AS last_failing_rows,
           l.sample_keys AS last_sample_keys, l.sampled AS last_sampled, l.checked_at AS last_checked_at,
           l.run_id AS last_run_id, l.phase AS last_phase
      FROM crm_dashboard.quality_check c
      LEFT JOIN LATERAL (SELECT * FROM crm_dashboard.quality_result r WHERE r.check_id = c.id
                          ORDER BY r.id DESC LIMIT 1) l ON true;
COMMENT ON VIEW crm_api.quality_checks IS 'Every data-quality check with its latest result.';

CREATE VIEW crm_api.quality_results AS
    SELECT r.id, r.check_id, c.crm, c.model, c.name, c.kind, c.column_name, c.severity, r.run_id, r.phase,
           r.passed, r.failing_rows, r.sample_keys, r.sampled, r.row_count, r.error, r.summary, r.duration_ms,
           r.checked_at, r.checked_by
      FROM crm_dashboard.quality_result r JOIN crm_dashboard.quality_check c ON c.id = r.check_id;
COMMENT ON VIEW crm_api.quality_results IS 'Every result of a check: per run (phase before or after) or on demand.';

REVOKE ALL ON crm_dashboard.quality_check, crm_dashboard.quality_result FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_dashboard.check_error(text, text), crm_dashboard.check_column(regclass, text),
    crm_dashboard.parses_as(text, text), crm_dashboard.check_definition(text, text, text, text, jsonb),
    crm_dashboard.row_key_sql(regclass), crm_dashboard.check_sql(crm_dashboard.quality_check, boolean),
    crm_dashboard.run_check(crm_dashboard.quality_check, text, bigint),
    crm_dashboard.run_checks(text, text, text, bigint), crm_dashboard.pre_sync_checks(text, text),
    crm_dashboard.attach_results(bigint[], bigint), crm_dashboard.after_sync_checks(bigint),
    crm_api.add_check(text, text, text, text, text, jsonb, text), crm_api.drop_check(bigint),
    crm_api.run_checks(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.add_check(text, text, text, text, text, jsonb, text), crm_api.drop_check(bigint),
    crm_api.run_checks(text, text) TO crm_dashboard_operator;
GRANT SELECT ON crm_api.quality_checks, crm_api.quality_results TO crm_dashboard_viewer;

-- ---- History at scale: the log store (src/logs.sql, src/logs.c, src/launcher_log.c)
-- Logs move out of the history row into append-only chunks; every kept log
-- is moved, then the column goes.

-- The log store: what a run printed, as append-only chunks beside its
-- history row (src/launcher_log.c writes the new tail of a running log at
-- each flush; src/log_chunk.c says where a chunk ends), the reads of it
-- (crm_api.sync_log, crm_api.sync_log_lines) and the search across the
-- kept logs of all runs (crm_api.search_logs).
--
-- A chunk is never rewritten: a flush costs what the command printed since
-- the last one, whatever the size of the log.  A running log longer than
-- crm_dashboard.log_limit loses its oldest chunks.

CREATE TABLE crm_dashboard.sync_log_chunk (
    run_id     bigint NOT NULL REFERENCES crm_dashboard.sync_history (id) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 1),
    first_line bigint NOT NULL CHECK (first_line >= 1),
    first_byte bigint NOT NULL CHECK (first_byte >= 0),
    body       text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE crm_dashboard.sync_log_chunk IS
    'Private: the kept output of each run, in chunks of whole lines (at most 32 kB) numbered from 1 (seq); first_line and first_byte place a chunk in the run''s output, so line numbers stay those of the whole output when the oldest chunks are gone.  Read it with crm_api.sync_log or crm_api.sync_log_lines.';
REVOKE ALL ON crm_dashboard.sync_log_chunk FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.sync_log_chunk', '');

-- Search: the words of each chunk ('simple': no stemming and no stop
-- words, so error codes, ids and names are found as written).
CREATE INDEX sync_log_chunk_words
    ON crm_dashboard.sync_log_chunk USING gin (to_tsvector('simple'::regconfig, body));
-- Retention and search by time: the oldest chunks first.
CREATE INDEX sync_log_chunk_written ON crm_dashboard.sync_log_chunk (written_at);

-- Cut a whole log into chunks the way the launcher cuts a tail
-- (src/log_chunk.c): the update to 1.1.0 moves old logs with it.
CREATE FUNCTION crm_dashboard.log_split(log text,
    OUT seq integer, OUT first_line bigint, OUT first_byte bigint, OUT body text)
RETURNS SETOF record
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_log_split';
COMMENT ON FUNCTION crm_dashboard.log_split(text) IS
    'Private: a log cut into store chunks of whole lines (at most 32 kB each), with each chunk''s first line and byte.';

-- The one rule for "an error line" (crm_api.sync_log_lines, the run log's
-- "only errors").
CREATE FUNCTION crm_dashboard.is_error_line(line text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN line ~* '(^|[^[:alnum:]_])(error|errors|fatal|critical|exception|traceback|panic)([^[:alnum:]_]|$)';
COMMENT ON FUNCTION crm_dashboard.is_error_line(text) IS
    'Private: whether a log line reports an error (the words error, fatal, critical, exception, traceback or panic).';

-- A run's kept output as one text, with a note when its beginning was
-- dropped (crm_dashboard.log_limit).
CREATE FUNCTION crm_dashboard.log_text(run_id bigint) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN count(*) = 0 THEN ''
                WHEN min(c.first_byte) > 0
                    THEN format(E'[... %s bytes of earlier output dropped ...]\n', min(c.first_byte))
                         || string_agg(c.body, '' ORDER BY c.seq)
                ELSE string_agg(c.body, '' ORDER BY c.seq) END
      FROM crm_dashboard.sync_log_chunk c
     WHERE c.run_id = log_text.run_id
$$;
COMMENT ON FUNCTION crm_dashboard.log_text(bigint) IS
    'Private: a run''s kept output, with a note when its beginning was dropped.';

CREATE OR REPLACE FUNCTION crm_api.sync_log(id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history h WHERE h.id = sync_log.id) THEN
        PERFORM crm_dashboard.unknown_run(id);
    END IF;
    RETURN crm_dashboard.log_text(id);
END
$$;
COMMENT ON FUNCTION crm_api.sync_log(bigint) IS
    'The kept output of a run (the newest crm_dashboard.log_limit bytes), while it runs too (written every 2 s); crm_api.sync_log_lines reads it by line.';

-- Lines of a run's log with their numbers in the whole output.
CREATE FUNCTION crm_api.sync_log_lines(id bigint, from_line bigint DEFAULT NULL, max_lines integer DEFAULT 5000)
RETURNS TABLE (line_number bigint, line text, "time" timestamptz, is_error boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 1000
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_seq integer;
    start_line bigint := from_line;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history h WHERE h.id = sync_log_lines.id) THEN
        PERFORM crm_dashboard.unknown_run(id);
    END IF;
    IF max_lines IS NULL OR max_lines NOT BETWEEN 1 AND 50000 THEN
        RAISE EXCEPTION 'max_lines must be between 1 and 50000, not %', coalesce(max_lines::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_lines',
                  HINT = 'Read a long log in pages: pass the number after the last line you have as from_line.';
    END IF;
    IF from_line < 1 THEN
        RAISE EXCEPTION 'from_line must be at least 1, not %', from_line
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'from_line',
                  HINT = 'Lines are numbered from 1; leave from_line out for the last lines.';
    END IF;
    IF start_line IS NULL THEN
        -- the last max_lines lines: count back from the newest chunk
        SELECT greatest(1, c.first_line + (length(c.body) - length(replace(c.body, E'\n', '')))
                           - CASE WHEN right(c.body, 1) = E'\n' THEN 1 ELSE 0 END - max_lines + 1)
          INTO start_line
          FROM crm_dashboard.sync_log_chunk c
         WHERE c.run_id = sync_log_lines.id ORDER BY c.seq DESC LIMIT 1;
        IF start_line IS NULL THEN
            RETURN;
        END IF;
    END IF;
    -- the chunk holding start_line: walking back from the newest chunk is
    -- short for the tail and for a reader following a running log
    SELECT c.seq INTO first_seq FROM crm_dashboard.sync_log_chunk c
     WHERE c.run_id = sync_log_lines.id AND c.first_line <= start_line
     ORDER BY c.seq DESC LIMIT 1;
    RETURN QUERY
    SELECT l.number, l.text, c.written_at, crm_dashboard.is_error_line(l.text)
      FROM crm_dashboard.sync_log_chunk c
     CROSS JOIN LATERAL (SELECT c.first_line + t.n - 1 AS number, t.text
                           FROM string_to_table(CASE WHEN right(c.body, 1) = E'\n' THEN left(c.body, -1)
                                                     ELSE c.body END, E'\n') WITH ORDINALITY AS t(text, n)) l
     WHERE c.run_id = sync_log_lines.id AND c.seq >= coalesce(first_seq, 1) AND l.number >= start_line
     ORDER BY c.seq, l.number
     LIMIT max_lines;
END
$$;
COMMENT ON FUNCTION crm_api.sync_log_lines(bigint, bigint, integer) IS
    'Lines of a run''s kept output with their numbers in the whole output, the time they were written (within 2 s) and whether each reports an error: from from_line on (to follow a running log, pass the number after the last line you have), or the last max_lines lines (1..50000, default 5000).';

-- ---- Search ------------------------------------------------------------------

-- The words a search looks for, or the error for a query that has none.
CREATE FUNCTION crm_dashboard.search_query(query text) RETURNS tsquery
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q tsquery;
BEGIN
    IF query IS NULL OR btrim(query) = '' THEN
        RAISE EXCEPTION 'a log search needs a query'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'query',
                  HINT = 'Give words to find, e.g. ''timeout'', ''"HTTP 429"'' (a phrase), ''deadlock or timeout'', ''error -validation''.';
    END IF;
    IF length(query) > 200 THEN
        RAISE EXCEPTION 'a log search query is at most 200 characters, not %', length(query)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'query',
                  HINT = 'Search for the few words that matter.';
    END IF;
    q := websearch_to_tsquery('simple', query);
    IF numnode(q) = 0 THEN
        RAISE EXCEPTION 'log search query % has no words to look for', quote_literal(query)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'query',
                  HINT = 'Words are letters and digits; punctuation alone finds nothing.';
    END IF;
    RETURN q;
END
$$;
COMMENT ON FUNCTION crm_dashboard.search_query(text) IS
    'Private: a log search''s words as a tsquery (web search syntax: words, "a phrase", or, -word), or invalid_parameter_value.';

-- Check a search's filters, with errors that name the value.
CREATE FUNCTION crm_dashboard.check_search_filters(crm text, model text, status text, since timestamptz,
                                                   until timestamptz, max_rows integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NOT NULL AND crm IS NULL THEN
        RAISE EXCEPTION 'a model filter needs its CRM'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'model',
                  HINT = format('Pass crm too, e.g. crm => ''hubspot'', model => %L.', model);
    END IF;
    IF crm IS NOT NULL THEN
        PERFORM crm_dashboard.check_target(crm, model);
    END IF;
    IF status IS NOT NULL AND status NOT IN ('queued', 'running', 'success', 'failed', 'partial', 'cancelled') THEN
        RAISE EXCEPTION 'unknown run status %', quote_literal(status)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'status',
                  HINT = 'A run''s status is queued, running, success, failed, partial or cancelled.';
    END IF;
    IF since > until THEN
        RAISE EXCEPTION 'since (%) is after until (%)', since, until
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'since',
                  HINT = 'Give the earlier time as since.';
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 1000, not %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_rows',
                  HINT = 'The default is 100 lines, newest first.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_search_filters(text, text, text, timestamptz, timestamptz, integer) IS
    'Private: raise invalid_parameter_value or undefined_object for a bad filter of crm_api.search_logs.';

-- A matching line with its words marked « », in full when short, else
-- the fragments around the matches.
CREATE FUNCTION crm_dashboard.search_snippet(line text, q tsquery) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN length(line) <= 300
            THEN ts_headline('simple', line, q, 'HighlightAll=true, StartSel=«, StopSel=»')
            ELSE ts_headline('simple', line, q,
                             'MaxFragments=3, MaxWords=25, MinWords=8, FragmentDelimiter=" … ", StartSel=«, StopSel=»') END;
COMMENT ON FUNCTION crm_dashboard.search_snippet(text, tsquery) IS
    'Private: a matching log line with its matches between « and » (fragments of it when longer than 300 characters).';

-- Search every kept log: one row per matching line, newest first.  The
-- index finds the chunks holding the words; their lines are then matched
-- one by one, chunk after chunk, until max_rows lines are found, so a
-- common word stops early and a rare one reads only the chunks it is in.
CREATE FUNCTION crm_api.search_logs(query text, crm text DEFAULT NULL, model text DEFAULT NULL,
                                    status text DEFAULT NULL, since timestamptz DEFAULT NULL,
                                    until timestamptz DEFAULT NULL, max_rows integer DEFAULT 100)
RETURNS TABLE (run_id bigint, line_number bigint, "time" timestamptz, snippet text, line text,
               run_crm text, run_model text, run_status text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q tsquery := crm_dashboard.search_query(query);
    c record;
    found integer := 0;
    n integer;
BEGIN
    PERFORM crm_dashboard.check_search_filters(crm, model, status, since, until, max_rows);
    FOR c IN
        SELECT k.run_id, k.first_line, k.body, k.written_at, h.crm_source::text AS crm, h.sync_type::text AS model,
               h.status::text AS status
          FROM crm_dashboard.sync_log_chunk k
          JOIN crm_dashboard.sync_history h ON h.id = k.run_id
         WHERE to_tsvector('simple'::regconfig, k.body) @@ q
           AND (search_logs.crm IS NULL OR h.crm_source = search_logs.crm)
           AND (search_logs.model IS NULL OR h.sync_type = search_logs.model)
           AND (search_logs.status IS NULL OR h.status = search_logs.status)
           AND (since IS NULL OR k.written_at >= since)
           AND (until IS NULL OR k.written_at <= until)
         ORDER BY k.written_at DESC, k.run_id DESC, k.seq DESC
    LOOP
        RETURN QUERY
        SELECT c.run_id, c.first_line + l.n - 1, c.written_at, crm_dashboard.search_snippet(l.text, q), l.text,
               c.crm, c.model, c.status
          FROM string_to_table(c.body, E'\n') WITH ORDINALITY AS l(text, n)
         WHERE to_tsvector('simple'::regconfig, l.text) @@ q
         ORDER BY l.n DESC
         LIMIT max_rows - found;
        GET DIAGNOSTICS n = ROW_COUNT;
        found := found + n;
        EXIT WHEN found >= max_rows;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_api.search_logs(text, text, text, text, timestamptz, timestamptz, integer) IS
    'Search the kept logs of all runs: one row per matching line, newest first (the run, the line''s number and time, a snippet with the matches between « and », the line, and the run''s CRM, model and status).  query uses web search syntax: words (all must occur), "a phrase", or, -word; words are matched whole, case-insensitively.  Optional filters: crm, model, status, since, until (the time a line was written); max_rows 1..1000 (default 100).';

REVOKE ALL ON FUNCTION crm_dashboard.log_split(text), crm_dashboard.is_error_line(text),
    crm_dashboard.log_text(bigint),
    crm_api.sync_log(bigint), crm_api.sync_log_lines(bigint, bigint, integer),
    crm_dashboard.search_query(text),
    crm_dashboard.check_search_filters(text, text, text, timestamptz, timestamptz, integer),
    crm_dashboard.search_snippet(text, tsquery),
    crm_api.search_logs(text, text, text, text, timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.sync_log(bigint), crm_api.sync_log_lines(bigint, bigint, integer),
    crm_api.search_logs(text, text, text, text, timestamptz, timestamptz, integer) TO crm_dashboard_viewer;

-- every existing log moves into the store, cut as the launcher cuts it
INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
SELECT h.id, s.seq, s.first_line, s.first_byte, s.body, coalesce(h.end_time, h.heartbeat, h.start_time)
  FROM crm_dashboard.sync_history h
 CROSS JOIN LATERAL crm_dashboard.log_split(h.log) s
 WHERE h.log <> '';
ALTER TABLE crm_dashboard.sync_history DROP COLUMN log;

-- ---- History at scale: retention (src/retention.sql, all new)

-- Retention: how long run rows and their logs are kept, set by an
-- administrator (crm_api.set_retention) and applied in small batches by
-- the launcher (src/launcher.c), or by a pg_cron job when the launcher does
-- not serve this database.
--
-- A batch deletes at most batch_size log chunks and batch_size runs, the
-- oldest first, in a short transaction of its own: deletes never block
-- readers, and rows someone holds are skipped (SKIP LOCKED) rather than
-- waited for.  Each model's latest run and latest success are never
-- deleted, nor what is queued or running.  The daily rollups
-- (src/analytics.sql) keep the figures of deleted runs, so analytics of
-- the past stay right; "history kept since" says from when rows are there.

-- The policy: one row, none until an administrator sets it (then
-- everything is kept).  NULL keeps for ever.
CREATE TABLE crm_dashboard.retention_policy (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    keep_runs        interval CHECK (keep_runs BETWEEN '1 day' AND '100 years'),
    keep_failed_runs interval CHECK (keep_failed_runs BETWEEN '1 day' AND '100 years'),
    keep_logs        interval CHECK (keep_logs BETWEEN '1 hour' AND '100 years'),
    batch_size       integer NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 10 AND 100000),
    updated_by       text NOT NULL DEFAULT session_user,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT retention_policy_failed_longer
        CHECK (keep_failed_runs IS NULL OR (keep_runs IS NOT NULL AND keep_failed_runs >= keep_runs)),
    CONSTRAINT retention_policy_logs_sooner CHECK (keep_logs <= keep_runs)
);
COMMENT ON TABLE crm_dashboard.retention_policy IS
    'Private: how long runs (keep_runs), failed runs (keep_failed_runs, at least keep_runs) and logs (keep_logs, at most keep_runs) are kept; NULL keeps for ever.  Set it with crm_api.set_retention.';
REVOKE ALL ON crm_dashboard.retention_policy FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.retention_policy', '');

-- What retention did: up to when rows and logs are gone, and the last pass.
CREATE TABLE crm_dashboard.retention_state (
    only_row              boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    runs_removed_before   timestamptz,
    failed_removed_before timestamptz,
    logs_removed_before   timestamptz,
    last_pass_at          timestamptz,
    last_pass_by          text,
    last_pass_runs        integer NOT NULL DEFAULT 0,
    last_pass_log_chunks  integer NOT NULL DEFAULT 0,
    runs_removed          bigint NOT NULL DEFAULT 0,
    log_chunks_removed    bigint NOT NULL DEFAULT 0,
    behind                boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE crm_dashboard.retention_state IS
    'Private: what retention removed: runs that started before runs_removed_before (failed ones before failed_removed_before) and logs written before logs_removed_before are gone, but each model''s latest run and latest success; the last pass and the totals; behind while more is due than one pass removes.';
REVOKE ALL ON crm_dashboard.retention_state FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.retention_state', '');

-- Whether the launcher serves this database (src/launcher.c).
CREATE FUNCTION crm_dashboard.launcher_serves_here() RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_launcher_serves_here';
COMMENT ON FUNCTION crm_dashboard.launcher_serves_here() IS
    'Private: whether the preloaded sync launcher serves this database (it then applies retention).';

-- Runs retention never deletes: each model's latest run and latest success
-- (and the "all" runs they belong to).  A loose index scan finds the
-- models, so this costs a few index probes per model at any history size.
-- The latest success is the one that ended last, as health and freshness
-- read it, through the partial index of successes: a model that has not
-- succeeded for months costs one probe, not a walk through its history.
CREATE FUNCTION crm_dashboard.retention_protected() RETURNS SETOF bigint
LANGUAGE sql STABLE
ROWS 100
AS $$
    WITH RECURSIVE models AS (
        (SELECT h.crm_source, h.sync_type FROM crm_dashboard.sync_history h
          ORDER BY h.crm_source, h.sync_type LIMIT 1)
        UNION ALL
        SELECT n.crm_source, n.sync_type FROM models m
         CROSS JOIN LATERAL (SELECT h.crm_source, h.sync_type FROM crm_dashboard.sync_history h
                              WHERE (h.crm_source, h.sync_type) > (m.crm_source, m.sync_type)
                              ORDER BY h.crm_source, h.sync_type LIMIT 1) n),
    kept AS (
        SELECT l.id, l.parent_id FROM models m
         CROSS JOIN LATERAL (SELECT h.id, h.parent_id FROM crm_dashboard.sync_history h
                              WHERE h.crm_source = m.crm_source AND h.sync_type = m.sync_type
                              ORDER BY h.start_time DESC, h.id DESC LIMIT 1) l
        UNION ALL
        SELECT s.id, s.parent_id FROM models m
         CROSS JOIN LATERAL (SELECT h.id, h.parent_id FROM crm_dashboard.sync_history h
                              WHERE h.crm_source = m.crm_source AND h.sync_type = m.sync_type
                                AND h.status = 'success'
                              ORDER BY h.end_time DESC LIMIT 1) s)
    SELECT id FROM kept
    UNION
    SELECT parent_id FROM kept WHERE parent_id IS NOT NULL
$$;
COMMENT ON FUNCTION crm_dashboard.retention_protected() IS
    'Private: ids of the runs retention keeps whatever their age: each model''s latest run and latest success, and their "all" runs.';

-- One pass of retention: at most batch_size log chunks, then at most
-- batch_size runs, oldest first.  by names who applies it (launcher,
-- pg_cron, sql).  Returns what it did; behind is true while more is due.
CREATE FUNCTION crm_dashboard.apply_retention(by text DEFAULT 'sql') RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol crm_dashboard.retention_policy;
    runs_cutoff timestamptz;
    failed_cutoff timestamptz;
    logs_cutoff timestamptz;
    protected bigint[];
    n_chunks integer := 0;
    n_runs integer := 0;
    logs_upto timestamptz;
    runs_upto timestamptz;
BEGIN
    SELECT * INTO pol FROM crm_dashboard.retention_policy;
    IF NOT FOUND OR num_nonnulls(pol.keep_runs, pol.keep_logs) = 0 THEN
        RETURN json_build_object('runs', 0, 'log_chunks', 0, 'behind', false, 'policy', false);
    END IF;
    -- never queue behind a lock: a later pass takes what this one cannot
    PERFORM set_config('lock_timeout', '200ms', true);
    -- the rollups keep what retention removes (src/analytics.sql)
    PERFORM set_config('crm_dashboard_retention.pass', 'on', true);
    runs_cutoff := now() - pol.keep_runs;
    failed_cutoff := now() - coalesce(pol.keep_failed_runs, pol.keep_runs);
    logs_cutoff := now() - pol.keep_logs;

    IF logs_cutoff IS NOT NULL THEN
        WITH gone AS (
            DELETE FROM crm_dashboard.sync_log_chunk k
             WHERE k.ctid = ANY (ARRAY(
                   SELECT c.ctid FROM crm_dashboard.sync_log_chunk c
                    WHERE c.written_at < logs_cutoff
                      AND NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history h
                                       WHERE h.id = c.run_id AND h.status IN ('queued', 'running'))
                    ORDER BY c.written_at
                    LIMIT pol.batch_size
                      FOR UPDATE SKIP LOCKED))
            RETURNING k.written_at)
        SELECT count(*), max(written_at) INTO n_chunks, logs_upto FROM gone;
    END IF;

    IF runs_cutoff IS NOT NULL THEN
        protected := ARRAY(SELECT crm_dashboard.retention_protected());
        WITH victims AS (
            SELECT h.id, h.start_time FROM crm_dashboard.sync_history h
             WHERE h.start_time < greatest(runs_cutoff, failed_cutoff)
               AND h.status NOT IN ('queued', 'running')
               AND (h.start_time < runs_cutoff AND h.status <> 'failed' OR h.start_time < failed_cutoff)
               AND h.id <> ALL (protected)
               -- an "all" run goes with its model runs (ON DELETE CASCADE):
               -- only once none of them is to be kept
               AND NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history c
                                WHERE c.parent_id = h.id
                                  AND (c.status IN ('queued', 'running') OR c.id = ANY (protected)
                                       OR c.start_time >= failed_cutoff
                                       OR (c.start_time >= runs_cutoff AND c.status <> 'failed')))
             ORDER BY h.start_time, h.id
             LIMIT pol.batch_size
               FOR UPDATE SKIP LOCKED),
        gone AS (
            DELETE FROM crm_dashboard.sync_history d USING victims v WHERE d.id = v.id
            RETURNING v.start_time)
        SELECT count(*), max(start_time) INTO n_runs, runs_upto FROM gone;
    END IF;

    INSERT INTO crm_dashboard.retention_state AS s (only_row) VALUES (true) ON CONFLICT (only_row) DO NOTHING;
    UPDATE crm_dashboard.retention_state s
       SET logs_removed_before = CASE WHEN logs_cutoff IS NULL THEN s.logs_removed_before
                                      WHEN n_chunks < pol.batch_size THEN greatest(s.logs_removed_before, logs_cutoff)
                                      ELSE greatest(s.logs_removed_before, logs_upto) END,
           runs_removed_before = CASE WHEN runs_cutoff IS NULL THEN s.runs_removed_before
                                      WHEN n_runs < pol.batch_size THEN greatest(s.runs_removed_before, runs_cutoff)
                                      ELSE greatest(s.runs_removed_before, least(runs_upto, runs_cutoff)) END,
           failed_removed_before = CASE WHEN runs_cutoff IS NULL THEN s.failed_removed_before
                                        WHEN n_runs < pol.batch_size THEN greatest(s.failed_removed_before, failed_cutoff)
                                        ELSE greatest(s.failed_removed_before, least(runs_upto, failed_cutoff)) END,
           last_pass_at = now(), last_pass_by = apply_retention.by,
           last_pass_runs = n_runs, last_pass_log_chunks = n_chunks,
           runs_removed = s.runs_removed + n_runs, log_chunks_removed = s.log_chunks_removed + n_chunks,
           behind = n_runs >= pol.batch_size OR n_chunks >= pol.batch_size;
    RETURN json_build_object('runs', n_runs, 'log_chunks', n_chunks,
                             'behind', n_runs >= pol.batch_size OR n_chunks >= pol.batch_size, 'policy', true);
EXCEPTION
    WHEN lock_not_available THEN
        -- someone holds what this pass needed: try again at the next one
        RETURN json_build_object('runs', 0, 'log_chunks', 0, 'behind', true, 'policy', true, 'note', SQLERRM);
END
$$;
COMMENT ON FUNCTION crm_dashboard.apply_retention(text) IS
    'Private: one batch of retention (at most batch_size log chunks, then batch_size runs, oldest first, never each model''s latest run and latest success); returns {runs, log_chunks, behind}.';

-- For pg_cron: passes, each committed, until retention has caught up or
-- max_seconds have gone by.  A procedure with a SET clause cannot commit,
-- so instead of pinning search_path every name here is qualified.
CREATE PROCEDURE crm_dashboard.retention_job(max_seconds integer DEFAULT 50)
LANGUAGE plpgsql
AS $$
DECLARE
    stop_at pg_catalog.timestamptz := pg_catalog.clock_timestamp()
        OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => GREATEST(max_seconds, 1));
BEGIN
    LOOP
        EXIT WHEN NOT (crm_dashboard.apply_retention('pg_cron') OPERATOR(pg_catalog.->>) 'behind')::pg_catalog.bool;
        COMMIT;
        EXIT WHEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) stop_at;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE crm_dashboard.retention_job(integer) IS
    'Private: what the pg_cron job "crm_dashboard retention" calls when the launcher does not serve this database: passes of retention, each committed, for at most max_seconds.';

-- The pg_cron job applies retention only where the launcher does not.
CREATE FUNCTION crm_dashboard.schedule_retention_job(wanted boolean) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    IF to_regprocedure('cron.schedule(text, text, text)') IS NULL THEN
        RETURN CASE WHEN wanted AND NOT crm_dashboard.launcher_serves_here() THEN 'nobody' ELSE 'launcher' END;
    END IF;
    EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = $1' INTO job USING 'crm_dashboard retention';
    IF wanted AND NOT crm_dashboard.launcher_serves_here() THEN
        IF job IS NULL THEN
            EXECUTE 'SELECT cron.schedule($1, $2, $3)'
                USING 'crm_dashboard retention', '* * * * *', 'CALL crm_dashboard.retention_job()';
        END IF;
        RETURN 'pg_cron';
    END IF;
    IF job IS NOT NULL THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    END IF;
    RETURN 'launcher';
END
$$;
COMMENT ON FUNCTION crm_dashboard.schedule_retention_job(boolean) IS
    'Private: keep the pg_cron job "crm_dashboard retention" (every minute) while a policy is set and the launcher does not serve this database; say who applies retention (launcher, pg_cron, nobody).';

-- Who applies retention here, in words for crm_api.retention.
CREATE FUNCTION crm_dashboard.retention_applier() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job boolean := false;
BEGIN
    IF crm_dashboard.launcher_serves_here() THEN
        RETURN 'launcher';
    END IF;
    IF to_regclass('cron.job') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1 AND active)' INTO job
            USING 'crm_dashboard retention';
    END IF;
    RETURN CASE WHEN job THEN 'pg_cron' ELSE 'nobody' END;
END
$$;
COMMENT ON FUNCTION crm_dashboard.retention_applier() IS
    'Private: who applies retention in this database: launcher, pg_cron or nobody.';

-- When the history of a model (or of everything) is kept from: its oldest
-- run still there, once retention has removed anything; NULL while
-- nothing was removed (the whole history is there).  Views that viewers
-- read call it, so it reads the private state with its owner's rights.
CREATE FUNCTION crm_dashboard.history_kept_since() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s.runs_removed > 0 THEN s.runs_removed_before END
      FROM crm_dashboard.retention_state s
$$;
COMMENT ON FUNCTION crm_dashboard.history_kept_since() IS
    'Private: the time before which retention removed runs (each model''s latest run and latest success aside), or NULL when it removed none.';

CREATE FUNCTION crm_api.set_retention(keep_runs interval DEFAULT NULL, keep_failed_runs interval DEFAULT NULL,
                                      keep_logs interval DEFAULT NULL, batch_size integer DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    IF keep_runs NOT BETWEEN interval '1 day' AND interval '100 years' THEN
        PERFORM crm_dashboard.policy_value_error('keep_runs', quote_literal(keep_runs), 'between 1 day and 100 years',
            'Runs older than this are removed, but each model''s latest run and latest success; leave it NULL to keep them for ever.');
    END IF;
    IF keep_failed_runs IS NOT NULL AND keep_runs IS NULL THEN
        PERFORM crm_dashboard.policy_value_error('keep_failed_runs', quote_literal(keep_failed_runs),
            'NULL while keep_runs is NULL', 'Runs are kept for ever; set keep_runs too, shorter than keep_failed_runs.');
    END IF;
    IF keep_failed_runs < keep_runs OR keep_failed_runs > interval '100 years' THEN
        PERFORM crm_dashboard.policy_value_error('keep_failed_runs', quote_literal(keep_failed_runs),
            format('at least keep_runs (%s) and at most 100 years', quote_literal(keep_runs)),
            'Failed runs are kept at least as long as the others; leave it NULL to keep them as long.');
    END IF;
    IF keep_logs NOT BETWEEN interval '1 hour' AND interval '100 years' THEN
        PERFORM crm_dashboard.policy_value_error('keep_logs', quote_literal(keep_logs), 'between 1 hour and 100 years',
            'Logs older than this are removed; their runs stay.');
    END IF;
    IF keep_logs > keep_runs THEN
        PERFORM crm_dashboard.policy_value_error('keep_logs', quote_literal(keep_logs),
            format('at most keep_runs (%s)', quote_literal(keep_runs)),
            'A log goes with its run at the latest; keep logs for a shorter time than runs.');
    END IF;
    IF batch_size NOT BETWEEN 10 AND 100000 THEN
        PERFORM crm_dashboard.policy_value_error('batch_size', batch_size::text, 'between 10 and 100000',
            'Each pass removes at most this many runs and log chunks in one short transaction; the default is 500.');
    END IF;
    INSERT INTO crm_dashboard.retention_policy AS p (only_row, keep_runs, keep_failed_runs, keep_logs, batch_size, updated_by)
    VALUES (true, keep_runs, keep_failed_runs, keep_logs, coalesce(batch_size, 500), crm_dashboard.requester_name())
    ON CONFLICT (only_row) DO UPDATE
       SET keep_runs = EXCLUDED.keep_runs, keep_failed_runs = EXCLUDED.keep_failed_runs,
           keep_logs = EXCLUDED.keep_logs, batch_size = coalesce(set_retention.batch_size, p.batch_size),
           updated_by = EXCLUDED.updated_by, updated_at = now();
    PERFORM crm_dashboard.schedule_retention_job(num_nonnulls(keep_runs, keep_logs) > 0);
    PERFORM crm_dashboard.wake_launcher();
    SELECT row_to_json(r) INTO result FROM crm_api.retention r;
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_api.set_retention(interval, interval, interval, integer) IS
    'Set the retention policy: runs older than keep_runs are removed (failed ones after keep_failed_runs, at least keep_runs), logs after keep_logs (at most keep_runs); NULL keeps for ever; each model''s latest run and latest success are always kept.  Applied in batches of batch_size (default 500) by the launcher, or a pg_cron job where the launcher does not serve the database.  Returns crm_api.retention.';

CREATE FUNCTION crm_api.apply_retention() RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN crm_dashboard.apply_retention(CASE WHEN crm_dashboard.requester_name() = session_user THEN 'sql' ELSE 'ui' END);
END
$$;
COMMENT ON FUNCTION crm_api.apply_retention() IS
    'Apply one batch of the retention policy now (the launcher or pg_cron does it anyway): {runs, log_chunks, behind}.';

CREATE VIEW crm_api.retention AS
    SELECT p.keep_runs, p.keep_failed_runs, p.keep_logs, coalesce(p.batch_size, 500) AS batch_size,
           p.updated_by, p.updated_at,
           crm_dashboard.history_kept_since() AS history_kept_since,
           CASE WHEN s.log_chunks_removed > 0 THEN s.logs_removed_before END AS logs_kept_since,
           s.failed_removed_before AS failed_runs_kept_since,
           CASE WHEN num_nonnulls(p.keep_runs, p.keep_logs) > 0 THEN crm_dashboard.retention_applier() END AS applied_by,
           s.last_pass_at, s.last_pass_by, coalesce(s.last_pass_runs, 0) AS last_pass_runs,
           coalesce(s.last_pass_log_chunks, 0) AS last_pass_log_chunks,
           coalesce(s.runs_removed, 0) AS runs_removed, coalesce(s.log_chunks_removed, 0) AS log_chunks_removed,
           coalesce(s.behind, false) AS behind,
           (SELECT min(h.start_time) FROM crm_dashboard.sync_history h) AS oldest_run_at
      FROM (VALUES (true)) AS o(only_row)
      LEFT JOIN crm_dashboard.retention_policy p ON p.only_row
      LEFT JOIN crm_dashboard.retention_state s ON s.only_row;
COMMENT ON VIEW crm_api.retention IS
    'The retention policy (NULL: kept for ever) and what it did: history kept since (runs before it are gone but each model''s latest run and latest success), logs kept since, who applies it (launcher, pg_cron, nobody), the last pass, totals, whether it is behind, and the oldest run there is.';

REVOKE ALL ON FUNCTION crm_dashboard.launcher_serves_here(), crm_dashboard.retention_protected(),
    crm_dashboard.apply_retention(text), crm_dashboard.schedule_retention_job(boolean),
    crm_dashboard.retention_applier(), crm_dashboard.history_kept_since(),
    crm_api.set_retention(interval, interval, interval, integer), crm_api.apply_retention() FROM PUBLIC;
REVOKE ALL ON PROCEDURE crm_dashboard.retention_job(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.launcher_serves_here(), crm_dashboard.retention_applier(),
    crm_dashboard.history_kept_since() TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.set_retention(interval, interval, interval, integer),
    crm_api.apply_retention() TO crm_dashboard_admin;
GRANT SELECT ON crm_api.retention TO crm_dashboard_viewer;

-- ---- The reads of logs say what retention removed ----------------------------

-- The note a read of a run's log gives when retention removed it.
CREATE FUNCTION crm_dashboard.log_removed_note(run_id bigint) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT format('[log removed by the retention policy: logs are kept for %s]', p.keep_logs)
      FROM crm_dashboard.sync_history h, crm_dashboard.retention_policy p, crm_dashboard.retention_state s
     WHERE h.id = log_removed_note.run_id AND p.keep_logs IS NOT NULL
       AND s.logs_removed_before IS NOT NULL AND coalesce(h.end_time, h.start_time) < s.logs_removed_before
$$;
COMMENT ON FUNCTION crm_dashboard.log_removed_note(bigint) IS
    'Private: the note a read of a run''s log gives when retention removed it, or NULL.';
REVOKE ALL ON FUNCTION crm_dashboard.log_removed_note(bigint) FROM PUBLIC;

-- A run's kept output (src/logs.sql), with a note when retention removed it.
CREATE OR REPLACE FUNCTION crm_dashboard.log_text(run_id bigint) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN count(*) = 0 THEN coalesce(crm_dashboard.log_removed_note(log_text.run_id), '')
                WHEN min(c.first_byte) > 0
                    THEN format(E'[... %s bytes of earlier output dropped ...]\n', min(c.first_byte))
                         || string_agg(c.body, '' ORDER BY c.seq)
                ELSE string_agg(c.body, '' ORDER BY c.seq) END
      FROM crm_dashboard.sync_log_chunk c
     WHERE c.run_id = log_text.run_id
$$;
COMMENT ON FUNCTION crm_dashboard.log_text(bigint) IS
    'Private: a run''s kept output, with a note when its beginning was dropped or retention removed it.';

-- ---- History at scale: analytics, anomalies and error fingerprints (src/analytics.sql, src/analytics.c, src/fingerprint.c)

-- What was unusual about a finished run, and the fingerprint of its
-- error: two columns at the end of the history row (src/schema.sql), shown
-- by crm_api.sync_runs and crm_api.crm_models (src/history.sql).
ALTER TABLE crm_dashboard.sync_history ADD COLUMN anomalies jsonb, ADD COLUMN error_fingerprint text;

CREATE OR REPLACE VIEW crm_api.crm_models AS
    WITH schedules AS MATERIALIZED (SELECT * FROM crm_dashboard.active_schedules())
    SELECT m.*, crm_dashboard.name_problem(m.model) AS name_problem,
           st.paused, st.pause_scope, st.paused_by, st.pause_reason, st.paused_at,
           st.action_required, st.action_required_run_id, st.action_required_error,
           f.freshness, f.expected_by, f.last_success_at,
           extract(epoch FROM f.cadence)::float8 AS cadence_seconds, f.cadence_source,
           w.watermark AS data_watermark, w.note AS watermark_note,
           (SELECT h.anomalies FROM crm_dashboard.sync_history h WHERE h.id = m.last_run_id) AS last_run_anomalies
      FROM crm_dashboard.crm_models(NULL) m
      LEFT JOIN LATERAL crm_dashboard.model_state(m.crm, m.model) st ON true
      LEFT JOIN LATERAL (SELECT array_agg(s.cron) AS crons, min(s.created_at) AS since FROM schedules s
                          WHERE s.crm = m.crm AND s.model IN (m.model, 'all')) sc ON true
      LEFT JOIN LATERAL crm_dashboard.freshness_of(m.crm, m.model, sc.crons, sc.since) f ON true
      LEFT JOIN crm_dashboard.model_watermarks(NULL) w ON w.crm = m.crm AND w.model = m.model;
COMMENT ON VIEW crm_api.crm_models IS
    'One row per model (table <crm>_<model>): estimated rows, latest run and its figures, active run; name_problem says why a model cannot be synced; its pause; action required (with the error); freshness (on_time, late, overdue, unknown), expected by, last success, cadence and its source (sla, schedule, learned); data watermark (newest "updated" value) or why there is none (not indexed); what was unusual about the latest run (last_run_anomalies, as in crm_api.sync_runs).';


CREATE OR REPLACE VIEW crm_api.sync_runs AS
    SELECT h.id, h.crm_source::text AS crm, h.sync_type::text AS model, h.status::text AS status,
           h.start_time, h.end_time,
           crm_dashboard.run_duration(h.status, h.start_time, h.end_time) AS duration_seconds,
           h.records_processed, h.records_created, h.records_updated, h.records_failed,
           h.records_total, h.error_message, h.requested_by, h.requested_via, h.parent_id,
           h.configuration, h.performance_metrics, h.exit_code, h.exit_signal, h.queued_at,
           h.attempt, h.max_attempts, h.first_attempt_id, h.not_before, h.priority, h.error_class,
           h.rate_limited_until, h.last_output_at,
           CASE WHEN h.status = 'queued' THEN crm_dashboard.wait_reason(h) END AS wait_reason,
           CASE WHEN h.status = 'running' THEN crm_dashboard.run_eta(h) END AS eta_seconds,
           h.anomalies, h.error_fingerprint
      FROM crm_dashboard.sync_history h
     ORDER BY h.start_time DESC, h.id DESC;
COMMENT ON VIEW crm_api.sync_runs IS
    'Every sync run, newest first; filter by crm, model, status.  attempt n of max_attempts (first_attempt_id links retries to the first); a queued run says why it waits (wait_reason) and does not start before not_before; error_class says why one failed; eta_seconds estimates what is left; anomalies says what was unusual about a finished run against its model''s recent runs ([{kind, message, value, usual}]); error_fingerprint groups its failure with the same failure elsewhere (crm_api.failures).  The output log is crm_api.sync_log(id).';


-- src/analytics.sql, all new
-- Sync analytics (seed phase 2): daily rollups per model kept current as
-- runs finish, the figures of 24 hours and 7, 30 and 90 days per model and
-- per CRM, anomalies of a run against its model's recent runs, and error
-- fingerprints that group failures across runs and models.
--
-- The rollups change in the transaction that changes the history (a
-- statement trigger with transition tables), so they are right after a
-- crash as the history is: a run is counted once its final state is
-- committed, and never twice.  crm_dashboard.rebuild_rollups recomputes
-- days from the raw history.  Retention deletes runs without touching the
-- rollups, so the figures of the past outlive the rows.
--
-- Days are UTC days of the run's start.  Runs of whole CRMs ("all") count
-- through their model runs.

COMMENT ON COLUMN crm_dashboard.sync_history.anomalies IS
    'What was unusual about a finished run against its model''s recent completed runs (median and MAD): [{kind, message, value, usual}], kinds zero_records, slow, failed_share; [] when nothing; NULL when not assessed (running, failed, cancelled, or finished before 1.1.0).';
COMMENT ON COLUMN crm_dashboard.sync_history.error_fingerprint IS
    'The error message of a failed or partial run with numbers, ids, quoted values, URLs and timestamps as placeholders (crm_dashboard.error_fingerprint): the same failure has the same fingerprint in any run of any model.';

-- ---- Histograms of seconds (src/analytics.c) --------------------------------

CREATE FUNCTION crm_dashboard.sketch_agg_step(internal, float8, integer) RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sketch_agg_step';
CREATE FUNCTION crm_dashboard.sketch_sum_step(internal, bigint[]) RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sketch_sum_step';
CREATE FUNCTION crm_dashboard.sketch_final(internal) RETURNS bigint[]
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sketch_final';
COMMENT ON FUNCTION crm_dashboard.sketch_agg_step(internal, float8, integer) IS 'Private: transition of crm_dashboard.sketch_agg.';
COMMENT ON FUNCTION crm_dashboard.sketch_sum_step(internal, bigint[]) IS 'Private: transition of crm_dashboard.sketch_sum.';
COMMENT ON FUNCTION crm_dashboard.sketch_final(internal) IS 'Private: the histogram an aggregate built.';
CREATE AGGREGATE crm_dashboard.sketch_agg(float8, integer) (
    SFUNC = crm_dashboard.sketch_agg_step, STYPE = internal, FINALFUNC = crm_dashboard.sketch_final);
COMMENT ON AGGREGATE crm_dashboard.sketch_agg(float8, integer) IS
    'Private: a histogram of seconds with 1 % relative accuracy, each value counted weight times (negative: taken away).';
CREATE AGGREGATE crm_dashboard.sketch_sum(bigint[]) (
    SFUNC = crm_dashboard.sketch_sum_step, STYPE = internal, FINALFUNC = crm_dashboard.sketch_final);
COMMENT ON AGGREGATE crm_dashboard.sketch_sum(bigint[]) IS 'Private: the sum of histograms.';
CREATE FUNCTION crm_dashboard.sketch_merge(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sketch_merge';
COMMENT ON FUNCTION crm_dashboard.sketch_merge(bigint[], bigint[]) IS 'Private: the sum of two histograms (NULL is empty).';
CREATE FUNCTION crm_dashboard.sketch_quantile(histogram bigint[], q float8) RETURNS float8
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_sketch_quantile';
COMMENT ON FUNCTION crm_dashboard.sketch_quantile(bigint[], float8) IS
    'Private: the q-quantile of a histogram (as percentile_disc(q) would give it, within 1 %), NULL when empty.';

-- ---- Error fingerprints (src/fingerprint.c) ----------------------------------

CREATE FUNCTION crm_dashboard.error_fingerprint(message text, crm text DEFAULT NULL, model text DEFAULT NULL)
RETURNS text
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_error_fingerprint';
COMMENT ON FUNCTION crm_dashboard.error_fingerprint(text, text, text) IS
    'The fingerprint of an error message: numbers, ids, quoted values, URLs, e-mail addresses and timestamps as <n>, <id>, <value>, <url>, <email>, <time>; the run''s CRM (any case), model and table as <crm>, <model> and <table>; an HTTP status kept ("HTTP 429 Too Many Requests ... after <n> s").';

-- ---- Anomalies ---------------------------------------------------------------

-- A count in words, two significant digits: 1,200; 45; 3.1 million.
CREATE FUNCTION crm_dashboard.about(n float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN n IS NULL THEN NULL
            WHEN abs(n) >= 1e6 THEN to_char(round((n / 1e6)::numeric, 1), 'FM999G999G990D0') || ' million'
            WHEN abs(n) >= 100 THEN to_char(round(n::numeric, 1 - floor(log(abs(n)))::integer), 'FM999G999G999')
            ELSE to_char(round(n::numeric), 'FM999') END;
COMMENT ON FUNCTION crm_dashboard.about(float8) IS 'Private: a count rounded for a sentence ("about 1,200").';

-- A share as a percentage for a sentence: 12 %, 3.5 %, 0.1 %, 0.02 %.
CREATE FUNCTION crm_dashboard.percent(share float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN share IS NULL THEN NULL
            WHEN share = 0 THEN '0 %'
            WHEN share >= 0.1 THEN round((share * 100)::numeric) || ' %'
            WHEN share >= 0.001 THEN round((share * 100)::numeric, 1) || ' %'
            ELSE round((share * 100)::numeric, 2) || ' %' END;
COMMENT ON FUNCTION crm_dashboard.percent(float8) IS 'Private: a share (0..1) as a percentage for a sentence.';

-- The baseline of a model before a time: median and MAD of duration,
-- records processed and failed-record share over its last 20 completed
-- (success or partial) runs.
CREATE FUNCTION crm_dashboard.run_baseline(crm text, model text, before timestamptz,
    OUT runs integer, OUT seconds_median float8, OUT seconds_mad float8,
    OUT processed_median float8, OUT share_median float8, OUT share_mad float8)
LANGUAGE sql STABLE
AS $$
    WITH recent AS (
        SELECT extract(epoch FROM h.end_time - h.start_time)::float8 AS seconds,
               h.records_processed::float8 AS processed,
               CASE WHEN h.records_processed > 0 THEN h.records_failed::float8 / h.records_processed END AS share
          FROM crm_dashboard.sync_history h
         WHERE h.crm_source = run_baseline.crm AND h.sync_type = run_baseline.model
           AND h.status IN ('success', 'partial') AND h.start_time < run_baseline.before
         ORDER BY h.start_time DESC, h.id DESC
         LIMIT 20),
    medians AS (
        SELECT count(*)::integer AS runs,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS seconds_median,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY processed) AS processed_median,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY share) AS share_median
          FROM recent)
    SELECT m.runs, m.seconds_median,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(r.seconds - m.seconds_median)) FROM recent r),
           m.processed_median, m.share_median,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(r.share - m.share_median)) FROM recent r)
      FROM medians m
$$;
COMMENT ON FUNCTION crm_dashboard.run_baseline(text, text, timestamptz) IS
    'Private: median and median absolute deviation of duration, records and failed-record share of a model''s last 20 completed runs before a time.';

-- What is unusual about a completed run, against the baseline of the runs
-- before it (at least 5).  Robust: a value is unusual only when it is far
-- from the median in MADs (scaled by 1.4826, a standard deviation for
-- normal data) and by a clear factor, so a steady model's noise stays quiet.
--   zero_records: 0 records where the median is at least 10;
--   slow: at least twice the median duration, 5 s and 3 scaled MADs more;
--   failed_share: at least 1 % of records failed, five times the median
--     share and 3 scaled MADs more.
CREATE FUNCTION crm_dashboard.run_anomalies(crm text, model text, status text, start_time timestamptz,
                                            end_time timestamptz, processed bigint, failed bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b record;
    seconds float8 := extract(epoch FROM end_time - start_time);
    share float8 := CASE WHEN processed > 0 THEN failed::float8 / processed END;
    found jsonb := '[]';
BEGIN
    IF status NOT IN ('success', 'partial') OR end_time IS NULL OR model = 'all' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO b FROM crm_dashboard.run_baseline(crm, model, start_time);
    IF b.runs < 5 THEN
        RETURN found;
    END IF;
    IF processed = 0 AND b.processed_median >= 10 THEN
        found := found || jsonb_build_object('kind', 'zero_records', 'value', 0, 'usual', b.processed_median,
            'message', format('0 records — usually about %s', crm_dashboard.about(b.processed_median)));
    END IF;
    IF b.seconds_median > 0 AND seconds >= 2 * b.seconds_median AND seconds - b.seconds_median >= 5
       AND seconds - b.seconds_median > 3 * 1.4826 * b.seconds_mad THEN
        found := found || jsonb_build_object('kind', 'slow', 'value', round(seconds::numeric, 3),
            'usual', round(b.seconds_median::numeric, 3), 'ratio', round((seconds / b.seconds_median)::numeric, 1),
            'message', format('%s× slower than usual', round((seconds / b.seconds_median)::numeric, 1)));
    END IF;
    IF share >= 0.01 AND share >= 5 * coalesce(b.share_median, 0)
       AND share - coalesce(b.share_median, 0) > 3 * 1.4826 * coalesce(b.share_mad, 0) THEN
        found := found || jsonb_build_object('kind', 'failed_share', 'value', round(share::numeric, 4),
            'usual', round(coalesce(b.share_median, 0)::numeric, 4),
            'message', format('failed-record share %s, usually %s', crm_dashboard.percent(share),
                              crm_dashboard.percent(coalesce(b.share_median, 0))));
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION crm_dashboard.run_anomalies(text, text, text, timestamptz, timestamptz, bigint, bigint) IS
    'Private: the anomalies of a completed run against the median and MAD of its model''s last 20 completed runs before it (zero_records, slow, failed_share), [] for none, NULL unless success or partial.';

-- Before a run's final state is written: its anomalies and the fingerprint
-- of its error, in the same row; an anomaly is announced (event anomaly).
CREATE FUNCTION crm_dashboard.assess_run() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.anomalies := crm_dashboard.run_anomalies(NEW.crm_source, NEW.sync_type, NEW.status, NEW.start_time,
                                                 NEW.end_time, NEW.records_processed, NEW.records_failed);
    NEW.error_fingerprint := CASE WHEN NEW.status IN ('failed', 'partial') AND NEW.sync_type <> 'all'
        THEN crm_dashboard.error_fingerprint(NEW.error_message, NEW.crm_source, NEW.sync_type) END;
    IF jsonb_array_length(NEW.anomalies) > 0 THEN
        PERFORM crm_dashboard.emit_event('anomaly', NEW.crm_source, NEW.sync_type, NEW.id,
                                         jsonb_build_object('anomalies', NEW.anomalies));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm_dashboard.assess_run() IS
    'Private: set a finished run''s anomalies and error fingerprint before it is written (event anomaly when it has any).';

CREATE TRIGGER sync_history_assess_insert
    BEFORE INSERT ON crm_dashboard.sync_history
    FOR EACH ROW WHEN (NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION crm_dashboard.assess_run();
CREATE TRIGGER sync_history_assess_update
    BEFORE UPDATE ON crm_dashboard.sync_history
    FOR EACH ROW WHEN (NEW.status NOT IN ('queued', 'running')
                       AND (OLD.status IS DISTINCT FROM NEW.status
                            OR OLD.error_message IS DISTINCT FROM NEW.error_message
                            OR OLD.end_time IS DISTINCT FROM NEW.end_time
                            OR OLD.records_processed IS DISTINCT FROM NEW.records_processed
                            OR OLD.records_failed IS DISTINCT FROM NEW.records_failed))
    EXECUTE FUNCTION crm_dashboard.assess_run();

-- ---- Rollups -----------------------------------------------------------------

-- A day of a model: runs by final status, records, durations and time
-- queued, with histograms for percentiles.
CREATE TABLE crm_dashboard.run_rollup (
    crm               text NOT NULL,
    model             text NOT NULL,
    day               date NOT NULL,
    runs              integer NOT NULL DEFAULT 0,
    succeeded         integer NOT NULL DEFAULT 0,
    partial           integer NOT NULL DEFAULT 0,
    failed            integer NOT NULL DEFAULT 0,
    cancelled         integer NOT NULL DEFAULT 0,
    records_processed bigint NOT NULL DEFAULT 0,
    records_created   bigint NOT NULL DEFAULT 0,
    records_updated   bigint NOT NULL DEFAULT 0,
    records_failed    bigint NOT NULL DEFAULT 0,
    worked_seconds    float8 NOT NULL DEFAULT 0,
    worked_records    bigint NOT NULL DEFAULT 0,
    waited_runs       integer NOT NULL DEFAULT 0,
    waited_seconds    float8 NOT NULL DEFAULT 0,
    durations         bigint[] NOT NULL DEFAULT '{}',
    waits             bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (crm, model, day)
);
COMMENT ON TABLE crm_dashboard.run_rollup IS
    'Private: per model and UTC day of start, the finished runs: counts by status, records, worked_seconds and worked_records of completed (success, partial) runs, time queued of runs that ran (waited_*), and histograms (crm_dashboard.sketch_agg) of durations of completed runs and of waits.  Kept current by the history''s trigger; rebuilt by crm_dashboard.rebuild_rollups.';
CREATE INDEX run_rollup_day ON crm_dashboard.run_rollup (day);
REVOKE ALL ON crm_dashboard.run_rollup FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.run_rollup', '');

-- Per fingerprint, model and day: the failed and partial runs.
CREATE TABLE crm_dashboard.failure_rollup (
    fingerprint text NOT NULL,
    crm         text NOT NULL,
    model       text NOT NULL,
    day         date NOT NULL,
    runs        integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0,
    partial     integer NOT NULL DEFAULT 0,
    first_seen  timestamptz,
    last_seen   timestamptz,
    PRIMARY KEY (fingerprint, crm, model, day)
);
COMMENT ON TABLE crm_dashboard.failure_rollup IS
    'Private: per error fingerprint, model and UTC day, the failed and partial runs and when the first and last of them started.  Kept current by the history''s trigger.';
CREATE INDEX failure_rollup_day ON crm_dashboard.failure_rollup (day);
REVOKE ALL ON crm_dashboard.failure_rollup FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.failure_rollup', '');

-- Runs' fingerprints, newest first: the runs of a failure, and its latest message.
CREATE INDEX sync_history_fingerprint
    ON crm_dashboard.sync_history (error_fingerprint, start_time DESC)
    WHERE error_fingerprint IS NOT NULL;

-- A run counted in (1) or taken out of (-1) the rollups.
CREATE TYPE crm_dashboard.run_change AS (sign integer, run crm_dashboard.sync_history);
COMMENT ON TYPE crm_dashboard.run_change IS 'Private: a run added to (sign 1) or taken from (sign -1) the rollups.';

-- The one rule of what a finished run adds to its day: the rollup rows
-- (as deltas) of a set of changes.
CREATE FUNCTION crm_dashboard.rollup_deltas(changes crm_dashboard.run_change[])
RETURNS SETOF crm_dashboard.run_rollup
LANGUAGE sql STABLE
AS $$
    WITH c AS (
        SELECT ch.sign, (ch.run).crm_source::text AS crm, (ch.run).sync_type::text AS model,
               ((ch.run).start_time AT TIME ZONE 'UTC')::date AS day, (ch.run).status::text AS status,
               (ch.run).records_processed AS processed, (ch.run).records_created AS created,
               (ch.run).records_updated AS updated, (ch.run).records_failed AS failed,
               CASE WHEN (ch.run).status IN ('success', 'partial')
                    THEN extract(epoch FROM (ch.run).end_time - (ch.run).start_time)::float8 END AS seconds,
               CASE WHEN (ch.run).status IN ('success', 'partial', 'failed')
                    THEN greatest(0, extract(epoch FROM (ch.run).start_time - (ch.run).queued_at))::float8 END AS waited
          FROM unnest(changes) ch
         WHERE (ch.run).status IN ('success', 'partial', 'failed', 'cancelled') AND (ch.run).sync_type <> 'all')
    SELECT c.crm, c.model, c.day, sum(c.sign)::integer,
           (sum(c.sign) FILTER (WHERE c.status = 'success'))::integer,
           (sum(c.sign) FILTER (WHERE c.status = 'partial'))::integer,
           (sum(c.sign) FILTER (WHERE c.status = 'failed'))::integer,
           (sum(c.sign) FILTER (WHERE c.status = 'cancelled'))::integer,
           sum(c.sign * c.processed::bigint), sum(c.sign * c.created::bigint),
           sum(c.sign * c.updated::bigint), sum(c.sign * c.failed::bigint),
           coalesce(sum(c.sign * c.seconds), 0), coalesce(sum(c.sign * c.processed::bigint) FILTER (WHERE c.seconds IS NOT NULL), 0),
           coalesce(sum(c.sign) FILTER (WHERE c.waited IS NOT NULL), 0)::integer, coalesce(sum(c.sign * c.waited), 0),
           crm_dashboard.sketch_agg(c.seconds, c.sign), crm_dashboard.sketch_agg(c.waited, c.sign)
      FROM c
     GROUP BY c.crm, c.model, c.day
$$;
COMMENT ON FUNCTION crm_dashboard.rollup_deltas(crm_dashboard.run_change[]) IS
    'Private: what a set of finished runs adds to (or, with sign -1, takes from) the daily rollups.';

-- Per fingerprint, model and day: what a set of changes adds.
CREATE FUNCTION crm_dashboard.failure_deltas(changes crm_dashboard.run_change[])
RETURNS SETOF crm_dashboard.failure_rollup
LANGUAGE sql STABLE
AS $$
    SELECT (ch.run).error_fingerprint, (ch.run).crm_source::text, (ch.run).sync_type::text,
           ((ch.run).start_time AT TIME ZONE 'UTC')::date, sum(ch.sign)::integer,
           coalesce(sum(ch.sign) FILTER (WHERE (ch.run).status = 'failed'), 0)::integer,
           coalesce(sum(ch.sign) FILTER (WHERE (ch.run).status = 'partial'), 0)::integer,
           min((ch.run).start_time) FILTER (WHERE ch.sign > 0), max((ch.run).start_time) FILTER (WHERE ch.sign > 0)
      FROM unnest(changes) ch
     WHERE (ch.run).error_fingerprint IS NOT NULL AND (ch.run).status IN ('failed', 'partial')
       AND (ch.run).sync_type <> 'all'
     GROUP BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION crm_dashboard.failure_deltas(crm_dashboard.run_change[]) IS
    'Private: what a set of failed and partial runs adds to (sign -1: takes from) the fingerprints'' daily counts.';

-- Add changes to both rollups, in key order (two writers never deadlock).
CREATE FUNCTION crm_dashboard.rollup_add(changes crm_dashboard.run_change[]) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO crm_dashboard.run_rollup AS r
    SELECT d.crm, d.model, d.day, d.runs, coalesce(d.succeeded, 0), coalesce(d.partial, 0), coalesce(d.failed, 0),
           coalesce(d.cancelled, 0), d.records_processed, d.records_created, d.records_updated, d.records_failed,
           d.worked_seconds, d.worked_records, d.waited_runs, d.waited_seconds, d.durations, d.waits
      FROM crm_dashboard.rollup_deltas(changes) d
     ORDER BY d.crm, d.model, d.day
    ON CONFLICT (crm, model, day) DO UPDATE
       SET runs = r.runs + EXCLUDED.runs, succeeded = r.succeeded + EXCLUDED.succeeded,
           partial = r.partial + EXCLUDED.partial, failed = r.failed + EXCLUDED.failed,
           cancelled = r.cancelled + EXCLUDED.cancelled,
           records_processed = r.records_processed + EXCLUDED.records_processed,
           records_created = r.records_created + EXCLUDED.records_created,
           records_updated = r.records_updated + EXCLUDED.records_updated,
           records_failed = r.records_failed + EXCLUDED.records_failed,
           worked_seconds = r.worked_seconds + EXCLUDED.worked_seconds,
           worked_records = r.worked_records + EXCLUDED.worked_records,
           waited_runs = r.waited_runs + EXCLUDED.waited_runs, waited_seconds = r.waited_seconds + EXCLUDED.waited_seconds,
           durations = crm_dashboard.sketch_merge(r.durations, EXCLUDED.durations),
           waits = crm_dashboard.sketch_merge(r.waits, EXCLUDED.waits);
    INSERT INTO crm_dashboard.failure_rollup AS f
    SELECT * FROM crm_dashboard.failure_deltas(changes) d ORDER BY d.fingerprint, d.crm, d.model, d.day
    ON CONFLICT (fingerprint, crm, model, day) DO UPDATE
       SET runs = f.runs + EXCLUDED.runs, failed = f.failed + EXCLUDED.failed, partial = f.partial + EXCLUDED.partial,
           first_seen = least(f.first_seen, EXCLUDED.first_seen), last_seen = greatest(f.last_seen, EXCLUDED.last_seen);
    DELETE FROM crm_dashboard.failure_rollup f WHERE f.runs <= 0
       AND (f.fingerprint, f.crm, f.model, f.day) IN (SELECT d.fingerprint, d.crm, d.model, d.day
                                                        FROM crm_dashboard.failure_deltas(changes) d);
END;
COMMENT ON FUNCTION crm_dashboard.rollup_add(crm_dashboard.run_change[]) IS
    'Private: apply changes of finished runs to the daily rollups and the fingerprints'' counts.';

-- Whether an update changed what the rollups count of a run.
CREATE FUNCTION crm_dashboard.rollup_changed(o crm_dashboard.sync_history, n crm_dashboard.sync_history)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (n.status, n.crm_source, n.sync_type, n.start_time, n.end_time, n.queued_at, n.records_processed,
        n.records_created, n.records_updated, n.records_failed, n.error_fingerprint)
       IS DISTINCT FROM
       (o.status, o.crm_source, o.sync_type, o.start_time, o.end_time, o.queued_at, o.records_processed,
        o.records_created, o.records_updated, o.records_failed, o.error_fingerprint);
COMMENT ON FUNCTION crm_dashboard.rollup_changed(crm_dashboard.sync_history, crm_dashboard.sync_history) IS
    'Private: whether an update of a run changed what the daily rollups count of it.';

-- After any statement that changes the history: what it changed about
-- finished runs.  A flush of a running run changes nothing here and costs
-- one look at its transition rows.  Deletes by retention leave the rollups
-- as they are (the figures outlive the rows).
CREATE FUNCTION crm_dashboard.rollup_history() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changes crm_dashboard.run_change[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        changes := ARRAY(SELECT ROW(1, n)::crm_dashboard.run_change FROM new_rows n
                          WHERE n.status IN ('success', 'partial', 'failed', 'cancelled') AND n.sync_type <> 'all');
    ELSIF TG_OP = 'DELETE' THEN
        IF current_setting('crm_dashboard_retention.pass', true) = 'on' THEN
            RETURN NULL;
        END IF;
        changes := ARRAY(SELECT ROW(-1, o)::crm_dashboard.run_change FROM old_rows o
                          WHERE o.status IN ('success', 'partial', 'failed', 'cancelled') AND o.sync_type <> 'all');
    ELSE
        -- a changed finished run: its old figures out, its new ones in
        changes := ARRAY(
            SELECT ROW(-1, o)::crm_dashboard.run_change
              FROM old_rows o JOIN new_rows n ON n.id = o.id
             WHERE o.status IN ('success', 'partial', 'failed', 'cancelled') AND o.sync_type <> 'all'
               AND crm_dashboard.rollup_changed(o, n)
            UNION ALL
            SELECT ROW(1, n)::crm_dashboard.run_change
              FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE n.status IN ('success', 'partial', 'failed', 'cancelled') AND n.sync_type <> 'all'
               AND crm_dashboard.rollup_changed(o, n));
    END IF;
    IF cardinality(changes) > 0 THEN
        PERFORM crm_dashboard.rollup_add(changes);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION crm_dashboard.rollup_history() IS
    'Private: keep the daily rollups current with a statement''s changes to finished runs (not with retention''s deletes).';

CREATE TRIGGER sync_history_rollup_insert
    AFTER INSERT ON crm_dashboard.sync_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.rollup_history();
CREATE TRIGGER sync_history_rollup_update
    AFTER UPDATE ON crm_dashboard.sync_history
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.rollup_history();
CREATE TRIGGER sync_history_rollup_delete
    AFTER DELETE ON crm_dashboard.sync_history
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.rollup_history();

-- Recompute the rollups of days from the raw history, one day at a time.
-- Days before "history kept since" are left alone: retention removed
-- their rows, and only the rollups still know their figures.
CREATE FUNCTION crm_dashboard.rebuild_rollups(from_day date DEFAULT NULL, to_day date DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kept_from date := (crm_dashboard.history_kept_since() AT TIME ZONE 'UTC')::date + 1;
    first_day date;
    last_day date;
    d date;
    days integer := 0;
BEGIN
    SELECT greatest(coalesce(from_day, (min(h.start_time) AT TIME ZONE 'UTC')::date), kept_from),
           coalesce(to_day, (max(h.start_time) AT TIME ZONE 'UTC')::date)
      INTO first_day, last_day
      FROM crm_dashboard.sync_history h;
    d := first_day;
    WHILE d <= last_day LOOP
        DELETE FROM crm_dashboard.run_rollup r WHERE r.day = d;
        DELETE FROM crm_dashboard.failure_rollup f WHERE f.day = d;
        PERFORM crm_dashboard.rollup_add(ARRAY(
            SELECT ROW(1, h)::crm_dashboard.run_change FROM crm_dashboard.sync_history h
             WHERE h.start_time >= d::timestamp AT TIME ZONE 'UTC'
               AND h.start_time < (d + 1)::timestamp AT TIME ZONE 'UTC'
               AND h.status IN ('success', 'partial', 'failed', 'cancelled') AND h.sync_type <> 'all'));
        days := days + 1;
        d := d + 1;
    END LOOP;
    RETURN days;
END
$$;
COMMENT ON FUNCTION crm_dashboard.rebuild_rollups(date, date) IS
    'Private: recompute the daily rollups of the given UTC days (default: all there are) from the raw history, but days retention removed rows of; returns how many days.';

-- ---- Analytics ---------------------------------------------------------------

-- The periods analytics cover, and when each begins: 24 hours back from
-- now, or whole UTC days (today and the 6, 29 or 89 before it).
CREATE FUNCTION crm_dashboard.period_start(period text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE period
        WHEN '24h' THEN now() - interval '24 hours'
        WHEN '7d' THEN (((now() AT TIME ZONE 'UTC')::date - 6)::timestamp AT TIME ZONE 'UTC')
        WHEN '30d' THEN (((now() AT TIME ZONE 'UTC')::date - 29)::timestamp AT TIME ZONE 'UTC')
        WHEN '90d' THEN (((now() AT TIME ZONE 'UTC')::date - 89)::timestamp AT TIME ZONE 'UTC')
        ELSE crm_dashboard.unknown_period(period) END;
END
$$;
COMMENT ON FUNCTION crm_dashboard.period_start(text) IS
    'Private: when a period of analytics begins: 24h is the last 24 hours, 7d, 30d and 90d whole UTC days up to today.';

CREATE FUNCTION crm_dashboard.unknown_period(period text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'unknown analytics period %', coalesce(quote_literal(period), 'NULL')
        USING ERRCODE = 'invalid_parameter_value', DETAIL = 'period',
              HINT = 'A period is 24h, 7d, 30d or 90d.';
END
$$;
COMMENT ON FUNCTION crm_dashboard.unknown_period(text) IS 'Private: raise the error for an unknown analytics period.';

-- The figures of a period per model (by_model) or per CRM, for every model
-- or CRM that ran in it (crm, model NULL: all).  24h reads the raw
-- history (exact percentiles); the day periods read the rollups
-- (percentiles within 1 %).
CREATE FUNCTION crm_dashboard.analytics(of_period text, of_crm text DEFAULT NULL, of_model text DEFAULT NULL,
                                        by_model boolean DEFAULT true)
RETURNS TABLE (crm text, model text, period text, since timestamptz, runs bigint, succeeded bigint, partial bigint,
               failed bigint, cancelled bigint, success_rate float8, duration_p50 float8, duration_p95 float8,
               records_processed bigint, records_created bigint, records_updated bigint, records_failed bigint,
               days float8, records_per_second float8, queued_seconds_avg float8, queued_seconds_p95 float8)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since timestamptz := crm_dashboard.period_start(of_period);
    days float8 := CASE WHEN of_period = '24h' THEN 1
                        ELSE extract(epoch FROM now() - crm_dashboard.period_start(of_period)) / 86400 END;
BEGIN
    IF of_period = '24h' THEN
        RETURN QUERY
        WITH r AS (
            SELECT h.crm_source::text AS crm, CASE WHEN by_model THEN h.sync_type::text END AS model, h.status,
                   h.records_processed, h.records_created, h.records_updated, h.records_failed,
                   CASE WHEN h.status IN ('success', 'partial')
                        THEN extract(epoch FROM h.end_time - h.start_time)::float8 END AS seconds,
                   CASE WHEN h.status IN ('success', 'partial', 'failed')
                        THEN greatest(0, extract(epoch FROM h.start_time - h.queued_at))::float8 END AS waited
              FROM crm_dashboard.sync_history h
             WHERE h.start_time >= since AND h.status IN ('success', 'partial', 'failed', 'cancelled')
               AND h.sync_type <> 'all'
               AND (of_crm IS NULL OR h.crm_source = of_crm)
               AND (of_model IS NULL OR h.sync_type = of_model))
        SELECT r.crm, r.model, of_period, since, count(*), count(*) FILTER (WHERE r.status = 'success'),
               count(*) FILTER (WHERE r.status = 'partial'), count(*) FILTER (WHERE r.status = 'failed'),
               count(*) FILTER (WHERE r.status = 'cancelled'),
               (count(*) FILTER (WHERE r.status = 'success'))::float8
                   / nullif(count(*) FILTER (WHERE r.status IN ('success', 'partial', 'failed')), 0),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY r.seconds),
               percentile_disc(0.95) WITHIN GROUP (ORDER BY r.seconds),
               sum(r.records_processed)::bigint, sum(r.records_created)::bigint, sum(r.records_updated)::bigint,
               sum(r.records_failed)::bigint, days,
               sum(r.records_processed) FILTER (WHERE r.seconds IS NOT NULL) / nullif(sum(r.seconds), 0),
               avg(r.waited), percentile_disc(0.95) WITHIN GROUP (ORDER BY r.waited)
          FROM r
         GROUP BY r.crm, r.model;
    ELSE
        RETURN QUERY
        SELECT r.crm, CASE WHEN by_model THEN r.model END, of_period, since,
               sum(r.runs)::bigint, sum(r.succeeded)::bigint, sum(r.partial)::bigint, sum(r.failed)::bigint,
               sum(r.cancelled)::bigint,
               sum(r.succeeded)::float8 / nullif(sum(r.succeeded + r.partial + r.failed), 0),
               crm_dashboard.sketch_quantile(crm_dashboard.sketch_sum(r.durations), 0.5),
               crm_dashboard.sketch_quantile(crm_dashboard.sketch_sum(r.durations), 0.95),
               sum(r.records_processed)::bigint, sum(r.records_created)::bigint, sum(r.records_updated)::bigint,
               sum(r.records_failed)::bigint, days,
               sum(r.worked_records) / nullif(sum(r.worked_seconds), 0),
               sum(r.waited_seconds) / nullif(sum(r.waited_runs), 0),
               crm_dashboard.sketch_quantile(crm_dashboard.sketch_sum(r.waits), 0.95)
          FROM crm_dashboard.run_rollup r
         WHERE r.day >= (since AT TIME ZONE 'UTC')::date
           AND (of_crm IS NULL OR r.crm = of_crm)
           AND (of_model IS NULL OR r.model = of_model)
         GROUP BY r.crm, CASE WHEN by_model THEN r.model END
        HAVING sum(r.runs) > 0;
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.analytics(text, text, text, boolean) IS
    'Private: the figures of a period (24h, 7d, 30d, 90d) per model or per CRM: runs by final status, success rate, duration p50/p95 of completed runs, records, throughput, time queued.';

-- Every model (its figures, zero without runs) and every CRM, in each period.
CREATE VIEW crm_api.model_analytics AS
    SELECT m.crm, m.model, p.period, coalesce(a.since, crm_dashboard.period_start(p.period)) AS since,
           coalesce(a.runs, 0) AS runs, coalesce(a.succeeded, 0) AS succeeded, coalesce(a.partial, 0) AS partial,
           coalesce(a.failed, 0) AS failed, coalesce(a.cancelled, 0) AS cancelled, a.success_rate,
           a.duration_p50 AS duration_p50_seconds, a.duration_p95 AS duration_p95_seconds,
           coalesce(a.records_processed, 0) AS records_processed, coalesce(a.records_created, 0) AS records_created,
           coalesce(a.records_updated, 0) AS records_updated, coalesce(a.records_failed, 0) AS records_failed,
           coalesce(a.records_processed, 0) / coalesce(a.days, 1) AS records_processed_per_day,
           coalesce(a.records_created, 0) / coalesce(a.days, 1) AS records_created_per_day,
           coalesce(a.records_updated, 0) / coalesce(a.days, 1) AS records_updated_per_day,
           coalesce(a.records_failed, 0) / coalesce(a.days, 1) AS records_failed_per_day,
           a.records_per_second, a.queued_seconds_avg, a.queued_seconds_p95,
           crm_dashboard.history_kept_since() AS history_kept_since
      FROM crm_dashboard.crm_models(NULL) m
     CROSS JOIN (VALUES ('24h', 1), ('7d', 2), ('30d', 3), ('90d', 4)) AS p(period, ord)
      LEFT JOIN LATERAL crm_dashboard.analytics(p.period, m.crm, m.model) a ON true
     ORDER BY m.crm, m.model, p.ord;
COMMENT ON VIEW crm_api.model_analytics IS
    'Per model and period (24h: the last 24 hours; 7d, 30d, 90d: whole UTC days up to today): finished runs by status, success rate (successes of successes, partial and failed runs), duration p50/p95 of completed (success, partial) runs in seconds, records processed/created/updated/failed and per day, throughput (records per second of completed runs), time queued (average, p95).  24h is exact; the day periods come from daily rollups (percentiles within 1 %) and keep the figures of runs retention removed.';

CREATE VIEW crm_api.crm_analytics AS
    SELECT c.crm, p.period, coalesce(a.since, crm_dashboard.period_start(p.period)) AS since,
           coalesce(a.runs, 0) AS runs, coalesce(a.succeeded, 0) AS succeeded, coalesce(a.partial, 0) AS partial,
           coalesce(a.failed, 0) AS failed, coalesce(a.cancelled, 0) AS cancelled, a.success_rate,
           a.duration_p50 AS duration_p50_seconds, a.duration_p95 AS duration_p95_seconds,
           coalesce(a.records_processed, 0) AS records_processed, coalesce(a.records_created, 0) AS records_created,
           coalesce(a.records_updated, 0) AS records_updated, coalesce(a.records_failed, 0) AS records_failed,
           coalesce(a.records_processed, 0) / coalesce(a.days, 1) AS records_processed_per_day,
           coalesce(a.records_created, 0) / coalesce(a.days, 1) AS records_created_per_day,
           coalesce(a.records_updated, 0) / coalesce(a.days, 1) AS records_updated_per_day,
           coalesce(a.records_failed, 0) / coalesce(a.days, 1) AS records_failed_per_day,
           a.records_per_second, a.queued_seconds_avg, a.queued_seconds_p95,
           crm_dashboard.history_kept_since() AS history_kept_since
      FROM crm_dashboard.crm_sources() c
     CROSS JOIN (VALUES ('24h', 1), ('7d', 2), ('30d', 3), ('90d', 4)) AS p(period, ord)
      LEFT JOIN LATERAL crm_dashboard.analytics(p.period, c.crm, NULL, false) a ON true
     ORDER BY c.crm, p.ord;
COMMENT ON VIEW crm_api.crm_analytics IS
    'Per CRM and period, the figures of crm_api.model_analytics over all its models.';

-- A model's (or a CRM's, model NULL; or everything's, crm NULL) figures
-- per UTC day, for charts: the last days days, today included, every day
-- present (zero without runs).
CREATE FUNCTION crm_api.analytics_daily(crm text DEFAULT NULL, model text DEFAULT NULL, days integer DEFAULT 30)
RETURNS TABLE (day date, runs bigint, succeeded bigint, partial bigint, failed bigint, cancelled bigint,
               success_rate float8, duration_p50_seconds float8, duration_p95_seconds float8,
               records_processed bigint, records_created bigint, records_updated bigint, records_failed bigint,
               records_per_second float8, queued_seconds_avg float8)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 30
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    PERFORM crm_dashboard.check_search_filters(crm, model, NULL, NULL, NULL, 1);
    IF days IS NULL OR days NOT BETWEEN 1 AND 400 THEN
        RAISE EXCEPTION 'days must be between 1 and 400, not %', coalesce(days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'days', HINT = 'Charts show 7, 30 or 90 days.';
    END IF;
    RETURN QUERY
    SELECT d.day::date, coalesce(sum(r.runs), 0)::bigint, coalesce(sum(r.succeeded), 0)::bigint,
           coalesce(sum(r.partial), 0)::bigint, coalesce(sum(r.failed), 0)::bigint, coalesce(sum(r.cancelled), 0)::bigint,
           sum(r.succeeded)::float8 / nullif(sum(r.succeeded + r.partial + r.failed), 0),
           crm_dashboard.sketch_quantile(crm_dashboard.sketch_sum(r.durations), 0.5),
           crm_dashboard.sketch_quantile(crm_dashboard.sketch_sum(r.durations), 0.95),
           coalesce(sum(r.records_processed), 0)::bigint, coalesce(sum(r.records_created), 0)::bigint,
           coalesce(sum(r.records_updated), 0)::bigint, coalesce(sum(r.records_failed), 0)::bigint,
           sum(r.worked_records) / nullif(sum(r.worked_seconds), 0),
           sum(r.waited_seconds) / nullif(sum(r.waited_runs), 0)
      FROM generate_series(today - (days - 1), today, interval '1 day') AS d(day)
      LEFT JOIN crm_dashboard.run_rollup r
        ON r.day = d.day::date
       AND (analytics_daily.crm IS NULL OR r.crm = analytics_daily.crm)
       AND (analytics_daily.model IS NULL OR r.model = analytics_daily.model)
     GROUP BY d.day
     ORDER BY d.day;
END
$$;
COMMENT ON FUNCTION crm_api.analytics_daily(text, text, integer) IS
    'Figures per UTC day for charts, oldest first, every day present: of a model (crm, model), a CRM (model NULL) or everything (both NULL), over the last days days (1..400, default 30): runs by status, success rate, duration p50/p95 (within 1 %), records, throughput, average time queued.';

-- The outcomes of each model's latest runs, oldest first: the heat strip.
CREATE FUNCTION crm_api.run_outcomes(crm text, max_runs integer DEFAULT 48)
RETURNS TABLE (model text, outcomes json)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 20
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.check_target(crm, NULL);
    IF max_runs IS NULL OR max_runs NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'max_runs must be between 1 and 500, not %', coalesce(max_runs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_runs', HINT = 'The strip shows 48 runs by default.';
    END IF;
    RETURN QUERY
    SELECT m.model,
           coalesce((SELECT json_agg(json_build_object('id', l.id, 'status', l.status, 'start_time', l.start_time,
                                                       'duration_seconds', l.seconds, 'anomalies', l.anomalies)
                                     ORDER BY l.start_time, l.id)
                       FROM (SELECT h.id, h.status, h.start_time, h.anomalies,
                                    round(crm_dashboard.run_duration(h.status, h.start_time, h.end_time)::numeric, 1) AS seconds
                               FROM crm_dashboard.sync_history h
                              WHERE h.crm_source = m.crm AND h.sync_type = m.model
                              ORDER BY h.start_time DESC, h.id DESC LIMIT max_runs) l), '[]'::json)
      FROM crm_dashboard.crm_models(run_outcomes.crm) m
     ORDER BY m.model;
END
$$;
COMMENT ON FUNCTION crm_api.run_outcomes(text, integer) IS
    'The latest max_runs runs (1..500, default 48) of every model of a CRM, oldest first, as [{id, status, start_time, duration_seconds, anomalies}]: a heat strip of outcomes.';

-- ---- Failures ----------------------------------------------------------------

CREATE VIEW crm_api.failures AS
    WITH f AS (
        SELECT r.fingerprint, sum(r.runs) AS runs, sum(r.failed) AS failed_runs, sum(r.partial) AS partial_runs,
               count(DISTINCT (r.crm, r.model)) AS models, array_agg(DISTINCT r.crm ORDER BY r.crm) AS crms,
               min(r.first_seen) AS first_seen, max(r.last_seen) AS last_seen,
               sum(r.runs) FILTER (WHERE r.day >= (now() AT TIME ZONE 'UTC')::date - 6) AS runs_7d,
               sum(r.runs) FILTER (WHERE r.day < (now() AT TIME ZONE 'UTC')::date - 6
                                     AND r.day >= (now() AT TIME ZONE 'UTC')::date - 13) AS runs_previous_7d
          FROM crm_dashboard.failure_rollup r
         GROUP BY r.fingerprint
        HAVING sum(r.runs) > 0)
    SELECT f.fingerprint, f.runs, f.failed_runs, f.partial_runs, f.models, f.crms, f.first_seen, f.last_seen,
           coalesce(f.runs_7d, 0) AS runs_7d, coalesce(f.runs_previous_7d, 0) AS runs_previous_7d,
           CASE WHEN coalesce(f.runs_7d, 0) > coalesce(f.runs_previous_7d, 0) THEN 'rising'
                WHEN coalesce(f.runs_7d, 0) < coalesce(f.runs_previous_7d, 0) THEN 'falling'
                ELSE 'steady' END AS trend,
           (SELECT array_agg(coalesce(d.runs, 0) ORDER BY g.day)
              FROM generate_series((now() AT TIME ZONE 'UTC')::date - 13, (now() AT TIME ZONE 'UTC')::date,
                                   interval '1 day') AS g(day)
              LEFT JOIN (SELECT r.day, sum(r.runs)::integer AS runs FROM crm_dashboard.failure_rollup r
                          WHERE r.fingerprint = f.fingerprint GROUP BY r.day) d ON d.day = g.day::date) AS daily_runs,
           l.id AS latest_run_id, l.crm_source::text AS latest_crm, l.sync_type::text AS latest_model,
           l.error_message AS latest_message
      FROM f
      LEFT JOIN LATERAL (SELECT h.id, h.crm_source, h.sync_type, h.error_message FROM crm_dashboard.sync_history h
                          WHERE h.error_fingerprint = f.fingerprint
                          ORDER BY h.start_time DESC LIMIT 1) l ON true
     ORDER BY f.last_seen DESC, f.fingerprint;
COMMENT ON VIEW crm_api.failures IS
    'Failed and partial runs grouped by the fingerprint of their error (crm_dashboard.error_fingerprint), latest first: how many runs (failed, partial), models and CRMs, first and last seen, runs in the last 7 days against the 7 before (trend: rising, falling, steady), runs per day of the last 14 days, and the latest run with its message.  Its runs: crm_api.sync_runs filtered by error_fingerprint.';

REVOKE ALL ON FUNCTION crm_dashboard.sketch_agg_step(internal, float8, integer),
    crm_dashboard.sketch_sum_step(internal, bigint[]), crm_dashboard.sketch_final(internal),
    crm_dashboard.sketch_merge(bigint[], bigint[]), crm_dashboard.sketch_quantile(bigint[], float8),
    crm_dashboard.about(float8), crm_dashboard.percent(float8),
    crm_dashboard.run_baseline(text, text, timestamptz),
    crm_dashboard.run_anomalies(text, text, text, timestamptz, timestamptz, bigint, bigint),
    crm_dashboard.assess_run(), crm_dashboard.rollup_deltas(crm_dashboard.run_change[]),
    crm_dashboard.rollup_changed(crm_dashboard.sync_history, crm_dashboard.sync_history),
    crm_dashboard.failure_deltas(crm_dashboard.run_change[]), crm_dashboard.rollup_add(crm_dashboard.run_change[]),
    crm_dashboard.rollup_history(), crm_dashboard.rebuild_rollups(date, date),
    crm_dashboard.period_start(text), crm_dashboard.unknown_period(text),
    crm_dashboard.analytics(text, text, text, boolean),
    crm_api.analytics_daily(text, text, integer), crm_api.run_outcomes(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_dashboard.sketch_agg(float8, integer), crm_dashboard.sketch_sum(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.error_fingerprint(text, text, text) TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_dashboard.period_start(text), crm_dashboard.unknown_period(text),
    crm_dashboard.analytics(text, text, text, boolean), crm_dashboard.sketch_quantile(bigint[], float8),
    crm_dashboard.sketch_merge(bigint[], bigint[]), crm_dashboard.sketch_sum_step(internal, bigint[]),
    crm_dashboard.sketch_final(internal), crm_dashboard.sketch_sum(bigint[]),
    crm_api.analytics_daily(text, text, integer), crm_api.run_outcomes(text, integer) TO crm_dashboard_viewer;
GRANT SELECT ON crm_api.model_analytics, crm_api.crm_analytics, crm_api.failures TO crm_dashboard_viewer;


-- runs that failed before the update get their fingerprints; the rollups
-- are computed from the history there is (nothing is assessed for
-- anomalies after the fact: those runs keep anomalies NULL)
UPDATE crm_dashboard.sync_history h
   SET error_fingerprint = crm_dashboard.error_fingerprint(h.error_message, h.crm_source, h.sync_type)
 WHERE h.status IN ('failed', 'partial') AND h.sync_type <> 'all' AND h.error_message IS NOT NULL;
SELECT crm_dashboard.rebuild_rollups();

-- Alerts people actually receive: rules, alerts written in the transaction
-- of the change they report, the outbox and its delivery, Prometheus
-- metrics (src/alerts.sql, src/delivery.sql, src/metrics.sql); emit_event
-- and after_failure hand their changes to the alert rules (src/launcher.sql).

-- src/launcher.sql: the changed functions
CREATE OR REPLACE FUNCTION crm_dashboard.emit_event(kind text, crm text, model text, run_id bigint,
                                         detail jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('crm_dashboard_event',
                      json_build_object('event', kind, 'crm', crm, 'model', model, 'run_id', run_id,
                                        'at', now(), 'detail', coalesce(detail, '{}'))::text);
    PERFORM crm_dashboard.observe_event(kind, crm, model, coalesce(detail, '{}'));
END
$$;
COMMENT ON FUNCTION crm_dashboard.emit_event(text, text, text, bigint, jsonb) IS
    'Private: NOTIFY crm_dashboard_event with {event, crm, model, run_id, at, detail}, at commit of the change it describes, and apply the alert rules to it.';

CREATE OR REPLACE FUNCTION crm_dashboard.after_failure(run_id bigint) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.sync_history;
    retry_id bigint;
    paused boolean := false;
BEGIN
    SELECT * INTO r FROM crm_dashboard.sync_history h WHERE h.id = run_id;
    IF NOT FOUND OR r.status <> 'failed' OR r.sync_type = 'all' THEN
        RETURN NULL;
    END IF;
    PERFORM crm_dashboard.emit_event(CASE WHEN r.error_class = 'stalled' THEN 'stalled' ELSE 'run_failed' END,
        r.crm_source, r.sync_type, r.id,
        jsonb_build_object('error_class', r.error_class, 'message', left(r.error_message, 500),
                           'attempt', r.attempt, 'max_attempts', r.max_attempts));
    IF r.error_class = 'permanent' THEN
        -- "action required": the model shows it until a run succeeds
        PERFORM crm_dashboard.emit_event('action_required', r.crm_source, r.sync_type, r.id,
            jsonb_build_object('message', left(r.error_message, 500)));
    END IF;
    IF r.error_class IS DISTINCT FROM 'rate_limited' THEN
        paused := crm_dashboard.pause_if_failing(r.crm_source, r.sync_type);
    END IF;
    IF NOT paused THEN
        retry_id := crm_dashboard.schedule_retry(r.id);
    END IF;
    -- the alert rules (src/alerts.sql) see whether a retry follows
    PERFORM crm_dashboard.observe_run(r.id);
    RETURN retry_id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.after_failure(bigint) IS
    'Private: after a run failed: announce it (run_failed or stalled, and action_required for permanent errors), pause the model after too many consecutive failures, else schedule a retry by policy; then apply the alert rules to it.';

-- src/alerts.sql, all new
-- Alerts people actually receive.  Administrators write rules (what to
-- watch, where to send it) and channels (a signed webhook, a Slack incoming
-- webhook, e-mail over SMTP).  An alert is a row written in the transaction
-- of the state change it reports: a run's outcome (read from the runs as
-- they are recorded), an automatic pause and a change of freshness (the
-- events of crm_dashboard.emit_event).  One alert is open per rule and
-- model; repeats count, and it resolves itself when the condition clears.
-- Every notice goes into an outbox, one row per alert event and channel, in
-- that same transaction; the alerts worker (src/delivery*.c) delivers the
-- outbox with retries.  Operators acknowledge and snooze alerts.
--
-- Secrets (webhook URLs, signing secrets, SMTP passwords) are readable by
-- administrators only; everything else by viewers.

-- ---- What a rule can watch ---------------------------------------------------

-- The watches and their parameters, written once: validation, the API and
-- the web UI's forms (crm_api.capabilities) all read them from here.
CREATE FUNCTION crm_dashboard.alert_watches() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '[
  {"watch": "run_failed", "label": "A sync failed",
   "help": "A sync failed once its retries were used up (or at every failed attempt). Resolves when a sync of the model succeeds.",
   "params": [{"name": "every_attempt", "type": "boolean", "default": false,
               "help": "Alert at every failed attempt, not only when the retries are used up"}]},
  {"watch": "consecutive_failures", "label": "Consecutive failures",
   "help": "The model''s last finished syncs all failed (waits for a rate limit do not count). Resolves when one succeeds.",
   "params": [{"name": "count", "type": "integer", "default": 3, "min": 2, "max": 1000,
               "help": "Failures in a row"}]},
  {"watch": "auto_paused", "label": "Paused automatically",
   "help": "The model was paused after too many consecutive failures (the retry policy''s pause_after_failures). Resolves when it is resumed.",
   "params": []},
  {"watch": "action_required", "label": "Action required",
   "help": "A sync failed for a reason retrying cannot fix: exit status 77 or 78, or an error marked not retryable. Resolves with the next sync that does not.",
   "params": []},
  {"watch": "freshness", "label": "Late or overdue",
   "help": "The model''s data is late or overdue for its expected cadence. Resolves when it is on time again.",
   "params": [{"name": "level", "type": "choice", "choices": ["late", "overdue"], "default": "late",
               "help": "Alert when late (or worse), or only when overdue"}]},
  {"watch": "stalled", "label": "Stalled",
   "help": "A sync printed nothing for its stall timeout and was stopped. Resolves when a sync succeeds.",
   "params": []},
  {"watch": "partial", "label": "Failed records",
   "help": "A sync finished with more than a share of its records failed. Resolves with a sync under the share.",
   "params": [{"name": "failed_percent", "type": "number", "default": 5, "min": 0.01, "max": 100, "unit": "%",
               "help": "Share of the processed records that failed"}]},
  {"watch": "slow", "label": "Much slower than usual",
   "help": "A sync runs or ran much longer than the median of the model''s recent successful syncs. Resolves with a sync of usual length.",
   "params": [{"name": "factor", "type": "number", "default": 2, "min": 1.1, "max": 100,
               "help": "Times the usual duration"},
              {"name": "min_runs", "type": "integer", "default": 5, "min": 2, "max": 100,
               "help": "Successful syncs needed to know what is usual"},
              {"name": "min_seconds", "type": "integer", "default": 60, "min": 0, "max": 86400, "unit": "s",
               "help": "Never alert for a sync shorter than this"}]}
]'::jsonb;
COMMENT ON FUNCTION crm_dashboard.alert_watches() IS
    'Private: what an alert rule can watch (run_failed, consecutive_failures, auto_paused, action_required, freshness, stalled, partial, slow), with each watch''s parameters, defaults and ranges.';

-- Check a rule's parameters against its watch; returns them with every
-- default filled in.  Errors name the parameter (as the detail, "params.x")
-- and the value.
CREATE FUNCTION crm_dashboard.check_alert_params(watch text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    def jsonb := (SELECT w FROM jsonb_array_elements(crm_dashboard.alert_watches()) w WHERE w ->> 'watch' = check_alert_params.watch);
    known text[];
    key text;
    p jsonb;
    v jsonb;
    result jsonb := '{}';
BEGIN
    IF def IS NULL THEN
        RAISE EXCEPTION 'unknown alert watch "%"', watch
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'watch',
                  HINT = 'Watch one of: ' || (SELECT string_agg(w ->> 'watch', ', ')
                                                FROM jsonb_array_elements(crm_dashboard.alert_watches()) w) || '.';
    END IF;
    params := coalesce(params, '{}');
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'the parameters of an alert rule must be a JSON object, not %', params
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'params',
                  HINT = 'Pass e.g. {"count": 3}; {} takes the defaults.';
    END IF;
    known := ARRAY(SELECT q ->> 'name' FROM jsonb_array_elements(def -> 'params') q);
    FOR key IN SELECT jsonb_object_keys(params) LOOP
        IF NOT key = ANY (known) THEN
            RAISE EXCEPTION 'unknown parameter "%" of a % rule', key, watch
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'params',
                      HINT = CASE WHEN cardinality(known) = 0 THEN format('%s rules take no parameters.', watch)
                                  ELSE format('%s rules take %s.', watch, array_to_string(known, ', ')) END;
        END IF;
    END LOOP;
    FOR p IN SELECT q FROM jsonb_array_elements(def -> 'params') q LOOP
        v := coalesce(params -> (p ->> 'name'), p -> 'default');
        IF p ->> 'type' = 'boolean' AND jsonb_typeof(v) <> 'boolean'
           OR p ->> 'type' = 'integer' AND NOT (jsonb_typeof(v) = 'number' AND v::text ~ '^-?[0-9]+$'
                                               AND v::numeric BETWEEN (p ->> 'min')::numeric AND (p ->> 'max')::numeric)
           OR p ->> 'type' = 'number' AND NOT (jsonb_typeof(v) = 'number'
                                              AND v::numeric BETWEEN (p ->> 'min')::numeric AND (p ->> 'max')::numeric)
           OR p ->> 'type' = 'choice' AND NOT (jsonb_typeof(v) = 'string' AND (p -> 'choices') ? (v #>> '{}')) THEN
            PERFORM crm_dashboard.policy_value_error('params.' || (p ->> 'name'), v::text,
                CASE p ->> 'type'
                    WHEN 'boolean' THEN 'true or false'
                    WHEN 'choice' THEN 'one of ' || (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(p -> 'choices') c)
                    ELSE format('%s between %s and %s', CASE WHEN p ->> 'type' = 'integer' THEN 'an integer' ELSE 'a number' END,
                                p ->> 'min', p ->> 'max') END,
                format('%s (default %s).', p ->> 'help', p -> 'default'));
        END IF;
        result := result || jsonb_build_object(p ->> 'name', v);
    END LOOP;
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_alert_params(text, jsonb) IS
    'Private: check an alert rule''s parameters against its watch (unknown names, types, ranges) and return them with the defaults filled in.';

-- ---- Channels ---------------------------------------------------------------

CREATE TABLE crm_dashboard.alert_channel (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind                 text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    -- secrets: the target URL (a Slack URL is a credential), the signing
    -- secret of a webhook, the SMTP password
    url                  text NOT NULL,
    secret               text,
    smtp_username        text,
    smtp_password        text,
    mail_from            text,
    mail_to              text[],
    require_tls          boolean NOT NULL DEFAULT false,
    enabled              boolean NOT NULL DEFAULT true,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text,
    updated_at           timestamptz,
    -- how deliveries go, kept by the alerts worker (and test_channel)
    last_attempt_at      timestamptz,
    last_success_at      timestamptz,
    last_failure_at      timestamptz,
    last_error           text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    attempts_total       bigint NOT NULL DEFAULT 0,
    failures_total       bigint NOT NULL DEFAULT 0,
    CONSTRAINT alert_channel_webhook_secret CHECK (kind <> 'webhook' OR length(secret) >= 16),
    CONSTRAINT alert_channel_email_addresses CHECK (kind <> 'email' OR (mail_from IS NOT NULL AND cardinality(mail_to) >= 1))
);
COMMENT ON TABLE crm_dashboard.alert_channel IS
    'Private: where alert notifications go (webhook, slack, email), with their secrets and delivery health; write it with crm_api.create_alert_channel and update_alert_channel.';
COMMENT ON COLUMN crm_dashboard.alert_channel.url IS
    'Secret: the webhook URL (http or https), the Slack incoming-webhook URL, or the SMTP server (smtp:// with STARTTLS when offered, smtps://).';
COMMENT ON COLUMN crm_dashboard.alert_channel.secret IS
    'Secret: the key of a webhook''s X-Crm-Dashboard-Signature (HMAC-SHA256 of "<timestamp>.<body>").';
REVOKE ALL ON crm_dashboard.alert_channel FROM PUBLIC;
GRANT SELECT (id, name, kind, require_tls, enabled, created_by, created_at, updated_by, updated_at,
              last_attempt_at, last_success_at, last_failure_at, last_error, consecutive_failures,
              attempts_total, failures_total)
    ON crm_dashboard.alert_channel TO crm_dashboard_viewer;
GRANT SELECT ON crm_dashboard.alert_channel TO crm_dashboard_admin;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_channel', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_channel_id_seq', '');

-- ---- Rules ------------------------------------------------------------------

CREATE TABLE crm_dashboard.alert_rule (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 100),
    watch          text NOT NULL,
    crm            text REFERENCES crm_dashboard.crm_source (name) ON UPDATE CASCADE ON DELETE CASCADE,
    model          text,
    params         jsonb NOT NULL DEFAULT '{}',
    severity       text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    renotify_after interval CHECK (renotify_after BETWEEN '1 minute' AND '7 days'),
    enabled        boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text,
    updated_at     timestamptz,
    CONSTRAINT alert_rule_scope CHECK (model IS NULL OR crm IS NOT NULL),
    CONSTRAINT alert_rule_watch CHECK (watch IN ('run_failed', 'consecutive_failures', 'auto_paused', 'action_required',
                                                 'freshness', 'stalled', 'partial', 'slow'))
);
COMMENT ON TABLE crm_dashboard.alert_rule IS
    'Private: alert rules (what to watch, for which CRM or model, where to send it); write them with crm_api.create_alert_rule.';
CREATE INDEX alert_rule_scope_index ON crm_dashboard.alert_rule (watch, crm, model) WHERE enabled;
REVOKE ALL ON crm_dashboard.alert_rule FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_rule_id_seq', '');

CREATE TABLE crm_dashboard.alert_rule_channel (
    rule_id    bigint NOT NULL REFERENCES crm_dashboard.alert_rule (id) ON DELETE CASCADE,
    channel_id bigint NOT NULL REFERENCES crm_dashboard.alert_channel (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);
COMMENT ON TABLE crm_dashboard.alert_rule_channel IS 'Private: the channels each alert rule sends to.';
CREATE INDEX alert_rule_channel_channel ON crm_dashboard.alert_rule_channel (channel_id);
REVOKE ALL ON crm_dashboard.alert_rule_channel FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_rule_channel', '');

-- The enabled rules that watch one of watches for a model of a CRM.
CREATE FUNCTION crm_dashboard.rules_for(crm text, model text, watches text[])
RETURNS SETOF crm_dashboard.alert_rule
LANGUAGE sql STABLE
ROWS 2
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.* FROM crm_dashboard.alert_rule r
     WHERE r.enabled AND r.watch = ANY (rules_for.watches)
       AND (r.crm IS NULL OR r.crm = rules_for.crm) AND (r.model IS NULL OR r.model = rules_for.model)
     ORDER BY r.id
$$;
COMMENT ON FUNCTION crm_dashboard.rules_for(text, text, text[]) IS
    'Private: the enabled alert rules watching one of watches whose scope (every CRM, a CRM, a model) covers the model.';

-- The ids of the channels named, or an error naming the first unknown one.
CREATE FUNCTION crm_dashboard.channel_ids(names text[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    IF array_ndims(names) > 1 THEN
        RAISE EXCEPTION 'channels must be a list of channel names'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'channels';
    END IF;
    SELECT n INTO unknown FROM unnest(coalesce(names, '{}')) n
     WHERE n IS NULL OR NOT EXISTS (SELECT 1 FROM crm_dashboard.alert_channel c WHERE c.name = n) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown alert channel %', coalesce(quote_literal(unknown), 'NULL')
            USING ERRCODE = 'undefined_object', DETAIL = 'channels',
                  HINT = coalesce('Channels: ' || (SELECT string_agg(c.name, ', ' ORDER BY c.name) FROM crm_dashboard.alert_channel c) || '.',
                                  'There is no channel yet; an administrator creates one with crm_api.create_alert_channel.');
    END IF;
    RETURN ARRAY(SELECT DISTINCT c.id FROM crm_dashboard.alert_channel c WHERE c.name = ANY (names) ORDER BY c.id);
END
$$;
COMMENT ON FUNCTION crm_dashboard.channel_ids(text[]) IS 'Private: the ids of alert channels by name; undefined_object names an unknown one.';


-- ---- Alerts -------------------------------------------------------------------

CREATE TABLE crm_dashboard.alert (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id         bigint REFERENCES crm_dashboard.alert_rule (id) ON DELETE SET NULL,
    rule_name       text NOT NULL,
    watch           text NOT NULL,
    severity        text NOT NULL,
    crm             text NOT NULL,
    model           text NOT NULL,
    title           text NOT NULL,
    message         text,
    detail          jsonb NOT NULL DEFAULT '{}',
    run_id          bigint,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    occurrences     integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    acknowledged_at timestamptz,
    acknowledged_by text,
    snoozed_until   timestamptz,
    snoozed_by      text,
    snooze_reason   text,
    resolved_at     timestamptz,
    resolved_by     text,
    resolve_reason  text,
    last_notified_at timestamptz,
    CONSTRAINT alert_acknowledged_check CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)),
    CONSTRAINT alert_resolved_check CHECK ((resolved_at IS NULL) = (resolve_reason IS NULL))
);
COMMENT ON TABLE crm_dashboard.alert IS
    'Private: alerts, one open per rule and model at most; repeats count in occurrences; resolved ones are kept.';
COMMENT ON COLUMN crm_dashboard.alert.resolved_by IS 'Who resolved it by hand; NULL when it resolved itself.';
-- one open alert per rule and model, whoever fires it
CREATE UNIQUE INDEX alert_one_open ON crm_dashboard.alert (rule_id, crm, model) WHERE resolved_at IS NULL;
CREATE INDEX alert_unresolved ON crm_dashboard.alert (crm, model) WHERE resolved_at IS NULL;
CREATE INDEX alert_recent ON crm_dashboard.alert (last_seen DESC, id DESC);
CREATE INDEX alert_by_rule ON crm_dashboard.alert (rule_id, crm, model, id DESC);
REVOKE ALL ON crm_dashboard.alert FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_id_seq', '');

-- What people and the rules did with an alert.
CREATE TABLE crm_dashboard.alert_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES crm_dashboard.alert (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    action   text NOT NULL CHECK (action IN ('opened', 'acknowledged', 'snoozed', 'unsnoozed', 'resolved')),
    by       text,
    note     text
);
COMMENT ON TABLE crm_dashboard.alert_log IS
    'Private: when an alert opened, who acknowledged, snoozed or resolved it (by NULL: the rules), with their note.';
CREATE INDEX alert_log_alert ON crm_dashboard.alert_log (alert_id, id);
REVOKE ALL ON crm_dashboard.alert_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_log_id_seq', '');

-- The state of an alert, written once: resolved, snoozed (until a time),
-- acknowledged, else open.
CREATE FUNCTION crm_dashboard.alert_status(resolved_at timestamptz, acknowledged_at timestamptz,
                                           snoozed_until timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN resolved_at IS NOT NULL THEN 'resolved'
            WHEN snoozed_until > now() THEN 'snoozed'
            WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
            ELSE 'open' END;
COMMENT ON FUNCTION crm_dashboard.alert_status(timestamptz, timestamptz, timestamptz) IS
    'Private: an alert''s state: resolved, snoozed (its snooze has not ended), acknowledged, or open.';

-- ---- The outbox -----------------------------------------------------------------

-- One row per alert event (firing, resolved, reminder) and channel, written
-- in the transaction of the event.  Its uuid is the idempotency key every
-- attempt sends.  The alerts worker claims rows with a lease, so that a
-- worker that dies mid-delivery leaves them to be sent again (at least once).
CREATE TABLE crm_dashboard.alert_notification (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid             uuid NOT NULL UNIQUE,
    alert_id         bigint NOT NULL REFERENCES crm_dashboard.alert (id) ON DELETE CASCADE,
    channel_id       bigint NOT NULL REFERENCES crm_dashboard.alert_channel (id) ON DELETE CASCADE,
    event            text NOT NULL CHECK (event IN ('firing', 'resolved', 'reminder')),
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    delivered_at     timestamptz,
    last_status_code integer,
    last_error       text
);
COMMENT ON TABLE crm_dashboard.alert_notification IS
    'Private: the outbox of alert notifications, one per alert event and channel; uuid is the idempotency key of every attempt.';
CREATE INDEX alert_notification_due ON crm_dashboard.alert_notification (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX alert_notification_alert ON crm_dashboard.alert_notification (alert_id, channel_id, id);
CREATE INDEX alert_notification_channel ON crm_dashboard.alert_notification (channel_id) WHERE status = 'pending';
CREATE INDEX alert_notification_created ON crm_dashboard.alert_notification (created_at);
REVOKE ALL ON crm_dashboard.alert_notification FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_notification', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_notification_id_seq', '');

-- Every delivery attempt: of a notification, or a channel's test.
CREATE TABLE crm_dashboard.alert_delivery (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint REFERENCES crm_dashboard.alert_notification (id) ON DELETE CASCADE,
    channel_id      bigint NOT NULL REFERENCES crm_dashboard.alert_channel (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    duration_ms     float8,
    ok              boolean,
    status_code     integer,
    error           text
);
COMMENT ON TABLE crm_dashboard.alert_delivery IS
    'Private: every delivery attempt (a notification''s, or a test''s with notification_id NULL): when, how long, HTTP status or SMTP outcome, error.';
CREATE INDEX alert_delivery_notification ON crm_dashboard.alert_delivery (notification_id, attempt);
CREATE INDEX alert_delivery_channel ON crm_dashboard.alert_delivery (channel_id, id DESC);
CREATE INDEX alert_delivery_unfinished ON crm_dashboard.alert_delivery (id) WHERE finished_at IS NULL;
REVOKE ALL ON crm_dashboard.alert_delivery FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_delivery', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_delivery_id_seq', '');

-- A link to an alert in the web UI, when crm_dashboard.public_url says where it is.
CREATE FUNCTION crm_dashboard.alert_link(alert_id bigint) RETURNS text
LANGUAGE sql STABLE
RETURN CASE WHEN coalesce(current_setting('crm_dashboard.public_url', true), '') <> ''
            THEN rtrim(current_setting('crm_dashboard.public_url', true), '/') || '/alerts/' || alert_id END;
COMMENT ON FUNCTION crm_dashboard.alert_link(bigint) IS
    'Private: the web UI''s page of an alert under crm_dashboard.public_url, or NULL when it is not set.';

-- An alert as notifications and the API show it.
CREATE FUNCTION crm_dashboard.alert_document(a crm_dashboard.alert) RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'id', a.id, 'status', crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until),
    'rule', jsonb_build_object('id', a.rule_id, 'name', a.rule_name, 'watch', a.watch),
    'severity', a.severity, 'crm', a.crm, 'model', a.model, 'title', a.title, 'message', a.message,
    'detail', a.detail, 'run_id', a.run_id, 'first_seen', a.first_seen, 'last_seen', a.last_seen,
    'occurrences', a.occurrences, 'acknowledged_by', a.acknowledged_by, 'resolved_at', a.resolved_at,
    'resolve_reason', a.resolve_reason, 'url', crm_dashboard.alert_link(a.id));
COMMENT ON FUNCTION crm_dashboard.alert_document(crm_dashboard.alert) IS 'Private: an alert as JSON, as every notification carries it.';

-- Queue a notice of an alert for each enabled channel of its rule, in this
-- transaction; wake the alerts worker at commit.  Returns how many.
CREATE FUNCTION crm_dashboard.alert_enqueue(alert_id bigint, event text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO crm_dashboard.alert_notification (uuid, alert_id, channel_id, event, payload)
    SELECT x.u, x.alert_id, x.channel_id, alert_enqueue.event,
           jsonb_build_object('id', x.u, 'type', 'alert.' || alert_enqueue.event, 'created_at', now(),
                              'alert', x.document)
      -- a volatile select list keeps the subquery apart: one key per row
      FROM (SELECT gen_random_uuid() AS u, a.id AS alert_id, c.id AS channel_id,
                   crm_dashboard.alert_document(a) AS document
              FROM crm_dashboard.alert a
              JOIN crm_dashboard.alert_rule_channel rc ON rc.rule_id = a.rule_id
              JOIN crm_dashboard.alert_channel c ON c.id = rc.channel_id AND c.enabled
             WHERE a.id = alert_enqueue.alert_id) x;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE crm_dashboard.alert a SET last_notified_at = now() WHERE a.id = alert_enqueue.alert_id;
        PERFORM crm_dashboard.wake_delivery();
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_enqueue(bigint, text) IS
    'Private: put a notice (firing, resolved, reminder) of an alert in the outbox for every enabled channel of its rule; the alerts worker delivers them after commit.';

-- Tell open dashboards at commit that an alert changed (SSE event "alert",
-- NOTIFY crm_dashboard_alert), so that the bell and the pages follow.
CREATE FUNCTION crm_dashboard.announce_event(event text, payload text) RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_announce_event';
COMMENT ON FUNCTION crm_dashboard.announce_event(text, text) IS
    'Private: at commit, NOTIFY crm_dashboard_<event> and publish the payload to the event streams as an event of that name (alert).';
CREATE FUNCTION crm_dashboard.announce_alert(alert_id bigint, action text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT crm_dashboard.announce_event('alert', json_build_object(
               'id', a.id, 'action', action, 'status', crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until),
               'crm', a.crm, 'model', a.model, 'severity', a.severity, 'watch', a.watch, 'title', left(a.title, 200))::text)
      FROM crm_dashboard.alert a WHERE a.id = alert_id;
END;
COMMENT ON FUNCTION crm_dashboard.announce_alert(bigint, text) IS
    'Private: announce a change of an alert (opened, repeated, acknowledged, snoozed, unsnoozed, resolved) to the event streams at commit.';

-- Record what happened to an alert.
CREATE FUNCTION crm_dashboard.alert_note(alert_id bigint, action text, by text, note text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO crm_dashboard.alert_log (alert_id, action, by, note) VALUES (alert_id, action, by, note);
    SELECT crm_dashboard.announce_alert(alert_id, action);
END;
COMMENT ON FUNCTION crm_dashboard.alert_note(bigint, text, text, text) IS 'Private: log and announce an action on an alert.';

-- The rule fires for a model: open its alert, or count a repeat of the open
-- one.  A new alert starts snoozed while a snooze set on the rule's previous
-- alert for the model still runs (a condition that flaps stays quiet); it is
-- notified unless snoozed.  A repeat is notified again only after the rule's
-- renotify_after, and never while acknowledged or snoozed.  A repeat from
-- the run already counted (a slow run seen running, then finished) only
-- refreshes it.  Returns the alert's id.
CREATE FUNCTION crm_dashboard.alert_fire(rule crm_dashboard.alert_rule, crm text, model text, run_id bigint,
                                         title text, message text, detail jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    a crm_dashboard.alert;
    inherited crm_dashboard.alert;
    alert_id bigint;
    opened boolean;
BEGIN
    SELECT p.* INTO inherited FROM crm_dashboard.alert p
     WHERE p.rule_id = rule.id AND p.crm = alert_fire.crm AND p.model = alert_fire.model AND p.snoozed_until > now()
     ORDER BY p.id DESC LIMIT 1;
    INSERT INTO crm_dashboard.alert AS x (rule_id, rule_name, watch, severity, crm, model, title, message, detail, run_id,
                                          snoozed_until, snoozed_by, snooze_reason)
    VALUES (rule.id, rule.name, rule.watch, rule.severity, alert_fire.crm, alert_fire.model, left(alert_fire.title, 300),
            left(alert_fire.message, 2000), coalesce(alert_fire.detail, '{}'), alert_fire.run_id,
            inherited.snoozed_until, inherited.snoozed_by, inherited.snooze_reason)
    ON CONFLICT (rule_id, crm, model) WHERE resolved_at IS NULL DO UPDATE
       SET title = EXCLUDED.title, message = EXCLUDED.message, detail = EXCLUDED.detail,
           run_id = coalesce(EXCLUDED.run_id, x.run_id), last_seen = now(),
           occurrences = x.occurrences + CASE WHEN EXCLUDED.run_id IS NOT NULL AND EXCLUDED.run_id = x.run_id THEN 0 ELSE 1 END
    RETURNING x.id, x.xmax = 0 INTO alert_id, opened;
    SELECT x.* INTO a FROM crm_dashboard.alert x WHERE x.id = alert_id;
    IF opened THEN
        PERFORM crm_dashboard.alert_note(a.id, 'opened', NULL,
                                         CASE WHEN a.snoozed_until IS NOT NULL THEN 'snoozed until ' || a.snoozed_until END);
        IF a.snoozed_until IS NULL THEN
            PERFORM crm_dashboard.alert_enqueue(a.id, 'firing');
        END IF;
    ELSE
        PERFORM crm_dashboard.announce_alert(a.id, 'repeated');
        IF rule.renotify_after IS NOT NULL AND a.acknowledged_at IS NULL AND NOT coalesce(a.snoozed_until > now(), false)
           AND (a.last_notified_at IS NULL OR a.last_notified_at + rule.renotify_after <= now()) THEN
            PERFORM crm_dashboard.alert_enqueue(a.id, 'reminder');
        END IF;
    END IF;
    RETURN a.id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_fire(crm_dashboard.alert_rule, text, text, bigint, text, text, jsonb) IS
    'Private: a rule fired for a model: open its alert (notified unless a snooze carries over) or count a repeat (re-notified after renotify_after unless acknowledged or snoozed).';

-- The condition of a rule cleared for a model: resolve its open alert, if
-- any, and send the "resolved" notice where its firing went.
CREATE FUNCTION crm_dashboard.alert_resolve(rule_id bigint, crm text, model text, reason text, by text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert;
BEGIN
    UPDATE crm_dashboard.alert x SET resolved_at = now(), resolve_reason = left(reason, 500), resolved_by = by
     WHERE x.rule_id = alert_resolve.rule_id AND x.crm = alert_resolve.crm AND x.model = alert_resolve.model
       AND x.resolved_at IS NULL
    RETURNING x.* INTO a;
    IF a.id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM crm_dashboard.alert_note(a.id, 'resolved', by, reason);
    IF a.last_notified_at IS NOT NULL THEN
        PERFORM crm_dashboard.alert_enqueue(a.id, 'resolved');
    END IF;
    RETURN a.id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_resolve(bigint, text, text, text, text) IS
    'Private: resolve a rule''s open alert of a model (by NULL: it resolved itself) and notify "resolved" where it was notified.';

-- ---- Watching runs -------------------------------------------------------------

-- How a model is named in alerts: "HubSpot contact".
CREATE FUNCTION crm_dashboard.model_label(crm text, model text) RETURNS text
LANGUAGE sql STABLE
RETURN coalesce((SELECT s.display_name FROM crm_dashboard.crm_source s WHERE s.name = model_label.crm), crm)
       || ' ' || model;
COMMENT ON FUNCTION crm_dashboard.model_label(text, text) IS 'Private: a model as alerts name it, e.g. "HubSpot contact".';

-- Seconds in words, for messages: "45 s", "12 min", "3.5 h".
CREATE FUNCTION crm_dashboard.seconds_text(seconds float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds < 120 THEN round(seconds::numeric) || ' s'
            WHEN seconds < 7200 THEN round((seconds / 60)::numeric) || ' min'
            ELSE round((seconds / 3600)::numeric, 1) || ' h' END;
COMMENT ON FUNCTION crm_dashboard.seconds_text(float8) IS 'Private: a duration in words for alert messages (45 s, 12 min, 3.5 h).';

-- How many of a model's latest finished runs failed in a row (waits for a
-- rate limit do not count, as for automatic pauses); at most 1001 are read.
CREATE FUNCTION crm_dashboard.consecutive_failures(crm text, model text) RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT count(*)::integer FROM (
        SELECT h.status, bool_or(h.status <> 'failed') OVER (ORDER BY h.start_time DESC, h.id DESC) AS broken
          FROM (SELECT h.status, h.start_time, h.id FROM crm_dashboard.sync_history h
                 WHERE h.crm_source = consecutive_failures.crm AND h.sync_type = consecutive_failures.model
                   AND h.status IN ('success', 'partial', 'failed') AND h.error_class IS DISTINCT FROM 'rate_limited'
                 ORDER BY h.start_time DESC, h.id DESC LIMIT 1001) h) s
     WHERE NOT s.broken
$$;
COMMENT ON FUNCTION crm_dashboard.consecutive_failures(text, text) IS
    'Private: how many of a model''s latest finished runs failed in a row (rate-limit waits not counted; at most 1001).';

-- What is usual for a model: the median duration of its last 20
-- successful (or partial) runs before run before_id, and how many there were.
CREATE FUNCTION crm_dashboard.usual_duration(crm text, model text, before_id bigint,
                                             OUT seconds float8, OUT runs integer)
RETURNS record
LANGUAGE sql STABLE
AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s), count(*)::integer
      FROM (SELECT extract(epoch FROM h.end_time - h.start_time)::float8 AS s FROM crm_dashboard.sync_history h
             WHERE h.crm_source = usual_duration.crm AND h.sync_type = usual_duration.model
               AND h.status IN ('success', 'partial') AND h.id <> usual_duration.before_id
               AND h.end_time IS NOT NULL
             ORDER BY h.start_time DESC, h.id DESC LIMIT 20) d
$$;
COMMENT ON FUNCTION crm_dashboard.usual_duration(text, text, bigint) IS
    'Private: the median duration of a model''s last 20 successful or partial runs (other than before_id) and how many they were.';

-- Whether a failed run's request is over: no later attempt of it is queued
-- or running (the launcher decided on a retry in the same transaction).
CREATE FUNCTION crm_dashboard.request_over(r crm_dashboard.sync_history) RETURNS boolean
LANGUAGE sql STABLE
RETURN NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history a
                    WHERE a.first_attempt_id = coalesce(r.first_attempt_id, r.id) AND a.id > r.id
                      AND a.status IN ('queued', 'running'));
COMMENT ON FUNCTION crm_dashboard.request_over(crm_dashboard.sync_history) IS
    'Private: whether no further attempt of a run''s request is queued or running.';

-- A slow run, seen running (tick) or finished: fire the rule if it is.
-- Returns whether it fired.
CREATE FUNCTION crm_dashboard.check_slow(rule crm_dashboard.alert_rule, r crm_dashboard.sync_history) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    took float8 := extract(epoch FROM coalesce(r.end_time, now()) - r.start_time);
    usual record;
    running boolean := r.status = 'running';
BEGIN
    SELECT * INTO usual FROM crm_dashboard.usual_duration(r.crm_source, r.sync_type, r.id);
    IF usual.runs < (rule.params ->> 'min_runs')::integer OR usual.seconds IS NULL OR usual.seconds <= 0
       OR took < (rule.params ->> 'min_seconds')::float8 OR took <= (rule.params ->> 'factor')::float8 * usual.seconds THEN
        RETURN false;
    END IF;
    PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id,
        format('%s: sync much slower than usual', crm_dashboard.model_label(r.crm_source, r.sync_type)),
        format('%s %s, usually %s (%s×)', CASE WHEN running THEN 'running for' ELSE 'took' END,
               crm_dashboard.seconds_text(took), crm_dashboard.seconds_text(usual.seconds),
               round((took / usual.seconds)::numeric, 1)),
        jsonb_build_object('seconds', round(took::numeric, 1), 'usual_seconds', round(usual.seconds::numeric, 1),
                           'usual_runs', usual.runs, 'running', running));
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_slow(crm_dashboard.alert_rule, crm_dashboard.sync_history) IS
    'Private: fire a slow rule for a run (running or finished) that took more than factor times its model''s usual duration; true when it did.';

-- One rule against one finished run: fire or resolve.
CREATE FUNCTION crm_dashboard.apply_rule(rule crm_dashboard.alert_rule, r crm_dashboard.sync_history) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    label text := crm_dashboard.model_label(r.crm_source, r.sync_type);
    ok boolean := r.status IN ('success', 'partial');
    cleared text := format('run %s %s', r.id, CASE r.status WHEN 'success' THEN 'succeeded' WHEN 'partial' THEN 'succeeded partly'
                                                            ELSE 'failed for another reason' END);
    what jsonb := jsonb_build_object('run_id', r.id, 'status', r.status, 'error_class', r.error_class,
                                     'attempt', r.attempt, 'max_attempts', r.max_attempts);
    n integer;
    share float8;
BEGIN
    CASE rule.watch
    WHEN 'run_failed' THEN
        IF r.status = 'failed' AND ((rule.params ->> 'every_attempt')::boolean OR crm_dashboard.request_over(r)) THEN
            PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id, label || ': sync failed',
                left(coalesce(r.error_message, 'no error message'), 1000) || CASE WHEN r.max_attempts > 1 THEN format(' (attempt %s of %s)', r.attempt, r.max_attempts) ELSE '' END,
                what);
        ELSIF ok THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'consecutive_failures' THEN
        IF r.status = 'failed' THEN
            n := crm_dashboard.consecutive_failures(r.crm_source, r.sync_type);
            IF n >= (rule.params ->> 'count')::integer THEN
                PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id,
                    format('%s: %s consecutive failures', label, CASE WHEN n > 1000 THEN 'over 1000' ELSE n::text END),
                    left(r.error_message, 1000), what || jsonb_build_object('failures', n));
            END IF;
        ELSIF ok THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'action_required' THEN
        IF r.status = 'failed' AND r.error_class = 'permanent' THEN
            PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id, label || ': action required',
                left(r.error_message, 1000), what);
        ELSE
            -- as crm_api.crm_models has it: the latest finished run decides
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'stalled' THEN
        IF r.status = 'failed' AND r.error_class = 'stalled' THEN
            PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id, label || ': sync stalled',
                left(r.error_message, 1000), what);
        ELSIF ok THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'partial' THEN
        IF ok THEN
            share := 100.0 * r.records_failed / nullif(greatest(r.records_processed, r.records_created + r.records_updated + r.records_failed), 0);
            IF r.status = 'partial' AND share > (rule.params ->> 'failed_percent')::float8 THEN
                PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id,
                    format('%s: %s %% of records failed', label, round(share::numeric, 1)),
                    left(r.error_message, 1000),
                    what || jsonb_build_object('records_failed', r.records_failed, 'records_processed', r.records_processed,
                                               'failed_percent', round(share::numeric, 2)));
            ELSE
                PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type,
                    format('run %s: %s %% of records failed', r.id, round(coalesce(share, 0)::numeric, 1)));
            END IF;
        END IF;
    WHEN 'slow' THEN
        IF ok AND NOT crm_dashboard.check_slow(rule, r) THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type,
                format('run %s took the usual time', r.id));
        END IF;
    ELSE
        NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION crm_dashboard.apply_rule(crm_dashboard.alert_rule, crm_dashboard.sync_history) IS
    'Private: what one rule makes of a finished run: fire (failed, N consecutive failures, action required, stalled, failed records over the share, much slower than usual) or resolve.';

-- The watches a run's outcome speaks to.
CREATE FUNCTION crm_dashboard.run_watches() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['run_failed', 'consecutive_failures', 'action_required', 'stalled', 'partial', 'slow'];
COMMENT ON FUNCTION crm_dashboard.run_watches() IS 'Private: the watches that a run''s outcome fires or resolves.';

-- Alerts never stop the state change they report: a failure to evaluate
-- them is a WARNING in the server log, and the change commits.
CREATE FUNCTION crm_dashboard.observe_run(run_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.sync_history;
    rule crm_dashboard.alert_rule;
BEGIN
    SELECT * INTO r FROM crm_dashboard.sync_history h WHERE h.id = run_id;
    IF NOT FOUND OR r.sync_type = 'all' OR r.status NOT IN ('success', 'partial', 'failed')
       OR NOT EXISTS (SELECT 1 FROM crm_dashboard.rules_for(r.crm_source, r.sync_type, crm_dashboard.run_watches())) THEN
        RETURN;
    END IF;
    BEGIN
        FOR rule IN SELECT * FROM crm_dashboard.rules_for(r.crm_source, r.sync_type, crm_dashboard.run_watches()) LOOP
            PERFORM crm_dashboard.apply_rule(rule, r);
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'crm_dashboard: could not evaluate the alert rules for run %: %', run_id, SQLERRM
            USING DETAIL = 'The run''s outcome is recorded; its alerts are not.';
    END;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_run(bigint) IS
    'Private: apply the alert rules to a finished run, in the transaction that recorded it (a failure to do so is a WARNING, never the run''s).';

-- The runs a statement finished, as the statement triggers below see them:
-- the newest of each model (a statement that writes many finished runs of
-- one model at once loads history; its newest run is the news).  Failed
-- runs of the launcher are left to crm_dashboard.after_failure, which
-- observes them once it decided on a retry or a pause.
CREATE FUNCTION crm_dashboard.observe_inserted_runs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.observe_run(f.id)
       FROM (SELECT DISTINCT ON (n.crm_source, n.sync_type) n.id
               FROM inserted_runs n
              WHERE n.status IN ('success', 'partial', 'failed') AND n.sync_type <> 'all'
                AND NOT (n.status = 'failed' AND coalesce(n.configuration ? 'argv', false))
              ORDER BY n.crm_source, n.sync_type, n.start_time DESC, n.id DESC) f;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_inserted_runs() IS
    'Private: statement trigger: apply the alert rules to the newest finished run of each model a statement inserted.';

CREATE FUNCTION crm_dashboard.observe_updated_runs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.observe_run(f.id)
       FROM (SELECT DISTINCT ON (n.crm_source, n.sync_type) n.id
               FROM updated_runs n JOIN runs_before o ON o.id = n.id
              WHERE n.status IS DISTINCT FROM o.status
                AND n.status IN ('success', 'partial', 'failed') AND n.sync_type <> 'all'
                AND NOT (n.status = 'failed' AND coalesce(n.configuration ? 'argv', false))
              ORDER BY n.crm_source, n.sync_type, n.start_time DESC, n.id DESC) f;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_updated_runs() IS
    'Private: statement trigger: apply the alert rules to the newest run of each model a statement finished.';

CREATE TRIGGER sync_history_alerts_insert
    AFTER INSERT ON crm_dashboard.sync_history REFERENCING NEW TABLE AS inserted_runs
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.observe_inserted_runs();
CREATE TRIGGER sync_history_alerts_update
    AFTER UPDATE ON crm_dashboard.sync_history REFERENCING OLD TABLE AS runs_before NEW TABLE AS updated_runs
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.observe_updated_runs();

-- ---- Watching pauses and freshness ---------------------------------------------

-- What the events of crm_dashboard.emit_event mean for alerts: an automatic
-- pause fires, resuming resolves it; freshness late or overdue fires, on
-- time resolves.  Run outcomes are observed from the runs themselves.
CREATE FUNCTION crm_dashboard.observe_event(kind text, crm text, model text, detail jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rule crm_dashboard.alert_rule;
    watch text := CASE kind WHEN 'auto_paused' THEN 'auto_paused' WHEN 'resumed' THEN 'auto_paused'
                            WHEN 'freshness' THEN 'freshness' END;
    level text := detail ->> 'to';
    label text := crm_dashboard.model_label(crm, model);
BEGIN
    IF watch IS NULL OR crm IS NULL OR model IS NULL
       OR NOT EXISTS (SELECT 1 FROM crm_dashboard.rules_for(crm, model, ARRAY[watch])) THEN
        RETURN;
    END IF;
    BEGIN
        FOR rule IN SELECT * FROM crm_dashboard.rules_for(crm, model, ARRAY[watch]) LOOP
            IF kind = 'auto_paused' THEN
                PERFORM crm_dashboard.alert_fire(rule, crm, model, NULL, label || ': paused automatically',
                                                 detail ->> 'reason', detail);
            ELSIF kind = 'resumed' AND model IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM crm_dashboard.run_pause p
                                   WHERE p.crm = observe_event.crm AND p.model = observe_event.model
                                     AND p.resumed_at IS NULL AND p.automatic) THEN
                -- automatic pauses are a model's own: a whole CRM resumed ends none of them
                PERFORM crm_dashboard.alert_resolve(rule.id, crm, model, 'resumed by ' || coalesce(detail ->> 'by', 'someone'));
            ELSIF kind = 'freshness' THEN
                IF level = 'overdue' OR (level = 'late' AND rule.params ->> 'level' = 'late') THEN
                    PERFORM crm_dashboard.alert_fire(rule, crm, model, NULL, format('%s: data is %s', label, level),
                        'expected by ' || coalesce(to_char((detail ->> 'expected_by')::timestamptz, 'YYYY-MM-DD HH24:MI TZ'), 'unknown'),
                        detail);
                ELSE
                    PERFORM crm_dashboard.alert_resolve(rule.id, crm, model,
                        format('the data is %s now', replace(coalesce(level, 'unknown'), '_', ' ')));
                END IF;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'crm_dashboard: could not evaluate the alert rules for event % of %: %', kind,
                      coalesce(crm || ' ' || model, crm), SQLERRM
            USING DETAIL = 'The change is recorded; its alerts are not.';
    END;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_event(text, text, text, jsonb) IS
    'Private: apply the alert rules to an event of emit_event (auto_paused fires, resumed resolves; freshness late or overdue fires, back on time resolves).';

-- ---- The periodic checks of the alerts worker ------------------------------------

-- Every 30 s (and when a snooze ends) the alerts worker calls this: a snooze
-- that ended on an alert still open reminds its channels; a running sync
-- that became much slower than usual fires; delivered notifications older
-- than 30 days are forgotten.  Returns when it must run again at the latest.
CREATE FUNCTION crm_dashboard.alerts_tick() RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert;
    rule crm_dashboard.alert_rule;
    r crm_dashboard.sync_history;
BEGIN
    FOR a IN SELECT x.* FROM crm_dashboard.alert x
              WHERE x.resolved_at IS NULL AND x.snoozed_until <= now() FOR UPDATE SKIP LOCKED LOOP
        UPDATE crm_dashboard.alert x SET snoozed_until = NULL, snoozed_by = NULL, snooze_reason = NULL WHERE x.id = a.id;
        PERFORM crm_dashboard.alert_note(a.id, 'unsnoozed', NULL, 'the snooze ended');
        IF a.acknowledged_at IS NULL THEN
            -- an alert that opened snoozed was never notified: it fires now
            PERFORM crm_dashboard.alert_enqueue(a.id, CASE WHEN a.last_notified_at IS NULL THEN 'firing' ELSE 'reminder' END);
        END IF;
    END LOOP;
    FOR r IN SELECT h.* FROM crm_dashboard.sync_history h
              WHERE h.status = 'running' AND h.sync_type <> 'all'
                AND EXISTS (SELECT 1 FROM crm_dashboard.alert_rule s WHERE s.enabled AND s.watch = 'slow') LOOP
        FOR rule IN SELECT * FROM crm_dashboard.rules_for(r.crm_source, r.sync_type, ARRAY['slow']) LOOP
            PERFORM crm_dashboard.check_slow(rule, r);
        END LOOP;
    END LOOP;
    DELETE FROM crm_dashboard.alert_notification n
     WHERE n.created_at < now() - interval '30 days' AND n.status <> 'pending';
    RETURN least(now() + interval '30 seconds',
                 (SELECT min(x.snoozed_until) FROM crm_dashboard.alert x
                   WHERE x.resolved_at IS NULL AND x.snoozed_until > now()));
END
$$;
COMMENT ON FUNCTION crm_dashboard.alerts_tick() IS
    'Private: the alerts worker''s periodic checks (snoozes that ended remind, running syncs much slower than usual fire, old notifications are forgotten); returns when to look again.';

-- ---- Views ---------------------------------------------------------------------------

CREATE VIEW crm_api.alert_rules AS
    SELECT r.id, r.name, r.watch, r.crm, r.model, r.params, r.severity, r.renotify_after, r.enabled,
           (SELECT coalesce(array_agg(c.name ORDER BY c.name), '{}') FROM crm_dashboard.alert_rule_channel rc
              JOIN crm_dashboard.alert_channel c ON c.id = rc.channel_id WHERE rc.rule_id = r.id) AS channels,
           (SELECT count(*) FROM crm_dashboard.alert a WHERE a.rule_id = r.id AND a.resolved_at IS NULL)::integer AS open_alerts,
           r.created_by, r.created_at, r.updated_by, r.updated_at
      FROM crm_dashboard.alert_rule r
     ORDER BY r.name;

CREATE VIEW crm_api.alerts AS
    SELECT a.id, crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) AS status,
           a.severity, a.watch, a.rule_id, a.rule_name, a.crm, a.model, a.title, a.message, a.detail, a.run_id,
           a.first_seen, a.last_seen, a.occurrences, a.acknowledged_at, a.acknowledged_by,
           a.snoozed_until, a.snoozed_by, a.snooze_reason, a.resolved_at, a.resolved_by, a.resolve_reason,
           a.last_notified_at,
           (SELECT json_build_object('pending', count(*) FILTER (WHERE n.status = 'pending'),
                                     'delivered', count(*) FILTER (WHERE n.status = 'delivered'),
                                     'failed', count(*) FILTER (WHERE n.status = 'failed'))
              FROM crm_dashboard.alert_notification n WHERE n.alert_id = a.id) AS notifications
      FROM crm_dashboard.alert a
     ORDER BY a.last_seen DESC, a.id DESC;

CREATE VIEW crm_api.open_alerts AS
    SELECT * FROM crm_api.alerts a WHERE a.status <> 'resolved';

CREATE VIEW crm_api.alert_summary AS
    SELECT count(*) FILTER (WHERE s.status = 'open')::integer AS open,
           count(*) FILTER (WHERE s.status = 'acknowledged')::integer AS acknowledged,
           count(*) FILTER (WHERE s.status = 'snoozed')::integer AS snoozed,
           count(*) FILTER (WHERE s.status = 'open' AND s.severity = 'critical')::integer AS open_critical,
           count(*) FILTER (WHERE s.status = 'open' AND s.severity = 'warning')::integer AS open_warning,
           count(*) FILTER (WHERE s.status = 'open' AND s.severity = 'info')::integer AS open_info,
           (SELECT count(*) FROM crm_dashboard.alert r WHERE r.resolved_at > now() - interval '1 day')::integer AS resolved_last_day,
           (SELECT count(*) FROM crm_dashboard.alert_channel c WHERE c.enabled AND c.consecutive_failures >= 3)::integer AS failing_channels
      FROM (SELECT crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) AS status, a.severity
              FROM crm_dashboard.alert a WHERE a.resolved_at IS NULL) s;

-- Per model with unresolved alerts: the badges of CRM cards and model rows.
CREATE VIEW crm_api.alert_counts AS
    SELECT a.crm, a.model,
           count(*) FILTER (WHERE s.status = 'open')::integer AS open,
           count(*) FILTER (WHERE s.status = 'acknowledged')::integer AS acknowledged,
           count(*) FILTER (WHERE s.status = 'snoozed')::integer AS snoozed,
           (array_agg(a.severity ORDER BY array_position(ARRAY['critical', 'warning', 'info'], a.severity))
              FILTER (WHERE s.status <> 'snoozed'))[1] AS severity,
           (array_agg(a.title ORDER BY a.last_seen DESC) FILTER (WHERE s.status <> 'snoozed'))[1] AS latest_title
      FROM crm_dashboard.alert a
     CROSS JOIN LATERAL (SELECT crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) AS status) s
     WHERE a.resolved_at IS NULL
     GROUP BY a.crm, a.model
     ORDER BY a.crm, a.model;

CREATE VIEW crm_api.alert_history AS
    SELECT l.id, l.alert_id, l.at, l.action, l.by, l.note
      FROM crm_dashboard.alert_log l
     ORDER BY l.at DESC, l.id DESC;

COMMENT ON VIEW crm_api.alerts IS
    'Every alert, newest first: status (open, acknowledged, snoozed, resolved), severity, rule, model, title and message of the latest occurrence, first and last seen, occurrences, who acknowledged or snoozed it, how it resolved, its notifications by status.';
COMMENT ON VIEW crm_api.open_alerts IS 'The alerts not resolved (open, acknowledged or snoozed), newest first.';
CREATE VIEW crm_api.alert_watches AS
    SELECT w ->> 'watch' AS watch, w ->> 'label' AS label, w ->> 'help' AS help, w -> 'params' AS params
      FROM jsonb_array_elements(crm_dashboard.alert_watches()) WITH ORDINALITY AS x(w, o)
     ORDER BY x.o;
COMMENT ON VIEW crm_api.alert_watches IS
    'What an alert rule can watch, in words, with its parameters (name, type, default, range, help): the web UI builds its rule form from it.';

COMMENT ON VIEW crm_api.alert_summary IS
    'One row: open, acknowledged and snoozed alerts, open ones by severity, resolved in the last day, failing channels (the bell of the web UI).';
COMMENT ON VIEW crm_api.alert_counts IS
    'Per model with unresolved alerts: how many are open, acknowledged, snoozed; the worst severity and latest title of those not snoozed.';
COMMENT ON VIEW crm_api.alert_history IS 'What happened to alerts: opened, acknowledged, snoozed, unsnoozed, resolved, by whom (NULL: the rules), with notes.';
COMMENT ON VIEW crm_api.alert_rules IS
    'Alert rules: watch and params, scope (crm, model; NULL: all), severity, renotify_after, enabled, channels, open alerts.';

-- ---- The API ------------------------------------------------------------------------

-- The error for a channel, rule or alert id that does not exist.
CREATE FUNCTION crm_dashboard.unknown_alert_object(what text, id bigint, listed_in text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% % does not exist', what, coalesce(id::text, 'NULL')
        USING ERRCODE = 'undefined_object', DETAIL = 'id',
              HINT = format('They are listed in crm_api.%s.', listed_in);
END
$$;
COMMENT ON FUNCTION crm_dashboard.unknown_alert_object(text, bigint, text) IS 'Private: raise undefined_object for an unknown channel, rule or alert id.';

-- A required text argument, trimmed; errors name it.
CREATE FUNCTION crm_dashboard.required_text(field text, value text, max_length integer, hint text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(btrim(value), '') = '' THEN
        RAISE EXCEPTION '% must not be empty', field
            USING ERRCODE = 'invalid_parameter_value', DETAIL = field, HINT = hint;
    END IF;
    IF length(value) > max_length THEN
        RAISE EXCEPTION '% is too long (% characters)', field, length(value)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = field,
                  HINT = format('Keep it to %s characters.', max_length);
    END IF;
    RETURN btrim(value);
END
$$;
COMMENT ON FUNCTION crm_dashboard.required_text(text, text, integer, text) IS
    'Private: a required text argument, trimmed, or invalid_parameter_value naming it (empty, too long).';

CREATE FUNCTION crm_dashboard.rule_json(rule_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$ SELECT row_to_json(r) FROM crm_api.alert_rules r WHERE r.id = rule_id $$;
COMMENT ON FUNCTION crm_dashboard.rule_json(bigint) IS 'Private: a rule as crm_api.alert_rules shows it.';

-- Check a rule's severity and reminder interval; errors name them.
CREATE FUNCTION crm_dashboard.check_rule_options(severity text, renotify_after interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF severity IS NULL OR severity NOT IN ('info', 'warning', 'critical') THEN
        PERFORM crm_dashboard.policy_value_error('severity', coalesce(quote_literal(severity), 'NULL'),
            'info, warning or critical', 'Severity sorts and colours alerts; the default is warning.');
    END IF;
    IF renotify_after NOT BETWEEN interval '1 minute' AND interval '7 days' THEN
        PERFORM crm_dashboard.policy_value_error('renotify_after', quote_literal(renotify_after),
            'between 1 minute and 7 days', 'An alert that keeps firing is notified again after this long; NULL (the default) notifies it once.');
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_rule_options(text, interval) IS 'Private: check a rule''s severity and renotify_after.';

CREATE FUNCTION crm_api.create_alert_rule(name text, watch text, crm text DEFAULT NULL, model text DEFAULT NULL,
                                          params jsonb DEFAULT '{}', channels text[] DEFAULT '{}',
                                          severity text DEFAULT 'warning', renotify_after interval DEFAULT NULL,
                                          enabled boolean DEFAULT true)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rule_name text := crm_dashboard.required_text('name', name, 100, 'Name the rule, e.g. ''HubSpot failures''.');
    checked jsonb := crm_dashboard.check_alert_params(watch, params);
    ids bigint[] := crm_dashboard.channel_ids(channels);
    rule_id bigint;
BEGIN
    IF model IS NOT NULL AND crm IS NULL THEN
        RAISE EXCEPTION 'a rule for model "%" needs its CRM', model
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'crm',
                  HINT = 'Give crm and model for one model, crm alone for a whole CRM, neither for everything.';
    END IF;
    IF model = 'all' THEN
        RAISE EXCEPTION 'a rule for a whole CRM has no model, not model "all"'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'model', HINT = 'Leave model out.';
    END IF;
    IF crm IS NOT NULL THEN
        PERFORM crm_dashboard.check_target(crm, model);
    END IF;
    PERFORM crm_dashboard.check_rule_options(severity, renotify_after);
    IF EXISTS (SELECT 1 FROM crm_dashboard.alert_rule r WHERE r.name = rule_name) THEN
        RAISE EXCEPTION 'alert rule "%" already exists', rule_name
            USING ERRCODE = 'unique_violation', DETAIL = 'name',
                  HINT = 'Pick another name, or change that rule with crm_api.update_alert_rule.';
    END IF;
    INSERT INTO crm_dashboard.alert_rule AS r (name, watch, crm, model, params, severity, renotify_after, enabled, created_by)
    VALUES (rule_name, watch, crm, model, checked, severity, renotify_after, coalesce(enabled, true),
            crm_dashboard.requester_name())
    RETURNING r.id INTO rule_id;
    INSERT INTO crm_dashboard.alert_rule_channel (rule_id, channel_id) SELECT rule_id, c FROM unnest(ids) c;
    RETURN crm_dashboard.rule_json(rule_id);
END
$$;
COMMENT ON FUNCTION crm_api.create_alert_rule(text, text, text, text, jsonb, text[], text, interval, boolean) IS
    'Create an alert rule: what it watches (crm_api.capabilities() lists the watches and their params), for every CRM, a CRM or one model, the channels it notifies (by name), its severity, and renotify_after (NULL: notify an alert once).';

CREATE FUNCTION crm_api.update_alert_rule(id bigint, name text DEFAULT NULL, params jsonb DEFAULT NULL,
                                          channels text[] DEFAULT NULL, severity text DEFAULT NULL,
                                          renotify_after interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.alert_rule;
    a record;
BEGIN
    SELECT x.* INTO r FROM crm_dashboard.alert_rule x WHERE x.id = update_alert_rule.id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert rule', update_alert_rule.id, 'alert_rules');
    END IF;
    IF update_alert_rule.name IS NOT NULL THEN
        r.name := crm_dashboard.required_text('name', update_alert_rule.name, 100, 'Name the rule.');
        IF EXISTS (SELECT 1 FROM crm_dashboard.alert_rule x WHERE x.name = r.name AND x.id <> r.id) THEN
            RAISE EXCEPTION 'alert rule "%" already exists', r.name
                USING ERRCODE = 'unique_violation', DETAIL = 'name', HINT = 'Pick another name.';
        END IF;
    END IF;
    IF update_alert_rule.params IS NOT NULL THEN
        r.params := crm_dashboard.check_alert_params(r.watch, update_alert_rule.params);
    END IF;
    r.severity := coalesce(update_alert_rule.severity, r.severity);
    -- '0' turns reminders off
    r.renotify_after := CASE WHEN update_alert_rule.renotify_after IS NULL THEN r.renotify_after
                             WHEN update_alert_rule.renotify_after = interval '0' THEN NULL
                             ELSE update_alert_rule.renotify_after END;
    PERFORM crm_dashboard.check_rule_options(r.severity, r.renotify_after);
    IF update_alert_rule.channels IS NOT NULL THEN
        DELETE FROM crm_dashboard.alert_rule_channel rc WHERE rc.rule_id = r.id;
        INSERT INTO crm_dashboard.alert_rule_channel (rule_id, channel_id)
        SELECT r.id, c FROM unnest(crm_dashboard.channel_ids(update_alert_rule.channels)) c;
    END IF;
    UPDATE crm_dashboard.alert_rule x
       SET name = r.name, params = r.params, severity = r.severity, renotify_after = r.renotify_after,
           enabled = coalesce(update_alert_rule.enabled, x.enabled),
           updated_by = crm_dashboard.requester_name(), updated_at = now()
     WHERE x.id = r.id;
    IF update_alert_rule.enabled IS FALSE THEN
        -- a rule switched off watches nothing: its alerts could never resolve
        FOR a IN SELECT x.crm, x.model FROM crm_dashboard.alert x WHERE x.rule_id = r.id AND x.resolved_at IS NULL LOOP
            PERFORM crm_dashboard.alert_resolve(r.id, a.crm, a.model, 'the rule was disabled', crm_dashboard.requester_name());
        END LOOP;
    END IF;
    RETURN crm_dashboard.rule_json(r.id);
END
$$;
COMMENT ON FUNCTION crm_api.update_alert_rule(bigint, text, jsonb, text[], text, interval, boolean) IS
    'Change an alert rule: name, params, channels (replacing them), severity, renotify_after (''0'' turns reminders off), enabled; NULL keeps a value.  Disabling a rule resolves its open alerts.  Its watch and scope stay: create another rule for another one.';

CREATE FUNCTION crm_api.delete_alert_rule(id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
BEGIN
    PERFORM 1 FROM crm_dashboard.alert_rule r WHERE r.id = delete_alert_rule.id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert rule', delete_alert_rule.id, 'alert_rules');
    END IF;
    -- its open alerts resolve (notified where they were) before its channels go
    FOR a IN SELECT x.crm, x.model FROM crm_dashboard.alert x WHERE x.rule_id = delete_alert_rule.id AND x.resolved_at IS NULL LOOP
        PERFORM crm_dashboard.alert_resolve(delete_alert_rule.id, a.crm, a.model, 'the rule was deleted', crm_dashboard.requester_name());
    END LOOP;
    DELETE FROM crm_dashboard.alert_rule r WHERE r.id = delete_alert_rule.id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_api.delete_alert_rule(bigint) IS
    'Delete an alert rule; its open alerts resolve first; its past alerts are kept (with its name).';


-- ---- Working with alerts (operators) -------------------------------------------------

-- The alert, locked, or the errors for an unknown or resolved one.
CREATE FUNCTION crm_dashboard.alert_for_action(alert_id bigint, action text) RETURNS crm_dashboard.alert
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert;
BEGIN
    SELECT x.* INTO a FROM crm_dashboard.alert x WHERE x.id = alert_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert', alert_id, 'alerts');
    END IF;
    IF a.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is resolved', alert_id
            USING ERRCODE = 'PT409', DETAIL = format('It resolved at %s: %s.', a.resolved_at, a.resolve_reason),
                  HINT = format('Only open alerts can be %s.', action);
    END IF;
    RETURN a;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_for_action(bigint, text) IS
    'Private: lock an alert an operator acts on; undefined_object when unknown, PT409 (HTTP 409) when resolved.';

CREATE FUNCTION crm_dashboard.alert_json(alert_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$ SELECT row_to_json(a) FROM crm_api.alerts a WHERE a.id = alert_id $$;
COMMENT ON FUNCTION crm_dashboard.alert_json(bigint) IS 'Private: an alert as crm_api.alerts shows it.';

CREATE FUNCTION crm_api.acknowledge_alert(id bigint, note text DEFAULT NULL) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'acknowledged');
    who text := crm_dashboard.requester_name();
BEGIN
    IF a.acknowledged_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already acknowledged', id
            USING ERRCODE = 'PT409', DETAIL = format('Acknowledged by %s at %s.', a.acknowledged_by, a.acknowledged_at);
    END IF;
    IF length(note) > 500 THEN
        PERFORM crm_dashboard.required_text('note', note, 500, NULL);
    END IF;
    UPDATE crm_dashboard.alert x SET acknowledged_at = now(), acknowledged_by = who WHERE x.id = a.id;
    PERFORM crm_dashboard.alert_note(a.id, 'acknowledged', who, nullif(btrim(note), ''));
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.acknowledge_alert(bigint, text) IS
    'Acknowledge an open alert ("I am on it"), with an optional note: it is no longer counted as open nor notified again; it still resolves (and notifies that) by itself.';

CREATE FUNCTION crm_api.snooze_alert(id bigint, until timestamptz, reason text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'snoozed');
    who text := crm_dashboard.requester_name();
    why text := crm_dashboard.required_text('reason', reason, 500, 'Say why, e.g. ''HubSpot maintenance until Monday''.');
BEGIN
    IF until IS NULL OR until <= now() THEN
        PERFORM crm_dashboard.policy_value_error('until', coalesce(quote_literal(until), 'NULL'), 'a time in the future',
            'Give the end of the snooze, e.g. now() + interval ''2 hours''.');
    END IF;
    IF until > now() + interval '30 days' THEN
        PERFORM crm_dashboard.policy_value_error('until', quote_literal(until), 'at most 30 days ahead',
            'Disable the rule instead to silence it for longer.');
    END IF;
    UPDATE crm_dashboard.alert x SET snoozed_until = until, snoozed_by = who, snooze_reason = why WHERE x.id = a.id;
    PERFORM crm_dashboard.alert_note(a.id, 'snoozed', who, format('until %s: %s', until, why));
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.snooze_alert(bigint, timestamptz, text) IS
    'Snooze an open alert until a time (at most 30 days), with a reason: no reminders meanwhile, and an alert of the same rule and model that opens before then starts snoozed; when the snooze ends on an alert still open, its channels are reminded.';

CREATE FUNCTION crm_api.unsnooze_alert(id bigint) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'unsnoozed');
    who text := crm_dashboard.requester_name();
BEGIN
    IF NOT coalesce(a.snoozed_until > now(), false) THEN
        RAISE EXCEPTION 'alert % is not snoozed', id
            USING ERRCODE = 'PT409', HINT = 'Snoozed alerts are listed in crm_api.alerts with status snoozed.';
    END IF;
    UPDATE crm_dashboard.alert x SET snoozed_until = NULL, snoozed_by = NULL, snooze_reason = NULL WHERE x.id = a.id;
    PERFORM crm_dashboard.alert_note(a.id, 'unsnoozed', who, NULL);
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.unsnooze_alert(bigint) IS 'End the snooze of an alert now.';

CREATE FUNCTION crm_api.resolve_alert(id bigint, reason text DEFAULT NULL) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'resolved');
    who text := crm_dashboard.requester_name();
BEGIN
    IF length(reason) > 500 THEN
        PERFORM crm_dashboard.required_text('reason', reason, 500, NULL);
    END IF;
    PERFORM crm_dashboard.alert_resolve(a.rule_id, a.crm, a.model,
                                        coalesce(nullif(btrim(reason), ''), 'resolved by ' || who), who);
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.resolve_alert(bigint, text) IS
    'Resolve an alert by hand, with an optional reason (notified "resolved" where it was notified); it opens again if its condition recurs.';

-- ---- Privileges ------------------------------------------------------------------------

REVOKE ALL ON FUNCTION crm_dashboard.alert_watches(), crm_dashboard.check_alert_params(text, jsonb),
    crm_dashboard.rules_for(text, text, text[]), crm_dashboard.channel_ids(text[]),
    crm_dashboard.alert_status(timestamptz, timestamptz, timestamptz), crm_dashboard.alert_link(bigint),
    crm_dashboard.alert_document(crm_dashboard.alert), crm_dashboard.alert_enqueue(bigint, text),
    crm_dashboard.announce_event(text, text), crm_dashboard.announce_alert(bigint, text),
    crm_dashboard.alert_note(bigint, text, text, text),
    crm_dashboard.alert_fire(crm_dashboard.alert_rule, text, text, bigint, text, text, jsonb),
    crm_dashboard.alert_resolve(bigint, text, text, text, text), crm_dashboard.model_label(text, text),
    crm_dashboard.seconds_text(float8), crm_dashboard.consecutive_failures(text, text),
    crm_dashboard.usual_duration(text, text, bigint), crm_dashboard.request_over(crm_dashboard.sync_history),
    crm_dashboard.check_slow(crm_dashboard.alert_rule, crm_dashboard.sync_history),
    crm_dashboard.apply_rule(crm_dashboard.alert_rule, crm_dashboard.sync_history), crm_dashboard.run_watches(),
    crm_dashboard.observe_run(bigint), crm_dashboard.observe_inserted_runs(), crm_dashboard.observe_updated_runs(),
    crm_dashboard.observe_event(text, text, text, jsonb), crm_dashboard.alerts_tick(),
    crm_dashboard.unknown_alert_object(text, bigint, text), crm_dashboard.required_text(text, text, integer, text),
    crm_dashboard.rule_json(bigint), crm_dashboard.check_rule_options(text, interval),
    crm_dashboard.alert_for_action(bigint, text), crm_dashboard.alert_json(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.create_alert_rule(text, text, text, text, jsonb, text[], text, interval, boolean),
    crm_api.update_alert_rule(bigint, text, jsonb, text[], text, interval, boolean), crm_api.delete_alert_rule(bigint),
    crm_api.acknowledge_alert(bigint, text), crm_api.snooze_alert(bigint, timestamptz, text),
    crm_api.unsnooze_alert(bigint), crm_api.resolve_alert(bigint, text) FROM PUBLIC;
-- the views call this as their reader
GRANT EXECUTE ON FUNCTION crm_dashboard.alert_status(timestamptz, timestamptz, timestamptz) TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.acknowledge_alert(bigint, text), crm_api.snooze_alert(bigint, timestamptz, text),
    crm_api.unsnooze_alert(bigint), crm_api.resolve_alert(bigint, text) TO crm_dashboard_operator;
GRANT EXECUTE ON FUNCTION crm_api.create_alert_rule(text, text, text, text, jsonb, text[], text, interval, boolean),
    crm_api.update_alert_rule(bigint, text, jsonb, text[], text, interval, boolean),
    crm_api.delete_alert_rule(bigint) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.alerts, crm_api.open_alerts, crm_api.alert_summary, crm_api.alert_counts, crm_api.alert_history,
    crm_api.alert_rules, crm_api.alert_watches TO crm_dashboard_viewer;
-- the view reads the list as its owner does; viewers need not call it
GRANT EXECUTE ON FUNCTION crm_dashboard.alert_watches() TO crm_dashboard_viewer;

-- src/delivery.sql, all new
-- Delivering alerts (src/delivery*.c): channels and what checks their
-- targets, how a notification reads on each kind of channel, and the
-- alerts worker's steps over the outbox (claim with a lease, record each
-- attempt, retry with backoff, recover after a crash); crm_api.test_channel.

-- The C side (src/delivery_hosts.c, src/delivery_sql.c).
CREATE FUNCTION crm_dashboard.check_delivery_url(kind text, url text) RETURNS text
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_check_delivery_url';
COMMENT ON FUNCTION crm_dashboard.check_delivery_url(text, text) IS
    'Private: the URL of a channel of the kind, normalised, or invalid_parameter_value naming it: a scheme the kind may use (http, https; smtp, smtps), a host, and addresses crm_dashboard.delivery_allowed_hosts allows (names are resolved).';
CREATE FUNCTION crm_dashboard.random_secret() RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_random_secret';
COMMENT ON FUNCTION crm_dashboard.random_secret() IS
    'Private: 32 random bytes from the operating system''s generator, hex-encoded (a webhook signing secret).';
CREATE FUNCTION crm_dashboard.webhook_signature(secret text, signed_at bigint, body text) RETURNS text
LANGUAGE C IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_webhook_signature';
COMMENT ON FUNCTION crm_dashboard.webhook_signature(text, bigint, text) IS
    'Private: the X-Crm-Dashboard-Signature header of a webhook body: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>.';
CREATE FUNCTION crm_dashboard.wake_delivery() RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_wake_delivery';
COMMENT ON FUNCTION crm_dashboard.wake_delivery() IS
    'Private: wake the alerts worker when this transaction commits (new notifications to deliver).';

-- Where a channel sends to, without secrets: scheme, host and port.
CREATE FUNCTION crm_dashboard.channel_target(url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/?#]*@)?([^/?#]*).*$', '\1\2');
COMMENT ON FUNCTION crm_dashboard.channel_target(text) IS
    'Private: the scheme, host and port of a channel''s URL, which anyone may see (its path and credentials are secret).';

-- An e-mail address as a channel takes it: one plain address, no display
-- name, nothing a header could be split at.
CREATE FUNCTION crm_dashboard.check_mail_address(field text, address text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF address IS NULL OR address !~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$'
       OR length(address) > 254 THEN
        RAISE EXCEPTION 'invalid e-mail address % in %', coalesce(quote_literal(address), 'NULL'), field
            USING ERRCODE = 'invalid_parameter_value', DETAIL = field,
                  HINT = 'Give plain addresses such as alerts@example.com, without a display name.';
    END IF;
    RETURN address;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_mail_address(text, text) IS
    'Private: an e-mail address for a channel (plain addr-spec), or invalid_parameter_value naming it.';


-- ---- Rendering notifications ------------------------------------------------------

-- The words of a notice: a subject line and a plain-text body.
CREATE FUNCTION crm_dashboard.notification_text(payload jsonb, OUT subject text, OUT body text)
RETURNS record
LANGUAGE sql STABLE
AS $$
    SELECT format('[%s] %s', upper(replace(payload ->> 'type', 'alert.', '')), a ->> 'title'),
           concat_ws(E'\n',
               a ->> 'title',
               nullif(a ->> 'message', ''),
               '',
               format('Rule: %s (%s), severity %s', a #>> '{rule,name}', a #>> '{rule,watch}', a ->> 'severity'),
               format('Model: %s %s', a ->> 'crm', a ->> 'model'),
               CASE WHEN a ->> 'run_id' IS NOT NULL THEN format('Run: %s', a ->> 'run_id') END,
               format('First seen %s, last seen %s, %s %s',
                      to_char((a ->> 'first_seen')::timestamptz, 'YYYY-MM-DD HH24:MI:SS TZ'),
                      to_char((a ->> 'last_seen')::timestamptz, 'YYYY-MM-DD HH24:MI:SS TZ'),
                      a ->> 'occurrences', CASE WHEN a ->> 'occurrences' = '1' THEN 'time' ELSE 'times' END),
               CASE WHEN payload ->> 'type' = 'alert.resolved' THEN format('Resolved: %s', a ->> 'resolve_reason') END,
               CASE WHEN a ->> 'url' IS NOT NULL THEN format('Open: %s', a ->> 'url') END,
               '',
               format('Notification %s', payload ->> 'id'))
      FROM (SELECT payload -> 'alert' AS a) x
$$;
COMMENT ON FUNCTION crm_dashboard.notification_text(jsonb) IS
    'Private: the subject ("[FIRING] HubSpot contact: sync failed") and plain-text body of a notification.';

-- A Slack incoming-webhook message.  Text from the data is escaped as Slack
-- asks (&, <, >), so that an error message cannot mention @channel or
-- forge a link.
CREATE FUNCTION crm_dashboard.slack_message(payload jsonb) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'text', concat_ws(E'\n',
            format('%s *%s*', CASE payload ->> 'type' WHEN 'alert.resolved' THEN ':white_check_mark:'
                                                      WHEN 'alert.test' THEN ':test_tube:'
                                                      WHEN 'alert.reminder' THEN ':repeat:'
                                                      ELSE CASE a ->> 'severity' WHEN 'critical' THEN ':red_circle:'
                                                                                 WHEN 'info' THEN ':information_source:'
                                                                                 ELSE ':warning:' END END,
                   crm_dashboard.slack_escape(t.subject)),
            crm_dashboard.slack_escape(nullif(a ->> 'message', '')),
            format('_%s · %s %s · seen %s %s_', crm_dashboard.slack_escape(a #>> '{rule,name}'),
                   crm_dashboard.slack_escape(a ->> 'crm'), crm_dashboard.slack_escape(a ->> 'model'),
                   a ->> 'occurrences', CASE WHEN a ->> 'occurrences' = '1' THEN 'time' ELSE 'times' END),
            CASE WHEN payload ->> 'type' = 'alert.resolved' THEN 'Resolved: ' || crm_dashboard.slack_escape(a ->> 'resolve_reason') END,
            CASE WHEN a ->> 'url' ~ '^https?://[^|<> ]+$' THEN format('<%s|Open in the dashboard>', a ->> 'url') END),
        'unfurl_links', false, 'unfurl_media', false)::text
      FROM (SELECT payload -> 'alert' AS a) x, crm_dashboard.notification_text(payload) t
$$;
COMMENT ON FUNCTION crm_dashboard.slack_message(jsonb) IS
    'Private: a notification as a Slack incoming-webhook message ({"text": ...}, data escaped as Slack asks).';

CREATE FUNCTION crm_dashboard.slack_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;');
COMMENT ON FUNCTION crm_dashboard.slack_escape(text) IS 'Private: text escaped for a Slack message (&, <, >).';

-- A header value without line breaks, encoded (RFC 2047) unless it is plain ASCII.
CREATE FUNCTION crm_dashboard.mail_header_value(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN regexp_replace(value, '[\r\n]+', ' ', 'g') ~ '^[ -~]*$' THEN regexp_replace(value, '[\r\n]+', ' ', 'g')
            ELSE '=?UTF-8?B?' || translate(encode(convert_to(regexp_replace(value, '[\r\n]+', ' ', 'g'), 'UTF8'), 'base64'), E'\n', '')
                 || '?=' END;
COMMENT ON FUNCTION crm_dashboard.mail_header_value(text) IS
    'Private: a mail header value with line breaks removed, as an RFC 2047 encoded word unless plain ASCII.';

-- An e-mail notification: the whole RFC 5322 message, the body in base64
-- (no line of the data can end the message or break a header).
CREATE FUNCTION crm_dashboard.email_message(payload jsonb, mail_from text, mail_to text[]) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT concat_ws(E'\r\n',
        'From: ' || mail_from,
        'To: ' || array_to_string(mail_to, ', '),
        'Subject: ' || crm_dashboard.mail_header_value(t.subject),
        'Date: ' || to_char(now() AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' +0000',
        'Message-ID: <' || (payload ->> 'id') || '@crm-dashboard>',
        'X-Crm-Dashboard-Delivery: ' || (payload ->> 'id'),
        'X-Crm-Dashboard-Event: ' || (payload ->> 'type'),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        replace(encode(convert_to(replace(t.body, E'\n', E'\r\n'), 'UTF8'), 'base64'), E'\n', E'\r\n'),
        '')
      FROM crm_dashboard.notification_text(payload) t
$$;
COMMENT ON FUNCTION crm_dashboard.email_message(jsonb, text, text[]) IS
    'Private: a notification as an e-mail (headers, base64 plain-text body); its Message-ID is the notification''s id.';

-- What is sent to a channel of kind: the webhook's JSON as it is, Slack's
-- message, or the e-mail.
CREATE FUNCTION crm_dashboard.notification_body(kind text, payload jsonb, mail_from text, mail_to text[]) RETURNS text
LANGUAGE sql STABLE
RETURN CASE kind WHEN 'webhook' THEN payload::text
                 WHEN 'slack' THEN crm_dashboard.slack_message(payload)
                 WHEN 'email' THEN crm_dashboard.email_message(payload, mail_from, mail_to) END;
COMMENT ON FUNCTION crm_dashboard.notification_body(text, jsonb, text, text[]) IS
    'Private: the body sent to a channel of kind (webhook: the notification JSON; slack: its message; email: the message).';

-- The notification a test of a channel sends: a sample alert, marked as a test.
CREATE FUNCTION crm_dashboard.test_payload(channel_id bigint, id uuid) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('id', id, 'type', 'alert.test', 'created_at', now(), 'test', true,
        'alert', jsonb_build_object('id', NULL, 'status', 'open',
            'rule', jsonb_build_object('id', NULL, 'name', 'test of channel ' || c.name, 'watch', 'test'),
            'severity', 'info', 'crm', 'crm_dashboard', 'model', 'test',
            'title', 'Test notification from crm_dashboard',
            'message', format('Sent by %s to check channel %s; no action is needed.', crm_dashboard.requester_name(), c.name),
            'detail', '{}'::jsonb, 'run_id', NULL, 'first_seen', now(), 'last_seen', now(), 'occurrences', 1,
            'acknowledged_by', NULL, 'resolved_at', NULL, 'resolve_reason', NULL, 'url', NULL))
      FROM crm_dashboard.alert_channel c WHERE c.id = channel_id
$$;
COMMENT ON FUNCTION crm_dashboard.test_payload(bigint, uuid) IS 'Private: the sample notification crm_api.test_channel sends.';

-- ---- Delivering the outbox (the alerts worker, src/delivery_queue.c) --------------

-- A delivery attempt's outcome on its channel's health.
CREATE FUNCTION crm_dashboard.note_channel_attempt(channel_id bigint, ok boolean, error text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    UPDATE crm_dashboard.alert_channel c
       SET last_attempt_at = now(), attempts_total = c.attempts_total + 1,
           last_success_at = CASE WHEN ok THEN now() ELSE c.last_success_at END,
           last_failure_at = CASE WHEN ok THEN c.last_failure_at ELSE now() END,
           last_error = CASE WHEN ok THEN c.last_error ELSE left(error, 500) END,
           consecutive_failures = CASE WHEN ok THEN 0 ELSE c.consecutive_failures + 1 END,
           failures_total = c.failures_total + CASE WHEN ok THEN 0 ELSE 1 END
     WHERE c.id = channel_id;
END;
COMMENT ON FUNCTION crm_dashboard.note_channel_attempt(bigint, boolean, text) IS
    'Private: record a delivery attempt in its channel''s health (last success or failure, failures in a row, totals).';

-- At the alerts worker's start: attempts a previous worker left unfinished
-- (it was killed mid-delivery) are recorded as such, and their
-- notifications' leases end, so they are sent again with the same key.
CREATE FUNCTION crm_dashboard.delivery_recover() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE crm_dashboard.alert_delivery d
       SET finished_at = now(), ok = false,
           error = 'the alerts worker stopped during this attempt; the notification is sent again'
     WHERE d.finished_at IS NULL AND d.notification_id IS NOT NULL;
    UPDATE crm_dashboard.alert_notification n SET lease_until = NULL
     WHERE n.status = 'pending' AND n.lease_until IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_recover() IS
    'Private: at the alerts worker''s start, end the leases of notifications a previous worker was delivering (they are sent again, with the same idempotency key); returns how many.';

-- The alerts worker's claim step: lease up to slots due notifications, at
-- most per_channel in flight per channel, and never one while an earlier
-- notice of the same alert to the same channel is still pending (so that
-- "resolved" never overtakes "firing").  Each claimed attempt is recorded
-- as started.  The caller commits before sending anything: the lease is
-- what lets a restarted worker find an interrupted delivery.
CREATE FUNCTION crm_dashboard.delivery_claim(slots integer, per_channel integer, lease interval)
RETURNS TABLE (notification_id bigint, uuid uuid, attempt integer, delivery_id bigint, channel text, kind text,
               event text, url text, secret text, smtp_username text, smtp_password text, mail_from text,
               mail_to text[], require_tls boolean, body text)
LANGUAGE plpgsql
ROWS 16
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(slots, 0) <= 0 OR coalesce(per_channel, 0) <= 0 OR lease IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH inflight AS (
        SELECT n.channel_id, count(*) AS busy FROM crm_dashboard.alert_notification n
         WHERE n.status = 'pending' AND n.lease_until > now() GROUP BY n.channel_id),
    due AS (
        SELECT n.id, n.channel_id, n.next_attempt_at
          FROM crm_dashboard.alert_notification n
          JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id AND c.enabled
         WHERE n.status = 'pending' AND n.next_attempt_at <= now() AND (n.lease_until IS NULL OR n.lease_until <= now())
           -- a channel at its limit (one that hangs) costs nothing more here
           AND NOT EXISTS (SELECT 1 FROM inflight i WHERE i.channel_id = n.channel_id AND i.busy >= delivery_claim.per_channel)
           AND NOT EXISTS (SELECT 1 FROM crm_dashboard.alert_notification e
                            WHERE e.alert_id = n.alert_id AND e.channel_id = n.channel_id AND e.id < n.id
                              AND e.status = 'pending')
         ORDER BY n.next_attempt_at, n.id
         LIMIT 1000),
    ranked AS (
        SELECT d.id, d.next_attempt_at,
               row_number() OVER (PARTITION BY d.channel_id ORDER BY d.next_attempt_at, d.id) + coalesce(i.busy, 0) AS place
          FROM due d LEFT JOIN inflight i ON i.channel_id = d.channel_id),
    picked AS (
        SELECT n.id FROM crm_dashboard.alert_notification n
          JOIN (SELECT r.id, r.next_attempt_at FROM ranked r WHERE r.place <= delivery_claim.per_channel
                 ORDER BY r.next_attempt_at, r.id LIMIT delivery_claim.slots) r ON r.id = n.id
           FOR UPDATE OF n SKIP LOCKED),
    leased AS (
        UPDATE crm_dashboard.alert_notification n
           SET lease_until = now() + delivery_claim.lease, attempts = n.attempts + 1
          FROM picked WHERE n.id = picked.id
        RETURNING n.*),
    started AS (
        INSERT INTO crm_dashboard.alert_delivery (notification_id, channel_id, attempt)
        SELECT l.id, l.channel_id, l.attempts FROM leased l
        RETURNING alert_delivery.id, alert_delivery.notification_id)
    SELECT l.id, l.uuid, l.attempts, s.id, c.name, c.kind, l.event, c.url, c.secret, c.smtp_username, c.smtp_password,
           c.mail_from, c.mail_to, c.require_tls,
           crm_dashboard.notification_body(c.kind, l.payload, c.mail_from, c.mail_to)
      FROM leased l
      JOIN started s ON s.notification_id = l.id
      JOIN crm_dashboard.alert_channel c ON c.id = l.channel_id
     ORDER BY l.next_attempt_at, l.id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_claim(integer, integer, interval) IS
    'Private: the alerts worker''s claim step: lease due notifications (per-channel limit, one notice of an alert per channel at a time, in order), record their attempts as started, and return what to send.';

-- An attempt's outcome: delivered; failed for good (permanent, or the last
-- attempt); or retried after exponential backoff with full jitter (at
-- least what the receiver's Retry-After asked, within the cap).
CREATE FUNCTION crm_dashboard.delivery_done(delivery_id bigint, ok boolean, status_code integer, error text,
                                            duration_ms float8, retry_after integer, permanent boolean,
                                            max_attempts integer, backoff_base interval, backoff_cap interval)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d crm_dashboard.alert_delivery;
    outcome text;
BEGIN
    UPDATE crm_dashboard.alert_delivery x
       SET finished_at = now(), duration_ms = delivery_done.duration_ms, ok = coalesce(delivery_done.ok, false),
           status_code = delivery_done.status_code, error = left(delivery_done.error, 1000)
     WHERE x.id = delivery_done.delivery_id AND x.finished_at IS NULL
    RETURNING x.* INTO d;
    IF d.id IS NULL THEN
        RETURN NULL;
    END IF;
    outcome := CASE WHEN d.ok THEN 'delivered'
                    WHEN coalesce(permanent, false) OR d.attempt >= coalesce(max_attempts, 1) THEN 'failed'
                    ELSE 'pending' END;
    UPDATE crm_dashboard.alert_notification n
       SET status = outcome, lease_until = NULL, last_status_code = delivery_done.status_code,
           last_error = CASE WHEN d.ok THEN NULL ELSE left(delivery_done.error, 500) END,
           delivered_at = CASE WHEN d.ok THEN now() END,
           next_attempt_at = CASE WHEN outcome = 'pending'
                                  THEN now() + greatest(crm_dashboard.retry_delay(backoff_base, backoff_cap, d.attempt),
                                                        least(make_interval(secs => greatest(coalesce(retry_after, 0), 0)), backoff_cap))
                                  ELSE n.next_attempt_at END
     WHERE n.id = d.notification_id AND n.status = 'pending';
    PERFORM crm_dashboard.note_channel_attempt(d.channel_id, d.ok, error);
    RETURN outcome;
END
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_done(bigint, boolean, integer, text, float8, integer, boolean, integer, interval, interval) IS
    'Private: record a delivery attempt''s outcome: delivered, failed for good, or pending again after full-jitter backoff (respecting Retry-After within the cap); updates the channel''s health.';

-- A test of a channel, recorded like any attempt.
CREATE FUNCTION crm_dashboard.delivery_tested(channel_id bigint, ok boolean, status_code integer, error text,
                                              duration_ms float8)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO crm_dashboard.alert_delivery (channel_id, attempt, started_at, finished_at, duration_ms, ok, status_code, error)
    SELECT c.id, 1, clock_timestamp() - make_interval(secs => coalesce(duration_ms, 0) / 1000), clock_timestamp(),
           duration_ms, coalesce(ok, false), status_code, left(error, 1000)
      FROM crm_dashboard.alert_channel c WHERE c.id = channel_id;
    SELECT crm_dashboard.note_channel_attempt(channel_id, coalesce(ok, false), error);
END;
COMMENT ON FUNCTION crm_dashboard.delivery_tested(bigint, boolean, integer, text, float8) IS
    'Private: record the attempt of crm_api.test_channel and its effect on the channel''s health.';

-- When the alerts worker must look at the outbox again without being woken:
-- the next retry due, or the end of a lease still running.
CREATE FUNCTION crm_dashboard.delivery_next_due() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT min(t) FROM (
        (SELECT n.next_attempt_at AS t FROM crm_dashboard.alert_notification n
          WHERE n.status = 'pending' AND n.lease_until IS NULL ORDER BY n.next_attempt_at LIMIT 1)
        UNION ALL
        (SELECT min(n.lease_until) FROM crm_dashboard.alert_notification n
          WHERE n.status = 'pending' AND n.lease_until IS NOT NULL)) x
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_next_due() IS
    'Private: when a notification becomes due (a retry, or a lease that ends), if any.';

-- ---- Views ----------------------------------------------------------------------

-- A channel as anyone may see it (no secrets).
CREATE VIEW crm_api.alert_channels AS
    SELECT c.id, c.name, c.kind, crm_dashboard.channel_target(c.url) AS target, c.enabled,
           cardinality(c.mail_to) AS recipients, c.require_tls,
           c.last_attempt_at, c.last_success_at, c.last_failure_at, c.last_error,
           c.consecutive_failures, c.consecutive_failures >= 3 AS failing,
           c.attempts_total, c.failures_total,
           (SELECT count(*) FROM crm_dashboard.alert_notification n
             WHERE n.channel_id = c.id AND n.status = 'pending')::integer AS pending,
           (SELECT coalesce(array_agg(r.name ORDER BY r.name), '{}') FROM crm_dashboard.alert_rule_channel rc
              JOIN crm_dashboard.alert_rule r ON r.id = rc.rule_id WHERE rc.channel_id = c.id) AS rules,
           c.created_by, c.created_at, c.updated_by, c.updated_at
      FROM crm_dashboard.alert_channel c;


CREATE VIEW crm_api.alert_notifications AS
    SELECT n.id, n.uuid, n.alert_id, c.name AS channel, c.kind, n.event, n.status, n.attempts, n.created_at,
           n.next_attempt_at, n.lease_until IS NOT NULL AND n.lease_until > now() AS sending,
           n.delivered_at, n.last_status_code, n.last_error
      FROM crm_dashboard.alert_notification n
      JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id
     ORDER BY n.id DESC;

CREATE VIEW crm_api.alert_deliveries AS
    SELECT d.id, d.notification_id, n.alert_id, c.name AS channel, c.kind, d.attempt, d.started_at, d.finished_at,
           d.duration_ms, d.ok, d.status_code, d.error, d.notification_id IS NULL AS test
      FROM crm_dashboard.alert_delivery d
      JOIN crm_dashboard.alert_channel c ON c.id = d.channel_id
      LEFT JOIN crm_dashboard.alert_notification n ON n.id = d.notification_id
     ORDER BY d.id DESC;

COMMENT ON VIEW crm_api.alert_notifications IS
    'The outbox: each notice of an alert to a channel (firing, resolved, reminder), its status (pending, delivered, failed, cancelled), attempts, next attempt, last HTTP status and error; uuid is its idempotency key.';
COMMENT ON VIEW crm_api.alert_deliveries IS 'Every delivery attempt, newest first: notification (or a test), channel, when, how long, ok, HTTP status, error.';
COMMENT ON VIEW crm_api.alert_channels IS
    'Alert channels without their secrets: kind, target (scheme, host, port), recipients, health (last success and failure, last error, failures in a row, failing after 3), pending notifications, rules.';

-- ---- Managing channels (administrators) ------------------------------------------

CREATE FUNCTION crm_dashboard.channel_json(channel_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$ SELECT row_to_json(c) FROM crm_api.alert_channels c WHERE c.id = channel_id $$;
COMMENT ON FUNCTION crm_dashboard.channel_json(bigint) IS 'Private: a channel as crm_api.alert_channels shows it.';

-- Check a channel's settings as a whole (kind, URL, secret, addresses);
-- returns the normalised URL.
CREATE FUNCTION crm_dashboard.check_channel(c crm_dashboard.alert_channel) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    url text;
BEGIN
    IF c.name IS NULL OR c.name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid channel name %', coalesce(quote_literal(c.name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'name',
                  HINT = 'Use lower-case letters, digits, "-", "_" and ".", up to 63 characters, e.g. ops-slack.';
    END IF;
    IF c.kind IS NULL OR c.kind NOT IN ('webhook', 'slack', 'email') THEN
        RAISE EXCEPTION 'unknown channel kind %', coalesce(quote_literal(c.kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'kind',
                  HINT = 'A channel is a webhook (signed JSON), slack (an incoming webhook) or email (SMTP).';
    END IF;
    IF c.url IS NULL THEN
        RAISE EXCEPTION 'a % channel needs a url', c.kind
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'url',
                  HINT = CASE c.kind WHEN 'email' THEN 'Give the SMTP server, e.g. smtp://mail.example.com:587 (STARTTLS when offered) or smtps://mail.example.com.'
                                     WHEN 'slack' THEN 'Give the incoming webhook''s URL, https://hooks.slack.com/services/...'
                                     ELSE 'Give the http or https URL that receives the notifications.' END;
    END IF;
    url := crm_dashboard.check_delivery_url(c.kind, c.url);
    IF c.kind = 'webhook' AND length(c.secret) < 16 THEN
        RAISE EXCEPTION 'the signing secret of a webhook must be at least 16 characters long'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'secret',
                  HINT = 'Leave it out to have a random one made.';
    END IF;
    IF c.kind <> 'webhook' AND c.secret IS NOT NULL THEN
        RAISE EXCEPTION 'a % channel has no signing secret', c.kind
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'secret',
                  HINT = CASE WHEN c.kind = 'slack' THEN 'A Slack incoming webhook''s URL is its secret.'
                              ELSE 'Only webhooks are signed.' END;
    END IF;
    IF c.kind = 'email' THEN
        PERFORM crm_dashboard.check_mail_address('mail_from', c.mail_from);
        IF coalesce(cardinality(c.mail_to), 0) = 0 OR array_ndims(c.mail_to) > 1 THEN
            RAISE EXCEPTION 'an email channel needs recipients'
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'mail_to',
                      HINT = 'Give mail_to as a list of addresses, e.g. {oncall@example.com}.';
        END IF;
        IF cardinality(c.mail_to) > 50 THEN
            RAISE EXCEPTION 'an email channel has at most 50 recipients, not %', cardinality(c.mail_to)
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'mail_to',
                      HINT = 'Send to a mailing list instead.';
        END IF;
        PERFORM crm_dashboard.check_mail_address('mail_to', m) FROM unnest(c.mail_to) m;
        IF c.smtp_password IS NOT NULL AND c.smtp_username IS NULL THEN
            RAISE EXCEPTION 'an SMTP password needs a user name'
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'smtp_username',
                      HINT = 'Give smtp_username with smtp_password.';
        END IF;
        IF c.smtp_username ~ '[\r\n\x01-\x1f]' OR c.smtp_password ~ '[\r\n]' THEN
            RAISE EXCEPTION 'SMTP credentials may not contain control characters'
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'smtp_username';
        END IF;
    ELSE
        IF num_nonnulls(c.mail_from, c.mail_to, c.smtp_username, c.smtp_password) > 0 OR c.require_tls THEN
            RAISE EXCEPTION 'mail_from, mail_to, smtp_username, smtp_password and require_tls are settings of email channels, not of a % channel', c.kind
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = CASE WHEN c.mail_from IS NOT NULL THEN 'mail_from' WHEN c.mail_to IS NOT NULL THEN 'mail_to'
                                    WHEN c.smtp_username IS NOT NULL THEN 'smtp_username'
                                    WHEN c.smtp_password IS NOT NULL THEN 'smtp_password' ELSE 'require_tls' END;
        END IF;
    END IF;
    RETURN url;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_channel(crm_dashboard.alert_channel) IS
    'Private: check a channel''s settings as a whole (name, kind, URL against the allow-list, secret, addresses); returns the normalised URL.';

CREATE FUNCTION crm_api.create_alert_channel(name text, kind text, url text, secret text DEFAULT NULL,
                                             mail_from text DEFAULT NULL, mail_to text[] DEFAULT NULL,
                                             smtp_username text DEFAULT NULL, smtp_password text DEFAULT NULL,
                                             require_tls boolean DEFAULT false, enabled boolean DEFAULT true)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c crm_dashboard.alert_channel;
BEGIN
    c.name := name; c.kind := kind; c.url := url; c.mail_from := mail_from; c.mail_to := mail_to;
    c.smtp_username := nullif(smtp_username, ''); c.smtp_password := nullif(smtp_password, '');
    c.require_tls := coalesce(require_tls, false);
    c.secret := CASE WHEN kind = 'webhook' THEN coalesce(secret, crm_dashboard.random_secret()) ELSE secret END;
    c.url := crm_dashboard.check_channel(c);
    IF EXISTS (SELECT 1 FROM crm_dashboard.alert_channel x WHERE x.name = c.name) THEN
        RAISE EXCEPTION 'alert channel "%" already exists', c.name
            USING ERRCODE = 'unique_violation', DETAIL = 'name',
                  HINT = 'Pick another name, or change that channel with crm_api.update_alert_channel.';
    END IF;
    INSERT INTO crm_dashboard.alert_channel AS x (name, kind, url, secret, smtp_username, smtp_password, mail_from, mail_to,
                                                  require_tls, enabled, created_by)
    VALUES (c.name, c.kind, c.url, c.secret, c.smtp_username, c.smtp_password, c.mail_from, c.mail_to, c.require_tls,
            coalesce(enabled, true), crm_dashboard.requester_name())
    RETURNING x.id INTO c.id;
    RETURN crm_dashboard.channel_json(c.id);
END
$$;
COMMENT ON FUNCTION crm_api.create_alert_channel(text, text, text, text, text, text[], text, text, boolean, boolean) IS
    'Create an alert channel: kind webhook (url, signed with secret, a random one when not given), slack (an incoming webhook''s url) or email (url smtp:// or smtps://, mail_from, mail_to, optional smtp_username and smtp_password, require_tls).  URLs must be http or https (smtp or smtps for email) and reach only hosts crm_dashboard.delivery_allowed_hosts allows.';

CREATE FUNCTION crm_api.update_alert_channel(id bigint, name text DEFAULT NULL, url text DEFAULT NULL,
                                             secret text DEFAULT NULL, mail_from text DEFAULT NULL,
                                             mail_to text[] DEFAULT NULL, smtp_username text DEFAULT NULL,
                                             smtp_password text DEFAULT NULL, require_tls boolean DEFAULT NULL,
                                             enabled boolean DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c crm_dashboard.alert_channel;
BEGIN
    SELECT x.* INTO c FROM crm_dashboard.alert_channel x WHERE x.id = update_alert_channel.id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert channel', update_alert_channel.id, 'alert_channels');
    END IF;
    c.name := coalesce(update_alert_channel.name, c.name);
    c.url := coalesce(update_alert_channel.url, c.url);
    c.secret := coalesce(update_alert_channel.secret, c.secret);
    c.mail_from := coalesce(update_alert_channel.mail_from, c.mail_from);
    c.mail_to := coalesce(update_alert_channel.mail_to, c.mail_to);
    -- '' clears the SMTP credentials
    c.smtp_username := CASE WHEN update_alert_channel.smtp_username IS NULL THEN c.smtp_username
                            ELSE nullif(update_alert_channel.smtp_username, '') END;
    c.smtp_password := CASE WHEN update_alert_channel.smtp_password IS NULL THEN c.smtp_password
                            ELSE nullif(update_alert_channel.smtp_password, '') END;
    c.require_tls := coalesce(update_alert_channel.require_tls, c.require_tls);
    c.url := crm_dashboard.check_channel(c);
    IF EXISTS (SELECT 1 FROM crm_dashboard.alert_channel x WHERE x.name = c.name AND x.id <> c.id) THEN
        RAISE EXCEPTION 'alert channel "%" already exists', c.name
            USING ERRCODE = 'unique_violation', DETAIL = 'name', HINT = 'Pick another name.';
    END IF;
    UPDATE crm_dashboard.alert_channel x
       SET name = c.name, url = c.url, secret = c.secret, mail_from = c.mail_from, mail_to = c.mail_to,
           smtp_username = c.smtp_username, smtp_password = c.smtp_password, require_tls = c.require_tls,
           enabled = coalesce(update_alert_channel.enabled, x.enabled),
           updated_by = crm_dashboard.requester_name(), updated_at = now()
     WHERE x.id = c.id;
    IF update_alert_channel.enabled IS FALSE THEN
        -- a channel switched off sends nothing it still had to send
        UPDATE crm_dashboard.alert_notification n
           SET status = 'cancelled', lease_until = NULL, last_error = 'the channel was disabled'
         WHERE n.channel_id = c.id AND n.status = 'pending';
    ELSE
        PERFORM crm_dashboard.wake_delivery();
    END IF;
    RETURN crm_dashboard.channel_json(c.id);
END
$$;
COMMENT ON FUNCTION crm_api.update_alert_channel(bigint, text, text, text, text, text[], text, text, boolean, boolean) IS
    'Change an alert channel: the values given (NULL keeps one; '''' clears the SMTP credentials) are checked like create_alert_channel''s.  Disabling it cancels its pending notifications.';

CREATE FUNCTION crm_api.delete_alert_channel(id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM crm_dashboard.alert_channel c WHERE c.id = delete_alert_channel.id;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert channel', delete_alert_channel.id, 'alert_channels');
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_api.delete_alert_channel(bigint) IS
    'Delete an alert channel, its notifications and their attempts; rules no longer send to it.';

CREATE FUNCTION crm_api.test_channel(id bigint) RETURNS json
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_test_channel';
COMMENT ON FUNCTION crm_api.test_channel(bigint) IS
    'Send a test notification to a channel now and report the result: ok, status_code (HTTP; 250 for SMTP), error, duration_ms, the notification id; the attempt counts in the channel''s health.';

-- The admins' view of channels, with what the others may not see.
CREATE VIEW crm_api.alert_channel_settings AS
    SELECT c.id, c.name, c.kind, c.url, c.secret, c.mail_from, c.mail_to, c.smtp_username,
           c.smtp_password IS NOT NULL AS has_smtp_password, c.require_tls, c.enabled
      FROM crm_dashboard.alert_channel c
     ORDER BY c.name;
COMMENT ON VIEW crm_api.alert_channel_settings IS
    'Administrators only: each channel''s URL, signing secret, addresses and SMTP user name (passwords are never shown).';


-- ---- Privileges ----------------------------------------------------------------------

REVOKE ALL ON FUNCTION crm_dashboard.check_delivery_url(text, text), crm_dashboard.random_secret(),
    crm_dashboard.webhook_signature(text, bigint, text), crm_dashboard.wake_delivery(),
    crm_dashboard.channel_target(text), crm_dashboard.check_mail_address(text, text),
    crm_dashboard.notification_text(jsonb), crm_dashboard.slack_message(jsonb), crm_dashboard.slack_escape(text),
    crm_dashboard.mail_header_value(text), crm_dashboard.email_message(jsonb, text, text[]),
    crm_dashboard.notification_body(text, jsonb, text, text[]), crm_dashboard.test_payload(bigint, uuid),
    crm_dashboard.note_channel_attempt(bigint, boolean, text), crm_dashboard.delivery_recover(),
    crm_dashboard.delivery_claim(integer, integer, interval),
    crm_dashboard.delivery_done(bigint, boolean, integer, text, float8, integer, boolean, integer, interval, interval),
    crm_dashboard.delivery_tested(bigint, boolean, integer, text, float8), crm_dashboard.delivery_next_due(),
    crm_dashboard.channel_json(bigint), crm_dashboard.check_channel(crm_dashboard.alert_channel) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.create_alert_channel(text, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.update_alert_channel(bigint, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.delete_alert_channel(bigint), crm_api.test_channel(bigint) FROM PUBLIC;
-- the views call this as their reader
GRANT EXECUTE ON FUNCTION crm_dashboard.channel_target(text) TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.create_alert_channel(text, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.update_alert_channel(bigint, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.delete_alert_channel(bigint), crm_api.test_channel(bigint) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.alert_channels, crm_api.alert_notifications, crm_api.alert_deliveries TO crm_dashboard_viewer;
GRANT SELECT ON crm_api.alert_channel_settings TO crm_dashboard_admin;

-- src/metrics.sql, all new
-- Prometheus metrics (GET /metrics, src/http_metrics.c): runs by CRM, model
-- and status, running and queued runs, seconds since each model's last
-- success, freshness, open alerts, deliveries and their failures, and the
-- HTTP workers' own counters (requests by route and status, durations,
-- event streams), all in the text exposition format.

-- The HTTP workers' counters, from their slots of shared memory.
CREATE FUNCTION crm_dashboard.http_metrics_text() RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_http_metrics_text';
COMMENT ON FUNCTION crm_dashboard.http_metrics_text() IS
    'Private: the HTTP workers'' requests by route and status, their duration histogram, and open event streams, in the Prometheus text format.';

-- A label value as the text format wants it: \, " and line feeds escaped.
CREATE FUNCTION crm_dashboard.prom_label(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '"' || replace(replace(replace(coalesce(value, ''), E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"';
COMMENT ON FUNCTION crm_dashboard.prom_label(text) IS 'Private: a Prometheus label value, quoted and escaped.';

-- One metric family: its HELP and TYPE lines, then a sample per row of
-- (labels, value); labels is a jsonb object of label names and values.
CREATE FUNCTION crm_dashboard.prom_family(name text, kind text, help text, samples jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT format(E'# HELP %s %s\n# TYPE %s %s\n', name, help, name, kind)
           || coalesce(string_agg(name
                                  || CASE WHEN s -> 'labels' = '{}' THEN ''
                                          ELSE '{' || (SELECT string_agg(l.key || '=' || crm_dashboard.prom_label(l.value), ',' ORDER BY l.key)
                                                         FROM jsonb_each_text(s -> 'labels') l) || '}' END
                                  || ' ' || (s ->> 'value') || E'\n', '' ORDER BY o), '')
      FROM jsonb_array_elements(coalesce(samples, '[]')) WITH ORDINALITY AS x(s, o)
$$;
COMMENT ON FUNCTION crm_dashboard.prom_family(text, text, text, jsonb) IS
    'Private: one Prometheus metric family (HELP, TYPE, a sample per {labels, value}).';

CREATE FUNCTION crm_dashboard.metrics_text() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT concat(
        crm_dashboard.prom_family('crm_dashboard_runs_total', 'counter',
            'Finished sync runs by CRM, model and status (as kept in the history).',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', r.crm_source, 'model', r.sync_type, 'status', r.status),
                                                 'value', r.n) ORDER BY r.crm_source, r.sync_type, r.status)
               FROM (SELECT h.crm_source, h.sync_type, h.status, count(*) AS n FROM crm_dashboard.sync_history h
                      WHERE h.status IN ('success', 'partial', 'failed', 'cancelled')
                      GROUP BY 1, 2, 3) r)),
        crm_dashboard.prom_family('crm_dashboard_runs_running', 'gauge', 'Sync runs running now, by CRM.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', s.name),
                                                 'value', (SELECT count(*) FROM crm_dashboard.sync_history h
                                                            WHERE h.crm_source = s.name AND h.status = 'running')) ORDER BY s.name)
               FROM crm_dashboard.crm_source s)),
        crm_dashboard.prom_family('crm_dashboard_runs_queued', 'gauge', 'Sync runs queued (retries waiting included), by CRM.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', s.name),
                                                 'value', (SELECT count(*) FROM crm_dashboard.sync_history h
                                                            WHERE h.crm_source = s.name AND h.status = 'queued')) ORDER BY s.name)
               FROM crm_dashboard.crm_source s)),
        crm_dashboard.prom_family('crm_dashboard_seconds_since_last_success', 'gauge',
            'Seconds since each model''s last successful (or partial) sync ended.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', l.crm_source, 'model', l.sync_type),
                                                 'value', round(extract(epoch FROM now() - l.at)::numeric, 3)) ORDER BY l.crm_source, l.sync_type)
               FROM (SELECT h.crm_source, h.sync_type, max(h.end_time) AS at FROM crm_dashboard.sync_history h
                      WHERE h.status IN ('success', 'partial') AND h.sync_type <> 'all' AND h.end_time IS NOT NULL
                      GROUP BY 1, 2) l)),
        crm_dashboard.prom_family('crm_dashboard_freshness_state', 'gauge',
            'Each model''s freshness as last recorded: 1 for its state, 0 for the others.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', f.crm, 'model', f.model, 'state', st.state),
                                                 'value', (f.freshness = st.state)::integer) ORDER BY f.crm, f.model, st.o)
               FROM crm_dashboard.freshness_state f
              CROSS JOIN unnest(ARRAY['on_time', 'late', 'overdue', 'unknown']) WITH ORDINALITY AS st(state, o))),
        crm_dashboard.prom_family('crm_dashboard_alerts_open', 'gauge',
            'Unresolved alerts by severity and status (open, acknowledged, snoozed).',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('severity', sv.severity, 'status', st.status),
                                                 'value', (SELECT count(*) FROM crm_dashboard.alert a
                                                            WHERE a.resolved_at IS NULL AND a.severity = sv.severity
                                                              AND crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) = st.status))
                              ORDER BY sv.o, st.o)
               FROM unnest(ARRAY['critical', 'warning', 'info']) WITH ORDINALITY AS sv(severity, o)
              CROSS JOIN unnest(ARRAY['open', 'acknowledged', 'snoozed']) WITH ORDINALITY AS st(status, o))),
        crm_dashboard.prom_family('crm_dashboard_delivery_attempts_total', 'counter',
            'Delivery attempts of alert notifications (tests included), by channel.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('channel', c.name, 'kind', c.kind),
                                                 'value', c.attempts_total) ORDER BY c.name)
               FROM crm_dashboard.alert_channel c)),
        crm_dashboard.prom_family('crm_dashboard_delivery_failures_total', 'counter',
            'Failed delivery attempts of alert notifications, by channel.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('channel', c.name, 'kind', c.kind),
                                                 'value', c.failures_total) ORDER BY c.name)
               FROM crm_dashboard.alert_channel c)),
        crm_dashboard.prom_family('crm_dashboard_notifications_pending', 'gauge',
            'Alert notifications waiting to be delivered, by channel.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('channel', c.name),
                                                 'value', (SELECT count(*) FROM crm_dashboard.alert_notification n
                                                            WHERE n.channel_id = c.id AND n.status = 'pending')) ORDER BY c.name)
               FROM crm_dashboard.alert_channel c)),
        crm_dashboard.http_metrics_text())
$$;
COMMENT ON FUNCTION crm_dashboard.metrics_text() IS
    'The metrics of GET /metrics in the Prometheus text format: runs, running and queued, seconds since the last success, freshness, open alerts, deliveries, HTTP requests and durations, event streams.';

REVOKE ALL ON FUNCTION crm_dashboard.http_metrics_text(), crm_dashboard.prom_label(text),
    crm_dashboard.prom_family(text, text, text, jsonb), crm_dashboard.metrics_text() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.metrics_text() TO crm_dashboard_viewer;
