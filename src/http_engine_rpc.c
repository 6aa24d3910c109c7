/*
 * http_engine_rpc.c
 *		POST /api/rpc/<fn> (JSON object body) and GET /api/rpc/<fn>?a=1 for
 *		functions of schema crm_api, as PostgREST calls them, in the request
 *		engine (the pooled connection that serves the request).
 *
 * The argument names choose the function among its overloads; each value
 * is passed as a text $n parameter cast to the argument's catalog type, and
 * the call uses named notation, so names never need quoting by the client.
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "crm_dashboard.h"
#include "http_engine.h"
#include "http_query_parse.h"

/* One named argument of the call. */
typedef struct RpcArg
{
	char	   *name;
	char	   *value;			/* text form; NULL for SQL NULL */
	char	   *type;			/* the parameter's type, once resolved */
	bool		json_array;		/* given as a JSON array in the body */
} RpcArg;

/* What a call needs inside its transaction. */
typedef struct RpcCall
{
	const char *fn;
	EngineMedia media;
	List	   *args;			/* RpcArg * */
	bool		args_in_query;	/* GET: arguments come from the query string */
	HqQuery		q;				/* limit and offset */
	Oid			procoid;		/* the chosen overload */
	char		provolatile;
	bool		retset;
	Oid			rettype;
} RpcCall;

/* The text of a JSON value as a SQL argument (strings unquoted). */
static char *
json_arg_text(cJSON *item)
{
	char	   *printed;
	char	   *copy;

	if (cJSON_IsNull(item))
		return NULL;
	if (cJSON_IsString(item))
		return pstrdup(item->valuestring);
	printed = cJSON_PrintUnformatted(item);
	copy = pstrdup(printed);
	cJSON_free(printed);
	return copy;
}

/*
 * Whether a JSON text escapes a NUL (backslash, u0000).  cJSON would decode
 * it into a C string and silently cut the value short there; PostgreSQL
 * text cannot hold it either, so such a body is refused.
 */
static bool
json_escapes_nul(const char *s, int len)
{
	int			i;

	for (i = 0; i + 1 < len; i++)
	{
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 5 < len && strncmp(s + i + 2, "0000", 4) == 0)
			return true;
		i++;					/* skip the escaped character, e.g. a backslash */
	}
	return false;
}

/*
 * The body as one JSON value, or NULL when it is not exactly one: white
 * space may surround the value, but anything else after it (garbage, a
 * second object) makes the body invalid, as PostgREST has it.  A lenient
 * parser that stopped after the first value would act on part of a body
 * that meant something else as a whole.
 */
static cJSON *
parse_json_body(const char *data, size_t len)
{
	const char *end = NULL;
	cJSON	   *doc = cJSON_ParseWithLengthOpts(data, len, &end, false);

	if (doc == NULL || end == NULL)
	{
		cJSON_Delete(doc);
		return NULL;
	}
	for (; end < data + len; end++)
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')
		{
			cJSON_Delete(doc);
			return NULL;
		}
	return doc;
}

/*
 * Arguments from a POST body; replies 400 PGRST102 on bad JSON.  The body
 * must be UTF-8 without NULs: its strings become text parameters as they
 * are, so invalid bytes would otherwise reach tables and error messages.
 */
static bool
args_from_body(EngineRequest *req, EngineReply *reply, RpcCall *call)
{
	cJSON	   *doc;
	cJSON	   *item;
	size_t		len = req->body ? strlen(req->body) : 0;

	if (len == 0)
		return true;
	/* the worker let only UTF-8 text through (http_api.c) */
	if (json_escapes_nul(req->body, len))
	{
		engine_error(reply, 400, "PGRST102", "Empty or invalid json",
					 "The body is not valid UTF-8, or holds a NUL character.",
					 "Send a UTF-8 JSON object without \\u0000 escapes.");
		return false;
	}
	doc = parse_json_body(req->body, len);
	if (!cJSON_IsObject(doc))
	{
		cJSON_Delete(doc);
		engine_error(reply, 400, "PGRST102", "Empty or invalid json", NULL,
					 "Send a JSON object whose keys are the function's argument names.");
		return false;
	}
	cJSON_ArrayForEach(item, doc)
	{
		RpcArg	   *arg = palloc0(sizeof(RpcArg));

		arg->name = pstrdup(item->string);
		arg->value = json_arg_text(item);
		arg->json_array = cJSON_IsArray(item);
		call->args = lappend(call->args, arg);
	}
	cJSON_Delete(doc);
	return true;
}

