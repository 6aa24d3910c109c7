/*
 * http.c
 *		Settings of the HTTP server and its background workers' main loop.
 *
 * Each worker runs libmicrohttpd without any thread of its own: the
 * daemon's epoll descriptor sits in the worker's WaitEventSet beside its
 * latch, the connection pool's epoll set and the set that watches clients
 * waiting for their queries; MHD_run() does the network work on the main
 * thread whenever one fires.  The loop itself never runs SQL: a request's
 * data work goes to a pooled connection (http_pool.c, http_job.c), and the
 * loop goes on serving static files, event streams and other requests.
 * http_workers workers bind the same port (SO_REUSEPORT) so the kernel
 * spreads connections over them.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "crm_dashboard.h"
#include "http.h"
#include "http_metrics.h"
#include "http_engine.h"
#include "http_pool.h"
#include "http_query_parse.h"

int			http_port = 0;
char	   *http_listen = NULL;
int			http_workers = 2;
char	   *http_anon_role = NULL;
char	   *http_ui_directory = NULL;
int			http_max_connections = 10000;
int			http_max_body = 1024 * 1024;
int			http_request_timeout = 30;
char	   *http_allowed_origins = NULL;

/*
 * Define the listening settings (restart to change).  PGC_POSTMASTER
 * variables may only be created while preloading; a library loaded later
 * (CREATE EXTENSION, LOAD) defines them as PGC_SIGHUP, which changes
 * nothing there since no worker runs without preloading.
 */
static void
define_listen_settings(void)
{
	GucContext	ctx = process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;

	DefineCustomIntVariable("crm_dashboard.http_port",
							"TCP port of the bundled HTTP server; 0 turns it off.",
							"Range 0..65535.  Takes effect at server start.",
							&http_port, 0, 0, 65535, ctx, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("crm_dashboard.http_listen",
							   "Address the HTTP server binds to.",
							   "An IPv4 or IPv6 address.  Takes effect at server start.",
							   &http_listen, "127.0.0.1", ctx, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.http_workers",
							"Number of HTTP worker processes sharing the port.",
							"Range 1..32.  Takes effect at server start.",
							&http_workers, 2, 1, 32, ctx, 0, NULL, NULL, NULL);
}

/* Define the anonymous role and UI settings (reloadable). */
static void
define_auth_settings(void)
{
	char		sharedir[MAXPGPATH];

	DefineCustomStringVariable("crm_dashboard.anon_role",
							   "Role for HTTP requests without a token; empty refuses them (401).",
							   NULL, &http_anon_role, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	get_share_path(my_exec_path, sharedir);
	DefineCustomStringVariable("crm_dashboard.ui_directory",
							   "Directory of the static web UI.",
							   NULL, &http_ui_directory,
							   psprintf("%s/extension/crm_dashboard_ui", sharedir),
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* Define the limits on requests (reloadable). */
static void
define_limit_settings(void)
{
	DefineCustomIntVariable("crm_dashboard.http_max_connections",
							"Open connections accepted per HTTP worker.",
							"Range 1..100000; further connections are refused.  Each open event stream "
							"holds one.",
							&http_max_connections, 10000, 1, 100000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.http_max_body",
							"Largest request body accepted (413 beyond).",
							"Range 1 kB .. 64 MB.",
							&http_max_body, 1024 * 1024, 1024, 64 * 1024 * 1024, PGC_SIGHUP,
							GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.http_request_timeout",
							"Time a client has to send a whole request, idle limit of a connection, and statement time limit of a request.",
							"Range 1 .. 3600 s.",
							&http_request_timeout, 30, 1, 3600, PGC_SIGHUP,
							GUC_UNIT_S, NULL, NULL, NULL);
}

/* Whether s[0..len) is an origin, scheme://host[:port], with nothing after it. */
static bool
is_origin(const char *s, size_t len)
{
	size_t		skip;
	size_t		i;

	if (len > 7 && pg_strncasecmp(s, "http://", 7) == 0)
		skip = 7;
	else if (len > 8 && pg_strncasecmp(s, "https://", 8) == 0)
		skip = 8;
	else
		return false;
	for (i = skip; i < len; i++)
		if (s[i] == '/' || s[i] == '?' || s[i] == '#' || s[i] == '@' ||
			isspace((unsigned char) s[i]) || (unsigned char) s[i] < 0x20)
			return false;
	return true;
}

/* Every entry of crm_dashboard.http_allowed_origins is an origin. */
static bool
check_allowed_origins(char **newval, void **extra, GucSource source)
{
	const char *p = *newval ? *newval : "";

	while (*p)
	{
		size_t		len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len > 0 && !is_origin(p, len))
		{
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg("invalid origin \"%.*s\" in crm_dashboard.http_allowed_origins",
							 (int) len, p);
			GUC_check_errhint("List origins as scheme://host[:port], without a path, separated by commas.");
			return false;
		}
		p += len;
	}
	return true;
}

/*
 * Define the settings that protect browsers' sessions and downloads
 * (reloadable): origins allowed beside the server's own, and formula
 * neutralisation in CSV downloads.
 */
static void
define_browser_settings(void)
{
	DefineCustomStringVariable("crm_dashboard.http_allowed_origins",
							   "Origins, besides the server's own, whose pages may call the API.",
							   "Comma-separated scheme://host[:port] entries, for a web UI served "
							   "through a proxy under another origin.  Requests whose Origin is "
							   "neither the server's own nor listed get 403.",
							   &http_allowed_origins, "", PGC_SIGHUP, 0,
							   check_allowed_origins, NULL, NULL);
}

/* Register the HTTP workers when preloaded with a port set. */
static void
register_workers(void)
{
	int			i;

	/* reads work on a hot standby too */
	for (i = 0; i < http_workers; i++)
		crm_register_worker("HttpWorkerMain", psprintf("crm_dashboard http worker %d", i + 1),
							"crm_dashboard http", true, i);
}

/* Define the HTTP settings; start the workers when preloaded with a port. */
void
HttpInit(void)
{
	define_listen_settings();
	define_auth_settings();
	define_limit_settings();
	define_browser_settings();
	pool_define_settings();
	engine_init();
	http_metrics_init();
	http_metrics_route_init();
	if (process_shared_preload_libraries_in_progress && http_port > 0)
		register_workers();
}

/* Form-decode URL components with the same decoder the fuzz target tests. */
static size_t
http_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	return hq_form_decode(s);
}

/* Route libmicrohttpd's diagnostics to the server log. */
static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];
	size_t		len;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	len = strlen(buf);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	elog(LOG, "crm_dashboard http: %s", buf);
}

