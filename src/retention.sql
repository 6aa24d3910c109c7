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
