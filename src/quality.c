/*
 * quality.c
 *		Data-quality checks: the C side.  src/quality.sql defines the checks,
 *		builds each check's query and keeps the results; this file runs one
 *		check query safely and resolves a model's table.
 *
 * A check must never lock out writers nor hold a sync up for long: its
 * query runs read-only (SPI in read-only mode refuses anything but a
 * query), only takes the AccessShareLock of a plain SELECT, and has its own
 * time limit, crm_dashboard.check_timeout.  That limit is PostgreSQL's
 * statement timeout armed for the check alone: a SET statement_timeout
 * inside a function would not apply to the statement already running.  The
 * query runs in a subtransaction, so a check that fails to run (its time
 * limit, a value it cannot compare) is reported as that check's error and
 * the caller goes on with the next one; a cancel request from the client
 * still cancels the whole statement.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"

PG_FUNCTION_INFO_V1(crm_dashboard_model_table);
PG_FUNCTION_INFO_V1(crm_dashboard_check_query);

/* The time limit of one check query, in milliseconds. */
static int	check_timeout_ms = 30000;

/* Tables estimated above this many rows are checked on a sample of about this many. */
static int	check_sample_rows = 10000000;

/* Define the settings of the checks (called from _PG_init). */
void
QualityInit(void)
{
	DefineCustomIntVariable("crm_dashboard.check_timeout",
							"Time limit of one data-quality check query.",
							"A check that takes longer is stopped and reported as an error of that check.",
							&check_timeout_ms, 30000, 100, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.check_sample_rows",
							"Tables estimated above this many rows are checked on a sample.",
							"not_null, unique, accepted_values, regex, range and referential checks of a larger "
							"model read a random sample of about this many rows (TABLESAMPLE SYSTEM), and "
							"their results say they sampled.",
							&check_sample_rows, 10000000, 1000, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/* crm_dashboard.model_table(crm, model): the table of a model, or the usual errors. */
Datum
crm_dashboard_model_table(PG_FUNCTION_ARGS)
{
	CrmModel   *m = crm_resolve_model(crm_arg_text(fcinfo, 0, "crm"), crm_arg_text(fcinfo, 1, "model"));

	PG_RETURN_OID(m->relid);
}

/*
 * Arm the statement timeout for a check: the check's limit, unless an outer
 * statement timeout comes sooner.  Returns the outer deadline to restore
 * (0: none); *mine is the check's deadline, 0 when the outer one stays.
 */
static TimestampTz
arm_check_timeout(TimestampTz *mine)
{
	TimestampTz outer = get_timeout_active(STATEMENT_TIMEOUT) ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;

	*mine = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), check_timeout_ms);
	if (outer != 0 && outer < *mine)
	{
		*mine = 0;				/* the outer limit comes first: leave it armed */
		return outer;
	}
	enable_timeout_at(STATEMENT_TIMEOUT, *mine);
	return outer;
}

/* Put the outer statement timeout back as it was. */
static void
restore_timeout(TimestampTz outer)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (outer != 0)
		enable_timeout_at(STATEMENT_TIMEOUT, outer);
}

/* What one check's query gave: its row, or the error that stopped it. */
typedef struct CheckOutcome
{
	Datum		failing;
	Datum		samples;
	bool		failing_null;
	bool		samples_null;
	char	   *error;			/* NULL when the query ran */
} CheckOutcome;

/* Copy the check's one row into out, in the caller's context: SPI's is about to go. */
static void
read_check_row(CheckOutcome *out, MemoryContext caller)
{
	MemoryContext spi;

	if (SPI_processed != 1)
		return;
	spi = MemoryContextSwitchTo(caller);
	out->failing = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &out->failing_null);
	out->samples = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &out->samples_null);
	if (!out->samples_null)
		out->samples = PointerGetDatum(PG_DETOAST_DATUM_COPY(out->samples));
	MemoryContextSwitchTo(spi);
}

/*
 * Run a check's query, read-only, in a subtransaction and under the check's
 * own time limit, with args as $1.  Its errors become out->error, except a
 * cancel request that is not that limit: that cancels the statement.
 */
static void
run_check(const char *sql, Datum args, bool args_null, CheckOutcome *out)
{
	Oid			types[1] = {TEXTARRAYOID};
	char		nulls[1] = {args_null ? 'n' : ' '};
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TimestampTz outer;
	TimestampTz mine;
	ErrorData  *volatile edata = NULL;
	volatile bool timed_out = false;

	out->failing_null = out->samples_null = true;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	outer = arm_check_timeout(&mine);
	PG_TRY();
	{
		SPI_connect();
		/* read-only: SPI refuses anything but a query */
		crm_spi_execute(sql, 1, types, &args, nulls, true, 1, SPI_OK_SELECT);
		read_check_row(out, caller);
		SPI_finish();
		restore_timeout(outer);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		/*
		 * The check's own limit, when it was armed and has passed (the
		 * timeout's indicator is reset by the time the error is raised).
		 */
		timed_out = mine != 0 && GetCurrentTimestamp() >= mine;
		restore_timeout(outer);
		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	CurrentResourceOwner = owner;

	if (edata == NULL)
		return;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !timed_out)
		ReThrowError(edata);
	out->failing_null = out->samples_null = true;
	out->error = timed_out
		? psprintf("stopped after %d ms (crm_dashboard.check_timeout)", check_timeout_ms)
		: edata->message;
}

/*
 * crm_dashboard.check_query(sql, args): run one check's query, which returns
 * one row (failing bigint, samples jsonb), read-only, within
 * crm_dashboard.check_timeout, with args (text[]) as $1.  Returns the row,
 * or the error that stopped it, and the time it took.
 */
Datum
crm_dashboard_check_query(PG_FUNCTION_ARGS)
{
	char	   *sql = crm_arg_text(fcinfo, 0, "sql");
	TimestampTz start = GetCurrentTimestamp();
	CheckOutcome out = {0};
	TupleDesc	desc;
	Datum		values[4];
	bool		isnull[4];

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm_dashboard: check_query must return a record");
	desc = BlessTupleDesc(desc);
	run_check(sql, PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1), PG_ARGISNULL(1), &out);
	values[0] = out.failing;
	isnull[0] = out.failing_null;
	values[1] = out.samples;
	isnull[1] = out.samples_null;
	values[2] = out.error ? CStringGetTextDatum(out.error) : (Datum) 0;
	isnull[2] = out.error == NULL;
	values[3] = Float8GetDatum((GetCurrentTimestamp() - start) / 1000.0);
	isnull[3] = false;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, isnull)));
}
