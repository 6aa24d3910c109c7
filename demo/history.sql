-- Demo sync history: thirty days of runs for most demo models (run after data.sql).
--
-- Scheduled runs at each model's cadence plus a few manual ones from the UI
-- and psql, nightly "all" runs of two CRMs with their children, every
-- finished status and the errors real syncs produce.  No run is left
-- queued or running: the launcher would finish those as failed at startup;
-- live runs in the demo come from starting the simulator.
-- A few models are deliberately never synced.

SELECT setseed(0.1717);

DELETE FROM crm_dashboard.sync_history;

-- A source's display name, for messages.
CREATE FUNCTION pg_temp.display(crm text) RETURNS text LANGUAGE sql
AS $$ SELECT display_name FROM crm_dashboard.crm_source WHERE name = crm $$;

-- An error message of the kind a failed run of this CRM produces.
CREATE FUNCTION pg_temp.failure(crm text, model text, kind int, processed int) RETURNS text LANGUAGE sql
AS $$
SELECT CASE
    -- Genius is a MySQL database read directly: its failures are MySQL's.
    WHEN crm = 'genius' THEN (ARRAY['(2013, ''Lost connection to MySQL server during query'')',
                                    '(1045, "Access denied for user ''ingest''@''10.0.4.17'' (using password: YES)")',
                                    '(2003, "Can''t connect to MySQL server on ''genius-db'' (timed out)")',
                                    '(1205, ''Lock wait timeout exceeded; try restarting transaction'')'])[1 + kind]
    WHEN kind = 0 THEN format('HTTP 429 Too Many Requests from %s API: rate limit exceeded (Retry-After: %s s); gave up after 5 retries',
                       pg_temp.display(crm), 10 + processed % 50)
    WHEN kind = 1 THEN format('HTTP 401 Unauthorized: invalid API key for %s (check the %s_API_KEY setting)',
                       pg_temp.display(crm), upper(crm))
    WHEN kind = 2 THEN format('timeout: no response from %s API after 300 s while fetching page %s of %s',
                       pg_temp.display(crm), 1 + processed / 100, model)
    ELSE format('psycopg2.errors.DeadlockDetected: deadlock detected while upserting into ingestion.%s_%s', crm, model)
END
$$;

-- A validation error for one record, as a partial run reports it.
CREATE FUNCTION pg_temp.validation(crm text, model text, n int) RETURNS text LANGUAGE sql
AS $$
SELECT format('validation error for %s %s record %s: %s', pg_temp.display(crm), model,
              CASE crm WHEN 'hubspot' THEN (51000000 + n * 3)::text WHEN 'leadconduit' THEN md5(n::text)::text
                       WHEN 'callrail' THEN 'CAL' || md5(n::text) ELSE (100000 + n)::text END,
              (ARRAY['email "jo@@example.com" is not a valid address', 'phone "555-01" has too few digits',
                     'state "Ohio!" is not a two-letter code', 'amount "12,5OO.00" is not a number'])[1 + n % 4])
$$;

-- Insert one finished run and return its id.
CREATE FUNCTION pg_temp.add_run(crm text, model text, started timestamptz, status text, processed int,
                                total bigint, via text, who text, full_sync boolean, parent bigint,
                                failure_kind int) RETURNS bigint LANGUAGE plpgsql
AS $$
DECLARE
    rate     numeric := 40 + floor(random() * 260);
    failed   int := CASE WHEN status = 'partial' THEN 1 + floor(random() * greatest(processed / 50, 1))::int ELSE 0 END;
    created  int := floor((processed - failed) * (0.05 + random() * 0.35))::int;
    updated  int := processed - failed - created - floor(random() * (processed - failed - created) * 0.1)::int;
    secs     numeric := least(greatest(processed / rate, 2 + random() * 5), 3600);
    options  jsonb := '{}';
    argv     jsonb;
    id       bigint;
