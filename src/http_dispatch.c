/*
 * http_dispatch.c
 *		libmicrohttpd's callbacks: collecting a request, enforcing the limits
 *		on hostile input, and routing it to the API or the static UI.  The
 *		top of the HTTP layer, below only the worker loop (http.c).
 *
 * These callbacks run inside MHD_run() on the worker's main thread.  A
 * PostgreSQL error must never unwind through libmicrohttpd's frames, so
 * the access handler catches everything that escapes the request's own
 * error handling and answers 500.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "http.h"
#include "http_metrics.h"

/* What the query string's arguments add up to. */
typedef struct ArgSummary
{
	size_t		length;
	bool		valid_utf8;
} ArgSummary;

/* Whether s is valid UTF-8 (what every text value must be). */
static bool
is_utf8(const char *s)
{
	return pg_verify_mbstr(PG_UTF8, s, strlen(s), true);
}

/*
 * Sum the arguments' length (for the URL limit) and check their encoding
 * (an iterator callback: nothing here allocates or throws).
 */
static enum MHD_Result
summarize_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	ArgSummary *sum = cls;

	sum->length += strlen(key) + (value ? strlen(value) : 0) + 2;
	if (!is_utf8(key) || (value && !is_utf8(value)))
		sum->valid_utf8 = false;
	return MHD_YES;
}

/* Refuse requests over the size limits; returns true when it replied. */
static bool
http_check_limits(HttpRequest *req)
{
	ArgSummary	sum = {strlen(req->url), is_utf8(req->url)};
	int			nheaders = MHD_get_connection_values(req->conn, MHD_HEADER_KIND, NULL, NULL);

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, summarize_arg, &sum);
	if (sum.length > HTTP_MAX_URL)
		http_reply_error(req, 414, "PGRST100", "URI too long",
						 psprintf("The path and query string exceed %d bytes.", HTTP_MAX_URL), NULL);
	else if (nheaders > HTTP_MAX_HEADERS)
		http_reply_error(req, 431, "PGRST100", "too many request headers",
						 psprintf("At most %d header lines are accepted.", HTTP_MAX_HEADERS), NULL);
	else if (!sum.valid_utf8)
		http_reply_error(req, 400, "PGRST100", "the URL is not valid UTF-8 once decoded", NULL,
						 "Percent-encode the UTF-8 bytes of each character.");
	else if (req->body_too_large)
		http_reply_error(req, 413, "PGRST100", "request body too large",
						 psprintf("The limit is crm_dashboard.http_max_body = %d bytes.", http_max_body), NULL);
	else
		return false;
	return true;
}

/* Route a complete request. */
static void
http_dispatch(HttpRequest *req)
{
	if (http_check_limits(req))
		return;
	/* a port of its own for metrics serves them alone, and only there */
	if (req->on_metrics_port || (http_metrics_port > 0 && strcmp(req->url, "/metrics") == 0))
	{
		if (req->on_metrics_port && strcmp(req->url, "/metrics") == 0)
			http_metrics_dispatch(req);
		else
			http_reply_error(req, 404, "PGRST125", psprintf("Invalid path specified in request URL: %s", req->url),
							 req->on_metrics_port ? "This port serves GET /metrics only." : "Metrics are served on crm_dashboard.metrics_port.",
							 NULL);
		return;
	}
	if (strcmp(req->url, "/api") == 0 || strncmp(req->url, "/api/", 5) == 0)
		http_api_dispatch(req, req->url[4] ? req->url + 5 : "");
	else if (strcmp(req->url, "/metrics") == 0)
		http_metrics_dispatch(req);
	else if (req->read_only)
		http_serve_static(req);
	else
	{
		http_reply_error(req, 405, "PGRST117", "method not allowed", NULL,
						 "The user interface is served with GET and HEAD only.");
		http_reply_header(req, "Allow", "GET, HEAD");
	}
}

/*
 * Route a request, answering 500 for anything that escaped the handlers.
 * Whatever the handlers allocate outside their transaction goes into the
 * request's context: the worker's loop runs in TopMemoryContext, where it
 * would stay for the life of the process.
 */
static void
http_dispatch_guarded(HttpRequest *req)
{
	MemoryContext old = MemoryContextSwitchTo(req->ctx);

	PG_TRY();
	{
		http_dispatch(req);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(req->ctx);
		EmitErrorReport();
		FlushErrorState();
		if (req->stream)
		{
			MHD_destroy_response(req->stream);
			req->stream = NULL;
		}
		http_reply_error(req, 500, "XX000", "internal error while handling the request",
						 NULL, "The server log has the details.");
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/* Whether a declared Content-Length is over the limit. */
static bool
declared_body_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												 MHD_HTTP_HEADER_CONTENT_LENGTH);

	return cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long) http_max_body;
}

