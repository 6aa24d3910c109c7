/*
 * paging.c
 *		model_rows(), export_rows(), export_cursor(), count_rows(): reading a
 *		model's rows.
 *
 * model_rows pages by keyset: each page is one or two index-friendly queries
 * ("keys > cursor ORDER BY keys LIMIT n+1"), so a page deep in the table
 * costs what the first page costs.  The keyset and its queries come from
 * paging_query.c, the cursors from paging_cursor.c.
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/tuplestore.h"

#include "paging.h"

PG_FUNCTION_INFO_V1(crm_dashboard_model_rows);
PG_FUNCTION_INFO_V1(crm_dashboard_export_rows);
PG_FUNCTION_INFO_V1(crm_dashboard_export_cursor);
PG_FUNCTION_INFO_V1(crm_dashboard_count_rows);

/* Rows fetched per round trip while exporting. */
#define EXPORT_BATCH 1000

/* One fetched row: its JSON and its keyset values as text. */
typedef struct PageRow
{
	char	   *json;
	int			segment;
	char	  **keys;			/* spec->nkeys values; keys[0] is NULL in segment 1 */
} PageRow;

/* The model, sort and search of a call whose first arguments are (crm, model). */
static PageSpec *
spec_from_args(FunctionCallInfo fcinfo, int search_arg, int sort_arg, int desc_arg)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text(fcinfo, 1, "model");
	bool		descending = crm_arg_bool_or(fcinfo, desc_arg, false);

	return paging_spec(crm, model, crm_arg_text_or_null(fcinfo, sort_arg), descending,
					   crm_arg_text_or_null(fcinfo, search_arg));
}

/* Run one segment's query inside SPI, copying up to limit rows into rows[] in the caller's context. */
static int
fetch_segment(const PageSpec *spec, int segment, bool reverse, const PageCursor *after,
			  int limit, PageRow *rows, MemoryContext caller)
{
	char	   *sql = paging_query(spec, segment, reverse, after != NULL, limit);
	Oid		   *types;
	int			nparams;
	Datum	   *values = paging_params(spec, after, segment, &types, &nparams);
	TupleDesc	desc;

	crm_spi_execute(sql, nparams, types, values, NULL, true, limit, SPI_OK_SELECT);
	desc = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		PageRow    *row = &rows[i];

		row->json = MemoryContextStrdup(caller, SPI_getvalue(tuple, desc, 1));
		row->segment = segment;
		row->keys = MemoryContextAllocZero(caller, sizeof(char *) * spec->nkeys);
		for (int k = segment; k < spec->nkeys; k++)
			row->keys[k] = MemoryContextStrdup(caller, SPI_getvalue(tuple, desc, k + 2));
	}
	SPI_freetuptable(SPI_tuptable);
	return (int) SPI_processed;
}

/*
 * Fetch up to want rows from the cursor (or the start) in one direction,
 * continuing into the next segment when one runs out.
 */
static int
walk(const PageSpec *spec, const PageCursor *after, bool backward, int want, PageRow *rows)
{
	MemoryContext caller = CurrentMemoryContext;
	int			last = spec->nullable ? 1 : 0;
	int			seg = after ? after->segment : 0;
	int			got = 0;

	if (spec->nothing)
		return 0;
	SPI_connect();
	for (; seg >= 0 && seg <= last && got < want; seg += backward ? -1 : 1)
		got += fetch_segment(spec, seg, backward,
							 (after && seg == after->segment) ? after : NULL,
							 want - got, rows + got, caller);
	SPI_finish();
	return got;
}

/* The cursor leading away from a row in one direction. */
static char *
row_cursor(const PageSpec *spec, const PageRow *row, bool backward)
{
	return paging_cursor_encode(spec, backward, row->segment, row->keys + row->segment);
}

