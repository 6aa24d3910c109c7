/*
 * paging_query.c
 *		Validate a paging request against the catalogs and build its queries.
 *
 * Every identifier in the generated SQL comes from pg_attribute through
 * quote_identifier; every value (search pattern, cursor keys) is a $n
 * parameter.
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "paging.h"

static const char *const column_query =
"SELECT a.attname::text, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod), "
"       a.attnotnull, "
"       coalesce((SELECT k.pos FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY k(att, pos) "
"                  WHERE k.att = a.attnum), 0)::int4 "
"  FROM pg_catalog.pg_attribute a "
"  LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
" WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped "
" ORDER BY a.attnum";

/*
 * Whether ILIKE search applies to a type: the string category (text,
 * varchar, char, name, citext and domains over them), as model_columns says.
 */
static bool
type_is_searchable(Oid typid)
{
	char		category;
	bool		preferred;

	get_type_category_preferred(typid, &category, &preferred);
	return category == TYPCATEGORY_STRING;
}

/* Whether a type has a default btree ordering, so keyset comparisons work. */
static bool
type_is_sortable(Oid typid)
{
	return OidIsValid(lookup_type_cache(typid, TYPECACHE_LT_OPR)->lt_opr);
}

/* Read the columns of the model table from pg_attribute. */
static void
load_columns(PageSpec *spec)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(spec->model->relid)};

	SPI_connect();
	crm_spi_execute(column_query, 1, argtypes, values, NULL, true, 0, SPI_OK_SELECT);
	spec->ncolumns = (int) SPI_processed;
	spec->columns = MemoryContextAllocZero(caller, sizeof(PageColumn) * Max(spec->ncolumns, 1));
	for (int i = 0; i < spec->ncolumns; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		PageColumn *c = &spec->columns[i];
		bool		isnull;

		c->name = MemoryContextStrdup(caller, SPI_getvalue(tuple, desc, 1));
		c->typid = DatumGetObjectId(SPI_getbinval(tuple, desc, 2, &isnull));
		c->typname = MemoryContextStrdup(caller, SPI_getvalue(tuple, desc, 3));
		c->notnull = DatumGetBool(SPI_getbinval(tuple, desc, 4, &isnull));
		c->pkpos = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
		c->searchable = type_is_searchable(c->typid);
		c->sortable = type_is_sortable(c->typid);
		c->filter_class = paging_filter_class(c->typid);
	}
	SPI_finish();
}

/* Find the requested sort column or report which ones exist. */
static PageColumn *
find_sort_column(const PageSpec *spec, const char *sort)
{
	PageColumn *c;

	if (strlen(sort) > CRM_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("sort column name is too long (%zu bytes)", strlen(sort)),
				 errdetail("Names are at most %d bytes.", CRM_MAX_NAME_LEN)));
	c = paging_find_column(spec, sort);
	if (c == NULL)
		paging_unknown_column(spec, sort, NULL);
	if (!c->sortable)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot sort by column \"%s\" of type %s", sort, c->typname),
				 errdetail("Values of type %s have no ordering.", c->typname),
				 errhint("Sort by one of these columns: %s.", paging_column_names(spec, true))));
	return c;
}

/* Append one key expression for a column. */
static void
add_column_key(PageSpec *spec, const PageColumn *c)
{
	PageKey    *k = &spec->keys[spec->nkeys++];

	k->expr = psprintf("t.%s", quote_identifier(c->name));
	k->typid = c->typid;
}

/* Append a key on a system column (ctid, tableoid). */
static void
add_system_key(PageSpec *spec, const char *name, Oid typid)
{
	PageKey    *k = &spec->keys[spec->nkeys++];

	k->expr = psprintf("t.%s", name);
	k->typid = typid;
}

/*
 * Choose the keyset: the sort column, then the primary key columns in index
 * order (skipping the sort column), or the physical position without a
 * primary key.
 */
