/*
 * http_sse.c
 *		GET /api/events: Server-Sent Events of run changes.
 *
 * The worker subscribes once to the announcement ring (announce.c), whose
 * publishers set its latch; the wait loop then calls http_sse_poll(), which
 * copies new events into every client's buffer and resumes the clients
 * that have something to send.  A client with nothing to send is a
 * suspended connection: libmicrohttpd does not poll it, so idle clients
 * cost no CPU.  Each client's buffer is bounded; a client too slow to
 * drain it is dropped rather than allowed to hold memory or block others.
 * A stream ends when the token it was opened with expires, and within
 * SSE_TOKEN_CHECK_MS of it being revoked (logout, a password or role change,
 * deleting the user): streams of dashboard users are checked in one query.
 */
#include "postgres.h"

#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "announce.h"
#include "auth_jwt.h"
#include "crm_dashboard.h"
#include "http.h"

#define SSE_HEARTBEAT_MS (15 * 1000)
#define SSE_MAX_PENDING (256 * 1024)	/* bytes a client may fall behind */
#define SSE_BLOCK_SIZE (16 * 1024)
#define SSE_SOCKET_BUFFER (64 * 1024)	/* kernel send buffer of a stream */
#define SSE_REPLAY_MAX 4096		/* at least the announcement ring's size */
#define SSE_TOKEN_CHECK_MS (3 * 1000)	/* how often streams' tokens are re-checked */

/* One connected event-stream client. */
typedef struct SseClient
{
	dlist_node	node;
	struct MHD_Connection *conn;
	uint64		next_seq;		/* first event not yet queued for it */
	StringInfoData buf;			/* bytes waiting to be sent */
	int			sent;			/* bytes of buf already handed out */
	bool		suspended;
	bool		dropped;
	TimestampTz expires;		/* when its token expires, or 0 */
	char	   *username;		/* a dashboard user's token: who, with which role */
	char	   *role;
	int64		generation;		/* and token generation */
} SseClient;

static dlist_head clients = DLIST_STATIC_INIT(clients);
static uint64 ring_seq = 0;		/* newest event this worker has fanned out */
static TimestampTz next_heartbeat = 0;
static TimestampTz next_token_check = 0;

/* Subscribe this worker to the announcement ring (once, at start). */
void
http_sse_init(void)
{
	if (!announce_available())
		return;
	announce_subscribe();
	ring_seq = announce_last_seq();
}

