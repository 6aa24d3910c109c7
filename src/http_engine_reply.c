/*
 * http_engine_reply.c
 *		The request engine's reply: headers, a JSON body, PostgREST's error
 *		object.
 *
 * The bottom of the engine: http_engine.c (the request) and the read and
 * function-call modules below it fill the reply through these, and nothing
 * here calls back up.  A JSON reply replaces whatever body was begun,
 * including a CSV or Excel spool file, so an error raised halfway through an export
 * never sends half a file.
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "http_engine.h"
#include "http_error.h"

/* Add a header to the reply. */
void
engine_header(EngineReply *reply, const char *name, const char *value)
{
	reply->headers = lappend(reply->headers, pstrdup(name));
	reply->headers = lappend(reply->headers, pstrdup(value));
}

/* Reply with a JSON document. */
void
engine_json(EngineReply *reply, int status, const char *json)
{
	http_spool_discard(reply);
	reply->status = status;
	reply->content_type = "application/json; charset=utf-8";
	resetStringInfo(&reply->body);
	appendStringInfoString(&reply->body, json);
}

/* Reply with PostgREST's error object. */
void
engine_error(EngineReply *reply, int status, const char *code, const char *message,
			 const char *details, const char *hint)
{
	StringInfoData buf;
	const char *authenticate = http_www_authenticate(status, code);

	initStringInfo(&buf);
	http_error_json(&buf, code, message, details, hint);
	engine_json(reply, status, buf.data);
	if (authenticate)
		engine_header(reply, "WWW-Authenticate", authenticate);
}

/* Refuse the Excel media type where it is not served: only the export RPC writes workbooks. */
void
engine_xlsx_unavailable(EngineReply *reply)
{
	engine_error(reply, 406, "PGRST107", "None of these media types are available",
				 "An Excel workbook is the export of a model's rows only.",
				 "Call /api/rpc/export_rows for an .xlsx file, or ask for application/json or text/csv.");
}
