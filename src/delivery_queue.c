/*
 * delivery_queue.c
 *		The alerts worker's SQL over the outbox: recover after a restart,
 *		claim due notifications with a lease, record each attempt's outcome,
 *		and the periodic checks.  Every step is a function of
 *		src/delivery.sql or src/alerts.sql; this file only calls them (SPI
 *		connected, inside the worker's round transaction).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"
#include "delivery.h"

/*
 * Whether the extension is installed, at this library's version, and its
 * outbox can be locked right now (a conditional lock, so that DROP
 * EXTENSION never waits for the worker).
 */
bool
queue_extension_ready(Oid *extension)
{
	Oid			nsp;
	Oid			rel;
	char	   *installed = NULL;

	*extension = get_extension_oid("crm_dashboard", true);
	if (!OidIsValid(*extension))
		return false;
	nsp = get_namespace_oid("crm_dashboard", true);
	rel = OidIsValid(nsp) ? get_relname_relid("alert_notification", nsp) : InvalidOid;
	if (!OidIsValid(rel) || !ConditionalLockRelationOid(rel, RowExclusiveLock))
		return false;
	if (crm_spi_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'crm_dashboard'",
						0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT) == 1)
		installed = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return installed == NULL || strcmp(installed, EXTVERSION) == 0;
}

