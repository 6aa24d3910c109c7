-- Discovery: which models exist and what their columns are, read afresh
-- from the catalogs (src/discovery.c).  The C function lives in
-- crm_dashboard; crm_api wraps it in a view for psql, BI tools and
-- PostgREST.  It is SECURITY DEFINER because viewers may not read the CRM
-- tables themselves.

-- Why a model's name may not go into a sync command's argv, or NULL.
CREATE FUNCTION crm_dashboard.name_problem(name text) RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crm_dashboard_name_problem';
COMMENT ON FUNCTION crm_dashboard.name_problem(text) IS
    'Private: why a CRM or model name is not safe in a command line (it starts with "-", or holds characters beyond a-z, 0-9 and _), or NULL.';
REVOKE ALL ON FUNCTION crm_dashboard.name_problem(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.name_problem(text) TO crm_dashboard_viewer;

CREATE FUNCTION crm_dashboard.model_columns(
    crm text, model text,
    OUT crm text, OUT model text, OUT "position" integer, OUT name text,
    OUT data_type text, OUT is_nullable boolean, OUT is_primary_key boolean,
    OUT is_searchable boolean)
RETURNS SETOF record
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_model_columns';
REVOKE ALL ON FUNCTION crm_dashboard.model_columns(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.model_columns(text, text) TO crm_dashboard_viewer;

CREATE VIEW crm_api.model_columns AS
    SELECT * FROM crm_dashboard.model_columns(NULL, NULL);
COMMENT ON VIEW crm_api.model_columns IS
    'Columns of every model: type, nullability, primary key membership, whether search looks at it.';
GRANT SELECT ON crm_api.model_columns TO crm_dashboard_viewer;
