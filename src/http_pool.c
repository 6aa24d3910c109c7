/*
 * http_pool.c
 *		The HTTP worker's pool of libpq connections to its own server.
 *
 * The worker's event loop never runs SQL: a request's statements go to a
 * pooled connection, in pipeline mode (one round trip, one implicit
 * transaction), and the loop goes on serving other requests, static files
 * and event streams while the server works.  Every
 * connection's socket is in one epoll set of the pool's, which sits in the
 * worker's WaitEventSet beside libmicrohttpd's.
 *
 * Why libpq rather than a pool of background workers fed through shm_mq:
 * each pooled connection is an ordinary backend, so a DBA sees it in
 * pg_stat_activity (with the dashboard user and route as application_name)
 * and can cancel it like any other; cancelling on disconnect is the server's
 * own mechanism; prepared statements, pipelining and error fields come with
 * the protocol; and a backend that fails takes down one connection, which
 * is reopened, rather than the worker.
 *
 * The connections log in over the local socket as the user the worker itself
 * is connected as (the bootstrap superuser), as Debian's default pg_hba.conf
 * allows by peer authentication, so no password is stored anywhere.  Each
 * request switches to its token's role inside its own transaction
 * (set_config('role', ..., true)), exactly as the SPI worker did; a job that
 * ends with its transaction open is rolled back before the connection is
 * reused, so no setting, role or cursor of one request is seen by the next.
 *
 * One connection is reserved for control work (logins, event streams'
 * token checks), so that those are never queued behind slow queries; the
 * others serve requests in FIFO order.  A request that finds no connection
 * free waits at most crm_dashboard.http_pool_timeout, then gets 504.
 */
#include "postgres.h"

#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "crm_dashboard.h"
#include "http_pool.h"

/* Most prepared statements kept per connection; later ones run unnamed. */
#define POOL_MAX_PREPARED 256
/* How long a failed connection attempt waits before the next one. */
#define POOL_RETRY_MS 1000
/* Extra time a batch gets beyond the statement timeout before it is cancelled. */
#define POOL_BATCH_GRACE_MS 2000

static int	pool_size = 8;
static int	pool_timeout_ms = 5000;

/* The state of one pooled connection. */
typedef enum PoolConnState
{
	CONN_CLOSED,				/* no connection (yet, or any more) */
	CONN_CONNECTING,			/* PQconnectPoll under way */
	CONN_IDLE,					/* ready for a job */
	CONN_BUSY,					/* a batch is on the wire */
	CONN_WAITING,				/* a batch is done; its job decides what follows */
	CONN_DRAINING				/* rolling back after a job, or after a cancel */
} PoolConnState;

/* A statement prepared on a connection. */
typedef struct PreparedStatement
{
	uint32		hash;
	char	   *sql;
	bool		failed;			/* its preparation did not happen: prepare again */
} PreparedStatement;

typedef struct PoolConn
{
	PGconn	   *pg;
	PoolConnState state;
	bool		control;		/* the reserved connection */
	int			sock;			/* registered in the epoll set, or -1 */
	uint32		events;			/* what it is registered for */
	PoolJob    *job;
	int			nitems;			/* what the batch on the wire asked for, in order */
	bool		item_is_prepare[2 * POOL_MAX_STATEMENTS];
	int			item_slot[2 * POOL_MAX_STATEMENTS];	/* a preparation's prepared[] index */
	int			item;			/* the item whose results come now */
	bool		synced;			/* the batch's sync result arrived */
	int			prepared_count;
	PreparedStatement prepared[POOL_MAX_PREPARED];
	TimestampTz deadline;		/* cancel the batch after this; 0 when none */
	TimestampTz retry_at;		/* no new attempt before this (CONN_CLOSED) */
	int			options_version;	/* of the session options it was opened with */
} PoolConn;

/* A job waiting for a connection. */
typedef struct QueuedJob
{
	dlist_node	node;
	PoolJob    *job;
} QueuedJob;