BEGIN
    IF full_sync THEN
        options := '{"full": true}';
    ELSIF random() < 0.3 THEN
        options := jsonb_build_object('since', to_char(started - interval '2 days', 'YYYY-MM-DD'));
    END IF;
    argv := jsonb_build_array('python', 'manage.py', format('sync_%s_%s', crm, model))
            || CASE WHEN full_sync THEN '["--full"]'::jsonb
                    WHEN options ? 'since' THEN jsonb_build_array('--since', options ->> 'since')
                    ELSE '[]'::jsonb END;
    INSERT INTO crm_dashboard.sync_history
        (crm_source, sync_type, endpoint, start_time, end_time, status, records_processed, records_created,
         records_updated, records_failed, error_message, configuration, performance_metrics, parent_id,
         requested_by, requested_via, queued_at, records_total, pid, heartbeat, exit_code, exit_signal,
         stop_requested)
    VALUES
        (crm, model, format('/%s/%s', crm, model), started, started + make_interval(secs => secs), status,
         processed, created, updated, failed,
         CASE status WHEN 'failed' THEN pg_temp.failure(crm, model, failure_kind, processed)
                     WHEN 'partial' THEN pg_temp.validation(crm, model, processed)
                     WHEN 'cancelled' THEN format('cancelled on request after %s s', round(secs)) END,
         jsonb_build_object('options', options, 'argv', argv, 'requested_by', who, 'via', via),
         jsonb_build_object('records_per_second', round(processed / secs, 1),
                            'api_calls', 1 + processed / 100 + CASE WHEN failure_kind = 0 THEN 5 ELSE 0 END,
                            'peak_memory_mb', 60 + floor(random() * 340)),
         parent, who, via, started - make_interval(secs => random() * 2), total,
         20000 + floor(random() * 40000)::int, started + make_interval(secs => secs),
         CASE status WHEN 'failed' THEN 1 WHEN 'cancelled' THEN NULL ELSE 0 END,
         CASE WHEN status = 'cancelled' THEN 15 END, status = 'cancelled')
    RETURNING sync_history.id INTO id;
    -- its log, in the log store as the launcher writes it
    INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body, written_at)
    VALUES (id, 1, 1, 0,
            format(E'Starting %s sync of %s\nFetched %s records\n', pg_temp.display(crm), model, processed)
            || CASE status WHEN 'failed' THEN pg_temp.failure(crm, model, failure_kind, processed) || E'\n'
                           WHEN 'partial' THEN pg_temp.validation(crm, model, processed) || E'\n'
                           WHEN 'cancelled' THEN E'Received SIGTERM; rolled back the current batch\n'
                           ELSE 'Done' || E'\n' END,
            started + make_interval(secs => secs));
    RETURN id;
END
$$;

-- A status drawn from the usual mix: mostly success.
CREATE FUNCTION pg_temp.some_status() RETURNS text LANGUAGE sql
AS $$ SELECT CASE WHEN r < 0.86 THEN 'success' WHEN r < 0.92 THEN 'partial' WHEN r < 0.97 THEN 'failed' ELSE 'cancelled' END
      FROM (SELECT random() AS r) x $$;

DO $history$
DECLARE
    m        record;
    t        timestamptz;
    st       text;
    n        int;
    total    bigint;
    full_run boolean;
    parent   bigint;
    night    date;
    crm      text;
    sums     record;
