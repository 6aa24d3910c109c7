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
