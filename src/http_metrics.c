/*
 * http_metrics.c
 *		The HTTP workers' own counters behind GET /metrics (the
 *		Prometheus text format), and their text.
 *
 * Each HTTP worker counts its requests (by route and status), their
 * durations (a histogram per route) and its open event streams in a slot
 * of shared memory of its own, with atomics, so that
 * crm_dashboard.http_metrics_text() can read every slot from any backend
 * without a lock and without the workers ever waiting.
 *
 * The route itself (who may read it, and handing it to the request engine)
 * is http_metrics_route.c, above this file: the counters call nothing
 * of the server around them.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"
#include "http_metrics.h"

#define METRICS_SLOTS 32		/* crm_dashboard.http_workers' maximum */

static const char *const route_names[HTTP_ROUTE_COUNT] = {
	"api_read", "api_rpc", "api_events", "metrics", "static", "other"
};

/* The statuses counted one by one; any other is counted as its class ("4xx"). */
static const int known_statuses[] = {
	200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 416,
	422, 429, 431, 500, 501, 502, 503, 504
};

#define N_KNOWN ((int) lengthof(known_statuses))
#define N_STATUS (N_KNOWN + 5)	/* and 1xx..5xx for the others */

/* Upper bounds of the duration histogram, in seconds. */
static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

#define N_BUCKETS ((int) lengthof(bucket_bounds))

typedef struct MetricsSlot
{
	pg_atomic_uint64 requests[HTTP_ROUTE_COUNT][N_STATUS];
	pg_atomic_uint64 buckets[HTTP_ROUTE_COUNT][N_BUCKETS];	/* not cumulative */
	pg_atomic_uint64 count[HTTP_ROUTE_COUNT];
	pg_atomic_uint64 sum_us[HTTP_ROUTE_COUNT];
	pg_atomic_uint32 sse_clients;
} MetricsSlot;

typedef struct MetricsShared
{
	MetricsSlot slots[METRICS_SLOTS];
} MetricsShared;

static MetricsShared *metrics_shared = NULL;
static MetricsSlot *my_slot = NULL;
int			http_metrics_port = 0;
char	   *http_metrics_listen = NULL;

PG_FUNCTION_INFO_V1(crm_dashboard_http_metrics_text);

/* Initialise the zeroed counters (atomics may need it where they are emulated). */
static void
metrics_shmem_init(void *area)
{
	MetricsShared *m = area;

	for (int s = 0; s < METRICS_SLOTS; s++)
	{
		MetricsSlot *slot = &m->slots[s];

		for (int r = 0; r < HTTP_ROUTE_COUNT; r++)
		{
			for (int i = 0; i < N_STATUS; i++)
				pg_atomic_init_u64(&slot->requests[r][i], 0);
			for (int i = 0; i < N_BUCKETS; i++)
				pg_atomic_init_u64(&slot->buckets[r][i], 0);
			pg_atomic_init_u64(&slot->count[r], 0);
			pg_atomic_init_u64(&slot->sum_us[r], 0);
		}
		pg_atomic_init_u32(&slot->sse_clients, 0);
	}
}

