-- Reading a model's rows: keyset pages, CSV export, exact count.
-- The C functions in crm_dashboard are private; the crm_api wrappers are
-- SECURITY DEFINER because viewers may not read the CRM tables themselves.

CREATE FUNCTION crm_dashboard.model_rows(crm text, model text, after text, per_page integer,
    search text, sort text, descending boolean)
RETURNS json
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_model_rows';

CREATE FUNCTION crm_dashboard.export_rows(crm text, model text, search text, sort text,
    descending boolean)
RETURNS SETOF json
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_export_rows';

CREATE FUNCTION crm_dashboard.count_rows(crm text, model text)
RETURNS bigint
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'crm_dashboard_count_rows';

REVOKE ALL ON FUNCTION crm_dashboard.model_rows(text, text, text, integer, text, text, boolean),
    crm_dashboard.export_rows(text, text, text, text, boolean),
    crm_dashboard.count_rows(text, text) FROM PUBLIC;

-- crm_api: the public surface.

CREATE FUNCTION crm_api.model_rows(crm text, model text, after text DEFAULT NULL,
    per_page integer DEFAULT 25, search text DEFAULT NULL, sort text DEFAULT NULL,
    descending boolean DEFAULT false)
RETURNS json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.model_rows(crm, model, after, per_page, search, sort, descending) $$;
COMMENT ON FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean) IS
    'One page of a model''s rows as JSON: columns, rows, next/previous cursors (pass one as after), estimated_total, note.  '
    'Keyset order on sort (default: the primary key) then the primary key; NULL sort values come last in either direction.  '
    'search matches text columns case-insensitively; per_page 1..1000.';

CREATE FUNCTION crm_api.export_rows(crm text, model text, search text DEFAULT NULL,
    sort text DEFAULT NULL, descending boolean DEFAULT false)
RETURNS SETOF json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM crm_dashboard.export_rows(crm, model, search, sort, descending) $$;
COMMENT ON FUNCTION crm_api.export_rows(text, text, text, text, boolean) IS
    'Every row of a model matching search, one JSON object per row, in the order of model_rows (for CSV export).';

CREATE FUNCTION crm_api.count_rows(crm text, model text)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.count_rows(crm, model) $$;
COMMENT ON FUNCTION crm_api.count_rows(text, text) IS
    'The exact number of rows of a model (a full count: slow on big tables; crm_models has the estimate).';

REVOKE ALL ON FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean),
    crm_api.export_rows(text, text, text, text, boolean),
    crm_api.count_rows(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.model_rows(text, text, text, integer, text, text, boolean),
    crm_api.export_rows(text, text, text, text, boolean),
    crm_api.count_rows(text, text) TO crm_dashboard_viewer;

-- A typed interface for exports that need the rows' own columns (CSV): a
-- cursor, opened with the definer's rights, that the caller fetches from in
-- the same transaction.

CREATE FUNCTION crm_dashboard.export_cursor(crm text, model text, search text, sort text,
    descending boolean)
RETURNS refcursor
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_export_cursor';
REVOKE ALL ON FUNCTION crm_dashboard.export_cursor(text, text, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION crm_api.export_cursor(crm text, model text, search text DEFAULT NULL,
    sort text DEFAULT NULL, descending boolean DEFAULT false)
RETURNS refcursor
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_dashboard.export_cursor(crm, model, search, sort, descending) $$;
COMMENT ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean) IS
    'Opens a cursor over every row of a model matching search, its columns only, in the order of model_rows '
    '(sort, NULLs last in either direction, then the primary key), and returns its name: FETCH from it in the '
    'same transaction.  The CSV export (export_rows with Accept: text/csv) reads through it.';
REVOKE ALL ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.export_cursor(text, text, text, text, boolean) TO crm_dashboard_viewer;