BEGIN
    -- Scheduled and manual runs of each model.  The cadence follows the
    -- model's size; a few models have never been synced at all.
    FOR m IN
        SELECT s.name AS crm, substr(c.relname, length(s.table_prefix) + 1) AS model,
               greatest(c.reltuples, 0)::bigint AS rows
        FROM crm_dashboard.crm_source s
        JOIN pg_class c ON c.relname LIKE s.table_prefix || '%'
        JOIN pg_namespace ns ON ns.oid = c.relnamespace AND ns.nspname = 'ingestion'
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname NOT IN ('salespro_leadresult', 'gsheet_marketing_spend', 'arrivy_group')
        ORDER BY 1, 2
    LOOP
        t := date_trunc('hour', now() - interval '30 days') + random() * interval '50 minutes';
        WHILE t < now() - interval '2 hours' LOOP
            full_run := random() < 0.05;
            st := pg_temp.some_status();
            total := CASE WHEN full_run THEN greatest(m.rows, 10) ELSE 5 + floor(random() * least(greatest(m.rows, 10), 3000)) END;
            n := CASE WHEN st IN ('failed', 'cancelled') THEN floor(total * random())::int ELSE total::int END;
            PERFORM pg_temp.add_run(m.crm, m.model, t, st, n, total, 'schedule', 'postgres', full_run, NULL,
                                    floor(random() * 4)::int);
            -- Now and then somebody runs a model by hand between two schedules.
            IF random() < 0.04 THEN
                PERFORM pg_temp.add_run(m.crm, m.model, t + interval '40 minutes', pg_temp.some_status(),
                                        1 + floor(random() * 800)::int, NULL, 'ui', 'ops', random() < 0.3, NULL, 2);
            ELSIF random() < 0.02 THEN
                PERFORM pg_temp.add_run(m.crm, m.model, t + interval '70 minutes', 'success',
                                        floor(random() * 200)::int, NULL, 'sql', 'etl', false, NULL, 0);
            END IF;
            t := t + CASE WHEN m.rows > 50000 THEN interval '4 hours' WHEN m.rows > 5000 THEN interval '8 hours'
                          ELSE interval '24 hours' END
                   + random() * interval '20 minutes';
        END LOOP;
    END LOOP;

    -- Nightly "all" runs of two CRMs: one parent, one child per model in turn.
    FOREACH crm IN ARRAY ARRAY['genius', 'hubspot'] LOOP
        FOR night IN SELECT generate_series(current_date - 6, current_date - 1, interval '1 day')::date LOOP
            parent := pg_temp.add_run(crm, 'all', night + time '02:00', 'success', 0, NULL, 'schedule', 'postgres',
                                      false, NULL, 0);
            t := night + time '02:00' + interval '1 second';
            FOR m IN
                SELECT substr(c.relname, length(crm) + 2) AS model, greatest(c.reltuples, 10)::int AS rows
                FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace AND ns.nspname = 'ingestion'
                WHERE c.relname LIKE crm || '\_%' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                ORDER BY c.reltuples
            LOOP
                st := CASE WHEN night = current_date - 3 AND m.model = 'contact' THEN 'failed' ELSE pg_temp.some_status() END;
                PERFORM pg_temp.add_run(crm, m.model, t, st, 1 + floor(random() * least(m.rows, 1500))::int, NULL, 'schedule',
                                        'postgres', false, parent, 0);
                SELECT max(end_time) AS finish INTO sums FROM crm_dashboard.sync_history WHERE parent_id = parent;
                t := sums.finish + interval '1 second';
            END LOOP;
            -- The parent sums its children and takes the worst status.
            UPDATE crm_dashboard.sync_history p
               SET end_time = c.finish, records_processed = c.processed, records_created = c.created,
                   records_updated = c.updated, records_failed = c.failed, records_total = c.processed,
                   status = c.worst, error_message = CASE WHEN c.worst <> 'success' THEN c.worst_message END,
                   exit_code = 0, exit_signal = NULL, stop_requested = false,
                   configuration = jsonb_set(p.configuration, '{argv}', '[]'),
                   performance_metrics = jsonb_build_object('children', c.children)
              FROM (SELECT max(end_time) AS finish, sum(records_processed) AS processed,
                           sum(records_created) AS created, sum(records_updated) AS updated,
                           sum(records_failed) AS failed, count(*) AS children,
                           CASE WHEN bool_or(status = 'failed') THEN 'failed'
                                WHEN bool_or(status IN ('partial', 'cancelled')) THEN 'partial'
                                ELSE 'success' END AS worst,
                           string_agg(format('%s: %s', sync_type, error_message), '; ' ORDER BY start_time)
                               FILTER (WHERE error_message IS NOT NULL) AS worst_message
                      FROM crm_dashboard.sync_history WHERE parent_id = parent) c
             WHERE p.id = parent;
            UPDATE crm_dashboard.sync_log_chunk k
               SET body = format(E'Ran %s models of %s\n', (SELECT count(*) FROM crm_dashboard.sync_history
                                                             WHERE parent_id = parent), pg_temp.display(crm))
             WHERE k.run_id = parent AND k.seq = 1;
        END LOOP;
    END LOOP;
END
$history$;

-- The latest run of a few models tells a story on the dashboard: a rate
-- limit, a revoked API key, a timeout, a failing record, a cancelled run.

DO $latest$
DECLARE
    big bigint;
BEGIN
    PERFORM pg_temp.add_run('five9', 'contact', now() - interval '50 minutes', 'failed', 1200, 35000, 'schedule', 'postgres', false, NULL, 0);
    PERFORM pg_temp.add_run('callrail', 'tracker', now() - interval '40 minutes', 'failed', 0, NULL, 'ui', 'ops', false, NULL, 1);
    PERFORM pg_temp.add_run('arrivy', 'task', now() - interval '65 minutes', 'failed', 300, 2000, 'schedule', 'postgres', false, NULL, 2);
    PERFORM pg_temp.add_run('leadconduit', 'lead', now() - interval '30 minutes', 'partial', 900, 900, 'schedule', 'postgres', false, NULL, 0);
    PERFORM pg_temp.add_run('marketsharp', 'job', now() - interval '45 minutes', 'cancelled', 150, 4000, 'ui', 'analyst', true, NULL, 0);
    big := pg_temp.add_run('hubspot', 'contact', now() - interval '100 minutes', 'success', 210000, 210000, 'sql', 'etl', true, NULL, 0);
    -- A full sync of 210,000 contacts at HubSpot's pace takes about an hour.
    UPDATE crm_dashboard.sync_history
       SET end_time = start_time + interval '58 minutes 12 seconds',
           heartbeat = start_time + interval '58 minutes 12 seconds',
           performance_metrics = performance_metrics || jsonb_build_object('records_per_second', round(210000 / 3492.0, 1))
     WHERE id = big;
END
$latest$;

ANALYZE crm_dashboard.sync_history;
