/*
 * http_pool.h
 *		A pool of libpq connections from an HTTP worker to its own server,
 *		driven asynchronously from the worker's wait loop: the event loop
 *		never runs SQL itself, a slow query delays only its own request, and
 *		a request whose client left is cancelled.
 *
 * A job is a sequence of batches of statements sent in pipeline mode (one
 * round trip per batch).  When a batch's results are in, the job's callback
 * runs; it reads job->results, then either adds statements and calls
 * pool_job_continue(), or calls pool_job_done().  A job that ends with its
 * transaction still open is rolled back before the connection is reused,
 * so nothing (settings, role, cursors) carries over to the next request.
 */
#ifndef CRM_DASHBOARD_HTTP_POOL_H
#define CRM_DASHBOARD_HTTP_POOL_H

#include "postgres.h"

#include <libpq-fe.h>

#include "utils/timestamp.h"

/* Statements in one batch, at most. */
#define POOL_MAX_STATEMENTS 16

typedef struct PoolJob PoolJob;
typedef void (*PoolJobFn) (PoolJob *job);

/* One statement: SQL text with text parameters (NULL values are SQL NULL). */
typedef struct PoolStatement
{
	const char *sql;
	int			nparams;
	const char *const *values;
	bool		prepare;		/* run as a named prepared statement of the connection */
} PoolStatement;

/* How a job's batch (or the whole job) failed. */
typedef enum PoolFailure
{
	POOL_OK,
	POOL_SQL_ERROR,				/* a statement failed: sqlstate, message, ... */
	POOL_TIMEOUT,				/* no connection came free in time */
	POOL_CONNECTION_LOST		/* the connection broke, or none could be made */
} PoolFailure;

struct PoolJob
{
	void	   *arg;			/* the caller's */
	PoolJobFn	on_batch;		/* a batch ended (successfully or not) */
	bool		control;		/* login, event streams: the reserved connection */
	int			timeout_ms;		/* a batch running longer is cancelled (0: no limit) */
	TimestampTz queue_deadline; /* 504 when no connection is free by then */
	const char *label;			/* for the server log */

	/* the current batch */
	int			nstatements;
	PoolStatement statements[POOL_MAX_STATEMENTS];
	int			nresults;		/* results[i] is statement i's: NULL when it failed or was skipped */
	PGresult   *results[POOL_MAX_STATEMENTS];

	/* the first error of the batch */
	PoolFailure failure;
	char		sqlstate[6];
	char	   *message;
	char	   *detail;
	char	   *hint;

	/* the pool's own */
	struct PoolConn *conn;
	bool		abandoned;		/* the client left: no more callbacks */
	MemoryContext cxt;			/* everything of the job; freed at pool_job_done */
};

/* Settings (defined by http.c's HttpInit through pool_define_settings). */
extern void pool_define_settings(void);

/* Start the pool of this worker: connection parameters of the local server. */
extern void pool_start(const char *database, const char *user);

/*
 * Session options of the pool's connections (libpq's "options", such as
 * "-c statement_timeout=5000"): connections opened with others are closed,
 * the idle ones at once, the busy ones when their job is done.
 */
extern void pool_set_session_options(const char *options);

/* The pool's descriptor for the worker's WaitEventSet (readable: call pool_poll). */
extern int	pool_epoll_fd(void);

/* Do whatever the connections have for us; run callbacks; start queued jobs. */
extern void pool_poll(void);

/* Milliseconds until the next deadline of the pool, or -1. */
extern long pool_next_timeout_ms(void);

/* A new job (in its own memory context, a child of parent). */
extern PoolJob *pool_job_new(MemoryContext parent, PoolJobFn on_batch, void *arg, bool control);

/* Add a statement to the job's next batch; values are copied. */
extern void pool_job_add(PoolJob *job, const char *sql, int nparams, const char *const *values,
						 bool prepare);

/* Queue the job's first batch (it runs when a connection is free). */
extern void pool_job_submit(PoolJob *job);

/* From on_batch: send the next batch on the same connection. */
extern void pool_job_continue(PoolJob *job);

/* From on_batch (or after it): the job is finished; its connection goes back to the pool. */
extern void pool_job_done(PoolJob *job);

/*
 * The client went away: cancel what the job's connection is running, drop
 * the job without further callbacks, and free the connection as soon as
 * the server has stopped.
 */
extern void pool_job_abandon(PoolJob *job);

/* Figures for logs and metrics. */
typedef struct PoolStats
{
	int			size;
	int			open;
	int			busy;
	int			queued;
} PoolStats;

extern PoolStats pool_stats(void);

#endif							/* CRM_DASHBOARD_HTTP_POOL_H */