static void
choose_keys(PageSpec *spec, const char *sort)
{
	PageColumn *sortcol = NULL;
	int			npk = 0;

	for (int i = 0; i < spec->ncolumns; i++)
		npk = Max(npk, spec->columns[i].pkpos);
	if (sort == NULL && npk > 0)
	{
		for (int i = 0; i < spec->ncolumns; i++)
			if (spec->columns[i].pkpos == 1)
				sort = spec->columns[i].name;
	}
	if (sort != NULL)
		sortcol = find_sort_column(spec, sort);

	spec->keys = palloc0(sizeof(PageKey) * (npk + 3));
	if (sortcol != NULL)
	{
		spec->sort = sortcol->name;
		spec->nullable = !sortcol->notnull && sortcol->pkpos == 0;
		add_column_key(spec, sortcol);
	}
	for (int pos = 1; pos <= npk; pos++)
		for (int i = 0; i < spec->ncolumns; i++)
			if (spec->columns[i].pkpos == pos && &spec->columns[i] != sortcol)
				add_column_key(spec, &spec->columns[i]);
	if (npk == 0)
	{
		/* ctid is unique only within one partition. */
		if (spec->model->relkind == RELKIND_PARTITIONED_TABLE)
			add_system_key(spec, "tableoid", OIDOID);
		add_system_key(spec, "ctid", TIDOID);
		spec->note = "This table has no primary key: rows are ordered by their physical position, "
			"which changes when rows are updated, so a page may skip or repeat rows that changed.";
	}
}

/* Add the search condition over every searchable column. */
static void
choose_search(PageSpec *spec, const char *search)
{
	StringInfoData buf;
	int			param;

	if (search == NULL || search[0] == '\0')
		return;
	if (pg_mbstrlen(search) > PAGING_MAX_SEARCH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search text is too long (%d characters)", pg_mbstrlen(search)),
				 errdetail("A search is at most %d characters.", PAGING_MAX_SEARCH_LEN),
				 errhint("Search for a shorter part of the value.")));

	param = paging_add_param(spec, TEXTOID, CStringGetTextDatum(paging_like_pattern(search, true)));
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < spec->ncolumns; i++)
		if (spec->columns[i].searchable)
			appendStringInfo(&buf, "%st.%s::pg_catalog.text OPERATOR(pg_catalog.~~*) $%d",
							 buf.len > 1 ? " OR " : "", quote_identifier(spec->columns[i].name), param);
	if (buf.len == 1)
	{
		/* Nothing can match: answer with an empty page rather than an error. */
		spec->nothing = true;
		spec->note = "This model has no text columns, so no row matches a search.";
		appendStringInfoString(&buf, "false");
	}
	appendStringInfoChar(&buf, ')');
	paging_add_condition(spec, buf.data);
}

/*
 * Resolve the model and check sort, search and filter (NULL: none); the
 * result drives every query.
 */
PageSpec *
paging_spec(const char *crm, const char *model, const char *sort, bool descending,
			const char *search, Jsonb *filter)
{
	PageSpec   *spec = palloc0(sizeof(PageSpec));

	spec->model = crm_resolve_model(crm, model);
	spec->table = crm_qualified_table(spec->model);
	spec->descending = descending;
	load_columns(spec);
	choose_keys(spec, (sort && sort[0]) ? sort : NULL);
	choose_search(spec, search);
	if (filter)
		paging_apply_filter(spec, filter);
	return spec;
}

/* How many keys a cursor of a segment carries (segment 1 drops the NULL sort value). */
int
paging_segment_keys(const PageSpec *spec, int segment)
{
	return segment == 0 ? spec->nkeys : spec->nkeys - 1;
}

/* Append "k1, k2" (optionally with a direction) for the keys of a segment. */
static void
append_keys(StringInfo buf, const PageSpec *spec, int segment, const char *suffix)
{
	for (int i = segment; i < spec->nkeys; i++)
		appendStringInfo(buf, "%s%s%s", i > segment ? ", " : "", spec->keys[i].expr, suffix);
}

