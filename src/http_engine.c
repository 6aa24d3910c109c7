/*
 * http_engine.c
 *		crm_dashboard.http_serve(request): one HTTP request's data work, run by
 *		the pooled connection the HTTP worker handed it to.
 *
 * The worker sends the request as a JSON document (what it parsed and who
 * it authenticated) and gets back one row: status, media type, headers,
 * and the body, or the name of a spool file holding it.  Here, in order:
 *  1. the token's role must be usable (a dashboard role, never a superuser),
 *     and a dashboard user's token must still be current (not revoked);
 *  2. the request's transaction-local settings, PostgREST's and ours (who
 *     asks, from where, for application_name in pg_stat_activity), with the
 *     role last: everything after runs as the token's role;
 *  3. the read of a view, the call of a function, or the check that opens
 *     an event stream.
 * The pooled connection's session has statement_timeout set to the
 * worker's http_request_timeout, so the limit covers this whole statement;
 * a GET or HEAD makes the transaction read-only (allowed at any point in
 * it), so that nothing a read runs can write.
 *
 * Only a superuser can run this (it sets superuser-only settings); the
 * worker's pooled connections log in as one.
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"

#include "auth.h"
#include "crm_dashboard.h"
#include "http_engine.h"

PG_FUNCTION_INFO_V1(crm_dashboard_http_serve);

/* Define the engine's settings and install its session hook (called from HttpInit). */
void
engine_init(void)
{
	engine_session_init();
	http_csv_init();
}

/* A string field of the request document, copied, or NULL. */
static char *
doc_string(cJSON *doc, const char *field)
{
	cJSON	   *item = cJSON_GetObjectItemCaseSensitive(doc, field);

	return cJSON_IsString(item) ? pstrdup(item->valuestring) : NULL;
}

/* The query-string arguments: [[key, value-or-null], ...]. */
static void
doc_args(cJSON *doc, EngineRequest *req)
{
	cJSON	   *args = cJSON_GetObjectItemCaseSensitive(doc, "args");
	cJSON	   *pair;
	int			i = 0;

	req->nargs = cJSON_IsArray(args) ? cJSON_GetArraySize(args) : 0;
	req->args = palloc0(sizeof(EngineArg) * (req->nargs + 1));
	cJSON_ArrayForEach(pair, args)
	{
		cJSON	   *key = cJSON_GetArrayItem(pair, 0);
		cJSON	   *value = cJSON_GetArrayItem(pair, 1);

		if (!cJSON_IsString(key) || i >= req->nargs)
			continue;
		req->args[i].key = pstrdup(key->valuestring);
		req->args[i].value = cJSON_IsString(value) ? pstrdup(value->valuestring) : NULL;
		i++;
	}
	req->nargs = i;
}

/* Read the request document; errors are the worker's bugs, not the client's. */
static EngineRequest *
parse_request(const char *text)
{
	cJSON	   *doc = cJSON_Parse(text);
	EngineRequest *req = palloc0(sizeof(EngineRequest));
	char	   *media;
	cJSON	   *gen;

	if (!cJSON_IsObject(doc))
	{
		cJSON_Delete(doc);
		elog(ERROR, "crm_dashboard: the HTTP request document is not a JSON object");
	}
	req->route = doc_string(doc, "route");
	req->name = doc_string(doc, "name");
	req->method = doc_string(doc, "method");
	req->path = doc_string(doc, "path");
	req->count = doc_string(doc, "count");
	req->range = doc_string(doc, "range");
	req->range_unit = doc_string(doc, "range_unit");
	req->body = doc_string(doc, "body");
	req->role = doc_string(doc, "role");
	req->username = doc_string(doc, "username");
	req->claims = doc_string(doc, "claims");
	req->headers = doc_string(doc, "headers");
	req->client = doc_string(doc, "client");
	req->anonymous = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "anonymous"));
	gen = cJSON_GetObjectItemCaseSensitive(doc, "generation");
	req->generation = cJSON_IsNumber(gen) ? (int64) gen->valuedouble : -1;
	media = doc_string(doc, "media");
	req->media = media && strcmp(media, "csv") == 0 ? ENGINE_CSV :
		media && strcmp(media, "xlsx") == 0 ? ENGINE_XLSX :
		media && strcmp(media, "object") == 0 ? ENGINE_OBJECT : ENGINE_JSON;
	doc_args(doc, req);
	cJSON_Delete(doc);
	if (req->route == NULL || req->method == NULL || req->role == NULL || req->path == NULL)
		elog(ERROR, "crm_dashboard: the HTTP request document lacks route, method, role or path");
	req->read_only = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	return req;
}

/*
 * Whether the request's role may be used: it exists and is not a superuser,
 * and a token's role is a member of crm_dashboard_viewer (so a token can
 * only ever narrow what the connection may do).  Replies 401 otherwise.
 */
static bool
role_usable(EngineRequest *req, EngineReply *reply)
{
	Oid			roleid = get_role_oid(req->role, true);
	Oid			viewer = get_role_oid("crm_dashboard_viewer", true);

	if (OidIsValid(roleid) && !superuser_arg(roleid) &&
		(req->anonymous || (OidIsValid(viewer) && is_member_of_role(roleid, viewer))))
		return true;
	engine_error(reply, 401, "PGRST301",
				 req->anonymous ? "The anonymous role cannot be used" : "JWT role is not a dashboard role",
				 psprintf("Role \"%s\" does not exist, is a superuser, or is not a member of crm_dashboard_viewer.",
						  req->role),
				 NULL);
	return false;
}

