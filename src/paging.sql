-- Reading a model's rows: keyset pages, CSV and Excel export, exact count,
-- each narrowed by a search and a filter (the JSON form of src/paging_filter.c).
-- The C functions in crm_dashboard are private; the crm_api wrappers are
-- SECURITY DEFINER because viewers may not read the CRM tables themselves.

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