/* Define where /metrics is served and, when preloaded, the counters. */
void
http_metrics_init(void)
{
	DefineCustomIntVariable("crm_dashboard.metrics_port",
							"A port of its own for GET /metrics (0: on the HTTP port).",
							"When set, /metrics is served only there, and the HTTP port answers 404 for it.",
							&http_metrics_port, 0, 0, 65535,
							process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("crm_dashboard.metrics_listen",
							   "Address of crm_dashboard.metrics_port (empty: crm_dashboard.http_listen's).",
							   NULL, &http_metrics_listen, "",
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP, 0, NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		crm_shmem_register("crm_dashboard http metrics", sizeof(MetricsShared), 0,
						   (void **) &metrics_shared, metrics_shmem_init);
}

/* This HTTP worker counts into slot index (its worker number). */
void
http_metrics_attach(int index)
{
	if (metrics_shared != NULL && index >= 0 && index < METRICS_SLOTS)
		my_slot = &metrics_shared->slots[index];
}

/* The route a URL is counted under. */
HttpRoute
http_metrics_route(const char *url)
{
	if (strcmp(url, "/metrics") == 0)
		return HTTP_ROUTE_METRICS;
	if (strncmp(url, "/api/rpc/", 9) == 0)
		return HTTP_ROUTE_RPC;
	if (strcmp(url, "/api/events") == 0)
		return HTTP_ROUTE_EVENTS;
	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0)
		return HTTP_ROUTE_READ;
	if (url[0] == '/')
		return HTTP_ROUTE_STATIC;
	return HTTP_ROUTE_OTHER;
}

/* The index of a status among the counted ones. */
static int
status_index(int status)
{
	for (int i = 0; i < N_KNOWN; i++)
		if (known_statuses[i] == status)
			return i;
	return N_KNOWN + Min(Max(status / 100, 1), 5) - 1;
}

/* Count one reply: its route, status, and how long since the request's headers arrived. */
void
http_metrics_count(HttpRoute route, int status, TimestampTz started_at)
{
	int64		us;
	double		seconds;
	int			b;

	if (my_slot == NULL || route < 0 || route >= HTTP_ROUTE_COUNT)
		return;
	us = Max(GetCurrentTimestamp() - started_at, 0);
	seconds = us / 1000000.0;
	pg_atomic_fetch_add_u64(&my_slot->requests[route][status_index(status)], 1);
	for (b = 0; b < N_BUCKETS && seconds > bucket_bounds[b]; b++)
		;
	if (b < N_BUCKETS)
		pg_atomic_fetch_add_u64(&my_slot->buckets[route][b], 1);
	pg_atomic_fetch_add_u64(&my_slot->count[route], 1);
	pg_atomic_fetch_add_u64(&my_slot->sum_us[route], (uint64) us);
}

/* An event stream opened (+1) or closed (-1) in this worker. */
void
http_metrics_sse(int delta)
{
	if (my_slot == NULL)
		return;
	if (delta > 0)
		pg_atomic_fetch_add_u32(&my_slot->sse_clients, 1);
	else
		pg_atomic_fetch_sub_u32(&my_slot->sse_clients, 1);
}

/* Append one sample line: name{labels} value. */
static void
sample(StringInfo out, const char *name, const char *labels, uint64 value)
{
	appendStringInfo(out, "%s%s%s%s " UINT64_FORMAT "\n", name, labels[0] ? "{" : "", labels,
					 labels[0] ? "}" : "", value);
}

/* The status label of status index i. */
static char *
status_label(int i)
{
	if (i < N_KNOWN)
		return psprintf("%d", known_statuses[i]);
	return psprintf("%dxx", i - N_KNOWN + 1);
}

/* Requests by route and status, summed over the workers' slots. */
static void
requests_text(StringInfo out)
{
	appendStringInfoString(out, "# HELP crm_dashboard_http_requests_total HTTP requests answered, by route and status.\n"
						   "# TYPE crm_dashboard_http_requests_total counter\n");
	for (int r = 0; r < HTTP_ROUTE_COUNT; r++)
		for (int i = 0; i < N_STATUS; i++)
		{
			uint64		n = 0;

			for (int s = 0; s < METRICS_SLOTS && metrics_shared; s++)
				n += pg_atomic_read_u64(&metrics_shared->slots[s].requests[r][i]);
			if (n > 0)
				sample(out, "crm_dashboard_http_requests_total",
					   psprintf("route=\"%s\",status=\"%s\"", route_names[r], status_label(i)), n);
		}
}

/* The duration histogram per route. */
static void
durations_text(StringInfo out)
{
	appendStringInfoString(out, "# HELP crm_dashboard_http_request_duration_seconds Time from a request's headers to its reply being queued.\n"
						   "# TYPE crm_dashboard_http_request_duration_seconds histogram\n");
	for (int r = 0; r < HTTP_ROUTE_COUNT; r++)
	{
		uint64		count = 0;
		uint64		sum_us = 0;
		uint64		cumulative = 0;

		for (int s = 0; s < METRICS_SLOTS && metrics_shared; s++)
		{
			count += pg_atomic_read_u64(&metrics_shared->slots[s].count[r]);
			sum_us += pg_atomic_read_u64(&metrics_shared->slots[s].sum_us[r]);
		}
		if (count == 0)
			continue;
		for (int b = 0; b < N_BUCKETS; b++)
		{
			for (int s = 0; s < METRICS_SLOTS; s++)
				cumulative += pg_atomic_read_u64(&metrics_shared->slots[s].buckets[r][b]);
			/* counters move while we read: a bucket never exceeds the count */
			sample(out, "crm_dashboard_http_request_duration_seconds_bucket",
				   psprintf("route=\"%s\",le=\"%g\"", route_names[r], bucket_bounds[b]), Min(cumulative, count));
		}
		sample(out, "crm_dashboard_http_request_duration_seconds_bucket",
			   psprintf("route=\"%s\",le=\"+Inf\"", route_names[r]), count);
		appendStringInfo(out, "crm_dashboard_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
						 route_names[r], sum_us / 1000000.0);
		sample(out, "crm_dashboard_http_request_duration_seconds_count",
			   psprintf("route=\"%s\"", route_names[r]), count);
	}
}

/*
 * crm_dashboard.http_metrics_text(): the HTTP workers' metrics in the
 * Prometheus text format (zero without preloading).
 */
Datum
crm_dashboard_http_metrics_text(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	uint64		sse = 0;

	initStringInfo(&out);
	requests_text(&out);
	durations_text(&out);
	for (int s = 0; s < METRICS_SLOTS && metrics_shared; s++)
		sse += pg_atomic_read_u32(&metrics_shared->slots[s].sse_clients);
	appendStringInfoString(&out, "# HELP crm_dashboard_sse_clients Open event streams (GET /api/events).\n"
						   "# TYPE crm_dashboard_sse_clients gauge\n");
	sample(&out, "crm_dashboard_sse_clients", "", sse);
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}
