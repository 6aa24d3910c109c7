/*
 * http_job.c
 *		Serving a request's data through the connection pool: the request
 *		document for crm_dashboard.http_serve, the reply from its row, and
 *		cancelling when the client leaves.
 *
 * While its job runs, the request's connection is suspended in
 * libmicrohttpd, which then neither polls nor times it out; so this module
 * watches the client's socket itself, in an epoll set of its own beside the
 * pool's in the worker's WaitEventSet.  A client that hangs up has its
 * query cancelled at once (pool_job_abandon), and its connection resumed so
 * that libmicrohttpd closes it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "mb/pg_wchar.h"
#include "storage/fd.h"
#include "utils/formatting.h"
#include "utils/memutils.h"

#include "http.h"
#include "http_engine.h"
#include "http_pool.h"

static int	client_epoll = -1;

/* The one statement of a request (its time limit is the session's: http_job_configure). */
#define SERVE_SQL \
	"SELECT status, content_type, headers, body, file, file_size FROM crm_dashboard.http_serve($1)"

/* Create the client-watch set (at worker start). */
void
http_job_init(void)
{
	client_epoll = epoll_create1(EPOLL_CLOEXEC);
	if (client_epoll < 0)
		elog(ERROR, "crm_dashboard http: could not create an epoll set: %m");
}

/*
 * The pooled sessions' time limit is http_request_timeout (at start, and
 * after a reload that changed it).
 */
void
http_job_configure(void)
{
	pool_set_session_options(psprintf("-c statement_timeout=%d", http_request_timeout * 1000));
}

int
http_job_epoll_fd(void)
{
	return client_epoll;
}

/*
 * Watch (or stop watching) a suspended request's client for hanging up.  The
 * socket is remembered so that the watch always goes, whatever
 * libmicrohttpd has done with the connection meanwhile: an entry left
 * behind would point at a request that no longer exists.
 */
static void
watch_client(HttpRequest *req, bool on)
{
	const union MHD_ConnectionInfo *info;
	struct epoll_event ev = {0};

	if (!on)
	{
		if (req->watched_fd >= 0)
			(void) epoll_ctl(client_epoll, EPOLL_CTL_DEL, req->watched_fd, NULL);
		req->watched_fd = -1;
		return;
	}
	info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (req->watched_fd >= 0 || info == NULL)
		return;
	ev.events = EPOLLRDHUP | EPOLLHUP | EPOLLERR;
	ev.data.ptr = req;
	if (epoll_ctl(client_epoll, EPOLL_CTL_ADD, info->connect_fd, &ev) == 0 ||
		(errno == EEXIST && epoll_ctl(client_epoll, EPOLL_CTL_MOD, info->connect_fd, &ev) == 0))
		req->watched_fd = info->connect_fd;
}

/* The request's headers as a JSON object with lower-cased names, credentials left out. */
static cJSON *
headers_json(HttpRequest *req)
{
	int			n;
	HttpValue  *h = http_values(req, MHD_HEADER_KIND, &n);
	cJSON	   *obj = cJSON_CreateObject();

	for (int i = 0; i < n; i++)
	{
		const char *value = h[i].value ? h[i].value : "";

		/* SQL, and any log of it, never sees credentials; text must be UTF-8 */
		if (pg_strcasecmp(h[i].key, "authorization") == 0 || pg_strcasecmp(h[i].key, "cookie") == 0 ||
			!pg_verify_mbstr(PG_UTF8, h[i].key, strlen(h[i].key), true) ||
			!pg_verify_mbstr(PG_UTF8, value, strlen(value), true))
			continue;
		cJSON_AddStringToObject(obj, asc_tolower(h[i].key, strlen(h[i].key)), value);
	}
	return obj;
}

/* The query string's arguments as [[key, value-or-null], ...], in order. */
static cJSON *
args_json(HttpRequest *req)
{
	int			n;
	HttpValue  *args = http_values(req, MHD_GET_ARGUMENT_KIND, &n);
	cJSON	   *arr = cJSON_CreateArray();

	for (int i = 0; i < n; i++)
	{
		cJSON	   *pair = cJSON_CreateArray();

		cJSON_AddItemToArray(pair, cJSON_CreateString(args[i].key));
		cJSON_AddItemToArray(pair, args[i].value ? cJSON_CreateString(args[i].value) : cJSON_CreateNull());
		cJSON_AddItemToArray(arr, pair);
	}
	return arr;
}