/* Fill addr from a listen address and port; returns its length or 0. */
static socklen_t
listen_address(const char *listen, int port, struct sockaddr_storage *addr, bool *ipv6)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *) addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) addr;

	memset(addr, 0, sizeof(*addr));
	*ipv6 = false;
	if (inet_pton(AF_INET, listen, &v4->sin_addr) == 1)
	{
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		return sizeof(*v4);
	}
	if (inet_pton(AF_INET6, listen, &v6->sin6_addr) == 1)
	{
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*ipv6 = true;
		return sizeof(*v6);
	}
	return 0;
}

/*
 * Start one of this worker's daemons on listen:port (epoll, no internal
 * thread, the port shared by the workers); cls tells the access handler
 * which one a request came to (NULL: the HTTP port).
 */
static struct MHD_Daemon *
http_start_daemon(const char *listen, int port, void *cls)
{
	struct sockaddr_storage addr;
	bool		ipv6;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	if (listen_address(listen, port, &addr, &ipv6) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid listen address \"%s\" (crm_dashboard.%s)", listen, cls ? "metrics_listen" : "http_listen"),
				 errhint("Set an IPv4 or IPv6 address such as 127.0.0.1 or ::1.")));
	if (ipv6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, (uint16_t) port,
						 http_accept_policy, NULL,
						 http_access_handler, cls,
						 MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
						 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
						 MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
						 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 100000,
						 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) http_request_timeout,
						 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_MEMORY_LIMIT,
						 MHD_OPTION_NOTIFY_COMPLETED, http_request_completed, NULL,
						 MHD_OPTION_NOTIFY_CONNECTION, http_connection_notify, NULL,
						 MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
						 MHD_OPTION_END);
	if (d == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not start the HTTP server on %s port %d", listen, port),
				 errhint("Check that the address exists and that no other program uses the port.")));
	return d;
}

