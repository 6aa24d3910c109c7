/*
 * http.h
 *		The bundled HTTP server: libmicrohttpd driven from background
 *		workers' wait loops, serving the crm_api schema (a PostgREST subset),
 *		Server-Sent Events and the static UI.
 */
#ifndef CRM_DASHBOARD_HTTP_H
#define CRM_DASHBOARD_HTTP_H

#include "postgres.h"

#include <sys/stat.h>
#include <microhttpd.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/portal.h"

/* Settings (http.c). */
extern int	http_port;
extern char *http_listen;
extern int	http_workers;
extern char *http_anon_role;
extern char *http_ui_directory;
extern int	http_max_connections;
extern int	http_max_body;
extern int	http_request_timeout;
extern char *http_allowed_origins;
extern bool http_csv_neutralize_formulas;

/* Fixed limits on hostile input. */
#define HTTP_MAX_URL 8192		/* path plus query string, bytes: else 414 */
#define HTTP_MAX_HEADERS 100	/* header lines: else 431 */
#define HTTP_MEMORY_LIMIT (64 * 1024)	/* per connection, bounds header size */

/* The role that may only call login when no anonymous role is configured. */
#define HTTP_LOGIN_ROLE "crm_dashboard_anon"
#define HTTP_COOKIE "crm_dashboard_token"

/* What the client accepts. */
typedef enum HttpMedia
{
	HTTP_MEDIA_JSON,
	HTTP_MEDIA_OBJECT,			/* application/vnd.pgrst.object+json */
	HTTP_MEDIA_CSV
} HttpMedia;

/* The reply being prepared for one request. */
typedef struct HttpReply
{
	int			status;			/* 0 until decided */
	const char *content_type;
	StringInfoData body;
	int			fd;				/* file body instead of body, or -1 */
	uint64		fd_size;
	List	   *headers;		/* alternating name, value (char *) */
} HttpReply;

/* One request, from its first header to its completion. */
typedef struct HttpRequest
{
	MemoryContext ctx;			/* freed when the connection is done with it */
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	bool		is_head;
	bool		read_only;		/* GET and HEAD */
	StringInfoData body;
	bool		body_too_large;
	bool		handled;		/* a response was queued */

	/* authentication */
	bool		cookie_auth;	/* the login cookie may stand for a token */
	bool		anonymous;
	char	   *role;
	char	   *claims;
	char	   *username;		/* a dashboard user's token, else NULL */
	int64		generation;		/* its token generation, -1 when none */

	HttpReply	reply;
	struct MHD_Response *stream;	/* a prepared callback response (SSE) */
	void	   *sse;			/* SSE client state, if any */
} HttpRequest;

/* http.c */
extern void HttpInit(void);
extern PGDLLEXPORT void HttpWorkerMain(Datum main_arg);

/* http_conn.c */
extern enum MHD_Result http_accept_policy(void *cls, const struct sockaddr *addr,
										  socklen_t addrlen);
extern void http_connection_notify(void *cls, struct MHD_Connection *conn,
								   void **socket_context,
								   enum MHD_ConnectionNotificationCode toe);
extern void http_conn_request_received(struct MHD_Connection *conn);
extern void http_conn_request_done(struct MHD_Connection *conn);
extern void http_conn_reap(void);
extern long http_conn_next_timeout_ms(void);

/* http_dispatch.c */
extern enum MHD_Result http_access_handler(void *cls, struct MHD_Connection *conn,
										   const char *url, const char *method,
										   const char *version, const char *upload_data,
										   size_t *upload_data_size, void **con_cls);
extern void http_request_completed(void *cls, struct MHD_Connection *conn,
								   void **con_cls, enum MHD_RequestTerminationCode toe);

/* http_request.c */
extern HttpRequest *http_request_new(struct MHD_Connection *conn, const char *url,
									 const char *method);
extern void http_request_free(HttpRequest *req);
extern const char *http_header(HttpRequest *req, const char *name);

/* A header or query argument (pointing into libmicrohttpd's memory). */
typedef struct HttpValue
{
	const char *key;
	const char *value;			/* may be NULL for a query argument */
} HttpValue;

extern HttpValue *http_values(HttpRequest *req, enum MHD_ValueKind kind, int *n);

/* http_reply.c */
extern void http_reply_header(HttpRequest *req, const char *name, const char *value);
extern void http_reply_json(HttpRequest *req, int status, const char *json);
extern void http_reply_error(HttpRequest *req, int status, const char *code,
							 const char *message, const char *details, const char *hint);
extern void http_reply_sql_error(HttpRequest *req, ErrorData *edata);
extern int	http_sqlstate_status(const char *sqlstate, bool anonymous);
extern enum MHD_Result http_queue_reply(HttpRequest *req);
extern void http_add_common_headers(struct MHD_Response *resp);

/* http_auth.c */
extern bool http_authenticate(HttpRequest *req, bool login_route);
extern bool http_check_role(HttpRequest *req);
extern bool http_check_token(HttpRequest *req);
extern void http_set_request_settings(HttpRequest *req);

/* http_txn.c */
typedef void (*HttpTxnFn) (HttpRequest *req, void *arg);
extern void http_in_transaction(HttpRequest *req, HttpTxnFn fn, void *arg);

/* http_api.c */
extern void http_api_dispatch(HttpRequest *req, const char *path);
extern bool http_parse_accept(HttpRequest *req, HttpMedia *media);

/* http_read.c */
extern void http_read_view(HttpRequest *req, const char *view, HttpMedia media);

/* http_rpc.c */
extern void http_call_rpc(HttpRequest *req, const char *fn, HttpMedia media);

/* http_csv.c */
typedef struct HttpCsv
{
	HttpRequest *req;
	bool		neutralize;		/* a download: defuse spreadsheet formulas */
	bool		header_done;
	int			ncols;
	bool	   *numeric;		/* per column: typcategory N, never defused */
	StringInfoData buf;			/* bytes not yet written to the spool */
	uint64		written;
	uint64		rows;
} HttpCsv;

extern HttpCsv *http_csv_open(HttpRequest *req, bool neutralize);
extern void http_csv_portal(HttpCsv *csv, Portal portal, int64 limit);
extern uint64 http_csv_close(HttpCsv *csv);
extern uint64 http_csv_spool(HttpRequest *req, const char *sql, int nargs, Datum *values,
							 const char *nulls);

/* http_static.c */
extern void http_serve_static(HttpRequest *req);
extern char *http_ui_resolve(const char *relpath, const char **error);
extern const char *http_media_type(const char *path);
extern char *http_file_etag(const struct stat *st);

/* http_sse.c */
extern void http_sse_start(HttpRequest *req);
extern void http_sse_init(void);
extern void http_sse_poll(void);
extern void http_sse_forget(HttpRequest *req);
extern long http_sse_next_timeout_ms(void);

#endif							/* CRM_DASHBOARD_HTTP_H */