/* The planner's estimate of the rows matching the search. */
static double
search_estimate(const PageSpec *spec)
{
	char	   *sql = psprintf("EXPLAIN (FORMAT JSON) SELECT 1 FROM %s t WHERE %s",
							   spec->table, spec->filter);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(spec->pattern)};
	char	   *plan;
	cJSON	   *doc;
	cJSON	   *top;
	cJSON	   *rows;
	double		estimate = -1;

	SPI_connect();
	/* Not read-only: SPI refuses utility statements such as EXPLAIN in that mode. */
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 0) < 0 || SPI_processed != 1)
		elog(ERROR, "crm_dashboard: could not estimate the rows of a search");
	plan = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	/* [{"Plan": {"Plan Rows": n, ...}}]: the top node's estimate. */
	doc = cJSON_Parse(plan);
	top = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(doc, 0), "Plan");
	rows = cJSON_GetObjectItemCaseSensitive(top, "Plan Rows");
	if (cJSON_IsNumber(rows))
		estimate = rows->valuedouble;
	cJSON_Delete(doc);
	SPI_finish();
	return estimate;
}

/* estimated_total: the table's estimate, or the planner's for a search; -1 when unknown. */
static double
estimated_total(const PageSpec *spec)
{
	if (spec->nothing)
		return 0;
	if (spec->filter)
		return search_estimate(spec);
	return spec->model->reltuples;
}

/* Append a JSON string or null. */
static void
append_json_text(StringInfo buf, const char *s)
{
	if (s)
		escape_json(buf, s);
	else
		appendStringInfoString(buf, "null");
}

/* Append the "columns" array. */
static void
append_columns(StringInfo buf, const PageSpec *spec)
{
	appendStringInfoString(buf, "\"columns\":[");
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const PageColumn *c = &spec->columns[i];

		appendStringInfoString(buf, i ? ",{\"name\":" : "{\"name\":");
		escape_json(buf, c->name);
		appendStringInfoString(buf, ",\"type\":");
		escape_json(buf, c->typname);
		appendStringInfo(buf, ",\"primary_key\":%s,\"searchable\":%s}",
						 c->pkpos > 0 ? "true" : "false", c->searchable ? "true" : "false");
	}
	appendStringInfoChar(buf, ']');
}

/* Assemble the page document. */
static char *
page_json(const PageSpec *spec, PageRow *rows, int n, const char *next,
		  const char *previous, int per_page)
{
	StringInfoData buf;
	double		total = estimated_total(spec);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	append_columns(&buf, spec);
	appendStringInfoString(&buf, ",\"rows\":[");
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? "," : "", rows[i].json);
	appendStringInfoString(&buf, "],\"next\":");
	append_json_text(&buf, next);
	appendStringInfoString(&buf, ",\"previous\":");
	append_json_text(&buf, previous);
	if (total < 0)
		appendStringInfoString(&buf, ",\"estimated_total\":null");
	else
		appendStringInfo(&buf, ",\"estimated_total\":%.0f", total);
	appendStringInfo(&buf, ",\"per_page\":%d,\"sort\":", per_page);
	append_json_text(&buf, spec->sort);
	appendStringInfo(&buf, ",\"descending\":%s,\"note\":", spec->descending ? "true" : "false");
	append_json_text(&buf, spec->note);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Reverse rows[0..n-1] in place: backward fetches come nearest-first. */
static void
reverse_rows(PageRow *rows, int n)
{
	for (int i = 0, j = n - 1; i < j; i++, j--)
	{
		PageRow		tmp = rows[i];

		rows[i] = rows[j];
		rows[j] = tmp;
	}
}

/* One page from a cursor (or the first page) as JSON. */
static char *
fetch_page(const PageSpec *spec, const PageCursor *after, int per_page)
{
	PageRow    *rows = palloc0(sizeof(PageRow) * (per_page + 1));
	char	   *previous = NULL;
	int			got;
	int			n;

	if (after && after->backward)
	{
		got = walk(spec, after, true, per_page + 1, rows);
		if (got > per_page)
		{
			/* Rows remain before this page: it is not the first one. */
			reverse_rows(rows, per_page);
			return page_json(spec, rows, per_page, row_cursor(spec, &rows[per_page - 1], false),
							 row_cursor(spec, &rows[0], true), per_page);
		}
		/* Back at the start: show a full first page instead of a short one. */
		after = NULL;
	}

	got = walk(spec, after, false, per_page + 1, rows);
	n = Min(got, per_page);
	if (n > 0)
		previous = after ? row_cursor(spec, &rows[0], true) : NULL;
	else if (after)
	{
		/* The rows after the cursor are gone: lead back from the cursor itself. */
		previous = paging_cursor_encode(spec, true, after->segment, after->values);
	}
	return page_json(spec, rows, n,
					 got > per_page ? row_cursor(spec, &rows[n - 1], false) : NULL,
					 previous, per_page);
}

