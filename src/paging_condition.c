/*
 * paging_condition.c
 *		What a page's condition is built from: the model's columns by name,
 *		parameters, AND-ed conditions and LIKE patterns.
 *
 * The bottom of paging: the search (paging_query.c) and the filters
 * (paging_filter.c) both add their conditions through these, and nothing
 * here calls back up.  Every value becomes a $n parameter; a condition
 * names columns only as quote_identifier made them.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "paging.h"

/* The column names, comma-separated; only sortable ones when asked. */
char *
paging_column_names(const PageSpec *spec, bool sortable_only)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < spec->ncolumns; i++)
		if (spec->columns[i].sortable || !sortable_only)
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", spec->columns[i].name);
	return buf.len ? buf.data : "(none)";
}

/* The column called name, or NULL. */
PageColumn *
paging_find_column(const PageSpec *spec, const char *name)
{
	for (int i = 0; i < spec->ncolumns; i++)
		if (strcmp(spec->columns[i].name, name) == 0)
			return &spec->columns[i];
	return NULL;
}

/* Report a column the model does not have; where (or NULL) says where it was named. */
void
paging_unknown_column(const PageSpec *spec, const char *name, const char *where)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" does not exist in model \"%s\" of CRM \"%s\"",
					name, spec->model->model, spec->model->crm),
			 where ? errdetail("%s", where) : 0,
			 errhint("Columns of %s: %s.", spec->model->table, paging_column_names(spec, false))));
	pg_unreachable();
}

/*
 * The LIKE pattern matching text anywhere (or, not anywhere, at the start),
 * with LIKE's special characters escaped: a search takes them literally.
 */
char *
paging_like_pattern(const char *text, bool anywhere)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (anywhere)
		appendStringInfoChar(&buf, '%');
	for (const char *p = text; *p; p++)
	{
		if (*p == '%' || *p == '_' || *p == '\\')
			appendStringInfoChar(&buf, '\\');
		appendStringInfoChar(&buf, *p);
	}
	appendStringInfoChar(&buf, '%');
	return buf.data;
}

/* Add a parameter to the spec's condition; returns its number ($n). */
int
paging_add_param(PageSpec *spec, Oid type, Datum value)
{
	if (spec->nparams == spec->maxparams)
	{
		spec->maxparams = Max(8, spec->maxparams * 2);
		spec->param_types = spec->param_types
			? repalloc(spec->param_types, sizeof(Oid) * spec->maxparams)
			: palloc(sizeof(Oid) * spec->maxparams);
		spec->param_values = spec->param_values
			? repalloc(spec->param_values, sizeof(Datum) * spec->maxparams)
			: palloc(sizeof(Datum) * spec->maxparams);
	}
	spec->param_types[spec->nparams] = type;
	spec->param_values[spec->nparams] = value;
	return ++spec->nparams;
}

/* AND a condition (on parameters added with paging_add_param) to the spec's condition. */
void
paging_add_condition(PageSpec *spec, const char *condition)
{
	spec->filter = spec->filter ? psprintf("%s AND %s", spec->filter, condition)
		: pstrdup(condition);
}
