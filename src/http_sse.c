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

#include "catalog/pg_type.h"
#include "lib/ilist.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "announce.h"
#include "auth_jwt.h"
#include "crm_dashboard.h"
#include "http.h"
#include "http_metrics.h"
#include "http_pool.h"

#define SSE_HEARTBEAT_MS (15 * 1000)
#define SSE_MAX_PENDING (256 * 1024)	/* bytes a client may fall behind */
#define SSE_BLOCK_SIZE (2 * 1024)	/* libmicrohttpd's buffer per stream */
#define SSE_IDLE_BUFFER 256		/* our buffer per stream when it has nothing to send */
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
static bool token_check_running = false;

static void resume_streams(void);

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
	char		name[40];
	const char *line = announce_event_name(json, name, sizeof(name));

	appendStringInfo(&c->buf, "id: " UINT64_FORMAT "\nevent: %s\n", seq, name);
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
 * Empty the client's buffer, and give back what a burst (a replay after a
 * reconnect) made it grow to.  Called from libmicrohttpd: never throws.
 */
static void
shrink_buffer(SseClient *c)
{
	if (c->buf.maxlen > SSE_IDLE_BUFFER)
	{
		char	   *small = MemoryContextAllocExtended(TopMemoryContext, SSE_IDLE_BUFFER, MCXT_ALLOC_NO_OOM);

		if (small != NULL)
		{
			pfree(c->buf.data);
			c->buf.data = small;
			c->buf.maxlen = SSE_IDLE_BUFFER;
		}
	}
	resetStringInfo(&c->buf);
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
		shrink_buffer(c);
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

/*
 * GET /api/events, once the request engine said the token may watch (the
 * "after" step of the request's job): turn the reply into an event stream.
 */
void
http_sse_open(HttpRequest *req)
{
	SseClient  *c;
	uint64		last;

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
	/* small at first: most of the time a stream has nothing waiting */
	c->buf.maxlen = SSE_IDLE_BUFFER;
	c->buf.data = MemoryContextAlloc(TopMemoryContext, c->buf.maxlen);
	resetStringInfo(&c->buf);
	last = announce_last_seq();
	c->next_seq = first_seq(req, last);
	appendStringInfoString(&c->buf, "retry: 3000\n\n");
	replay(c, last);
	dlist_push_tail(&clients, &c->node);
	http_metrics_sse(1);
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
	http_metrics_sse(-1);
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

/*
 * The distinct tokens behind the streams of dashboard users, as a JSON
 * array of {u, r, g}: user, role, generation.  Thousands of streams are
 * usually a few users' tabs, so the check asks about each token once.
 */
static char *
user_tokens_json(void)
{
	HASHCTL		ctl = {0};
	HTAB	   *seen;
	StringInfoData buf;
	dlist_iter	it;

	ctl.keysize = 3 * NAMEDATALEN + 32;
	ctl.entrysize = ctl.keysize;
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("crm_dashboard event stream tokens", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	dlist_foreach(it, &clients)
	{
		SseClient  *c = dlist_container(SseClient, node, it.cur);
		char		key[3 * NAMEDATALEN + 32];
		bool		found;

		if (c->username == NULL || c->dropped)
			continue;
		snprintf(key, sizeof(key), "%s\x1f%s\x1f" INT64_FORMAT, c->username, c->role, c->generation);
		(void) hash_search(seen, key, HASH_ENTER, &found);
		if (found)
			continue;
		appendStringInfoString(&buf, buf.len > 1 ? ",{\"u\":" : "{\"u\":");
		escape_json(&buf, c->username);
		appendStringInfoString(&buf, ",\"r\":");
		escape_json(&buf, c->role);
		appendStringInfo(&buf, ",\"g\":" INT64_FORMAT "}", c->generation);
	}
	appendStringInfoChar(&buf, ']');
	hash_destroy(seen);
	return buf.data;
}

/* Drop the streams opened with a token the check found revoked. */
static void
drop_streams_of(const char *username, const char *role, int64 generation)
{
	dlist_iter	it;

	dlist_foreach(it, &clients)
	{
		SseClient  *c = dlist_container(SseClient, node, it.cur);

		if (c->username != NULL && c->generation == generation &&
			strcmp(c->username, username) == 0 && strcmp(c->role, role) == 0)
			c->dropped = true;
	}
}

/* The token check is in: drop the streams of the tokens it names (revoked); keep the rest. */
static void
token_check_done(PoolJob *job)
{
	PGresult   *res = job->results[0];

	token_check_running = false;
	if (job->failure == POOL_OK && res != NULL)
	{
		for (int row = 0; row < PQntuples(res); row++)
			drop_streams_of(PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
							strtoll(PQgetvalue(res, row, 2), NULL, 10));
	}
	else if (job->failure != POOL_OK)
		elog(LOG, "crm_dashboard http: the token check of event streams failed: %s",
			 job->message ? job->message : "no connection");
	pool_job_done(job);
	resume_streams();
}

/*
 * Every SSE_TOKEN_CHECK_MS: ask, on the reserved connection, which streams'
 * tokens were revoked.  Asynchronous like every query of the worker: the
 * streams go on while it runs.
 */
static void
check_stream_tokens(void)
{
	TimestampTz now = GetCurrentTimestamp();
	const char *values[1];
	PoolJob    *job;

	if (now < next_token_check || token_check_running || !any_user_stream())
		return;
	next_token_check = now + SSE_TOKEN_CHECK_MS * INT64CONST(1000);
	job = pool_job_new(TopMemoryContext, token_check_done, NULL, true);
	values[0] = user_tokens_json();
	job->timeout_ms = SSE_TOKEN_CHECK_MS;
	pool_job_add(job, "SELECT e ->> 'u', e ->> 'r', e ->> 'g' FROM pg_catalog.json_array_elements($1::json) e "
				 " WHERE NOT crm_dashboard.token_is_current(e ->> 'u', e ->> 'r', (e ->> 'g')::int8)",
				 1, values, true);
	pfree((char *) values[0]);	/* the job has its copy */
	token_check_running = true;
	pool_job_submit(job);
}

/* Resume the streams that have something to send, or must end. */
static void
resume_streams(void)
{
	dlist_iter	it;

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

/* Called from the wait loop: new events and heartbeats, then resume. */
void
http_sse_poll(void)
{
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
	resume_streams();
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
