/*
 * http_engine_read.c
 *		GET /api/<view>: PostgREST reads of the views of schema crm_api, in
 *		the request engine (the pooled connection that serves the request).
 *
 * The query string is parsed by http_query_parse.c; every column it names
 * is then looked up among the view's attributes and spliced into SQL only
 * through quote_identifier, casts only as type names resolved through the
 * catalog, and every value goes in as a $n parameter.
 */
#include "postgres.h"

#include <limits.h>

#include <cjson/cJSON.h>

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "crm_dashboard.h"
#include "http_engine.h"
#include "http_query_parse.h"

/* A column of the view being read. */
typedef struct ViewColumn
{
	char	   *name;
	char	   *type;			/* format_type() of the column, for casts */
} ViewColumn;

/* The $n parameters of a statement (all text, cast in SQL). */
typedef struct SqlParams
{
	int			n;
	int			cap;
	Datum	   *values;
} SqlParams;

/* What a read needs inside its transaction. */
typedef struct ReadArgs
{
	const char *view;
	EngineMedia media;
	HqQuery		q;
	const char *count;			/* "exact", "planned", "estimated" or NULL */
	List	   *columns;		/* ViewColumn * */
	SqlParams	params;
} ReadArgs;

/* Beyond this planned row count, count=estimated uses the plan's estimate. */
#define ESTIMATED_EXACT_LIMIT 1000

/* The parser's allocator: the current memory context. */
static void *
hq_palloc(void *arg, size_t size)
{
	return palloc(size);
}

/* Feed the query arguments to the parser (stops at the first error). */
static void
parse_args(EngineRequest *req, HqQuery *q)
{
	for (int i = 0; i < req->nargs; i++)
		if (!hq_parse_param(q, req->args[i].key, req->args[i].value))
			return;
}

/* Add a text parameter; returns its $n. */
static int
add_param(SqlParams *p, const char *value)
{
	if (p->n == p->cap)
	{
		p->cap = p->cap ? p->cap * 2 : 8;
		p->values = p->values ? repalloc(p->values, sizeof(Datum) * p->cap)
			: palloc(sizeof(Datum) * p->cap);
	}
	p->values[p->n++] = CStringGetTextDatum(value);
	return p->n;
}

/*
 * Read the view's columns from the catalog caches; false when crm_api has no
 * such view (tables, functions and other schemas are never reachable).
 */
static bool
load_view_columns(ReadArgs *a)
{
	Oid			nsp = get_namespace_oid("crm_api", true);
	NameData	name;
	Oid			relid;
	char		kind;
	Relation	rel;
	TupleDesc	desc;
	int			i;

	if (!OidIsValid(nsp) || strlen(a->view) >= NAMEDATALEN)
		return false;
	namestrcpy(&name, a->view);
	relid = get_relname_relid(NameStr(name), nsp);
	kind = OidIsValid(relid) ? get_rel_relkind(relid) : '\0';
	if (kind != RELKIND_VIEW && kind != RELKIND_MATVIEW)
		return false;
	/* locked until the end of the request's transaction, as a query would */
	rel = relation_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	a->columns = NIL;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		ViewColumn *c;

		if (att->attisdropped)
			continue;
		c = palloc(sizeof(ViewColumn));
		c->name = pstrdup(NameStr(att->attname));
		c->type = format_type_with_typemod(att->atttypid, att->atttypmod);
		a->columns = lappend(a->columns, c);
	}
	relation_close(rel, NoLock);
	return a->columns != NIL;
}

/* The view's column called name, or an error 42703 naming it. */
static ViewColumn *
find_column(ReadArgs *a, const char *name)
{
	ListCell   *lc;

	foreach(lc, a->columns)
	{
		ViewColumn *c = lfirst(lc);

		if (strcmp(c->name, name) == 0)
			return c;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column %s.%s does not exist", a->view, name),
			 errhint("Columns of crm_api.%s are listed by GET /api/%s?limit=0 or in \\d crm_api.%s.",
					 a->view, a->view, a->view)));
	return NULL;
}

/* A cast target, resolved through the catalog and printed canonically. */
static char *
resolve_cast(const char *name)
{
	Oid			typid;
	int32		typmod;

	parseTypeString(name, &typid, &typmod, false);
	return format_type_with_typemod(typid, typmod);
}

/* Append the select list. */
static void
append_select(StringInfo sql, ReadArgs *a)
{
	int			i;

	if (a->q.nselect == 0)
	{
		appendStringInfoChar(sql, '*');
		return;
	}
	for (i = 0; i < a->q.nselect; i++)
	{
		HqSelect   *s = &a->q.select[i];

		if (i > 0)
			appendStringInfoString(sql, ", ");
		if (strcmp(s->column, "*") == 0)
		{
			appendStringInfoChar(sql, '*');
			continue;
		}
		appendStringInfoString(sql, quote_identifier(find_column(a, s->column)->name));
		if (s->cast)
			appendStringInfo(sql, "::%s", resolve_cast(s->cast));
		appendStringInfo(sql, " AS %s", quote_identifier(s->alias ? s->alias : s->column));
	}
}