static MemoryContext pool_cxt = NULL;
static char *session_options = NULL;	/* libpq "options" of new connections */
static int	options_version = 0;
static int	epoll_fd = -1;
static PoolConn *conns = NULL;	/* pool_size + 1; conns[0] is the control connection */
static int	nconns = 0;
static dlist_head queue = DLIST_STATIC_INIT(queue);
static dlist_head control_queue = DLIST_STATIC_INIT(control_queue);
static char *conn_database = NULL;
static char *conn_user = NULL;
static TimestampTz connect_error_logged_at = 0;

static void start_next_job(PoolConn *c);
static void batch_finished(PoolConn *c);
static void close_conn(PoolConn *c);

/* Define the pool's settings (called from HttpInit). */
void
pool_define_settings(void)
{
	DefineCustomIntVariable("crm_dashboard.http_pool_size",
							"Database connections of each HTTP worker for requests' SQL.",
							"Range 1..100; each worker also keeps one for logins and event streams.  "
							"Takes effect at server start.",
							&pool_size, 8, 1, 100,
							process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.http_pool_timeout",
							"Longest time a request waits for a free database connection (504 after).",
							"Range 10 ms .. 1 min.",
							&pool_timeout_ms, 5000, 10, 60000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
}

/* Register, change or drop a connection's socket in the epoll set. */
static void
watch(PoolConn *c, int sock, uint32 events)
{
	struct epoll_event ev;

	if (c->sock >= 0 && (sock != c->sock || events == 0))
	{
		(void) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->sock, NULL);
		c->sock = -1;
		c->events = 0;
	}
	if (sock < 0 || events == 0)
		return;
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(epoll_fd, c->sock == sock ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, sock, &ev) != 0)
		elog(WARNING, "crm_dashboard http: could not watch a pool connection: %m");
	c->sock = sock;
	c->events = events;
}

/* Start the pool of this worker: no connection is made until one is needed. */
void
pool_start(const char *database, const char *user)
{
	pool_cxt = AllocSetContextCreate(TopMemoryContext, "crm_dashboard http pool",
									 ALLOCSET_DEFAULT_SIZES);
	conn_database = MemoryContextStrdup(pool_cxt, database);
	conn_user = MemoryContextStrdup(pool_cxt, user);
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (epoll_fd < 0)
		elog(ERROR, "crm_dashboard http: could not create the pool's epoll set: %m");
	nconns = pool_size + 1;
	conns = MemoryContextAllocZero(pool_cxt, sizeof(PoolConn) * nconns);
	for (int i = 0; i < nconns; i++)
	{
		conns[i].sock = -1;
		conns[i].control = i == 0;
	}
}

int
pool_epoll_fd(void)
{
	return epoll_fd;
}

void
pool_set_session_options(const char *options)
{
	if (session_options != NULL && strcmp(session_options, options) == 0)
		return;
	if (session_options != NULL)
		pfree(session_options);
	session_options = MemoryContextStrdup(pool_cxt, options);
	options_version++;
	/* idle connections go now, busy ones when their job is done */
	for (int i = 0; i < nconns; i++)
	{
		if (conns[i].state == CONN_IDLE || conns[i].state == CONN_CONNECTING)
		{
			close_conn(&conns[i]);
			conns[i].retry_at = 0;
		}
	}
}

/* Log why connections fail, at most once a minute. */
static void
log_connect_failure(PoolConn *c)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(connect_error_logged_at, now, 60 * 1000))
		return;
	connect_error_logged_at = now;
	ereport(LOG,
			(errmsg("crm_dashboard http: could not connect to the local server as \"%s\": %s",
					conn_user, c->pg ? PQerrorMessage(c->pg) : "out of memory"),
			 errhint("The HTTP workers connect through the Unix socket in \"%s\"; pg_hba.conf must let "
					 "the server's operating-system user log in there by peer (Debian's default does).",
					 crm_local_socket_directory())));
}

