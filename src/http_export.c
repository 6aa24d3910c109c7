/*
 * http_export.c
 *		POST|GET /api/rpc/export_rows with Accept: text/csv, straight from the
 *		model table.
 *
 * crm_api.export_rows returns each row as JSON: the right shape for a JSON
 * client, but for CSV every field would be printed to JSON and parsed back.
 * So for CSV the server runs the very query export_rows runs (paging_spec()
 * and paging_query(): same search, order and NULL segments) with the row's
 * columns selected instead of its JSON, and prints the values as COPY does.
 * The query runs as the owner of crm_api.export_rows, exactly as that
 * SECURITY DEFINER function would, and only after checking that the
 * request's role may execute it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "http.h"
#include "paging.h"

/* How paging_query() starts; we select the columns instead. */
#define JSON_SELECT "SELECT pg_catalog.row_to_json(t.*)"

/* The owner of a function (whose rights a SECURITY DEFINER call uses). */
static Oid
function_owner(Oid procoid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(procoid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", procoid);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The export's query for one segment, selecting columns; NULL if unexpected. */
static char *
column_query(const PageSpec *spec, int segment)
{
	char	   *sql = paging_query(spec, segment, false, false, 0);

	if (strncmp(sql, JSON_SELECT, strlen(JSON_SELECT)) != 0)
		return NULL;
	/* t.* first: the CSV keeps only the model's columns, not the keys after them */
	return psprintf("SELECT t.*%s", sql + strlen(JSON_SELECT));
}

/* Write every segment of the export into a CSV reply. */
static void
export_segments(HttpRequest *req, const PageSpec *spec, char **queries)
{
	List	   *header = NIL;
	HttpCsv    *csv;
	int			i;

	for (i = 0; i < spec->ncolumns; i++)
		header = lappend(header, spec->columns[i].name);
	csv = http_csv_open(req, header);
	for (i = 0; queries[i] != NULL && !spec->nothing; i++)
	{
		Oid		   *types;
		int			n;
		Datum	   *values = paging_params(spec, NULL, i, &types, &n);

		http_csv_query(csv, queries[i], n, types, values, NULL, spec->ncolumns);
	}
	http_csv_close(csv);
}

/*
 * The CSV export of a model into req's reply.  Returns false, having done
 * nothing, when the paging query is not of the expected shape (the caller
 * then exports through export_rows' JSON).  Call with SPI connected.
 */
bool
http_export_csv(HttpRequest *req, Oid procoid, const char *crm, const char *model,
				const char *search, const char *sort, const char *descending)
{
	AclResult	acl = pg_proc_aclcheck(procoid, GetUserId(), ACL_EXECUTE);
	Oid			save_user;
	int			save_context;
	PageSpec   *spec;
	char	   *queries[3] = {NULL, NULL, NULL};
	bool		desc = false;

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FUNCTION, "export_rows");
	if (descending && !parse_bool(descending, &desc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type boolean: \"%s\"", descending)));
	/* an error aborts the transaction, which restores the user id too */
	GetUserIdAndSecContext(&save_user, &save_context);
	SetUserIdAndSecContext(function_owner(procoid), save_context | SECURITY_LOCAL_USERID_CHANGE);
	spec = paging_spec(crm, model, sort, desc, search);
	queries[0] = column_query(spec, 0);
	if (spec->nullable)
		queries[1] = column_query(spec, 1);
	if (queries[0] == NULL || (spec->nullable && queries[1] == NULL))
	{
		SetUserIdAndSecContext(save_user, save_context);
		return false;
	}
	export_segments(req, spec, queries);
	SetUserIdAndSecContext(save_user, save_context);
	return true;
}
