/*
 * http_metrics_route.c
 *		GET /metrics: who may read it, then a job of the request engine.
 *
 * The worker never runs SQL: /metrics is a job of the request engine
 * (route "metrics"), which calls crm_dashboard.metrics_text() (src/metrics.sql)
 * as the request's role.  Who may read it is crm_dashboard.metrics_auth:
 * "token" (the default) takes the Bearer token of an administrator or
 * crm_dashboard.metrics_token; "none" lets anyone who reaches the port read it.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "http.h"
#include "http_metrics.h"

typedef enum MetricsAuth
{
	METRICS_AUTH_TOKEN,
	METRICS_AUTH_NONE
} MetricsAuth;

static const struct config_enum_entry metrics_auth_options[] = {
	{"token", METRICS_AUTH_TOKEN, false},
	{"none", METRICS_AUTH_NONE, false},
	{NULL, 0, false}
};

static int	metrics_auth = METRICS_AUTH_TOKEN;
static char *metrics_token = NULL;

/* Define who may read /metrics (called from HttpInit). */
void
http_metrics_route_init(void)
{
	DefineCustomEnumVariable("crm_dashboard.metrics_auth",
							 "Who may read GET /metrics: token (an administrator's or metrics_token) or none.",
							 "none serves it to anyone who reaches the HTTP port.",
							 &metrics_auth, METRICS_AUTH_TOKEN, metrics_auth_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("crm_dashboard.metrics_token",
							   "A Bearer token that reads GET /metrics (for Prometheus), besides administrators' tokens.",
							   "Empty: only administrators' tokens.  At least 16 characters.",
							   &metrics_token, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
}

/* Whether two strings are equal, in time that depends on their lengths only. */
static bool
equal_secret(const char *a, const char *b)
{
	size_t		len = strlen(a);
	unsigned char diff = 0;

	if (len != strlen(b))
		return false;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char) a[i] ^ (unsigned char) b[i];
	return diff == 0;
}

/* Whether the request's Bearer token is crm_dashboard.metrics_token. */
static bool
bearer_is_metrics_token(HttpRequest *req)
{
	const char *auth = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	return metrics_token != NULL && strlen(metrics_token) >= 16 && auth != NULL &&
		pg_strncasecmp(auth, "Bearer ", 7) == 0 && equal_secret(auth + 7, metrics_token);
}

/*
 * GET /metrics: decide who asks (see the file header), then hand the
 * request to the engine.  "key" jobs may read it as they are; "admin" jobs
 * must turn out to be an administrator's.
 */
void
http_metrics_dispatch(HttpRequest *req)
{
	if (!req->read_only)
	{
		http_reply_error(req, 405, "PGRST117", psprintf("method %s is not allowed here", req->method), NULL, NULL);
		http_reply_header(req, "Allow", "GET, HEAD");
		return;
	}
	if (metrics_auth == METRICS_AUTH_NONE || bearer_is_metrics_token(req))
	{
		req->role = pstrdup("crm_dashboard_viewer");
		req->anonymous = metrics_auth == METRICS_AUTH_NONE;
		http_job_start(req, "metrics", "key", HTTP_MEDIA_JSON, true, NULL);
		return;
	}
	if (http_header(req, MHD_HTTP_HEADER_AUTHORIZATION) == NULL)
	{
		http_reply_error(req, 401, "PGRST302", "GET /metrics needs a token", NULL,
						 "Send an administrator's token or crm_dashboard.metrics_token as \"Authorization: Bearer <token>\".");
		http_reply_header(req, "WWW-Authenticate", "Bearer");
		return;
	}
	if (http_authenticate(req, false))
		http_job_start(req, "metrics", "admin", HTTP_MEDIA_JSON, true, NULL);
}
