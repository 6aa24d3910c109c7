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

CREATE FUNCTION crm_api.sync_log(id bigint) RETURNS text
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