/*
 * Key values travel in cursors as text: make their output independent of
 * the session's DateStyle, IntervalStyle and float precision, so a cursor
 * means the same row in any session.  Undone by AtEOXact_GUC.
 */
static int
portable_key_output(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/* model_rows(crm, model, after, per_page, search, sort, descending): one page as JSON. */
Datum
crm_dashboard_model_rows(PG_FUNCTION_ARGS)
{
	int			per_page = crm_arg_given(fcinfo, 3) ? PG_GETARG_INT32(3) : PAGING_DEFAULT_PER_PAGE;
	char	   *after_text = crm_arg_text_or_null(fcinfo, 2);
	PageSpec   *spec;
	PageCursor *after = NULL;
	int			nestlevel;
	char	   *page;

	if (per_page < 1 || per_page > PAGING_MAX_PER_PAGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per_page must be between 1 and %d, not %d", PAGING_MAX_PER_PAGE, per_page),
				 errhint("Ask for at most %d rows per page and follow the next cursor for more.",
						 PAGING_MAX_PER_PAGE)));
	spec = spec_from_args(fcinfo, 4, 5, 6);
	nestlevel = portable_key_output();
	if (after_text && after_text[0])
		after = paging_cursor_decode(spec, after_text);
	page = fetch_page(spec, after, per_page);
	AtEOXact_GUC(true, nestlevel);
	PG_RETURN_TEXT_P(cstring_to_text(page));
}

/* Stream one segment of the export into the tuplestore through an SPI cursor. */
static void
export_segment(const PageSpec *spec, int segment, Tuplestorestate *store, TupleDesc desc)
{
	char	   *sql = paging_query(spec, segment, false, false, 0);
	Oid		   *types;
	int			nparams;
	Datum	   *values = paging_params(spec, NULL, segment, &types, &nparams);
	Portal		portal = SPI_cursor_open_with_args(NULL, sql, nparams, types, values, NULL,
												   true, 0);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, EXPORT_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		json = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			tuplestore_putvalues(store, desc, &json, &isnull);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

/* export_rows(crm, model, search, sort, descending): every matching row in page order. */
Datum
crm_dashboard_export_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PageSpec   *spec = spec_from_args(fcinfo, 2, 3, 4);

	/* The tuplestore keeps work_mem in memory and spills the rest to disk. */
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (spec->nothing)
		return (Datum) 0;
	SPI_connect();
	for (int seg = 0; seg <= (spec->nullable ? 1 : 0); seg++)
		export_segment(spec, seg, rsinfo->setResult, rsinfo->setDesc);
	SPI_finish();
	return (Datum) 0;
}

/*
 * export_cursor(crm, model, search, sort, descending): open a cursor over
 * every matching row, the model's columns only, in the order of model_rows,
 * and return its name.  The caller FETCHes from it in the same transaction
 * (the CSV export does, with the generic CSV writer).  Permissions are
 * checked when the cursor opens, so under the SECURITY DEFINER wrapper the
 * caller reads the rows without rights on the table itself.
 */
Datum
crm_dashboard_export_cursor(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {(Datum) 0};
	PageSpec   *spec;
	Portal		portal;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "crm" : "model"),
				 errhint("Name a CRM and one of its models, as crm_api.crm_models lists them.")));
	spec = spec_from_args(fcinfo, 2, 3, 4);
	if (spec->filter)
		values[0] = CStringGetTextDatum(spec->pattern);
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, paging_export_query(spec), spec->filter ? 1 : 0,
									   types, values, NULL, true, 0);
	SPI_finish();
	/* the portal outlives this call: it lives until closed or the transaction ends */
	PG_RETURN_TEXT_P(cstring_to_text(portal->name));
}

/* count_rows(crm, model): the exact number of rows, by a full count. */
Datum
crm_dashboard_count_rows(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text(fcinfo, 1, "model");
	CrmModel   *m = crm_resolve_model(crm, model);

	PG_RETURN_INT64(crm_exact_row_count(m));
}