/* The parser's allocator: the current memory context. */
static void *
hq_palloc(void *arg, size_t size)
{
	return palloc(size);
}

/*
 * Collect the query-string arguments: limit and offset page a set result
 * (for GET and POST); for GET every other non-reserved key is a function
 * argument.  Stops at the first malformed limit or offset.
 */
static void
args_from_query(EngineRequest *req, RpcCall *call)
{
	for (int i = 0; i < req->nargs && !call->q.error; i++)
	{
		const char *key = req->args[i].key;
		const char *value = req->args[i].value ? req->args[i].value : "";
		RpcArg	   *arg;

		if (strcmp(key, "limit") == 0 || strcmp(key, "offset") == 0)
			(void) hq_parse_param(&call->q, key, value);
		else if (call->args_in_query && !hq_is_reserved(key))
		{
			arg = palloc0(sizeof(RpcArg));
			arg->name = pstrdup(key);
			arg->value = pstrdup(value);
			call->args = lappend(call->args, arg);
		}
	}
}

/* The given argument called name, or NULL. */
static RpcArg *
given_arg(RpcCall *call, const char *name)
{
	ListCell   *lc;

	foreach(lc, call->args)
	{
		RpcArg	   *a = lfirst(lc);

		if (strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

/*
 * Whether function procoid accepts exactly the given names: each given name
 * is an input argument and every input without a default is given.  On a
 * match, each argument's type is filled in.
 */
static bool
signature_matches(RpcCall *call, Oid procoid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(procoid));
	Form_pg_proc proc;
	Oid		   *types;
	char	  **names;
	char	   *modes;
	int			nall;
	int			i;
	int			nin = 0;
	int			matched = 0;
	bool		ok = true;

	if (!HeapTupleIsValid(tup))
		return false;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	nall = get_func_arg_info(tup, &types, &names, &modes);
	for (i = 0; i < nall && ok; i++)
	{
		char		mode = modes ? modes[i] : PROARGMODE_IN;
		RpcArg	   *given;

		if (mode == PROARGMODE_OUT || mode == PROARGMODE_TABLE)
			continue;
		given = (names && names[i][0]) ? given_arg(call, names[i]) : NULL;
		if (given)
		{
			given->type = format_type_be(types[i]);
			matched++;
		}
		else if (nin < proc->pronargs - proc->pronargdefaults)
			ok = false;			/* a required argument is missing */
		nin++;
	}
	ok = ok && matched == list_length(call->args);
	call->procoid = procoid;
	call->provolatile = proc->provolatile;
	call->retset = proc->proretset;
	call->rettype = proc->prorettype;
	ReleaseSysCache(tup);
	return ok;
}

/* Find the overload of crm_api.<fn> taking the given names. */
static bool
resolve_function(RpcCall *call)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(call->fn)};
	List	   *oids = NIL;
	ListCell   *lc;
	uint64		i;

	if (crm_spi_run("SELECT p.oid FROM pg_catalog.pg_proc p "
					"  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
					" WHERE n.nspname = 'crm_api' AND p.proname = $1 AND p.prokind = 'f' "
					" ORDER BY p.pronargs",
					1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "catalog lookup of function \"%s\" failed", call->fn);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		oids = lappend_oid(oids, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 1, &isnull)));
	}
	foreach(lc, oids)
		if (signature_matches(call, lfirst_oid(lc)))
			return true;
	return false;
}

/* Reply 404 PGRST202 naming the function and the given argument names. */
static void
function_not_found(EngineReply *reply, RpcCall *call)
{
	StringInfoData names;
	ListCell   *lc;

	initStringInfo(&names);
	foreach(lc, call->args)
		appendStringInfo(&names, "%s%s", names.len ? ", " : "", ((RpcArg *) lfirst(lc))->name);
	engine_error(reply, 404, "PGRST202",
				 psprintf("Could not find the function crm_api.%s(%s) in the schema cache",
						  call->fn, names.data),
				 NULL, "Only functions of schema crm_api can be called, with their argument names as keys.");
}