/*
 * Whether a dashboard user's token is still valid: logout, a password or
 * role change and deleting the user revoke it at once.  Replies 401 otherwise.
 */
static bool
token_current(EngineRequest *req, EngineReply *reply)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum		values[3];
	bool		isnull;

	if (req->username == NULL)
		return true;
	values[0] = CStringGetTextDatum(req->username);
	values[1] = CStringGetTextDatum(req->role);
	values[2] = Int64GetDatum(req->generation);
	crm_spi_execute("SELECT crm_dashboard.token_is_current($1, $2, $3)", 3, types, values, NULL,
					true, 1, SPI_OK_SELECT);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return true;
	engine_error(reply, 401, "PGRST301", "JWT has been revoked",
				 "The user logged out, their password or role changed, or they were deleted.",
				 "Log in again.");
	return false;
}

/* Set one transaction-local setting. */
static void
set_local(const char *name, const char *value)
{
	(void) set_config_option(name, value ? value : "", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, ERROR, false);
}

/*
 * The request's settings, role last.  application_name names the dashboard
 * user and the route, so that a DBA sees in pg_stat_activity who runs what.
 */
static void
apply_settings(EngineRequest *req)
{
	const char *route = req->path;
	size_t		len = strcspn(route, "?");

	if (req->read_only)
		set_local("transaction_read_only", "on");
	set_local("search_path", "crm_api");
	set_local("request.jwt.claims", req->claims ? req->claims : "{}");
	set_local("request.method", req->method);
	set_local("request.path", req->path);
	set_local("request.headers", req->headers ? req->headers : "{}");
	/* who asked, in settings only a superuser (this connection) can set */
	set_local(AUTH_REQUEST_USER_SETTING, req->username);
	set_local(AUTH_CLIENT_ADDRESS_SETTING, req->client);
	set_local("application_name",
			  psprintf("crm_dashboard http: %s %s %.*s",
					   req->username ? req->username : req->role, req->method, (int) len, route));
	set_local("role", req->role);
}

/* GET /api/events: the role, now current, must be a viewer or more. */
static void
engine_events(EngineRequest *req, EngineReply *reply)
{
	Oid			viewer = get_role_oid("crm_dashboard_viewer", true);

	if (OidIsValid(viewer) && is_member_of_role(GetUserId(), viewer))
	{
		reply->status = 200;
		return;
	}
	engine_error(reply, req->anonymous ? 401 : 403, "42501", "permission denied for the event stream",
				 NULL, "Log in as a dashboard viewer, operator or admin.");
}

/* The reply's headers as a JSON array of alternating names and values. */
static Datum
headers_json(EngineReply *reply)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	foreach(lc, reply->headers)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, lfirst(lc));
	}
	appendStringInfoChar(&buf, ']');
	return CStringGetTextDatum(buf.data);
}

/* The result row (status, content_type, headers, body, file, file_size). */
static Datum
reply_row(FunctionCallInfo fcinfo, EngineReply *reply)
{
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, reply->content_type == NULL, false,
	reply->file != NULL, reply->file == NULL, reply->file == NULL};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm_dashboard: http_serve must return a row");
	values[0] = Int32GetDatum(reply->status ? reply->status : 500);
	values[1] = reply->content_type ? CStringGetTextDatum(reply->content_type) : (Datum) 0;
	values[2] = headers_json(reply);
	values[3] = CStringGetTextDatum(reply->body.data);
	values[4] = reply->file ? CStringGetTextDatum(reply->file) : (Datum) 0;
	values[5] = Int64GetDatum((int64) reply->file_size);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

/*
 * crm_dashboard.http_serve(request text): serve one request described by the
 * HTTP worker (see the file header); returns (status, content_type, headers,
 * body, file, file_size).
 */
Datum
crm_dashboard_http_serve(PG_FUNCTION_ARGS)
{
	EngineRequest *req = parse_request(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	EngineReply reply = {0};
	MemoryContext caller = CurrentMemoryContext;
	Datum		result;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the bundled HTTP server may call http_serve"),
				 errhint("Use the views and functions of schema crm_api.")));
	initStringInfo(&reply.body);
	SPI_connect();
	engine_session_clean();
	if (role_usable(req, &reply) && token_current(req, &reply))
	{
		apply_settings(req);
		if (strcmp(req->route, "read") == 0)
			engine_read(req, &reply);
		else if (strcmp(req->route, "rpc") == 0)
			engine_rpc(req, &reply);
		else if (strcmp(req->route, "events") == 0)
			engine_events(req, &reply);
		else if (strcmp(req->route, "metrics") == 0)
			engine_metrics(req, &reply);
		else
			elog(ERROR, "crm_dashboard: unknown HTTP route \"%s\"", req->route);
	}
	engine_session_reset();
	/* the row must outlive SPI's memory, which SPI_finish frees */
	MemoryContextSwitchTo(caller);
	result = reply_row(fcinfo, &reply);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
