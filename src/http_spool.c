/*
 * http_spool.c
 *		Spool files: reply bodies the request engine writes to disk for the
 *		HTTP worker to send (CSV, Excel).
 *
 * A body too large to cross the client protocol as a value is written,
 * inside the pooled connection's transaction, to a file in the data
 * directory's temporary-file area; the reply row names the file, and the
 * HTTP worker opens it, unlinks it and sends it with sendfile() after the
 * transaction has ended.  So memory stays bounded by one batch of rows, and
 * a slow client can neither pin a snapshot nor hold a pooled connection.
 *
 * A spool file of a transaction that fails is removed at once (a
 * transaction callback); its name starts with PostgreSQL's temporary-file
 * prefix, so even a crash leaves none behind after the restart.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "http_engine.h"

/* Spool files of the current transaction, removed if it aborts. */
static List *pending_spools = NIL;
static bool spool_callback_registered = false;

/* At the end of a transaction: an aborted one's spool files go; a committed one's are the worker's. */
static void
spool_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
		return;
	if (event != XACT_EVENT_COMMIT)
		foreach(lc, pending_spools)
			(void) unlink((char *) lfirst(lc));
	list_free_deep(pending_spools);
	pending_spools = NIL;
}

/*
 * Create a spool file under base/pgsql_tmp and return its descriptor; *path
 * is its name (relative to the data directory).  It is removed if the
 * transaction fails.
 */
int
http_spool_create(char **path)
{
	const char *dir = HTTP_SPOOL_DIR;
	MemoryContext old;
	int			fd;

	if (!spool_callback_registered)
	{
		RegisterXactCallback(spool_xact_callback, NULL);
		spool_callback_registered = true;
	}
	(void) MakePGDirectory(dir);
	*path = psprintf("%s/" HTTP_SPOOL_PREFIX "XXXXXX", dir);
	fd = mkstemp(*path);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a spool file in \"%s\": %m", dir)));
	old = MemoryContextSwitchTo(TopMemoryContext);
	pending_spools = lappend(pending_spools, pstrdup(*path));
	MemoryContextSwitchTo(old);
	return fd;
}

/* Write all of data to a spool file. */
void
http_spool_write(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write a spool file: %m")));
		data += n;
		len -= n;
	}
}

/* Make a finished spool file the reply's body, with its media type. */
void
http_spool_reply(EngineReply *reply, const char *path, const char *content_type)
{
	struct stat st;

	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat the spool file \"%s\": %m", path)));
	reply->file = pstrdup(path);
	reply->file_size = (uint64) st.st_size;
	reply->content_type = content_type;
}

/* Drop a spooled body that an error replaces. */
void
http_spool_discard(EngineReply *reply)
{
	if (reply->file == NULL)
		return;
	if (unlink(reply->file) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove the spool file \"%s\": %m", reply->file)));
	reply->file = NULL;
	reply->file_size = 0;
}
