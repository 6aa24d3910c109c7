/*
 * http_conn.c
 *		Bookkeeping of this worker's connections: the cap on open
 *		connections, and the time a client gets to send a whole request.
 *
 * libmicrohttpd's own timeout only measures idleness, so a client that
 * trickles one header byte every few seconds would hold its connection
 * forever, and enough of them would fill crm_dashboard.http_max_connections
 * (slowloris).  So every connection also gets a deadline: from its accept,
 * or from the end of its previous request, it has
 * crm_dashboard.http_request_timeout seconds to deliver the next request's
 * headers and body.  The wait loop shuts down the sockets of connections
 * past their deadline; libmicrohttpd then sees the end of the stream and
 * closes them as usual.  Requests being answered (a long CSV download, an
 * event stream) have no deadline.
 *
 * Everything here but http_conn_reap() runs inside libmicrohttpd's
 * callbacks, so it must not throw: it allocates with malloc() only.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "lib/ilist.h"
#include "utils/timestamp.h"

#include "http.h"

/* One open connection. */
typedef struct HttpConn
{
	dlist_node	node;
	struct MHD_Connection *conn;
	bool		answering;		/* its request is complete and being answered */
	TimestampTz deadline;		/* else: when it must have sent its request */
} HttpConn;

static dlist_head conns = DLIST_STATIC_INIT(conns);
static int	open_connections = 0;

/* Refuse connections beyond crm_dashboard.http_max_connections (reloadable). */
enum MHD_Result
http_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	return open_connections < http_max_connections ? MHD_YES : MHD_NO;
}

/* Start the clock for the connection's next request. */
static void
start_deadline(HttpConn *c)
{
	c->answering = false;
	c->deadline = GetCurrentTimestamp() + (TimestampTz) http_request_timeout * USECS_PER_SEC;
}

/* Track connections as they open and close (libmicrohttpd's callback). */
void
http_connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
					   enum MHD_ConnectionNotificationCode toe)
{
	HttpConn   *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		open_connections++;
		c = malloc(sizeof(HttpConn));
		if (c == NULL)
			return;				/* untracked: only the idle timeout applies */
		c->conn = conn;
		start_deadline(c);
		dlist_push_tail(&conns, &c->node);
		*socket_context = c;
		return;
	}
	open_connections--;
	if (c != NULL)
	{
		dlist_delete(&c->node);
		free(c);
		*socket_context = NULL;
	}
}

/* The tracking entry of a connection, or NULL. */
static HttpConn *
conn_entry(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

/* The connection's request is complete: no deadline while it is answered. */
void
http_conn_request_received(struct MHD_Connection *conn)
{
	HttpConn   *c = conn_entry(conn);

	if (c != NULL)
		c->answering = true;
}

/* The connection's request is done: the next one must come in time. */
void
http_conn_request_done(struct MHD_Connection *conn)
{
	HttpConn   *c = conn_entry(conn);

	if (c != NULL)
		start_deadline(c);
}

/* Shut down the sockets of connections whose request is overdue. */
void
http_conn_reap(void)
{
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	it;

	dlist_foreach(it, &conns)
	{
		HttpConn   *c = dlist_container(HttpConn, node, it.cur);
		const union MHD_ConnectionInfo *info;

		if (c->answering || now < c->deadline)
			continue;
		info = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info != NULL)
			(void) shutdown(info->connect_fd, SHUT_RDWR);
		/* once is enough: libmicrohttpd closes it when it sees the shutdown */
		c->answering = true;
	}
}

/* Milliseconds until the next request deadline, or -1 when none. */
long
http_conn_next_timeout_ms(void)
{
	TimestampTz next = 0;
	dlist_iter	it;
	long		secs;
	int			usecs;

	dlist_foreach(it, &conns)
	{
		HttpConn   *c = dlist_container(HttpConn, node, it.cur);

		if (!c->answering && (next == 0 || c->deadline < next))
			next = c->deadline;
	}
	if (next == 0)
		return -1;
	TimestampDifference(GetCurrentTimestamp(), next, &secs, &usecs);
	return secs * 1000 + usecs / 1000 + 1;
}
