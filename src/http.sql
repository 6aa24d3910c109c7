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

-- The request engine of the bundled HTTP server (src/http_engine.c): the
-- workers' pooled connections run one call per request.  Only a superuser
-- (those connections) may call it: it sets superuser-only settings.
CREATE FUNCTION crm_dashboard.http_serve(request text,
    OUT status integer, OUT content_type text, OUT headers json, OUT body text,
    OUT file text, OUT file_size bigint)
RETURNS record
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_http_serve';
COMMENT ON FUNCTION crm_dashboard.http_serve(text) IS
    'Private: serve one request of the bundled HTTP server, described as JSON by its worker (authorisation, settings, the read or call); the reply as a row.';
REVOKE ALL ON FUNCTION crm_dashboard.http_serve(text) FROM PUBLIC;