/*
 * SQL of one segment: the JSON of each row followed by its keys, in fetch
 * order (reverse: walking back toward the start), after the cursor's keys when
 * has_after, at most limit rows (0: all).  $1.. are the parameters of the
 * search and filter (spec->nparams); the cursor's keys follow.
 */
char *
paging_query(const PageSpec *spec, int segment, bool reverse, bool has_after, int limit)
{
	StringInfoData buf;
	bool		desc = spec->descending != reverse;
	int			param = spec->nparams + 1;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT pg_catalog.row_to_json(t.*)");
	for (int i = 0; i < spec->nkeys; i++)
		appendStringInfo(&buf, ", %s", spec->keys[i].expr);
	appendStringInfo(&buf, " FROM %s t WHERE true", spec->table);
	if (spec->nullable)
		appendStringInfo(&buf, " AND %s IS %sNULL", spec->keys[0].expr, segment == 0 ? "NOT " : "");
	if (spec->filter)
		appendStringInfo(&buf, " AND (%s)", spec->filter);
	if (has_after)
	{
		/* A row comparison, so that a btree index on the keys serves it. */
		appendStringInfoString(&buf, " AND (");
		append_keys(&buf, spec, segment, "");
		appendStringInfo(&buf, ") %s (", desc ? "<" : ">");
		for (int i = segment; i < spec->nkeys; i++)
			appendStringInfo(&buf, "%s$%d", i > segment ? ", " : "", param++);
		appendStringInfoChar(&buf, ')');
	}
	appendStringInfoString(&buf, " ORDER BY ");
	append_keys(&buf, spec, segment, desc ? " DESC" : "");
	if (limit > 0)
		appendStringInfo(&buf, " LIMIT %d", limit);
	return buf.data;
}

/*
 * SQL of the whole export: the model's columns, every row matching the
 * search, in exactly the order model_rows pages through them.  One query
 * instead of model_rows' two segments: NULLS LAST puts the rows whose sort
 * value is NULL after all the others in either direction, and ties on the
 * sort value (NULLs included) are broken by the same keys in the same
 * direction.  $1.. are the parameters of the search and filter.
 */
char *
paging_export_query(const PageSpec *spec)
{
	StringInfoData buf;
	const char *dir = spec->descending ? " DESC" : "";

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&buf, "%st.%s", i ? ", " : "", quote_identifier(spec->columns[i].name));
	appendStringInfo(&buf, " FROM %s t", spec->table);
	if (spec->filter)
		appendStringInfo(&buf, " WHERE (%s)", spec->filter);
	appendStringInfoString(&buf, " ORDER BY ");
	for (int i = 0; i < spec->nkeys; i++)
		appendStringInfo(&buf, "%s%s%s%s", i ? ", " : "", spec->keys[i].expr, dir,
						 (i == 0 && spec->sort != NULL) ? " NULLS LAST" : "");
	return buf.data;
}

/* The parameters of paging_query: those of the search and filter, then the cursor's keys. */
Datum *
paging_params(const PageSpec *spec, const PageCursor *after, int segment, Oid **types,
			  int *nparams)
{
	int			n = spec->nparams + (after ? paging_segment_keys(spec, segment) : 0);
	Datum	   *values = palloc0(sizeof(Datum) * (n + 1));
	int			p = 0;

	*types = palloc0(sizeof(Oid) * (n + 1));
	for (; p < spec->nparams; p++)
	{
		(*types)[p] = spec->param_types[p];
		values[p] = spec->param_values[p];
	}
	for (int i = 0; after && i < paging_segment_keys(spec, segment); i++)
	{
		(*types)[p] = spec->keys[segment + i].typid;
		values[p++] = after->datums[i];
	}
	*nparams = n;
	return values;
}