/* Add a string field, or null. */
static void
add_string(cJSON *doc, const char *key, const char *value)
{
	if (value)
		cJSON_AddStringToObject(doc, key, value);
	else
		cJSON_AddNullToObject(doc, key);
}

/* The request document crm_dashboard.http_serve reads (see http_engine.c), malloc'd by cJSON. */
static char *
request_document(HttpRequest *req, const char *route, const char *name, HttpMedia media)
{
	static const char *const media_names[] = {"json", "object", "csv", "xlsx"};
	cJSON	   *doc = cJSON_CreateObject();
	char	   *text;

	add_string(doc, "route", route);
	add_string(doc, "name", name);
	add_string(doc, "method", req->method);
	add_string(doc, "path", req->url);
	add_string(doc, "media", media_names[media]);
	add_string(doc, "count", http_prefer_count(req));
	add_string(doc, "range", http_header(req, "Range"));
	add_string(doc, "range_unit", http_header(req, "Range-Unit"));
	add_string(doc, "body", req->read_only || req->body.len == 0 ? NULL : req->body.data);
	add_string(doc, "role", req->role);
	cJSON_AddBoolToObject(doc, "anonymous", req->anonymous);
	add_string(doc, "username", req->username);
	cJSON_AddNumberToObject(doc, "generation", (double) req->generation);
	add_string(doc, "claims", req->claims);
	add_string(doc, "client", http_client_address(req));
	cJSON_AddItemToObject(doc, "args", args_json(req));
	{
		char	   *headers = cJSON_PrintUnformatted(headers_json(req));

		add_string(doc, "headers", headers);
		cJSON_free(headers);
	}
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (text == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return text;
}

/* A reply body from a spool file the engine wrote: open it, unlink it, send it. */
static void
take_spool(HttpRequest *req, const char *path)
{
	struct stat st;
	int			fd;

	/* only a file of ours, in the server's own temporary-file directory */
	if (strncmp(path, "base/" PG_TEMP_FILES_DIR "/" HTTP_SPOOL_PREFIX,
				strlen("base/" PG_TEMP_FILES_DIR "/" HTTP_SPOOL_PREFIX)) != 0 ||
		strstr(path, "..") != NULL || strchr(path + strlen("base/" PG_TEMP_FILES_DIR "/"), '/') != NULL)
		elog(ERROR, "crm_dashboard http: refusing spool file \"%s\"", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		elog(ERROR, "crm_dashboard http: could not open spool file \"%s\": %m", path);
	(void) unlink(path);
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		elog(ERROR, "crm_dashboard http: could not stat spool file \"%s\": %m", path);
	}
	req->reply.fd = fd;
	req->reply.fd_size = st.st_size;
}

/* The reply from http_serve's row (status, content_type, headers, body, file, file_size). */
static void
reply_from_row(HttpRequest *req, PGresult *res)
{
	MemoryContext old = MemoryContextSwitchTo(req->ctx);

	req->reply.status = atoi(PQgetvalue(res, 0, 0));
	req->reply.content_type = PQgetisnull(res, 0, 1) ? NULL : pstrdup(PQgetvalue(res, 0, 1));
	req->reply.headers = NIL;
	{
		cJSON	   *headers = cJSON_Parse(PQgetvalue(res, 0, 2));
		cJSON	   *item;

		cJSON_ArrayForEach(item, headers)
		{
			if (cJSON_IsString(item))
				req->reply.headers = lappend(req->reply.headers, pstrdup(item->valuestring));
		}
		cJSON_Delete(headers);
		if (list_length(req->reply.headers) % 2 != 0)
			req->reply.headers = NIL;
	}
	resetStringInfo(&req->reply.body);
	appendBinaryStringInfo(&req->reply.body, PQgetvalue(res, 0, 3), PQgetlength(res, 0, 3));
	if (!PQgetisnull(res, 0, 4))
		take_spool(req, PQgetvalue(res, 0, 4));
	MemoryContextSwitchTo(old);
}

/* The reply for a job that failed: SQL's error, or the pool's. */
static void
reply_from_failure(HttpRequest *req, PoolJob *job)
{
	switch (job->failure)
	{
		case POOL_SQL_ERROR:
			http_reply_pg_error(req, job->sqlstate, job->message, job->detail, job->hint);
			break;
		case POOL_TIMEOUT:
			http_reply_error(req, 504, "PGRST003", "Timed out acquiring connection from connection pool.",
							 "Every database connection of this server's HTTP worker is busy.",
							 "Try again shortly.");
			http_reply_header(req, "Retry-After", "1");
			break;
		default:
			http_reply_error(req, 503, "PGRST001", "Database client error. Retrying the connection.",
							 job->message, NULL);
			break;
	}
}

/* The job's one batch is in: make the reply, free the connection, wake the request. */
static void
job_finished(PoolJob *job)
{
	HttpRequest *req = job->arg;
	MemoryContext old = MemoryContextSwitchTo(req->ctx);

	PG_TRY();
	{
		if (job->failure == POOL_OK && job->results[0] && PQntuples(job->results[0]) == 1)
			reply_from_row(req, job->results[0]);
		else if (job->failure == POOL_OK)
			http_reply_error(req, 500, "XX000", "the request engine returned no reply", NULL, NULL);
		else
			reply_from_failure(req, job);
		if (req->after && req->reply.status > 0 && req->reply.status < 300)
			req->after(req);
	}
	PG_CATCH();
	{
		/* nothing may unwind through the pool's or libmicrohttpd's frames */
		MemoryContextSwitchTo(req->ctx);
		EmitErrorReport();
		FlushErrorState();
		http_reply_error(req, 500, "XX000", "internal error while handling the request",
						 NULL, "The server log has the details.");
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	pool_job_done(job);
	req->job = NULL;
	watch_client(req, false);
	req->ready = true;
	MHD_resume_connection(req->conn);
}

/*
 * Serve the request's data through the pool: route "read" (name: a view),
 * "rpc" (name: a function) or "events"; control jobs use the reserved
 * connection.  after, when set, runs on a successful reply before it goes
 * out.  The connection is suspended until the reply is ready.
 */
void
http_job_start(HttpRequest *req, const char *route, const char *name, HttpMedia media,
			   bool control, HttpAfterFn after)
{
	MemoryContext old = MemoryContextSwitchTo(req->ctx);
	PoolJob    *job = pool_job_new(req->ctx, job_finished, req, control);
	const char *serve[1];

	serve[0] = request_document(req, route, name, media);
	job->timeout_ms = http_request_timeout * 1000;
	job->label = req->url;
	pool_job_add(job, SERVE_SQL, 1, serve, true);
	/* the job has its copy; an event stream's request lives for hours, so keep it small */
	cJSON_free((char *) serve[0]);
	req->job = job;
	req->after = after;
	MemoryContextSwitchTo(old);
	MHD_suspend_connection(req->conn);
	watch_client(req, true);
	pool_job_submit(job);
}

/* Clients that hung up while their job ran: cancel the job, let libmicrohttpd close them. */
void
http_job_poll(void)
{
	struct epoll_event events[64];
	int			n;

	while ((n = epoll_wait(client_epoll, events, lengthof(events), 0)) > 0)
	{
		for (int i = 0; i < n; i++)
		{
			HttpRequest *req = events[i].data.ptr;

			watch_client(req, false);
			if (req->job == NULL)
				continue;
			pool_job_abandon(req->job);
			req->job = NULL;
			req->client_gone = true;
			MHD_resume_connection(req->conn);
		}
		if (n < lengthof(events))
			break;
	}
}

/* A request is done with (its connection closed): drop its job if it still has one. */
void
http_job_forget(HttpRequest *req)
{
	watch_client(req, false);
	if (req->job)
	{
		pool_job_abandon(req->job);
		req->job = NULL;
	}
}