/* Close a connection; its slot may connect again after a pause. */
static void
close_conn(PoolConn *c)
{
	watch(c, -1, 0);
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->state = CONN_CLOSED;
	c->prepared_count = 0;
	c->deadline = 0;
	c->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), POOL_RETRY_MS);
}

/* Begin opening a connection, without blocking. */
static void
open_conn(PoolConn *c)
{
	const char *keys[] = {"host", "port", "dbname", "user", "application_name",
		"client_encoding", "options", NULL};
	const char *values[8];
	char		port[16];

	snprintf(port, sizeof(port), "%d", crm_local_port());
	values[0] = crm_local_socket_directory();
	values[1] = port;
	values[2] = conn_database;
	values[3] = conn_user;
	values[4] = c->control ? "crm_dashboard http control" : "crm_dashboard http pool";
	values[5] = "UTF8";
	values[6] = session_options ? session_options : "";
	values[7] = NULL;
	c->pg = PQconnectStartParams(keys, values, false);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD)
	{
		log_connect_failure(c);
		close_conn(c);
		return;
	}
	c->state = CONN_CONNECTING;
	c->options_version = options_version;
	watch(c, PQsocket(c->pg), EPOLLOUT);
}

/* Advance a connection attempt: on success the connection is idle, in pipeline mode. */
static void
continue_connect(PoolConn *c)
{
	switch (PQconnectPoll(c->pg))
	{
		case PGRES_POLLING_READING:
			watch(c, PQsocket(c->pg), EPOLLIN);
			return;
		case PGRES_POLLING_WRITING:
			watch(c, PQsocket(c->pg), EPOLLOUT);
			return;
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1)
				break;
			watch(c, PQsocket(c->pg), EPOLLIN);
			c->state = CONN_IDLE;
			start_next_job(c);
			return;
		default:
			break;
	}
	log_connect_failure(c);
	close_conn(c);
}

/* The name of sql's prepared statement on c, preparing it in this batch if new; NULL: run unnamed. */
static const char *
statement_name(PoolConn *c, const char *sql, int nparams, bool *prepare_now, int *slot)
{
	uint32		hash = hash_bytes((const unsigned char *) sql, strlen(sql));

	*prepare_now = false;
	for (int i = 0; i < c->prepared_count; i++)
		if (c->prepared[i].hash == hash && strcmp(c->prepared[i].sql, sql) == 0)
		{
			*prepare_now = c->prepared[i].failed;
			c->prepared[i].failed = false;
			*slot = i;
			return psprintf("crm_dashboard_%d", i);
		}
	if (c->prepared_count == POOL_MAX_PREPARED)
		return NULL;
	c->prepared[c->prepared_count].hash = hash;
	c->prepared[c->prepared_count].sql = MemoryContextStrdup(pool_cxt, sql);
	c->prepared[c->prepared_count].failed = false;
	*prepare_now = true;
	*slot = c->prepared_count;
	return psprintf("crm_dashboard_%d", c->prepared_count++);
}

/* Put one statement of the batch on the wire; false when libpq refused it. */
static bool
send_statement(PoolConn *c, const PoolStatement *st)
{
	bool		prepare_now;
	int			slot;
	const char *name = st->prepare ? statement_name(c, st->sql, st->nparams, &prepare_now, &slot) : NULL;

	if (name == NULL)
		return PQsendQueryParams(c->pg, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0) == 1;
	if (prepare_now)
	{
		if (PQsendPrepare(c->pg, name, st->sql, st->nparams, NULL) != 1)
			return false;
		c->item_slot[c->nitems] = slot;
		c->item_is_prepare[c->nitems++] = true; /* its result comes back like a query's */
	}
	return PQsendQueryPrepared(c->pg, name, st->nparams, st->values, NULL, NULL, 0) == 1;
}