/* Append one event in SSE framing (multi-line data split into data: lines). */
static void
append_event(SseClient *c, uint64 seq, const char *json)
{
	const char *line = json;

	appendStringInfo(&c->buf, "id: " UINT64_FORMAT "\nevent: sync\n", seq);
	for (;;)
	{
		const char *nl = strchr(line, '\n');

		appendStringInfoString(&c->buf, "data: ");
		appendBinaryStringInfo(&c->buf, line, nl ? nl - line : strlen(line));
		appendStringInfoChar(&c->buf, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	appendStringInfoChar(&c->buf, '\n');
}

/* Drop a client that fell too far behind. */
static void
check_backlog(SseClient *c)
{
	if (c->buf.len - c->sent > SSE_MAX_PENDING)
		c->dropped = true;
}

/* Queue the events seq..last still held by the ring for one client. */
static void
replay(SseClient *c, uint64 last)
{
	char		payload[ANNOUNCE_PAYLOAD_MAX];
	uint64		seq = c->next_seq;

	/*
	 * Events more than SSE_REPLAY_MAX behind the newest have certainly been
	 * overwritten, so do not look for them one by one: a Last-Event-ID of 0
	 * on a server that has published millions of events would otherwise
	 * keep the worker busy for as long.
	 */
	if (last > SSE_REPLAY_MAX && seq < last - SSE_REPLAY_MAX)
		seq = last - SSE_REPLAY_MAX;
	for (; seq <= last && !c->dropped; seq++)
		if (announce_get(seq, payload, sizeof(payload)))
		{
			append_event(c, seq, payload);
			check_backlog(c);
		}
	c->next_seq = last + 1;
}

/*
 * libmicrohttpd asks for more of the stream: hand out buffered bytes, or
 * suspend the connection until http_sse_poll() has something.
 */
static ssize_t
sse_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	SseClient  *c = cls;
	size_t		avail = c->buf.len - c->sent;

	if (c->dropped)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (avail == 0)
	{
		resetStringInfo(&c->buf);
		c->sent = 0;
		c->suspended = true;
		MHD_suspend_connection(c->conn);
		return 0;
	}
	if (avail > max)
		avail = max;
	memcpy(out, c->buf.data + c->sent, avail);
	c->sent += avail;
	return avail;
}

/* Inside the transaction: the role must be a viewer or more. */
static void
check_viewer(HttpRequest *req, void *arg)
{
	bool	   *ok = arg;
	bool		isnull;

	crm_spi_execute("SELECT pg_catalog.pg_has_role('crm_dashboard_viewer', 'MEMBER')", 0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	*ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!*ok)
		http_reply_error(req, req->anonymous ? 401 : 403, "42501",
						 "permission denied for the event stream", NULL,
						 "Log in as a dashboard viewer, operator or admin.");
}

/* The first event a new client gets: after Last-Event-ID, else only new ones. */
static uint64
first_seq(HttpRequest *req, uint64 last)
{
	const char *id = http_header(req, "Last-Event-ID");
	char	   *end;
	unsigned long long v;

	if (id == NULL || !isdigit((unsigned char) id[0]))
		return last + 1;
	v = strtoull(id, &end, 10);
	if (*end != '\0' || v > last)
		return last + 1;
	return v + 1;
}

/*
 * Cap the kernel's send buffer of a stream (autotuning would let it grow to
 * megabytes), so that SSE_MAX_PENDING really bounds what a client that does
 * not read can hold, and such a client is noticed and dropped.
 */
static void
limit_socket_buffer(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int			size = SSE_SOCKET_BUFFER;

	if (info != NULL)
		(void) setsockopt(info->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/*
 * When the stream of a request must end: when its token expires (with the
 * clock skew verification allows), or 0 for a token without "exp" and for
 * the anonymous role.  A stream is authenticated once, at its start, so
 * without this a token would keep working, and a deleted user keep
 * watching, for as long as the connection stays open.
 */
static TimestampTz
stream_expiry(HttpRequest *req)
{
	cJSON	   *claims = req->claims ? cJSON_Parse(req->claims) : NULL;
	cJSON	   *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
	TimestampTz expires = 0;

	if (cJSON_IsNumber(exp))
	{
		double		secs = exp->valuedouble + JWT_CLOCK_SKEW;

		/* clamp so that the conversion cannot overflow */
		secs = Max(secs, 1.0);
		secs = Min(secs, 1.0e11);
		expires = time_t_to_timestamptz((pg_time_t) secs);
	}
	cJSON_Delete(claims);
	return expires;
}

/* GET /api/events: start an event stream for an authenticated viewer. */
void
http_sse_start(HttpRequest *req)
{
	bool		ok = false;
	SseClient  *c;
	uint64		last;

	http_in_transaction(req, check_viewer, &ok);
	if (!ok)
		return;
	if (!announce_available())
	{
		http_reply_error(req, 503, "PGRST000", "events are not available",
						 "The extension's library is not in shared_preload_libraries.", NULL);
		return;
	}
	limit_socket_buffer(req->conn);
	c = MemoryContextAllocZero(TopMemoryContext, sizeof(SseClient));
	c->conn = req->conn;
	c->expires = stream_expiry(req);
	if (req->username != NULL)
	{
		c->username = MemoryContextStrdup(TopMemoryContext, req->username);
		c->role = MemoryContextStrdup(TopMemoryContext, req->role);
		c->generation = req->generation;
	}
	c->buf.data = NULL;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&c->buf);
		MemoryContextSwitchTo(old);
	}
	last = announce_last_seq();
	c->next_seq = first_seq(req, last);
	appendStringInfoString(&c->buf, "retry: 3000\n\n");
	replay(c, last);
	dlist_push_tail(&clients, &c->node);
	req->sse = c;
	req->stream = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK_SIZE,
													sse_reader, c, NULL);
	if (req->stream == NULL)
	{
		http_reply_error(req, 500, "PGRST000", "could not create the event stream", NULL, NULL);
		return;
	}
	req->reply.status = MHD_HTTP_OK;
	req->reply.content_type = "text/event-stream; charset=utf-8";
	http_reply_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	http_reply_header(req, "X-Accel-Buffering", "no");
	if (next_heartbeat == 0)
		next_heartbeat = GetCurrentTimestamp() + SSE_HEARTBEAT_MS * INT64CONST(1000);
}

/* The connection of an event stream is done: forget the client. */
void
http_sse_forget(HttpRequest *req)
{
	SseClient  *c = req->sse;

	if (c == NULL)
		return;
	dlist_delete(&c->node);
	pfree(c->buf.data);
	if (c->username)
	{
		pfree(c->username);
		pfree(c->role);
	}
	pfree(c);
	req->sse = NULL;
}

/* Fan the ring's new events out to every client. */
static void
fan_out(void)
{
	char		payload[ANNOUNCE_PAYLOAD_MAX];
	uint64		last = announce_last_seq();
	uint64		seq;
	dlist_iter	it;

	for (seq = ring_seq + 1; seq <= last; seq++)
	{
		if (!announce_get(seq, payload, sizeof(payload)))
			continue;			/* overwritten: the ring moved on */
		dlist_foreach(it, &clients)
		{
			SseClient  *c = dlist_container(SseClient, node, it.cur);

			if (c->next_seq > seq || c->dropped)
				continue;
			append_event(c, seq, payload);
			c->next_seq = seq + 1;
			check_backlog(c);
		}
	}
	ring_seq = last;
}

