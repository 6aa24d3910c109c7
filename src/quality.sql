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
