-- The static UI through SQL: the same bytes, media type and ETag as the
-- bundled server's GET /ui/<path>, so a real PostgREST or a proxy can serve
-- the UI too.

CREATE FUNCTION crm_api.ui_file(path text, OUT body bytea, OUT media_type text, OUT etag text)
RETURNS record
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_ui_file';
COMMENT ON FUNCTION crm_api.ui_file(text) IS
    'A file of the installed web UI (relative path; '''' is index.html): body, media type and ETag.';

REVOKE ALL ON FUNCTION crm_api.ui_file(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.ui_file(text) TO crm_dashboard_anon, crm_dashboard_viewer;
