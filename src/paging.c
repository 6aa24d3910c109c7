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

/* Tables at least this large get a warning when a page's plan reads them whole. */
static int	scan_warning_rows = 1000000;

/* Define the paging settings (called from _PG_init). */
void
PagingInit(void)
{
	DefineCustomIntVariable("crm_dashboard.scan_warning_rows",
							"Estimated rows from which model_rows warns that a filter reads the whole table.",
							"When the planner means to read a model of at least this many rows sequentially "
							"to serve a search or filter, model_rows says so (\"scan\"), and the UI shows it.  "
							"0 never warns.",
							&scan_warning_rows, 1000000, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

/* One fetched row: its JSON and its keyset values as text. */
typedef struct PageRow
{
	char	   *json;
	int			segment;
	char	  **keys;			/* spec->nkeys values; keys[0] is NULL in segment 1 */
} PageRow;

/*
 * The model, sort, search and filter of a call whose first arguments are
 * (crm, model); the filter argument is one that 1.1.0 added, so an older SQL
 * definition does not pass it.
 */
static PageSpec *
spec_from_args(FunctionCallInfo fcinfo, int search_arg, int sort_arg, int desc_arg,
			   int filter_arg)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text(fcinfo, 1, "model");
	bool		descending = desc_arg >= 0 && crm_arg_bool_or(fcinfo, desc_arg, false);
	Jsonb	   *filter = crm_arg_given(fcinfo, filter_arg) ? PG_GETARG_JSONB_P(filter_arg) : NULL;

	return paging_spec(crm, model, sort_arg >= 0 ? crm_arg_text_or_null(fcinfo, sort_arg) : NULL,
					   descending, crm_arg_text_or_null(fcinfo, search_arg), filter);
}

/* The plan of sql with the spec's condition parameters, as EXPLAIN (FORMAT JSON) writes it. */
static cJSON *
explain(const PageSpec *spec, const char *sql, int nparams, Oid *types, Datum *values)
{
	char	   *plan;
	cJSON	   *doc;

	SPI_connect();
	/* Not read-only: SPI refuses utility statements such as EXPLAIN in that mode. */
	if (SPI_execute_with_args(psprintf("EXPLAIN (FORMAT JSON) %s", sql), nparams, types, values,
							  NULL, false, 0) < 0 || SPI_processed != 1)
		elog(ERROR, "crm_dashboard: could not explain a query of %s", spec->table);
	plan = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	doc = cJSON_Parse(plan);
	SPI_finish();
	if (doc == NULL)
		elog(ERROR, "crm_dashboard: could not read the plan of a query of %s", spec->table);
	return doc;
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

/* What the planner expects of a page's search and filter. */
typedef struct PagePlan
{
	double		estimate;		/* matching rows; -1 when unknown */
	bool		sequential;		/* it reads the table whole */
} PagePlan;

/* Whether a plan node, or one below it, reads a table sequentially. */
static bool
plan_reads_sequentially(cJSON *node)
{
	cJSON	   *type = cJSON_GetObjectItemCaseSensitive(node, "Node Type");
	cJSON	   *child;

	if (cJSON_IsString(type) && strcmp(type->valuestring, "Seq Scan") == 0)
		return true;
	cJSON_ArrayForEach(child, cJSON_GetObjectItemCaseSensitive(node, "Plans"))
		if (plan_reads_sequentially(child))
			return true;
	return false;
}

/*
 * The planner's view of the rows matching the search and filter: how many,
 * and whether finding them all (a count, an export, a page of rare matches)
 * reads the table whole because no index serves the condition.  The table's
 * own estimate when there is no condition.
 */
static PagePlan
page_plan(const PageSpec *spec)
{
	PagePlan	plan = {spec->model->reltuples, false};
	cJSON	   *doc;
	cJSON	   *top;
	cJSON	   *rows;

	if (spec->nothing)
		plan.estimate = 0;
	if (spec->filter == NULL || spec->nothing)
		return plan;
	doc = explain(spec, psprintf("SELECT 1 FROM %s t WHERE %s", spec->table, spec->filter),
				  spec->nparams, spec->param_types, spec->param_values);
	/* [{"Plan": {"Plan Rows": n, ...}}]: the top node's estimate. */
	top = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(doc, 0), "Plan");
	rows = cJSON_GetObjectItemCaseSensitive(top, "Plan Rows");
	plan.estimate = cJSON_IsNumber(rows) ? rows->valuedouble : -1;
	plan.sequential = plan_reads_sequentially(top);
	cJSON_Delete(doc);
	return plan;
}

/*
 * The "scan" field of a page: when the search or filter of a large table
 * (crm_dashboard.scan_warning_rows) has no index to serve it, how large the
 * table is and what that means; else null.
 */
static char *
scan_warning(const PageSpec *spec, const PagePlan *plan)
{
	StringInfoData buf;

	if (!plan->sequential || scan_warning_rows <= 0 || spec->model->reltuples < scan_warning_rows)
		return "null";
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"table_rows\":%.0f,\"message\":", spec->model->reltuples);
	escape_json(&buf, psprintf("No index serves this search or filter: PostgreSQL expects to read all of "
							   "%s (about %.0f rows) to find the matching rows, for a page of rare "
							   "matches as for counts and exports.",
							   spec->model->table, spec->model->reltuples));
	appendStringInfoChar(&buf, '}');
	return buf.data;
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
		appendStringInfo(buf, ",\"primary_key\":%s,\"searchable\":%s,\"class\":\"%s\",\"operators\":%s}",
						 c->pkpos > 0 ? "true" : "false", c->searchable ? "true" : "false",
						 paging_filter_class_name(c->filter_class), paging_filter_operators(c));
	}
	appendStringInfoChar(buf, ']');
}

/* Assemble the page document. */
static char *
page_json(const PageSpec *spec, PageRow *rows, int n, const char *next,
		  const char *previous, int per_page)
{
	StringInfoData buf;
	PagePlan	plan = page_plan(spec);
	double		total = plan.estimate;

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
	appendStringInfo(&buf, ",\"scan\":%s", scan_warning(spec, &plan));
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
	spec = spec_from_args(fcinfo, 4, 5, 6, 7);
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
	PageSpec   *spec = spec_from_args(fcinfo, 2, 3, 4, 5);

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
	PageSpec   *spec;
	Portal		portal;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "crm" : "model"),
				 errhint("Name a CRM and one of its models, as crm_api.crm_models lists them.")));
	spec = spec_from_args(fcinfo, 2, 3, 4, 5);
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, paging_export_query(spec), spec->nparams,
									   spec->param_types, spec->param_values, NULL, true, 0);
	SPI_finish();
	/* the portal outlives this call: it lives until closed or the transaction ends */
	PG_RETURN_TEXT_P(cstring_to_text(portal->name));
}

/*
 * count_rows(crm, model, search, filter): the exact number of rows matching
 * the search and filter (every row without them), by a full count.
 */
Datum
crm_dashboard_count_rows(PG_FUNCTION_ARGS)
{
	PageSpec   *spec = spec_from_args(fcinfo, 2, -1, -1, 3);
	int64		count;
	bool		isnull;

	if (spec->filter == NULL)
		PG_RETURN_INT64(crm_exact_row_count(spec->model));
	if (spec->nothing)
		PG_RETURN_INT64(0);
	SPI_connect();
	crm_spi_execute(psprintf("SELECT pg_catalog.count(*) FROM %s t WHERE %s", spec->table, spec->filter),
					spec->nparams, spec->param_types, spec->param_values, NULL, true, 1, SPI_OK_SELECT);
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(count);
}
