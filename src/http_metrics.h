/*
 * http_metrics.h
 *		The HTTP workers' counters (requests by route and status, their
 *		durations, event streams) in shared memory, and GET /metrics.
 */
#ifndef CRM_DASHBOARD_HTTP_METRICS_H
#define CRM_DASHBOARD_HTTP_METRICS_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* The routes requests are counted under. */
typedef enum HttpRoute
{
	HTTP_ROUTE_READ,			/* GET /api/<view> */
	HTTP_ROUTE_RPC,				/* /api/rpc/<fn> */
	HTTP_ROUTE_EVENTS,			/* GET /api/events */
	HTTP_ROUTE_METRICS,			/* GET /metrics */
	HTTP_ROUTE_STATIC,			/* the web UI's files */
	HTTP_ROUTE_OTHER,
	HTTP_ROUTE_COUNT
} HttpRoute;

struct HttpRequest;

/* The access handler's cls of the daemon on crm_dashboard.metrics_port. */
#define HTTP_METRICS_DAEMON ((void *) &http_metrics_port)

extern int	http_metrics_port;
extern char *http_metrics_listen;

extern void http_metrics_init(void);
extern void http_metrics_attach(int index);
extern HttpRoute http_metrics_route(const char *url);
extern void http_metrics_count(HttpRoute route, int status, TimestampTz started_at);
extern void http_metrics_sse(int delta);
extern void http_metrics_route_init(void);
extern void http_metrics_dispatch(struct HttpRequest *req);

#endif							/* CRM_DASHBOARD_HTTP_METRICS_H */