/* Queue a heartbeat comment for every client when one is due. */
static void
heartbeat(void)
{
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	it;

	if (now < next_heartbeat)
		return;
	next_heartbeat = now + SSE_HEARTBEAT_MS * INT64CONST(1000);
	dlist_foreach(it, &clients)
		appendStringInfoString(&dlist_container(SseClient, node, it.cur)->buf, ": heartbeat\n\n");
}

/* Drop the clients whose token has expired. */
static void
expire_clients(void)
{
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	it;

	dlist_foreach(it, &clients)
	{
		SseClient  *c = dlist_container(SseClient, node, it.cur);

		if (c->expires != 0 && now >= c->expires)
			c->dropped = true;
	}
}

/* Whether any open stream belongs to a dashboard user's token. */
static bool
any_user_stream(void)
{
	dlist_iter	it;

	dlist_foreach(it, &clients)
	{
		if (dlist_container(SseClient, node, it.cur)->username != NULL)
			return true;
	}
	return false;
}

/* The streams of dashboard users, with their token claims as parallel arrays. */
static int
user_streams(SseClient ***streams, Datum *names, Datum *roles, Datum *gens)
{
	dlist_iter	it;
	int			n = 0;
	int			cap = 16;
	Datum	   *u = palloc(sizeof(Datum) * cap);
	Datum	   *r = palloc(sizeof(Datum) * cap);
	Datum	   *g = palloc(sizeof(Datum) * cap);

	*streams = palloc(sizeof(SseClient *) * cap);
	dlist_foreach(it, &clients)
	{
		SseClient  *c = dlist_container(SseClient, node, it.cur);

		if (c->username == NULL || c->dropped)
			continue;
		if (n == cap)
		{
			cap *= 2;
			*streams = repalloc(*streams, sizeof(SseClient *) * cap);
			u = repalloc(u, sizeof(Datum) * cap);
			r = repalloc(r, sizeof(Datum) * cap);
			g = repalloc(g, sizeof(Datum) * cap);
		}
		(*streams)[n] = c;
		u[n] = CStringGetTextDatum(c->username);
		r[n] = CStringGetTextDatum(c->role);
		g[n] = Int64GetDatum(c->generation);
		n++;
	}
	*names = PointerGetDatum(construct_array(u, n, TEXTOID, -1, false, TYPALIGN_INT));
	*roles = PointerGetDatum(construct_array(r, n, TEXTOID, -1, false, TYPALIGN_INT));
	*gens = PointerGetDatum(construct_array(g, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	return n;
}

/* In a transaction: drop the streams whose token has been revoked. */
static void
drop_revoked_streams(void)
{
	SseClient **streams;
	Oid			types[3] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		values[3];
	int			n = user_streams(&streams, &values[0], &values[1], &values[2]);

	if (n == 0)
		return;
	crm_spi_execute("SELECT c.i::int4 FROM unnest($1::text[], $2::text[], $3::int8[]) "
							  "  WITH ORDINALITY AS c(username, role, gen, i) "
							  " WHERE NOT crm_dashboard.token_is_current(c.username, c.role, c.gen)",
							  3, types, values, NULL, true, 0, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		k = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (k >= 1 && k <= n)
			streams[k - 1]->dropped = true;
	}
}

/*
 * Every SSE_TOKEN_CHECK_MS: end the streams of revoked tokens.  A failure
 * (the extension being dropped, say) is logged and tried again next time.
 */
static void
check_stream_tokens(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();

	if (now < next_token_check || !any_user_stream())
		return;
	next_token_check = now + SSE_TOKEN_CHECK_MS * INT64CONST(1000);
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "crm_dashboard: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		drop_revoked_streams();
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/* Called from the wait loop: new events and heartbeats, then resume. */
void
http_sse_poll(void)
{
	dlist_iter	it;

	if (!announce_available())
		return;
	if (dlist_is_empty(&clients))
	{
		ring_seq = announce_last_seq();
		return;
	}
	fan_out();
	heartbeat();
	expire_clients();
	check_stream_tokens();
	dlist_foreach(it, &clients)
	{
		SseClient  *c = dlist_container(SseClient, node, it.cur);

		if (c->suspended && (c->buf.len > c->sent || c->dropped))
		{
			c->suspended = false;
			MHD_resume_connection(c->conn);
		}
	}
}

/* Milliseconds until the next heartbeat or expiry, or -1 without clients. */
long
http_sse_next_timeout_ms(void)
{
	TimestampTz next = any_user_stream() ? Min(next_heartbeat, next_token_check) : next_heartbeat;
	dlist_iter	it;
	long		secs;
	int			usecs;

	if (dlist_is_empty(&clients))
		return -1;
	dlist_foreach(it, &clients)
	{
		SseClient  *c = dlist_container(SseClient, node, it.cur);

		if (c->expires != 0 && !c->dropped && c->expires < next)
			next = c->expires;
	}
	TimestampDifference(GetCurrentTimestamp(), next, &secs, &usecs);
	return secs * 1000 + usecs / 1000 + 1;
}
