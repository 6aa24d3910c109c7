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

-- Events that alerts watch, sent with NOTIFY crm_dashboard_event in the
-- transaction of the change they describe (kind: run_failed, stalled,
-- action_required, retry_scheduled, auto_paused, paused, resumed,
-- freshness), and handed to the alert rules (crm_dashboard.observe_event,
-- src/alerts.sql) in that same transaction.  The one place they are sent from.
CREATE FUNCTION crm_dashboard.emit_event(kind text, crm text, model text, run_id bigint,
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
    -- the alert rules (src/alerts.sql) see whether a retry follows
    PERFORM crm_dashboard.observe_run(r.id);
    RETURN retry_id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.after_failure(bigint) IS
    'Private: after a run failed: announce it (run_failed or stalled, and action_required for permanent errors), pause the model after too many consecutive failures, else schedule a retry by policy; then apply the alert rules to it.';

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