/* Flush what libpq holds; ask to be told when the socket can take more. */
static void
flush_conn(PoolConn *c)
{
	int			rc = PQflush(c->pg);

	if (rc < 0)
		return;					/* the read side will see the broken connection */
	watch(c, PQsocket(c->pg), rc == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* The deadline of a batch: its job's time limit with some grace (the statement timeout comes first). */
static TimestampTz
batch_deadline(int timeout_ms)
{
	if (timeout_ms <= 0)
		return 0;
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) timeout_ms + POOL_BATCH_GRACE_MS);
}

/* Forget the results of the job's previous batch. */
static void
clear_results(PoolJob *job)
{
	for (int i = 0; i < job->nresults; i++)
		if (job->results[i])
			PQclear(job->results[i]);
	job->nresults = 0;
	job->failure = POOL_OK;
	job->sqlstate[0] = '\0';
	job->message = job->detail = job->hint = NULL;
}

/* Send the job's next batch on its connection, then a sync. */
static void
send_batch(PoolConn *c)
{
	PoolJob    *job = c->job;

	c->nitems = 0;
	c->item = 0;
	c->synced = false;
	for (int i = 0; i < job->nstatements; i++)
	{
		job->results[i] = NULL;
		if (!send_statement(c, &job->statements[i]))
			break;
		c->item_is_prepare[c->nitems++] = false;
	}
	job->nresults = job->nstatements;
	if (PQpipelineSync(c->pg) != 1)
	{
		job->failure = POOL_CONNECTION_LOST;
		job->message = pstrdup(PQerrorMessage(c->pg));
		close_conn(c);
		batch_finished(c);
		return;
	}
	job->nstatements = 0;
	c->state = CONN_BUSY;
	c->deadline = batch_deadline(job->timeout_ms);
	flush_conn(c);
}

/* Give job a connection and send its first batch. */
static void
assign(PoolConn *c, PoolJob *job)
{
	c->job = job;
	job->conn = c;
	send_batch(c);
}

/* An idle connection takes the oldest waiting job of its kind, if any. */
static void
start_next_job(PoolConn *c)
{
	dlist_head *q = c->control ? &control_queue : &queue;
	QueuedJob  *w;

	if (c->state != CONN_IDLE || dlist_is_empty(q))
		return;
	w = dlist_container(QueuedJob, node, dlist_pop_head_node(q));
	assign(c, w->job);
	pfree(w);
}

