/*
 * http.h
 *		The bundled HTTP server: libmicrohttpd driven from background
 *		workers' wait loops, serving the crm_api schema (a PostgREST subset),
 *		Server-Sent Events and the static UI.  The workers never run SQL
 *		themselves: requests' data work goes to a pool of connections
 *		(http_pool.c) running crm_dashboard.http_serve (http_engine.h).
 *
 * Layers, top to bottom (a file includes only what is below it):
 *	http.c				the worker: settings, the daemon, the wait loop
 *	http_dispatch.c		libmicrohttpd's callbacks: limits, routing, suspend/resume
 *	http_api.c			/api: origin, media types, authentication, routes
 *	http_static.c, http_sse.c	the UI's files; event streams
 *	http_job.c			a request's job in the pool, its reply, cancelling
 *	http_auth.c			tokens: which role and user a request acts for
 *	http_pool.c			libpq connections driven from the wait loop
 *	http_request.c, http_reply.c, http_conn.c, http_error.c, http_query_parse.c
 */
#ifndef CRM_DASHBOARD_HTTP_H
#define CRM_DASHBOARD_HTTP_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include <sys/stat.h>
#include <microhttpd.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/elog.h"

#include "http_error.h"

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

/* Fixed limits on hostile input. */
#define HTTP_MAX_URL 8192		/* path plus query string, bytes: else 414 */
#define HTTP_MAX_HEADERS 100	/* header lines: else 431 */
#define HTTP_MEMORY_LIMIT (16 * 1024)	/* per connection, bounds header size */

/* The role that may only call login when no anonymous role is configured. */
#define HTTP_LOGIN_ROLE "crm_dashboard_anon"
#define HTTP_COOKIE "crm_dashboard_token"

/* What the client accepts. */
typedef enum HttpMedia
{
	HTTP_MEDIA_JSON,
	HTTP_MEDIA_OBJECT,			/* application/vnd.pgrst.object+json */
	HTTP_MEDIA_CSV,
	HTTP_MEDIA_XLSX				/* the Excel export of export_rows */
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

typedef struct HttpRequest HttpRequest;

/* What runs on a request's successful reply before it goes out (a cookie, a stream). */
typedef void (*HttpAfterFn) (HttpRequest *req);

/* One request, from its first header to its completion. */
struct HttpRequest
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

	/* its job in the pool, while one runs (the connection is suspended) */
	struct PoolJob *job;
	HttpAfterFn after;
	int			watched_fd;		/* its socket, watched for the client hanging up, or -1 */
	bool		ready;			/* the job's reply is ready to be queued */
	bool		client_gone;	/* the client hung up while the job ran */

	HttpReply	reply;

	/* what GET /metrics counts of it */
	TimestampTz started_at;
	int			metric_route;	/* an HttpRoute */
	bool		on_metrics_port;	/* came to crm_dashboard.metrics_port */
	struct MHD_Response *stream;	/* a prepared callback response (SSE) */
	void	   *sse;			/* SSE client state, if any */
};

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
extern const char *http_prefer_count(HttpRequest *req);
extern char *http_client_address(HttpRequest *req);

/* http_reply.c */
extern void http_reply_header(HttpRequest *req, const char *name, const char *value);
extern void http_reply_json(HttpRequest *req, int status, const char *json);
extern void http_reply_error(HttpRequest *req, int status, const char *code,
							 const char *message, const char *details, const char *hint);
extern void http_reply_pg_error(HttpRequest *req, const char *sqlstate, const char *message,
								const char *detail, const char *hint);

extern enum MHD_Result http_queue_reply(HttpRequest *req);
extern void http_add_common_headers(struct MHD_Response *resp);

/* http_auth.c */
extern bool http_authenticate(HttpRequest *req, bool login_route);

/* http_job.c */
extern void http_job_init(void);
extern void http_job_configure(void);
extern int	http_job_epoll_fd(void);
extern void http_job_start(HttpRequest *req, const char *route, const char *name,
						   HttpMedia media, bool control, HttpAfterFn after);
extern void http_job_poll(void);
extern void http_job_forget(HttpRequest *req);

/* http_api.c */
extern void http_api_dispatch(HttpRequest *req, const char *path);
extern bool http_parse_accept(HttpRequest *req, HttpMedia *media);

/* http_static.c */
extern void http_serve_static(HttpRequest *req);
extern char *http_ui_resolve(const char *relpath, const char **error);
extern const char *http_media_type(const char *path);
extern char *http_file_etag(const struct stat *st);

/* http_sse.c */
extern void http_sse_open(HttpRequest *req);
extern void http_sse_init(void);
extern void http_sse_poll(void);
extern void http_sse_forget(HttpRequest *req);
extern long http_sse_next_timeout_ms(void);

#endif							/* CRM_DASHBOARD_HTTP_H */