/* The headers that frame a body, counted by count_framing(). */
typedef struct Framing
{
	int			content_length;
	int			transfer_encoding;
	const char *encoding;		/* the last Transfer-Encoding value */
} Framing;

/* Count one framing header (an iterator callback: it neither allocates nor throws). */
static enum MHD_Result
count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	Framing    *f = cls;

	if (pg_strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->content_length++;
	else if (pg_strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
	{
		f->transfer_encoding++;
		f->encoding = value;
	}
	return MHD_YES;
}

/*
 * Refuse a request whose body's end could be read more than one way: two
 * Content-Length headers (libmicrohttpd 0.9.75 silently uses the first),
 * Content-Length beside Transfer-Encoding (it uses the chunks), or more than
 * one Transfer-Encoding.  A proxy that read it the other way would see a
 * different request, or a second one smuggled inside this body.  A transfer
 * coding other than chunked (gzip, say) is answered 501 at once, as RFC 9112
 * asks of a server that does not accept it; libmicrohttpd would otherwise
 * wait for the connection to close.  Returns true when it replied; the connection
 * then closes without reading the body.
 */
static bool
refuse_framing(HttpRequest *req)
{
	Framing		f = {0, 0, NULL};

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_framing, &f);
	if (f.content_length > 1 || f.transfer_encoding > 1 ||
		(f.content_length > 0 && f.transfer_encoding > 0))
		http_reply_error(req, 400, "PGRST100", "ambiguous request framing",
						 f.transfer_encoding > 0 && f.content_length > 0 ?
						 "The request has both Content-Length and Transfer-Encoding." :
						 "The request repeats Content-Length or Transfer-Encoding.",
						 "Send one Content-Length, or Transfer-Encoding: chunked alone.");
	else if (f.transfer_encoding == 1 && pg_strcasecmp(f.encoding ? f.encoding : "", "chunked") != 0)
		http_reply_error(req, 501, "PGRST100",
						 psprintf("Transfer-Encoding \"%s\" is not supported", f.encoding ? f.encoding : ""),
						 NULL, "Send one Content-Length, or Transfer-Encoding: chunked alone.");
	else
		return false;
	http_reply_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
	return true;
}

/*
 * One call of the access handler: once when the headers are in, then once
 * per chunk of body, then once more to answer.
 */
static enum MHD_Result
access_step(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	HttpRequest *req = *con_cls;

	if (req == NULL)
	{
		req = http_request_new(conn, url, method);
		req->on_metrics_port = cls == HTTP_METRICS_DAEMON;
		*con_cls = req;
		if (refuse_framing(req))
			return http_queue_reply(req);
		req->body_too_large = declared_body_too_large(conn);
		/* a client that declares too much gets its answer before sending it */
		if (!req->body_too_large)
		{
			MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
									  (unsigned int) http_request_timeout);
			return MHD_YES;
		}
	}
	if (*upload_data_size > 0)
	{
		if (req->body.len + *upload_data_size > (size_t) http_max_body)
			req->body_too_large = true;
		else
			appendBinaryStringInfo(&req->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->handled)
		return MHD_YES;
	if (req->client_gone)
		return MHD_NO;			/* the client hung up while its job ran: close */
	if (req->ready)
		return http_queue_reply(req);	/* resumed: the job's reply is in */
	http_conn_request_received(conn);
	http_dispatch_guarded(req);
	if (req->job != NULL)
		return MHD_YES;			/* suspended until its job is done */
	return http_queue_reply(req);
}

/*
 * libmicrohttpd's access handler.  Routing has its own guard that answers
 * 500; this outer one catches what can fail around it (running out of
 * memory for a new request or its body), so that no error ever unwinds
 * through libmicrohttpd's frames.  The connection is then closed.
 */
enum MHD_Result
http_access_handler(void *cls, struct MHD_Connection *conn, const char *url,
					const char *method, const char *version, const char *upload_data,
					size_t *upload_data_size, void **con_cls)
{
	volatile enum MHD_Result result = MHD_NO;
	MemoryContext old = CurrentMemoryContext;

	PG_TRY();
	{
		result = access_step(cls, conn, url, method, upload_data, upload_data_size, con_cls);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		EmitErrorReport();
		FlushErrorState();
		result = MHD_NO;
	}
	PG_END_TRY();
	return result;
}

/* libmicrohttpd is done with a request: release everything it held. */
void
http_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
					   enum MHD_RequestTerminationCode toe)
{
	HttpRequest *req = *con_cls;

	http_conn_request_done(conn);
	if (req == NULL)
		return;
	http_job_forget(req);
	http_sse_forget(req);
	http_request_free(req);
	*con_cls = NULL;
}
