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
ROWS 20
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
ROWS 100
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_crm_models';
-- (ROWS: estimates near the truth keep the views of many models, whose
-- lateral functions multiply the estimate, from being compiled by the JIT.)
REVOKE ALL ON FUNCTION crm_dashboard.crm_sources(), crm_dashboard.crm_models(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.crm_sources(), crm_dashboard.crm_models(text) TO crm_dashboard_viewer;

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

-- crm_api: the public surface.

CREATE VIEW crm_api.crm_sources AS
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

CREATE VIEW crm_api.crm_models AS
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

-- A run as JSON (everything but the log, which sync_log returns: src/logs.sql).
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

REVOKE ALL ON FUNCTION crm_dashboard.run_json(bigint), crm_api.sync_status(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.sync_status(bigint) TO crm_dashboard_viewer;