/* Append one filter's condition. */
static void
append_condition(StringInfo sql, ReadArgs *a, HqFilter *f)
{
	static const char *const ops[] = {"=", "<>", "<", "<=", ">", ">=", "LIKE", "ILIKE"};
	static const char *const is_sql[] = {"IS NULL", "IS NOT NULL", "IS TRUE", "IS FALSE", "IS UNKNOWN"};
	ViewColumn *c = find_column(a, f->column);
	const char *col = quote_identifier(c->name);
	int			i;

	if (f->negate)
		appendStringInfoString(sql, "NOT ");
	appendStringInfoChar(sql, '(');
	if (f->op == HQ_IS)
		appendStringInfo(sql, "%s %s", col, is_sql[f->is_value]);
	else if (f->op == HQ_IN && f->nlist == 0)
		appendStringInfoString(sql, "false");
	else if (f->op == HQ_IN)
	{
		appendStringInfo(sql, "%s IN (", col);
		for (i = 0; i < f->nlist; i++)
			appendStringInfo(sql, "%s$%d::%s", i ? ", " : "", add_param(&a->params, f->list[i]), c->type);
		appendStringInfoChar(sql, ')');
	}
	else if (f->op == HQ_LIKE || f->op == HQ_ILIKE)
		appendStringInfo(sql, "%s::text %s $%d", col, ops[f->op], add_param(&a->params, f->value));
	else
		appendStringInfo(sql, "%s %s $%d::%s", col, ops[f->op], add_param(&a->params, f->value), c->type);
	appendStringInfoChar(sql, ')');
}

/* Append FROM and WHERE (shared by the read and its count). */
static void
append_from_where(StringInfo sql, ReadArgs *a)
{
	int			i;

	appendStringInfo(sql, " FROM crm_api.%s", quote_identifier(a->view));
	for (i = 0; i < a->q.nfilters; i++)
	{
		appendStringInfoString(sql, i == 0 ? " WHERE " : " AND ");
		append_condition(sql, a, &a->q.filters[i]);
	}
}

/* Append ORDER BY, LIMIT and OFFSET. */
static void
append_order_limit(StringInfo sql, ReadArgs *a)
{
	int			i;

	for (i = 0; i < a->q.norder; i++)
	{
		HqOrder    *o = &a->q.order[i];

		appendStringInfo(sql, "%s%s%s%s", i == 0 ? " ORDER BY " : ", ",
						 quote_identifier(find_column(a, o->column)->name),
						 o->descending ? " DESC" : "",
						 o->nulls == 1 ? " NULLS FIRST" : o->nulls == 2 ? " NULLS LAST" : "");
	}
	if (a->q.limit >= 0)
		appendStringInfo(sql, " LIMIT $%d::bigint", add_param(&a->params, psprintf("%lld", a->q.limit)));
	if (a->q.offset > 0)
		appendStringInfo(sql, " OFFSET $%d::bigint", add_param(&a->params, psprintf("%lld", a->q.offset)));
}

/*
 * Run sql with the read's parameters; returns SPI's result code.  Queries
 * run "read-only" in SPI's sense (one snapshot); EXPLAIN may not.
 */
static int
run(ReadArgs *a, const char *sql)
{
	Oid		   *types = palloc(sizeof(Oid) * (a->params.n + 1));
	int			i;

	for (i = 0; i < a->params.n; i++)
		types[i] = TEXTOID;
	return crm_spi_run(sql, a->params.n, types, a->params.values, NULL,
					   strncmp(sql, "EXPLAIN", 7) != 0, 0);
}

/* The planner's row estimate for the filtered view. */
static int64
planned_count(ReadArgs *a, const char *from_where)
{
	char	   *plan;
	cJSON	   *doc;
	cJSON	   *rows;
	int64		n = 0;

	if (run(a, psprintf("EXPLAIN (FORMAT JSON) SELECT 1%s", from_where)) < 0)
		elog(ERROR, "EXPLAIN of crm_api.%s failed", a->view);
	plan = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	doc = cJSON_Parse(plan);
	rows = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "Plan"), "Plan Rows");
	if (cJSON_IsNumber(rows))
		n = (int64) rows->valuedouble;
	cJSON_Delete(doc);
	return n;
}

/* The total the client asked for (exact, planned or estimated), or -1. */
static int64
total_count(ReadArgs *a)
{
	StringInfoData fw;
	int			saved = a->params.n;
	int64		n;
	bool		isnull;

	if (a->count == NULL)
		return -1;
	initStringInfo(&fw);
	append_from_where(&fw, a);
	if (strcmp(a->count, "exact") != 0)
	{
		n = planned_count(a, fw.data);
		if (strcmp(a->count, "planned") == 0 || n > ESTIMATED_EXACT_LIMIT)
		{
			a->params.n = saved;
			return n;
		}
	}
	if (run(a, psprintf("SELECT count(*)%s", fw.data)) != SPI_OK_SELECT)
		elog(ERROR, "count of crm_api.%s failed", a->view);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	a->params.n = saved;		/* the read reuses the same filter parameters */
	return n;
}