/* After a start: end the leases a previous worker held; returns how many. */
int
queue_recover(void)
{
	bool		isnull;
	Datum		d;

	crm_spi_execute("SELECT crm_dashboard.delivery_recover()", 0, NULL, NULL, NULL, false, 1, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(d);
}

/* Column colno of row as a string in cxt, or NULL. */
static char *
column_text(HeapTuple row, TupleDesc desc, int colno, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(row, desc, colno);
	char	   *copy;

	if (v == NULL)
		return NULL;
	copy = MemoryContextStrdup(cxt, v);
	pfree(v);
	return copy;
}

/* Column colno of row as a bigint (0 when NULL). */
static int64
column_int64(HeapTuple row, TupleDesc desc, int colno)
{
	bool		isnull;
	Datum		d = SPI_getbinval(row, desc, colno, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* The text[] column colno as a List of strings in cxt. */
static List *
column_text_list(HeapTuple row, TupleDesc desc, int colno, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(row, desc, colno, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *out = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	old = MemoryContextSwitchTo(cxt);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			out = lappend(out, TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return out;
}

/* A DeliveryKind from a channel's kind. */
static DeliveryKind
kind_of(const char *kind)
{
	if (kind && strcmp(kind, "email") == 0)
		return DELIVERY_EMAIL;
	if (kind && strcmp(kind, "slack") == 0)
		return DELIVERY_SLACK;
	return DELIVERY_WEBHOOK;
}

/*
 * A request from a row of delivery_claim (or of the test query, which has
 * the same columns), in cxt.
 */
DeliveryRequest *
queue_request_from_row(HeapTuple row, TupleDesc desc, MemoryContext cxt)
{
	DeliveryRequest *req = MemoryContextAllocZero(cxt, sizeof(DeliveryRequest));
	bool		isnull;
	Datum		d;
	char	   *kind;

	req->notification_id = column_int64(row, desc, 1);
	req->uuid = column_text(row, desc, 2, cxt);
	d = SPI_getbinval(row, desc, 3, &isnull);
	req->attempt = isnull ? 1 : DatumGetInt32(d);
	req->delivery_id = column_int64(row, desc, 4);
	req->channel = column_text(row, desc, 5, cxt);
	kind = column_text(row, desc, 6, cxt);
	req->kind = kind_of(kind);
	req->event = column_text(row, desc, 7, cxt);
	req->url = column_text(row, desc, 8, cxt);
	req->secret = column_text(row, desc, 9, cxt);
	req->smtp_username = column_text(row, desc, 10, cxt);
	req->smtp_password = column_text(row, desc, 11, cxt);
	req->mail_from = column_text(row, desc, 12, cxt);
	req->mail_to = column_text_list(row, desc, 13, cxt);
	d = SPI_getbinval(row, desc, 14, &isnull);
	req->require_tls = !isnull && DatumGetBool(d);
	req->body = column_text(row, desc, 15, cxt);
	return req;
}

/*
 * Lease up to slots due notifications (committed with the round, before
 * anything is sent); returns their requests (DeliveryRequest *) in cxt.
 */
List *
queue_claim(int slots, MemoryContext cxt)
{
	Oid			types[3] = {INT4OID, INT4OID, INTERVALOID};
	Datum		values[3];
	List	   *out = NIL;
	uint64		n;
	MemoryContext old;

	values[0] = Int32GetDatum(slots);
	values[1] = Int32GetDatum(delivery_per_channel);
	values[2] = DirectFunctionCall3(interval_in, CStringGetDatum(psprintf("%d seconds", delivery_timeout * 2 + 30)),
									ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	n = crm_spi_execute("SELECT * FROM crm_dashboard.delivery_claim($1, $2, $3)",
						3, types, values, NULL, false, 0, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		DeliveryRequest *req = queue_request_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, cxt);

		old = MemoryContextSwitchTo(cxt);
		out = lappend(out, req);
		MemoryContextSwitchTo(old);
	}
	return out;
}

/* An interval of secs seconds. */
static Datum
seconds_interval(int secs)
{
	return DirectFunctionCall3(interval_in, CStringGetDatum(psprintf("%d seconds", secs)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * A finished transfer's outcome as four SPI parameters: ok, the status code
 * (NULL when there was none), the error (NULL when none) and the time it
 * took, in that order, as every record of an attempt takes them.
 */
void
queue_outcome_params(const DeliveryTransfer *t, Datum *values, char *nulls)
{
	values[0] = BoolGetDatum(t->ok);
	nulls[0] = ' ';
	values[1] = Int32GetDatum(t->status_code);
	nulls[1] = t->status_code == 0 ? 'n' : ' ';
	values[2] = t->error ? CStringGetTextDatum(t->error) : (Datum) 0;
	nulls[2] = t->error ? ' ' : 'n';
	values[3] = Float8GetDatum(t->duration_ms);
	nulls[3] = ' ';
}

/* Record the outcome of a finished transfer (a notification's; tests record themselves). */
void
queue_record(DeliveryTransfer *t)
{
	Oid			types[10] = {INT8OID, BOOLOID, INT4OID, TEXTOID, FLOAT8OID, INT4OID, BOOLOID, INT4OID,
	INTERVALOID, INTERVALOID};
	Datum		values[10];
	char		nulls[11] = "          ";

	if (t->req.delivery_id == 0)
		return;
	values[0] = Int64GetDatum(t->req.delivery_id);
	queue_outcome_params(t, values + 1, nulls + 1);
	values[5] = Int32GetDatum(t->retry_after);
	values[6] = BoolGetDatum(t->permanent);
	values[7] = Int32GetDatum(delivery_max_attempts);
	values[8] = seconds_interval(delivery_retry_base);
	values[9] = seconds_interval(delivery_retry_cap);
	crm_spi_execute("SELECT crm_dashboard.delivery_done($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
					10, types, values, nulls, false, 1, SPI_OK_SELECT);
	if (!t->ok)
		ereport(LOG,
				(errmsg("crm_dashboard alerts worker: attempt %d of notification %s to channel \"%s\" failed: %s",
						t->req.attempt, t->req.uuid, t->req.channel, t->error ? t->error : "unknown")));
}

/* A timestamptz result of a one-value query, 0 when NULL. */
static TimestampTz
single_timestamp(const char *sql)
{
	bool		isnull;
	Datum		d;

	crm_spi_execute(sql, 0, NULL, NULL, NULL, false, 1, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* When a notification becomes due next (0: none). */
TimestampTz
queue_next_due(void)
{
	return single_timestamp("SELECT crm_dashboard.delivery_next_due()");
}

/* The periodic checks (snoozes that ended, slow runs, old rows); returns when to run them again. */
TimestampTz
queue_tick(void)
{
	return single_timestamp("SELECT crm_dashboard.alerts_tick()");
}
