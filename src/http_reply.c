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

/*
 * value with every byte that does not start a valid UTF-8 sequence replaced
 * by U+FFFD: error texts may quote request headers, which libmicrohttpd
 * passes on as they came, and a JSON reply must be valid UTF-8.
 */
static const char *
valid_utf8(const char *value)
{
	StringInfoData buf;
	const unsigned char *p = (const unsigned char *) value;

	if (pg_verify_mbstr(PG_UTF8, value, strlen(value), true))
		return value;
	initStringInfo(&buf);
	while (*p)
	{
		int			len = pg_utf_mblen(p);

		if (strnlen((const char *) p, len) == len && pg_utf8_islegal(p, len))
		{
			appendBinaryStringInfo(&buf, (const char *) p, len);
			p += len;
		}
		else
		{
			appendStringInfoString(&buf, "\xEF\xBF\xBD");
			p++;
		}
	}
	return buf.data;
}

/* Append "key": value-or-null to an error object. */
static void
append_field(StringInfo buf, const char *key, const char *value, bool last)
{
	appendStringInfo(buf, "\"%s\":", key);
	if (value)
		escape_json(buf, valid_utf8(value));
	else
		appendStringInfoString(buf, "null");
	if (!last)
		appendStringInfoChar(buf, ',');
}

/* Reply with PostgREST's error object {code, message, details, hint}. */
void
http_reply_error(HttpRequest *req, int status, const char *code,
				 const char *message, const char *details, const char *hint)
{
	StringInfoData buf;
	MemoryContext old = MemoryContextSwitchTo(req->ctx);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	append_field(&buf, "code", code, false);
	append_field(&buf, "details", details, false);
	append_field(&buf, "hint", hint, false);
	append_field(&buf, "message", message, true);
	appendStringInfoChar(&buf, '}');
	http_reply_json(req, status, buf.data);
	if (status == 401 && strncmp(code, "PGRST303", 8) == 0)
		http_reply_header(req, "WWW-Authenticate",
						  "Bearer error=\"invalid_token\", error_description=\"JWT expired\"");
	else if (status == 401)
		http_reply_header(req, "WWW-Authenticate", "Bearer");
	MemoryContextSwitchTo(old);
}

/* The class (first two characters) of a SQLSTATE is one of list. */
static bool
class_in(const char *sqlstate, const char *const *list)
{
	for (; *list; list++)
		if (strncmp(sqlstate, *list, 2) == 0)
			return true;
	return false;
}

/* PostgREST's SQLSTATE -> HTTP status mapping (its errors reference). */
int
http_sqlstate_status(const char *s, bool anonymous)
{
	static const char *const server_classes[] = {
		"09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "XX", "P0", NULL
	};
	static const char *const forbidden_classes[] = {"0L", "0P", "28", NULL};

	if (strcmp(s, "23503") == 0 || strcmp(s, "23505") == 0)
		return 409;
	if (strcmp(s, "25006") == 0)
		return 405;
	if (strcmp(s, "P0001") == 0)
		return 400;
	if (strcmp(s, "42883") == 0 || strcmp(s, "42P01") == 0)
		return 404;
	if (strcmp(s, "42501") == 0)
		return anonymous ? 401 : 403;
	if (strcmp(s, "42P17") == 0 || strcmp(s, "53400") == 0)
		return 500;
	if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strcmp(s, "57P01") == 0)
		return 503;
	if (class_in(s, forbidden_classes))
		return 403;
	if (class_in(s, server_classes))
		return 500;
	if (strncmp(s, "PT", 2) == 0 && isdigit((unsigned char) s[2]) &&
		isdigit((unsigned char) s[3]) && isdigit((unsigned char) s[4]))
		return atoi(s + 2);
	return 400;
}

/* Reply with a PostgreSQL error, mapped as PostgREST does. */
void
http_reply_sql_error(HttpRequest *req, ErrorData *edata)
{
	const char *sqlstate = unpack_sql_state(edata->sqlerrcode);
	int			status = http_sqlstate_status(sqlstate, req->anonymous);

	if (status < 100 || status > 599)
		status = 500;
	http_reply_error(req, status, sqlstate, edata->message, edata->detail, edata->hint);
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
	MHD_destroy_response(resp);
	req->handled = true;
	return ret;
}
