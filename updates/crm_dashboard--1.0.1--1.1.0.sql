-- crm_dashboard 1.0.1 -> 1.1.0: wave 2.
\echo Use "ALTER EXTENSION crm_dashboard UPDATE TO '1.1.0'" to load this file. \quit

-- An HTTP server that never waits: the request engine its pooled connections run.
CREATE FUNCTION crm_dashboard.http_serve(request text,
    OUT status integer, OUT content_type text, OUT headers json, OUT body text,
    OUT file text, OUT file_size bigint)
RETURNS record
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_http_serve';
COMMENT ON FUNCTION crm_dashboard.http_serve(text) IS
    'Private: serve one request of the bundled HTTP server, described as JSON by its worker (authorisation, settings, the read or call); the reply as a row.';
REVOKE ALL ON FUNCTION crm_dashboard.http_serve(text) FROM PUBLIC;