/* Remember the first error of a batch. */
static void
note_error(PoolJob *job, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	MemoryContext old = MemoryContextSwitchTo(job->cxt);

	if (job->failure == POOL_OK)
	{
		job->failure = POOL_SQL_ERROR;
		strlcpy(job->sqlstate, state ? state : "XX000", sizeof(job->sqlstate));
		job->message = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
							   PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQresultErrorMessage(res));
		job->detail = detail ? pstrdup(detail) : NULL;
		job->hint = hint ? pstrdup(hint) : NULL;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Take one result of the batch on the wire.  Each item (a query, or the
 * preparing of a statement) gets its results followed by a NULL, and the
 * sync ends the batch.  A query's result lands in the job's results at the
 * query's index; a preparation keeps nothing but its error, if any.
 */
static void
take_result(PoolConn *c, PGresult *res)
{
	PoolJob    *job = c->job;
	ExecStatusType status;
	int			query = 0;

	if (res == NULL)
	{
		c->item++;
		return;
	}
	status = PQresultStatus(res);
	/*
	 * A preparation skipped because an earlier statement of the batch failed
	 * (or was cancelled) never happened: the next use must prepare again, or
	 * it would name a statement the server does not have.
	 */
	if (c->item < c->nitems && c->item_is_prepare[c->item] &&
		status != PGRES_COMMAND_OK && status != PGRES_PIPELINE_SYNC)
		c->prepared[c->item_slot[c->item]].failed = true;
	if (status == PGRES_PIPELINE_SYNC)
		c->synced = true;
	else if (status == PGRES_FATAL_ERROR && job)
		note_error(job, res);
	else if ((status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) && job &&
			 c->item < c->nitems && !c->item_is_prepare[c->item])
	{
		for (int i = 0; i < c->item; i++)
			query += c->item_is_prepare[i] ? 0 : 1;
		if (query < job->nresults && job->results[query] == NULL)
		{
			job->results[query] = res;
			return;
		}
	}
	PQclear(res);
}

/* Read whatever the server sent on c; false when the connection broke. */
static bool
read_results(PoolConn *c)
{
	if (PQconsumeInput(c->pg) != 1)
		return false;
	while (!c->synced && PQstatus(c->pg) == CONNECTION_OK && !PQisBusy(c->pg))
	{
		PGresult   *res = PQgetResult(c->pg);

		/*
		 * Past the batch's last item only the sync may come; libpq answers
		 * NULL until it does (or for ever, after the server's FATAL message
		 * on a connection it is closing), so wait for more input instead.
		 */
		if (res == NULL && c->item >= c->nitems)
			break;
		take_result(c, res);
	}
	return PQstatus(c->pg) == CONNECTION_OK;
}

/* The job of c is finished with: back to the pool, rolled back first if needed. */
static void
release_conn(PoolConn *c)
{
	c->job = NULL;
	c->deadline = 0;
	if (c->state == CONN_CLOSED)
		return;
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
	{
		/* an unfinished or failed transaction must not reach the next request */
		c->state = CONN_DRAINING;
		c->nitems = 1;
		c->item_is_prepare[0] = false;
		c->item = 0;
		c->synced = false;
		if (PQsendQueryParams(c->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
			PQpipelineSync(c->pg) != 1)
		{
			close_conn(c);
			return;
		}
		c->deadline = batch_deadline(POOL_BATCH_GRACE_MS);
		flush_conn(c);
		return;
	}
	if (c->options_version != options_version)
	{
		close_conn(c);			/* opened with other session options: a new one will be */
		c->retry_at = 0;
		return;
	}
	c->state = CONN_IDLE;
	start_next_job(c);
}

/* Free a job and everything it holds. */
static void
free_job(PoolJob *job)
{
	clear_results(job);
	MemoryContextDelete(job->cxt);
}

/* A batch is over (or its connection broke): tell the job, or clean up after an abandoned one. */
static void
batch_finished(PoolConn *c)
{
	PoolJob    *job = c->job;

	c->deadline = 0;
	if (c->state != CONN_CLOSED)
		c->state = CONN_WAITING;
	if (job->abandoned)
	{
		job->conn = NULL;
		free_job(job);
		release_conn(c);
		return;
	}
	job->on_batch(job);
}

/* The drain after a job (a ROLLBACK) is over. */
static void
drain_finished(PoolConn *c)
{
	c->state = CONN_IDLE;
	c->deadline = 0;
	start_next_job(c);
}

/* Handle readiness of one connection's socket. */
static void
service_conn(PoolConn *c, uint32 events)
{
	if (c->state == CONN_CONNECTING)
	{
		continue_connect(c);
		return;
	}
	if (c->state == CONN_CLOSED || c->pg == NULL)
		return;
	if (events & EPOLLOUT)
		flush_conn(c);
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	if (!read_results(c))
	{
		PoolJob    *job = c->job;

		if (job && job->failure == POOL_OK)
		{
			job->failure = POOL_CONNECTION_LOST;
			job->message = MemoryContextStrdup(job->cxt, PQerrorMessage(c->pg));
		}
		close_conn(c);
		if (job)
			batch_finished(c);
		return;
	}
	if (!c->synced)
		return;
	if (c->state == CONN_DRAINING)
		drain_finished(c);
	else if (c->state == CONN_BUSY)
		batch_finished(c);
}

/* A connection slot that could serve a job of this kind right now, opening one if needed. */
static PoolConn *
free_conn(bool control)
{
	TimestampTz now = GetCurrentTimestamp();
	PoolConn   *closed = NULL;

	for (int i = control ? 0 : 1; i < (control ? 1 : nconns); i++)
	{
		PoolConn   *c = &conns[i];

		if (c->state == CONN_IDLE)
			return c;
		if (c->state == CONN_CLOSED && c->retry_at <= now && closed == NULL)
			closed = c;
	}
	if (closed)
		open_conn(closed);
	return NULL;
}

/* Fail queued jobs whose wait ran out (504). */
static void
expire_queue(dlist_head *q, TimestampTz now)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, q)
	{
		QueuedJob  *w = dlist_container(QueuedJob, node, it.cur);

		if (w->job->queue_deadline > now)
			continue;
		dlist_delete(&w->node);
		w->job->failure = POOL_TIMEOUT;
		w->job->on_batch(w->job);
		pfree(w);
	}
}

