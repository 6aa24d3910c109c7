/*
 * http_request.c
 *		The request being served: its state, from its first header to its
 *		completion, and access to what the client sent (headers and query
 *		arguments).  The bottom of the HTTP layer: it calls nothing above it.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <unistd.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http.h"
#include "http_metrics.h"

/*
 * An empty StringInfo with a small first buffer: most requests have no body
 * and many replies are short, while an event stream keeps its request for
 * as long as the browser tab is open.  It grows as any StringInfo does.
 */
static void
init_small(StringInfo str)
{
	str->maxlen = 64;
	str->data = palloc(str->maxlen);
	resetStringInfo(str);
}

/* Start the state of a new request. */
HttpRequest *
http_request_new(struct MHD_Connection *conn, const char *url, const char *method)
{
	MemoryContext ctx = AllocSetContextCreate(TopMemoryContext, "crm_dashboard http request",
											  ALLOCSET_SMALL_SIZES);
	HttpRequest *req = MemoryContextAllocZero(ctx, sizeof(HttpRequest));
	MemoryContext old = MemoryContextSwitchTo(ctx);

	req->ctx = ctx;
	req->conn = conn;
	req->url = pstrdup(url);
	req->method = pstrdup(method);
	req->is_head = strcmp(method, "HEAD") == 0;
	req->read_only = req->is_head || strcmp(method, "GET") == 0;
	req->reply.fd = -1;
	req->started_at = GetCurrentTimestamp();
	req->metric_route = http_metrics_route(req->url);
	req->watched_fd = -1;
	init_small(&req->reply.body);
	init_small(&req->body);
	MemoryContextSwitchTo(old);
	return req;
}

/* Look up a request header (case-insensitive), or NULL. */
const char *
http_header(HttpRequest *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* The values collected by collect_value(). */
typedef struct HttpValues
{
	HttpValue  *items;
	int			n;
	int			cap;
} HttpValues;

/*
 * Note one value in the array (libmicrohttpd's iterator callback).  It
 * allocates nothing and so cannot throw: an ereport() here would longjmp
 * across libmicrohttpd's frames.
 */
static enum MHD_Result
collect_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	HttpValues *v = cls;

	if (v->n >= v->cap)
		return MHD_NO;
	v->items[v->n].key = key;
	v->items[v->n].value = value;
	v->n++;
	return MHD_YES;
}

/*
 * The request's values of one kind (headers, query arguments) in order, as
 * a palloc'd array of *n entries, for handlers to work on outside any
 * libmicrohttpd callback.  The strings stay valid until the request ends.
 */
HttpValue *
http_values(HttpRequest *req, enum MHD_ValueKind kind, int *n)
{
	HttpValues	v;

	v.cap = MHD_get_connection_values(req->conn, kind, NULL, NULL);
	v.items = palloc(sizeof(HttpValue) * (v.cap + 1));
	v.n = 0;
	MHD_get_connection_values(req->conn, kind, collect_value, &v);
	*n = v.n;
	return v.items;
}

/* The count the client asks for (Prefer: count=exact|planned|estimated), or NULL. */
const char *
http_prefer_count(HttpRequest *req)
{
	const char *prefer = http_header(req, "Prefer");

	if (prefer == NULL)
		return NULL;
	if (strstr(prefer, "count=exact"))
		return "exact";
	if (strstr(prefer, "count=planned"))
		return "planned";
	if (strstr(prefer, "count=estimated"))
		return "estimated";
	return NULL;
}

/* The client's address as text, or "[unknown]". */
char *
http_client_address(HttpRequest *req)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char		buf[INET6_ADDRSTRLEN];
	const struct sockaddr *sa = info ? info->client_addr : NULL;

	if (sa != NULL && sa->sa_family == AF_INET &&
		inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf, sizeof(buf)))
		return pstrdup(buf);
	if (sa != NULL && sa->sa_family == AF_INET6 &&
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, buf, sizeof(buf)))
		return pstrdup(buf);
	return pstrdup("[unknown]");
}

/* Release everything a finished request held: its spool file, its stream, its memory. */
void
http_request_free(HttpRequest *req)
{
	if (req->reply.fd >= 0)
		close(req->reply.fd);
	if (req->stream)
		MHD_destroy_response(req->stream);
	MemoryContextDelete(req->ctx);
}