/* Set status and Content-Range from rows returned and the total. */
static bool
set_range(EngineReply *reply, int64 offset, int64 rows, int64 total)
{
	char	   *tot = total >= 0 ? psprintf(INT64_FORMAT, total) : "*";

	if (total >= 0 && offset > 0 && offset >= total)
	{
		engine_error(reply, 416, "PGRST103", "Requested range not satisfiable",
					 psprintf("An offset of " INT64_FORMAT " was requested, but there are only " INT64_FORMAT " rows.",
							  offset, total), NULL);
		engine_header(reply, "Content-Range", psprintf("*/%s", tot));
		return false;
	}
	reply->status = (total >= 0 && offset + rows < total) ? 206 : 200;
	if (rows > 0)
		engine_header(reply, "Content-Range",
					  psprintf(INT64_FORMAT "-" INT64_FORMAT "/%s", offset, offset + rows - 1, tot));
	else
		engine_header(reply, "Content-Range", psprintf("*/%s", tot));
	return true;
}

/* Reply with the rows as a JSON array, or one object. */
static void
reply_json_rows(EngineReply *reply, ReadArgs *a, const char *select_sql, int64 total)
{
	bool		isnull;
	int64		rows;
	char	   *json;

	if (run(a, psprintf("SELECT count(*), coalesce(json_agg(t), '[]')::text FROM (%s) t", select_sql)) != SPI_OK_SELECT)
		elog(ERROR, "read of crm_api.%s failed", a->view);
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (a->media == ENGINE_OBJECT && rows != 1)
	{
		engine_error(reply, 406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
					 psprintf("The result contains " INT64_FORMAT " rows", rows), NULL);
		return;
	}
	if (!set_range(reply, (int64) a->q.offset, rows, total))
		return;
	resetStringInfo(&reply->body);
	if (a->media == ENGINE_OBJECT)
	{
		/* strip the array's brackets: json_agg prints "[{...}]" */
		size_t		len = strlen(json);

		appendBinaryStringInfo(&reply->body, json + 1, len - 2);
		reply->content_type = "application/vnd.pgrst.object+json; charset=utf-8";
	}
	else
	{
		appendStringInfoString(&reply->body, json);
		reply->content_type = "application/json; charset=utf-8";
	}
}

/* The read, in the request's transaction. */
static void
read_rows(EngineReply *reply, ReadArgs *a)
{
	StringInfoData sql;
	int64		total;
	int64		rows;

	if (!load_view_columns(a))
	{
		engine_error(reply, 404, "PGRST205",
					 psprintf("Could not find the table 'crm_api.%s' in the schema cache", a->view),
					 NULL, "Only the views of schema crm_api can be read.");
		return;
	}
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	append_select(&sql, a);
	append_from_where(&sql, a);
	total = total_count(a);
	append_order_limit(&sql, a);
	if (a->media != ENGINE_CSV)
	{
		reply_json_rows(reply, a, sql.data, total);
		return;
	}
	rows = http_csv_query(reply, sql.data, a->params.n, a->params.values, NULL);
	(void) set_range(reply, (int64) a->q.offset, rows, total);
}

/*
 * Apply a "Range: first-last" header (Range-Unit items, the default) to a
 * query without limit and offset; false when it is not satisfiable.
 */
static bool
apply_range(EngineRequest *req, HqQuery *q)
{
	const char *range = req->range;
	const char *unit = req->range_unit;
	long long	first;
	long long	last = -1;
	char		tail;

	if (range == NULL || (unit && strcmp(unit, "items") != 0) || q->limit >= 0 || q->offset > 0)
		return true;
	if (sscanf(range, "%lld-%lld%c", &first, &last, &tail) != 2 &&
		sscanf(range, "%lld-%c", &first, &tail) != 1)
		return true;			/* not an items range: ignored, as PostgREST does */
	if (first < 0 || (last >= 0 && last < first))
		return false;
	q->offset = first;
	if (last >= 0)
		q->limit = last - first < LLONG_MAX ? last - first + 1 : LLONG_MAX;
	return true;
}

/* GET|HEAD /api/<view>. */
void
engine_read(EngineRequest *req, EngineReply *reply)
{
	ReadArgs   *a = palloc0(sizeof(ReadArgs));

	if (req->media == ENGINE_XLSX)
	{
		engine_xlsx_unavailable(reply);
		return;
	}
	a->view = req->name;
	a->media = req->media;
	a->count = req->count;
	hq_init(&a->q, hq_palloc, NULL);
	parse_args(req, &a->q);
	if (!a->q.error && !apply_range(req, &a->q))
	{
		engine_error(reply, 416, "PGRST103", "Requested range not satisfiable", NULL, NULL);
		return;
	}
	if (a->q.error)
	{
		engine_error(reply, strcmp(a->q.error, "PGRST103") == 0 ? 416 : 400,
					 a->q.error, a->q.message, NULL, NULL);
		return;
	}
	read_rows(reply, a);
}
