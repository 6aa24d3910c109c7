/*
 * http_txn.c
 *		One transaction per request: settings first, then the request's SQL,
 *		then commit; any error rolls back and becomes a PostgREST error.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "http.h"

/* Run fn inside the request's transaction, as the request's role. */
static void
run_transaction(HttpRequest *req, HttpTxnFn fn, void *arg)
{
	/* A worker must set this itself, or now() is the previous request's time. */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* read-only must be set before the first snapshot */
	if (req->read_only)
		XactReadOnly = true;
	if (!http_check_role(req))
	{
		AbortCurrentTransaction();
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm_dashboard: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!http_check_token(req))
	{
		SPI_finish();
		PopActiveSnapshot();
		AbortCurrentTransaction();
		return;
	}
	http_set_request_settings(req);
	fn(req, arg);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Run fn(req, arg) in a new transaction; SQL errors are caught, rolled back
 * and turned into the reply.  fn builds its reply in req (in req->ctx).
 */
void
http_in_transaction(HttpRequest *req, HttpTxnFn fn, void *arg)
{
	MemoryContext old = CurrentMemoryContext;

	pgstat_report_activity(STATE_RUNNING, psprintf("%s %s", req->method, req->url));
	PG_TRY();
	{
		run_transaction(req, fn, arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(req->ctx);
		edata = CopyErrorData();
		/* client errors are the client's business; server errors go to the log */
		if (http_sqlstate_status(unpack_sql_state(edata->sqlerrcode), req->anonymous) >= 500)
			EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		if (req->reply.fd >= 0)
		{
			close(req->reply.fd);
			req->reply.fd = -1;
		}
		req->reply.headers = NIL;
		http_reply_sql_error(req, edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	pgstat_report_activity(STATE_IDLE, NULL);
}