/* Cancel batches that outlived their deadline (the statement timeout should have). */
static void
enforce_deadlines(TimestampTz now)
{
	for (int i = 0; i < nconns; i++)
	{
		PoolConn   *c = &conns[i];

		if (c->deadline == 0 || now < c->deadline)
			continue;
		if (c->state == CONN_DRAINING || (c->job && c->job->abandoned))
		{
			/* the server does not answer even a rollback: give the connection up */
			PoolJob    *job = c->job;

			close_conn(c);
			if (job)
				batch_finished(c);
			continue;
		}
		(void) kill(PQbackendPID(c->pg), SIGINT);
		c->deadline = TimestampTzPlusMilliseconds(now, POOL_BATCH_GRACE_MS);
	}
}

/* Keep at least the control connection open, and connections for waiting jobs. */
static void
open_for_queue(void)
{
	if (conns[0].state == CONN_CLOSED && conns[0].retry_at <= GetCurrentTimestamp())
		open_conn(&conns[0]);
	if (!dlist_is_empty(&queue))
		(void) free_conn(false);
}

void
pool_poll(void)
{
	struct epoll_event events[32];
	int			n;
	TimestampTz now;

	if (epoll_fd < 0)
		return;
	while ((n = epoll_wait(epoll_fd, events, lengthof(events), 0)) > 0)
	{
		for (int i = 0; i < n; i++)
			service_conn(events[i].data.ptr, events[i].events);
		if (n < lengthof(events))
			break;
	}
	now = GetCurrentTimestamp();
	enforce_deadlines(now);
	expire_queue(&queue, now);
	expire_queue(&control_queue, now);
	open_for_queue();
}

long
pool_next_timeout_ms(void)
{
	TimestampTz next = 0;
	dlist_iter	it;
	long		secs;
	int			usecs;

	for (int i = 0; i < nconns; i++)
	{
		if (conns[i].deadline && (next == 0 || conns[i].deadline < next))
			next = conns[i].deadline;
		if (conns[i].state == CONN_CLOSED && conns[i].retry_at &&
			(conns[i].control || !dlist_is_empty(&queue)) && (next == 0 || conns[i].retry_at < next))
			next = conns[i].retry_at;
	}
	dlist_foreach(it, &queue)
	{
		TimestampTz d = dlist_container(QueuedJob, node, it.cur)->job->queue_deadline;

		if (next == 0 || d < next)
			next = d;
	}
	dlist_foreach(it, &control_queue)
	{
		TimestampTz d = dlist_container(QueuedJob, node, it.cur)->job->queue_deadline;

		if (next == 0 || d < next)
			next = d;
	}
	if (next == 0)
		return -1;
	TimestampDifference(GetCurrentTimestamp(), next, &secs, &usecs);
	return secs * 1000 + usecs / 1000 + 1;
}

