/*
 * http_engine.h
 *		The request engine: what serves an HTTP request's data, inside the
 *		pooled connection that runs it (crm_dashboard.http_serve).
 *
 * The HTTP worker is an event loop: it parses and authenticates a request,
 * then hands it, as one JSON document, to crm_dashboard.http_serve on a
 * pooled connection and goes on.  Everything that needs the catalogs or
 * SQL happens here, in that backend: checking the token's role and whether
 * the token was revoked, the request's settings, the PostgREST reads of
 * views and calls of functions, and CSV written into a spool file that the
 * worker then sends.  Modules:
 *	http_engine.c		http_serve: the request document, authorisation, settings, the reply
 *	http_engine_read.c	GET /api/<view>
 *	http_engine_rpc.c	/api/rpc/<fn>
 *	http_engine_session.c	nothing of one request's session reaches the next
 *	http_csv.c			any result set as CSV, into a spool file
 *	http_xlsx.c			the model export as an Excel workbook, into a spool file
 *	http_spool.c		spool files: bodies the worker sends from disk
 */
#ifndef CRM_DASHBOARD_HTTP_ENGINE_H
#define CRM_DASHBOARD_HTTP_ENGINE_H

#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* What the client accepts. */
typedef enum EngineMedia
{
	ENGINE_JSON,
	ENGINE_OBJECT,				/* application/vnd.pgrst.object+json */
	ENGINE_CSV,
	ENGINE_XLSX					/* the export RPC only */
} EngineMedia;

/* A query-string argument, in the order the client sent it. */
typedef struct EngineArg
{
	char	   *key;
	char	   *value;			/* NULL for a key without "=" */
} EngineArg;

/* One request, as the worker describes it. */
typedef struct EngineRequest
{
	char	   *route;			/* "read", "rpc" or "events" */
	char	   *name;			/* the view or function */
	char	   *method;
	bool		read_only;		/* GET and HEAD */
	char	   *path;
	EngineMedia media;
	char	   *count;			/* Prefer: count=exact|planned|estimated, or NULL */
	char	   *range;			/* the Range header, or NULL */
	char	   *range_unit;
	int			nargs;
	EngineArg  *args;
	char	   *body;			/* a POST body (JSON text), or NULL */

	/* who asks */
	char	   *role;
	bool		anonymous;
	char	   *username;		/* a dashboard user's token, or NULL */
	int64		generation;
	char	   *claims;
	char	   *headers;		/* JSON object, lower-case names, no credentials */
	char	   *client;
} EngineRequest;

/* The reply being prepared. */
typedef struct EngineReply
{
	int			status;			/* 0 until decided */
	const char *content_type;
	List	   *headers;		/* alternating name, value */
	StringInfoData body;
	char	   *file;			/* a spooled body: its path, or NULL */
	uint64		file_size;
} EngineReply;

/* http_engine.c */
extern void engine_init(void);

/* http_engine_reply.c */
extern void engine_header(EngineReply *reply, const char *name, const char *value);
extern void engine_json(EngineReply *reply, int status, const char *json);
extern void engine_error(EngineReply *reply, int status, const char *code, const char *message,
						 const char *details, const char *hint);
extern void engine_xlsx_unavailable(EngineReply *reply);

/* http_engine_session.c */
extern void engine_session_init(void);
extern void engine_session_clean(void);
extern void engine_session_reset(void);

/* http_engine_read.c */
extern void engine_read(EngineRequest *req, EngineReply *reply);

/* http_engine_metrics.c */
extern void engine_metrics(EngineRequest *req, EngineReply *reply);

/* http_engine_rpc.c */
extern void engine_rpc(EngineRequest *req, EngineReply *reply);

/* http_csv.c */
typedef struct HttpCsv HttpCsv;

extern void http_csv_init(void);
extern bool http_csv_neutralizes(void);

extern HttpCsv *http_csv_open(EngineReply *reply, bool neutralize);
extern void http_csv_portal(HttpCsv *csv, Portal portal, int64 limit);
extern uint64 http_csv_close(HttpCsv *csv);
extern uint64 http_csv_query(EngineReply *reply, const char *sql, int nargs, Datum *values,
							 const char *nulls);

/* http_spool.c */
extern int	http_spool_create(char **path);
extern void http_spool_write(int fd, const char *data, size_t len);
extern void http_spool_reply(EngineReply *reply, const char *path, const char *content_type);
extern void http_spool_discard(EngineReply *reply);

/* http_xlsx.c */
#define HTTP_XLSX_MEDIA_TYPE "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
extern void http_xlsx_portal(EngineReply *reply, Portal portal, int64 limit, const char *sheet);

/* Where spool files go, and their prefix: PostgreSQL removes such files at start after a crash. */
#define HTTP_SPOOL_DIR "base/" PG_TEMP_FILES_DIR
#define HTTP_SPOOL_PREFIX "pgsql_tmp_crm_dashboard."

#endif							/* CRM_DASHBOARD_HTTP_ENGINE_H */
