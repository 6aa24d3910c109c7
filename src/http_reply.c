/*
 * http_reply.c
 *		Building replies: PostgREST-shaped JSON errors, the SQLSTATE to HTTP
 *		status mapping, security headers, and handing the reply to
 *		libmicrohttpd.
 */
#include "postgres.h"

#include <unistd.h>

#include "mb/pg_wchar.h"
#include "utils/json.h"

#include "http.h"
#include "http_metrics.h"
#include "http_error.h"

/* Security headers sent with every response, API and UI alike. */
static const char *const security_headers[][2] = {
	{"Content-Security-Policy",
		"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
};

/* Add a header to the reply (values are copied into the request's context). */
void
http_reply_header(HttpRequest *req, const char *name, const char *value)
{
	MemoryContext old = MemoryContextSwitchTo(req->ctx);

	req->reply.headers = lappend(req->reply.headers, pstrdup(name));
	req->reply.headers = lappend(req->reply.headers, pstrdup(value));
	MemoryContextSwitchTo(old);
}

/* Reply with a JSON document (replacing a file body prepared earlier). */
void
http_reply_json(HttpRequest *req, int status, const char *json)
{
	if (req->reply.fd >= 0)
	{
		close(req->reply.fd);
		req->reply.fd = -1;
	}
	req->reply.status = status;
	req->reply.content_type = "application/json; charset=utf-8";
	resetStringInfo(&req->reply.body);
	appendStringInfoString(&req->reply.body, json);
}

/* Reply with PostgREST's error object {code, message, details, hint}. */
void
http_reply_error(HttpRequest *req, int status, const char *code,
				 const char *message, const char *details, const char *hint)
{
	StringInfoData buf;
	MemoryContext old = MemoryContextSwitchTo(req->ctx);
	const char *authenticate = http_www_authenticate(status, code);

	initStringInfo(&buf);
	http_error_json(&buf, code, message, details, hint);
	http_reply_json(req, status, buf.data);
	if (authenticate)
		http_reply_header(req, "WWW-Authenticate", authenticate);
	MemoryContextSwitchTo(old);
}

/* Reply with a PostgreSQL error (its fields as libpq gave them), mapped as PostgREST does. */
void
http_reply_pg_error(HttpRequest *req, const char *sqlstate, const char *message,
					const char *detail, const char *hint)
{
	int			status = http_sqlstate_status(sqlstate, req->anonymous);

	if (status < 100 || status > 599)
		status = 500;
	http_reply_error(req, status, sqlstate, message, detail, hint);
}

/* Add the security headers to a response. */
void
http_add_common_headers(struct MHD_Response *resp)
{
	int			i;

	for (i = 0; i < lengthof(security_headers); i++)
		MHD_add_response_header(resp, security_headers[i][0], security_headers[i][1]);
}

/* Create the libmicrohttpd response for the prepared reply. */
static struct MHD_Response *
make_response(HttpRequest *req)
{
	HttpReply  *r = &req->reply;
	struct MHD_Response *resp;

	if (req->stream)
	{
		resp = req->stream;
		req->stream = NULL;
	}
	else if (r->fd >= 0)
	{
		resp = MHD_create_response_from_fd64(r->fd_size, r->fd);
		if (resp != NULL)
			r->fd = -1;			/* libmicrohttpd closes it */
	}
	else
		resp = MHD_create_response_from_buffer(r->body.len, r->body.data,
											   MHD_RESPMEM_MUST_COPY);
	return resp;
}

/* Hand the reply to libmicrohttpd with all its headers. */
enum MHD_Result
http_queue_reply(HttpRequest *req)
{
	HttpReply  *r = &req->reply;
	struct MHD_Response *resp = make_response(req);
	ListCell   *lc;
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;			/* closes the connection */
	http_add_common_headers(resp);
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	for (lc = list_head(r->headers); lc != NULL; lc = lnext(r->headers, lnext(r->headers, lc)))
		MHD_add_response_header(resp, lfirst(lc), lfirst(lnext(r->headers, lc)));
	ret = MHD_queue_response(req->conn, r->status ? r->status : 500, resp);
	http_metrics_count(req->metric_route, r->status ? r->status : 500, req->started_at);
	MHD_destroy_response(resp);
	req->handled = true;
	return ret;
}
