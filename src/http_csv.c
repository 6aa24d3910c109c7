/*
 * http_csv.c
 *		CSV replies: a header line, then one line per row, quoted as COPY's
 *		CSV format does, NULL as an empty field.
 *
 * Rows come from an SPI cursor in batches and go to an anonymous spool file
 * (in the data directory's temporary-file area) that libmicrohttpd then
 * sends with sendfile().  Memory stays bounded by one batch, and the
 * request's transaction ends before the first byte goes out: a slow client
 * can neither pin a snapshot (holding back vacuum) nor stall the other
 * requests this worker serves, which a cursor held open across the wait
 * loop would do.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/fd.h"

#include "http.h"

#define CSV_BATCH_ROWS 1000
#define CSV_FLUSH_BYTES (256 * 1024)

/* Open an anonymous spool file under base/pgsql_tmp. */
static int
open_spool(void)
{
	const char *dir = "base/" PG_TEMP_FILES_DIR;
	int			fd;

	(void) MakePGDirectory(dir);
	fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	if (fd < 0)
	{
		/* filesystems without O_TMPFILE: a named file, unlinked at once */
		char	   *path = psprintf("%s/crm_dashboard_csv.XXXXXX", dir);

		fd = mkstemp(path);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a CSV spool file in \"%s\": %m", dir)));
	return fd;
}

/* Write the whole buffer to fd, then empty it. */
static void
flush_spool(int fd, StringInfo buf, uint64 *written)
{
	char	   *p = buf->data;
	size_t		left = buf->len;

	while (left > 0)
	{
		ssize_t		n = write(fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write the CSV spool file: %m")));
		p += n;
		left -= n;
	}
	*written += buf->len;
	resetStringInfo(buf);
}

/* Append one CSV field: quoted when it holds a delimiter, quote, newline,
 * edge spaces, or is empty (so it differs from NULL). */
static void
append_field(StringInfo buf, const char *v)
{
	const char *c;

	if (v == NULL)
		return;
	if (v[0] != '\0' && strpbrk(v, ",\"\r\n") == NULL && v[0] != ' ' && v[strlen(v) - 1] != ' ')
	{
		appendStringInfoString(buf, v);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (c = v; *c; c++)
	{
		if (*c == '"')
			appendStringInfoChar(buf, '"');
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '"');
}

/* The header line: the given names, or the result's column names. */
static void
append_header(StringInfo buf, List *header, TupleDesc desc, int width)
{
	int			i;

	if (header != NIL)
	{
		ListCell   *lc;

		foreach(lc, header)
		{
			if (foreach_current_index(lc) > 0)
				appendStringInfoChar(buf, ',');
			append_field(buf, lfirst(lc));
		}
	}
	else
		for (i = 0; i < width; i++)
		{
			if (i > 0)
				appendStringInfoChar(buf, ',');
			append_field(buf, NameStr(TupleDescAttr(desc, i)->attname));
		}
	appendStringInfoChar(buf, '\n');
}

/* Append the first ncols columns of the rows of the current SPI_tuptable. */
static void
append_rows(StringInfo buf, int ncols)
{
	uint64		r;
	int			i;

	for (r = 0; r < SPI_processed; r++)
	{
		for (i = 1; i <= ncols; i++)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i);

			if (i > 1)
				appendStringInfoChar(buf, ',');
			append_field(buf, v);
			if (v)
				pfree(v);
		}
		appendStringInfoChar(buf, '\n');
	}
}

/* Start a CSV reply: the spool file; the header comes with the first query. */
HttpCsv *
http_csv_open(HttpRequest *req, List *header)
{
	HttpCsv    *csv = palloc0(sizeof(HttpCsv));

	csv->req = req;
	csv->header = header;
	initStringInfo(&csv->buf);
	req->reply.fd = open_spool();
	return csv;
}

/*
 * Append the rows of sql to the CSV, at most ncols columns of each (0: all),
 * through an SPI cursor in batches.  Call with SPI connected.
 */
void
http_csv_query(HttpCsv *csv, const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls, int ncols)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, values, nulls, true, 0);
	int			width = portal->tupDesc->natts;

	if (ncols > 0 && ncols < width)
		width = ncols;
	if (!csv->header_done)
	{
		append_header(&csv->buf, csv->header, portal->tupDesc, width);
		csv->header_done = true;
	}
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, CSV_BATCH_ROWS);
		if (SPI_processed == 0)
			break;
		csv->rows += SPI_processed;
		append_rows(&csv->buf, width);
		SPI_freetuptable(SPI_tuptable);
		if (csv->buf.len >= CSV_FLUSH_BYTES)
			flush_spool(csv->req->reply.fd, &csv->buf, &csv->written);
	}
	SPI_cursor_close(portal);
}

/* Finish the CSV: flush, rewind, and make the file the reply's body. */
uint64
http_csv_close(HttpCsv *csv)
{
	int			fd = csv->req->reply.fd;

	/* no query ran (a search on a model without text): the header alone */
	if (!csv->header_done && csv->header != NIL)
	{
		append_header(&csv->buf, csv->header, NULL, 0);
		csv->header_done = true;
	}
	flush_spool(fd, &csv->buf, &csv->written);
	if (lseek(fd, 0, SEEK_SET) < 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not rewind the CSV spool file: %m")));
	csv->req->reply.fd_size = csv->written;
	return csv->rows;
}

/*
 * Run sql (text parameters) into a CSV reply; returns the number of rows.
 * Call with SPI connected.
 */
uint64
http_csv_spool(HttpRequest *req, const char *sql, int nargs, Datum *values,
			   const char *nulls, List *header)
{
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 1));
	HttpCsv    *csv = http_csv_open(req, header);
	int			i;

	for (i = 0; i < nargs; i++)
		types[i] = TEXTOID;
	http_csv_query(csv, sql, nargs, types, values, nulls, 0);
	return http_csv_close(csv);
}