/* "crm_api.fn(a => $1::t, ...)" with the values in params. */
static char *
call_expression(RpcCall *call, Datum *params, char *nulls)
{
	StringInfoData sql;
	ListCell   *lc;
	int			n = 0;

	initStringInfo(&sql);
	appendStringInfo(&sql, "crm_api.%s(", quote_identifier(call->fn));
	foreach(lc, call->args)
	{
		RpcArg	   *a = lfirst(lc);

		params[n] = a->value ? CStringGetTextDatum(a->value) : (Datum) 0;
		nulls[n] = a->value ? ' ' : 'n';
		n++;
		if (a->json_array && a->type[strlen(a->type) - 1] == ']')
		{
			/* a JSON array for an array parameter is its elements, as PostgREST reads it */
			appendStringInfo(&sql, "%s%s => coalesce((SELECT pg_catalog.array_agg(e.v ORDER BY e.n) "
							 "FROM pg_catalog.jsonb_array_elements_text($%d::pg_catalog.jsonb) "
							 "WITH ORDINALITY e(v, n)), '{}')::%s",
							 n > 1 ? ", " : "", quote_identifier(a->name), n, a->type);
			continue;
		}
		appendStringInfo(&sql, "%s%s => $%d::%s", n > 1 ? ", " : "",
						 quote_identifier(a->name), n, a->type);
	}
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* Run sql with n text parameters. */
static void
run_call(RpcCall *call, const char *sql, int n, Datum *params, char *nulls)
{
	Oid		   *types = palloc(sizeof(Oid) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
		types[i] = TEXTOID;
	crm_spi_execute(sql, n, types, params, nulls, false, 0, SPI_OK_SELECT);
}

/* LIMIT/OFFSET for a set-returning call (validated integers). */
static char *
paging_clause(RpcCall *call)
{
	return psprintf("%s%s",
					call->q.limit >= 0 ? psprintf(" LIMIT %lld", call->q.limit) : "",
					call->q.offset > 0 ? psprintf(" OFFSET %lld", call->q.offset) : "");
}

/* Reply with a set result as a JSON array (or one object). */
static void
reply_set(EngineReply *reply, RpcCall *call, const char *expr, int n, Datum *params, char *nulls)
{
	bool		isnull;
	int64		rows;
	char	   *json;

	run_call(call, psprintf("SELECT count(*), coalesce(json_agg(r.x), '[]')::text "
							"  FROM (SELECT x FROM %s AS x%s) r", expr, paging_clause(call)),
			 n, params, nulls);
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (call->media == ENGINE_OBJECT && rows != 1)
	{
		engine_error(reply, 406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
					 psprintf("The result contains " INT64_FORMAT " rows", rows), NULL);
		return;
	}
	if (call->media == ENGINE_OBJECT)
		json = pnstrdup(json + 1, strlen(json) - 2);
	engine_json(reply, 200, json);
	engine_header(reply, "Content-Range", rows > 0 ?
				  psprintf(INT64_FORMAT "-" INT64_FORMAT "/*", (int64) call->q.offset, (int64) call->q.offset + rows - 1) : "*/*");
}

/*
 * A file name of ASCII letters, digits, '_', '-' and '.' only (isalnum()
 * would follow the locale): it goes into a quoted header parameter.
 */
static char *
safe_filename(const char *crm, const char *model, const char *extension)
{
	char	   *name = psprintf("%s_%s.%s", crm, model, extension);
	char	   *c;

	for (c = name; *c; c++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *c))
			*c = '_';
	return name;
}

/* The text of an optional argument, or NULL. */
static const char *
arg_value(RpcCall *call, const char *name)
{
	RpcArg	   *a = given_arg(call, name);

	return a ? a->value : NULL;
}

/*
 * Call crm_api.export_cursor with export_rows' arguments (it takes the same
 * ones) and return the cursor it opened in this transaction.
 */
static Portal
open_export_cursor(RpcCall *call, int n, Datum *params, char *nulls)
{
	RpcCall		cursor_call = *call;
	char	   *name;
	Portal		portal;

	cursor_call.fn = "export_cursor";
	run_call(&cursor_call, psprintf("SELECT %s::text", call_expression(&cursor_call, params, nulls)),
			 n, params, nulls);
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	portal = name ? SPI_cursor_find(name) : NULL;
	if (portal == NULL)
		elog(ERROR, "crm_dashboard: crm_api.export_cursor opened no cursor");
	return portal;
}

/*
 * export_rows as CSV or an Excel workbook, a download: the writer prints
 * what FETCH returns from export_cursor (CSV with formulas neutralised, Excel
 * with every cell a value), the same with or without ?offset= (a MOVE) and
 * ?limit= (the FETCH count).  The HTTP layer knows nothing of how the rows
 * are queried.
 */
static void
reply_export(EngineReply *reply, RpcCall *call, int n, Datum *params, char *nulls)
{
	const char *crm = arg_value(call, "crm");
	const char *model = arg_value(call, "model");
	Portal		portal = open_export_cursor(call, n, params, nulls);
	bool		xlsx = call->media == ENGINE_XLSX;

	if (call->q.offset > 0)
		SPI_cursor_move(portal, true, (long) call->q.offset);
	if (xlsx)
		http_xlsx_portal(reply, portal, call->q.limit, model ? model : "rows");
	else
	{
		HttpCsv    *csv = http_csv_open(reply, http_csv_neutralizes());

		http_csv_portal(csv, portal, call->q.limit);
		http_csv_close(csv);
	}
	SPI_cursor_close(portal);
	reply->status = 200;
	engine_header(reply, "Content-Disposition",
				  psprintf("attachment; filename=\"%s\"",
						   /* export_cursor refused NULL names: both are set */
						   safe_filename(crm ? crm : "", model ? model : "", xlsx ? "xlsx" : "csv")));
}

/* The call, in the request's transaction. */
static void
call_function(EngineRequest *req, EngineReply *reply, RpcCall *call)
{
	int			n = list_length(call->args);
	Datum	   *params = palloc(sizeof(Datum) * (n + 1));
	char	   *nulls = palloc(n + 1);
	char	   *expr;

	if (!resolve_function(call))
	{
		function_not_found(reply, call);
		return;
	}
	if (req->read_only && call->provolatile == PROVOLATILE_VOLATILE)
	{
		engine_error(reply, 405, "PGRST101",
					 "Cannot use the GET method on RPC with volatile functions", NULL,
					 "Call it with POST.");
		return;
	}
	if ((call->media == ENGINE_CSV || call->media == ENGINE_XLSX) && strcmp(call->fn, "export_rows") == 0)
	{
		reply_export(reply, call, n, params, nulls);
		return;
	}
	if (call->media == ENGINE_XLSX)
	{
		engine_xlsx_unavailable(reply);
		return;
	}
	expr = call_expression(call, params, nulls);
	if (call->media == ENGINE_CSV)
	{
		http_csv_query(reply, psprintf("SELECT * FROM %s%s", expr, paging_clause(call)), n, params, nulls);
		reply->status = 200;
		return;
	}
	if (call->rettype == VOIDOID)
	{
		run_call(call, psprintf("SELECT %s", expr), n, params, nulls);
		reply->status = 204;
		return;
	}
	if (call->retset)
	{
		reply_set(reply, call, expr, n, params, nulls);
		return;
	}
	run_call(call, psprintf("SELECT coalesce(to_json(%s)::text, 'null')", expr), n, params, nulls);
	engine_json(reply, 200, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	engine_header(reply, "Content-Range", "0-0/*");
}

/* POST|GET /api/rpc/<fn>. */
void
engine_rpc(EngineRequest *req, EngineReply *reply)
{
	RpcCall    *call = palloc0(sizeof(RpcCall));

	call->fn = req->name;
	call->media = req->media;
	call->args_in_query = req->read_only;
	hq_init(&call->q, hq_palloc, NULL);
	args_from_query(req, call);
	if (!req->read_only && !args_from_body(req, reply, call))
		return;
	if (call->q.error)
	{
		engine_error(reply, strcmp(call->q.error, "PGRST103") == 0 ? 416 : 400,
					 call->q.error, call->q.message, NULL, NULL);
		return;
	}
	call_function(req, reply, call);
}