/* Milliseconds to wait: the next timeout of libmicrohttpd (either daemon), SSE or a request, or a minute. */
static long
http_wait_timeout(struct MHD_Daemon *d, struct MHD_Daemon *metrics)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	long		timeout = 60 * 1000L;
	long		others[3] = {http_sse_next_timeout_ms(), http_conn_next_timeout_ms(),
	pool_next_timeout_ms()};

	if (MHD_get_timeout(d, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG) timeout)
		timeout = (long) mhd_ms;
	if (metrics && MHD_get_timeout(metrics, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG) timeout)
		timeout = (long) mhd_ms;
	for (int i = 0; i < lengthof(others); i++)
		if (others[i] >= 0 && others[i] < timeout)
			timeout = others[i];
	return timeout;
}

/* The worker's WaitEventSet: latch, postmaster death, the daemons', the pool's and the client watch's epoll sets. */
static WaitEventSet *
http_wait_set(struct MHD_Daemon *d, struct MHD_Daemon *metrics)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *minfo = metrics ? MHD_get_daemon_info(metrics, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	WaitEventSet *set;

	if (info == NULL || (metrics && minfo == NULL))
		elog(ERROR, "libmicrohttpd gave no epoll descriptor");
	set = CreateWaitEventSet(TopMemoryContext, 6);
	if (minfo)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, minfo->epoll_fd, NULL, NULL);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, info->epoll_fd, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, pool_epoll_fd(), NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, http_job_epoll_fd(), NULL, NULL);
	return set;
}

/*
 * The role this worker is connected as (the bootstrap superuser), which its
 * pooled connections log in as.
 */
static char *
worker_user_name(void)
{
	char	   *name;

	StartTransactionCommand();
	name = MemoryContextStrdup(TopMemoryContext, GetUserNameFromId(GetUserId(), false));
	CommitTransactionCommand();
	return name;
}

/*
 * Let this worker hold crm_dashboard.http_max_connections sockets besides
 * the files PostgreSQL itself may open (max_files_per_process): an event
 * stream is an open socket for as long as a browser tab is, and the soft
 * limit a server starts with is often 1024.  The hard limit is the most
 * the system allows without privileges.
 */
static void
raise_descriptor_limit(void)
{
	struct rlimit lim;
	rlim_t		want = (rlim_t) http_max_connections + max_files_per_process + 64;

	if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= want)
		return;
	lim.rlim_cur = (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want) ? lim.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur < want)
		ereport(WARNING,
				(errmsg("crm_dashboard http: the system allows %lu open files per process, "
						"fewer than crm_dashboard.http_max_connections needs",
						(unsigned long) lim.rlim_cur),
				 errhint("Raise the server's limit on open files (LimitNOFILE in its systemd unit, "
						 "or ulimit -n) to at least %lu.", (unsigned long) want)));
}

/* Entry point of an HTTP worker. */
void
HttpWorkerMain(Datum main_arg)
{
	const char *dbname;
	struct MHD_Daemon *d;
	struct MHD_Daemon *metrics = NULL;
	WaitEventSet *set;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	dbname = GetConfigOption("crm_dashboard.database_name", true, false);
	dbname = dbname && dbname[0] ? dbname : "postgres";
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname("crm_dashboard http");

	raise_descriptor_limit();
	pool_start(dbname, worker_user_name());
	http_job_init();
	http_job_configure();
	d = http_start_daemon(http_listen, http_port, NULL);
	/* GET /metrics off the public port, when a port of its own is set */
	if (http_metrics_port > 0)
		metrics = http_start_daemon(http_metrics_listen && http_metrics_listen[0] ? http_metrics_listen : http_listen,
									http_metrics_port, HTTP_METRICS_DAEMON);
	set = http_wait_set(d, metrics);
	http_sse_init();
	http_metrics_attach(DatumGetInt32(main_arg));
	elog(LOG, "crm_dashboard http worker %d listening on %s port %d",
		 DatumGetInt32(main_arg) + 1, http_listen, http_port);

	for (;;)
	{
		WaitEvent	event;

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitEventSetWait(set, http_wait_timeout(d, metrics), &event, 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			raise_descriptor_limit();
			http_job_configure();
		}
		pool_poll();
		http_job_poll();
		http_sse_poll();
		http_conn_reap();
		MHD_run(d);
		if (metrics)
			MHD_run(metrics);
	}
}
