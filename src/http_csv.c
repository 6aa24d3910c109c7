/*
 * http_csv.c
 *		CSV replies of any SPI result set, in exactly the format of
 *		COPY ... TO STDOUT WITH (FORMAT csv, HEADER).
 *
 * This is the one CSV writer: views, functions and the model export all
 * come through it, so a value looks the same whichever way it is asked for.
 * Its quoting follows CopyAttributeOutCSV in src/backend/commands/copyto.c:
 * a field is quoted when it contains the delimiter, the quote character, a
 * carriage return or a newline, when it is the empty string (NULL is the
 * empty unquoted field, so the two stay apart), and when it is \. as the
 * only field of its line; quotes inside are doubled.  Leading and trailing
 * spaces are kept as they are, unquoted, as COPY does.
 *
 * A download (neutralize) also defuses spreadsheet formulas, as OWASP
 * recommends for CSV injection: a text cell beginning with =, +, -, @, tab
 * or carriage return gets a leading ', so Excel and LibreOffice show it as
 * text instead of running it.  Numeric columns are left alone (-5 is a
 * number, not a formula).
 *
 * It runs in the pooled connection that serves the request (the request
 * engine): rows come from a portal in batches and go to a spool file
 * (http_spool.c), which the HTTP worker then sends.  Memory stays bounded by
 * one batch, the rows never cross the client protocol, and the transaction
 * ends before the first byte goes out.
 */
#include "postgres.h"

#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "http_engine.h"


static bool csv_neutralize_formulas = true;

/* Define crm_dashboard.csv_neutralize_formulas (called from engine_init). */
void
http_csv_init(void)
{
	DefineCustomBoolVariable("crm_dashboard.csv_neutralize_formulas",
							 "Prefix ' to cells of CSV downloads that a spreadsheet would take for a formula.",
							 "Cells of export_rows downloads beginning with =, +, -, @, tab or carriage return, "
							 "except in numeric columns (OWASP's advice against CSV injection).  Off writes them "
							 "as they are.  Other CSV is always exactly COPY's.",
							 &csv_neutralize_formulas, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* Whether downloads neutralise formulas (crm_dashboard.csv_neutralize_formulas). */
bool
http_csv_neutralizes(void)
{
	return csv_neutralize_formulas;
}

/* A CSV reply being written. */
struct HttpCsv
{
	EngineReply *reply;
	char	   *path;
	int			fd;
	bool		neutralize;		/* a download: defuse formulas */
	bool		header_done;
	int			ncols;
	bool	   *numeric;		/* per column: never neutralised */
	StringInfoData buf;			/* bytes not yet written to the spool */
	uint64		written;
	uint64		rows;
};

#define CSV_BATCH_ROWS 1000
#define CSV_FLUSH_BYTES (256 * 1024)

/* Write the buffered bytes to the spool file, then empty the buffer. */
static void
flush_spool(HttpCsv *csv)
{
	http_spool_write(csv->fd, csv->buf.data, csv->buf.len);
	csv->written += csv->buf.len;
	resetStringInfo(&csv->buf);
}

/* Whether a spreadsheet would take a cell beginning like v for a formula. */
static bool
looks_like_formula(const char *v)
{
	return v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;
}

/*
 * Append one field as COPY's CSV format writes it (see the file header);
 * NULL is the empty field.  single is true when the line has one field only.
 */
static void
append_field(StringInfo buf, const char *v, bool single, bool defuse)
{
	const char *c;
	bool		quote;

	if (v == NULL)
		return;
	quote = v[0] == '\0' || (single && strcmp(v, "\\.") == 0) || strpbrk(v, ",\"\r\n") != NULL;
	if (quote)
		appendStringInfoChar(buf, '"');
	if (defuse && looks_like_formula(v))
		appendStringInfoChar(buf, '\'');
	if (!quote)
		appendStringInfoString(buf, v);
	else
	{
		for (c = v; *c; c++)
		{
			if (*c == '"')
				appendStringInfoChar(buf, '"');
			appendStringInfoChar(buf, *c);
		}
		appendStringInfoChar(buf, '"');
	}
}

/* Start a CSV reply into a spool file; neutralize for downloads. */
HttpCsv *
http_csv_open(EngineReply *reply, bool neutralize)
{
	HttpCsv    *csv = palloc0(sizeof(HttpCsv));

	csv->reply = reply;
	csv->neutralize = neutralize;
	initStringInfo(&csv->buf);
	csv->fd = http_spool_create(&csv->path);
	return csv;
}

/* The header line from the result's column names; notes the numeric columns. */
static void
append_header(HttpCsv *csv, TupleDesc desc)
{
	int			i;

	csv->ncols = desc->natts;
	csv->numeric = palloc0(sizeof(bool) * (desc->natts + 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char		category;
		bool		preferred;

		get_type_category_preferred(att->atttypid, &category, &preferred);
		csv->numeric[i] = category == TYPCATEGORY_NUMERIC;
		if (i > 0)
			appendStringInfoChar(&csv->buf, ',');
		append_field(&csv->buf, NameStr(att->attname), desc->natts == 1, csv->neutralize);
	}
	appendStringInfoChar(&csv->buf, '\n');
	csv->header_done = true;
}

/* Append the rows of the current SPI_tuptable. */
static void
append_rows(HttpCsv *csv)
{
	uint64		r;
	int			i;

	for (r = 0; r < SPI_processed; r++)
	{
		for (i = 0; i < csv->ncols; i++)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i + 1);

			if (i > 0)
				appendStringInfoChar(&csv->buf, ',');
			append_field(&csv->buf, v, csv->ncols == 1, csv->neutralize && !csv->numeric[i]);
			if (v)
				pfree(v);
		}
		appendStringInfoChar(&csv->buf, '\n');
	}
}

/*
 * Append the header (the first time) and then at most limit rows (-1: all)
 * of an open portal, fetched in batches.  Call with SPI connected.
 */
void
http_csv_portal(HttpCsv *csv, Portal portal, int64 limit)
{
	int64		left = limit;

	if (!csv->header_done)
		append_header(csv, portal->tupDesc);
	while (limit < 0 || left > 0)
	{
		long		want = (limit < 0 || left > CSV_BATCH_ROWS) ? CSV_BATCH_ROWS : (long) left;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, want);
		if (SPI_processed == 0)
			break;
		csv->rows += SPI_processed;
		left -= (int64) SPI_processed;
		append_rows(csv);
		SPI_freetuptable(SPI_tuptable);
		if (csv->buf.len >= CSV_FLUSH_BYTES)
			flush_spool(csv);
	}
}

/* Finish the CSV: flush, close, and make the file the reply's body. */
uint64
http_csv_close(HttpCsv *csv)
{
	flush_spool(csv);
	if (close(csv->fd) != 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not close the CSV spool file: %m")));
	csv->fd = -1;
	csv->reply->file = csv->path;
	csv->reply->file_size = csv->written;
	csv->reply->content_type = "text/csv; charset=utf-8";
	return csv->rows;
}

/*
 * Run sql (text parameters) into a CSV reply for machines, values exactly
 * as COPY writes them; returns the number of rows.  Call with SPI connected.
 */
uint64
http_csv_query(EngineReply *reply, const char *sql, int nargs, Datum *values, const char *nulls)
{
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 1));
	HttpCsv    *csv = http_csv_open(reply, false);
	Portal		portal;
	int			i;

	for (i = 0; i < nargs; i++)
		types[i] = TEXTOID;
	portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, values, nulls, true, 0);
	http_csv_portal(csv, portal, -1);
	SPI_cursor_close(portal);
	return http_csv_close(csv);
}