PoolJob *
pool_job_new(MemoryContext parent, PoolJobFn on_batch, void *arg, bool control)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "crm_dashboard http pool job",
											  ALLOCSET_SMALL_SIZES);
	PoolJob    *job = MemoryContextAllocZero(cxt, sizeof(PoolJob));

	job->cxt = cxt;
	job->on_batch = on_batch;
	job->arg = arg;
	job->control = control;
	return job;
}

void
pool_job_add(PoolJob *job, const char *sql, int nparams, const char *const *values, bool prepare)
{
	MemoryContext old = MemoryContextSwitchTo(job->cxt);
	PoolStatement *st;
	const char **copy = palloc(sizeof(char *) * (nparams + 1));

	if (job->nstatements == POOL_MAX_STATEMENTS)
		elog(ERROR, "crm_dashboard http: too many statements in one batch");
	for (int i = 0; i < nparams; i++)
		copy[i] = values[i] ? pstrdup(values[i]) : NULL;
	st = &job->statements[job->nstatements++];
	st->sql = pstrdup(sql);
	st->nparams = nparams;
	st->values = copy;
	st->prepare = prepare;
	MemoryContextSwitchTo(old);
}

void
pool_job_submit(PoolJob *job)
{
	PoolConn   *c = free_conn(job->control);
	QueuedJob  *w;

	if (c != NULL)
	{
		assign(c, job);
		return;
	}
	job->queue_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pool_timeout_ms);
	w = MemoryContextAlloc(pool_cxt, sizeof(QueuedJob));
	w->job = job;
	dlist_push_tail(job->control ? &control_queue : &queue, &w->node);
}

void
pool_job_continue(PoolJob *job)
{
	PoolConn   *c = job->conn;

	clear_results(job);
	if (c == NULL || c->state == CONN_CLOSED)
	{
		job->failure = POOL_CONNECTION_LOST;
		job->message = "the database connection was lost";
		job->on_batch(job);
		return;
	}
	send_batch(c);
}

void
pool_job_done(PoolJob *job)
{
	PoolConn   *c = job->conn;

	job->conn = NULL;
	free_job(job);
	if (c != NULL)
		release_conn(c);
}

/* Remove a job from the waiting queues; true when it was there. */
static bool
dequeue(PoolJob *job)
{
	dlist_mutable_iter it;
	dlist_head *q = job->control ? &control_queue : &queue;

	dlist_foreach_modify(it, q)
	{
		QueuedJob  *w = dlist_container(QueuedJob, node, it.cur);

		if (w->job == job)
		{
			dlist_delete(&w->node);
			pfree(w);
			return true;
		}
	}
	return false;
}

void
pool_job_abandon(PoolJob *job)
{
	PoolConn   *c = job->conn;

	if (c == NULL)
	{
		(void) dequeue(job);
		free_job(job);
		return;
	}
	/*
	 * The job outlives its request now (whose memory goes as soon as
	 * libmicrohttpd closes the connection): the pool frees it once the
	 * cancelled batch is over.
	 */
	MemoryContextSetParent(job->cxt, pool_cxt);
	job->abandoned = true;
	if (c->state == CONN_BUSY)
	{
		/* pg_cancel_backend sends the same signal; the worker runs as the server's user */
		(void) kill(PQbackendPID(c->pg), SIGINT);
		c->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), POOL_BATCH_GRACE_MS);
	}
	else
	{
		job->conn = NULL;
		free_job(job);
		release_conn(c);
	}
}

PoolStats
pool_stats(void)
{
	PoolStats	s = {pool_size, 0, 0, 0};
	dlist_iter	it;

	for (int i = 1; i < nconns; i++)
	{
		if (conns[i].state != CONN_CLOSED && conns[i].state != CONN_CONNECTING)
			s.open++;
		if (conns[i].job != NULL)
			s.busy++;
	}
	dlist_foreach(it, &queue)
		s.queued++;
	return s;
}
