/*
 * http_xlsx.c
 *		The model export as an Excel workbook (.xlsx), written with
 *		libxlsxwriter into a spool file that the HTTP worker sends.
 *
 * It reads the same export cursor as the CSV export (export_cursor: the
 * filtered, sorted rows of a model), in batches, and writes each row as it
 * comes: libxlsxwriter's constant_memory mode flushes a row to its temporary
 * file (in the data directory's temporary-file area) as soon as the next one
 * starts, so memory stays one batch of rows whatever the row count.
 *
 * Cells are typed by the column's type: numbers are numbers, dates and
 * timestamps are Excel dates (a timestamptz in the session's time zone,
 * which its header names), booleans are booleans, NULL is an empty cell and
 * everything else (JSON, arrays, intervals, ...) is its text.  A number
 * Excel cannot hold exactly (more than 15 significant digits, NaN,
 * infinity) and a date outside Excel's years 1900..9999 are written as text
 * rather than changed.  Every cell is written as a value, never a formula,
 * so a text beginning with "=" stays text: there is no formula injection.
 *
 * Layout: the header row is frozen and carries an autofilter; column widths
 * come from the header and the first rows.  Excel's limits are kept: at
 * most 1,048,575 rows below the header and 32,767 characters per cell.
 * What goes past them is cut, and a second sheet, "Notes", says what was
 * cut, as does the reply's Export-Note header; the file is never corrupt.
 */
#include "postgres.h"

#include <math.h>
#include <unistd.h>

#include <xlsxwriter.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http_engine.h"

#define XLSX_BATCH_ROWS 1000
#define XLSX_MAX_ROWS (LXW_ROW_MAX - 1)	/* below the header */
#define XLSX_MAX_CELL_CHARS 32767
#define XLSX_WIDTH_ROWS 100		/* rows that set the column widths */
#define XLSX_MIN_WIDTH 8
#define XLSX_MAX_WIDTH 60

/* How a column's values become cells. */
typedef enum XlsxKind
{
	XLSX_TEXT,
	XLSX_NUMBER,
	XLSX_BOOLEAN,
	XLSX_DATE,
	XLSX_TIMESTAMP,				/* without time zone */
	XLSX_TIMESTAMPTZ,			/* in the session's time zone */
	XLSX_TIME
} XlsxKind;

/* A workbook being written. */
typedef struct Xlsx
{
	lxw_workbook *workbook;
	lxw_worksheet *sheet;
	lxw_format *header_format;
	lxw_format *date_format;
	lxw_format *timestamp_format;
	lxw_format *time_format;
	int			ncols;
	XlsxKind   *kinds;
	Oid		   *basetypes;
	Oid		   *outfuncs;
	double	   *widths;
	uint64		rows;			/* written below the header */
	uint64		rows_cut;		/* past Excel's row limit */
	uint64		cells_cut;		/* longer than Excel's cell limit */
	char	   *first_cell_cut; /* "column x, row n" */
	MemoryContext keep;			/* where what outlives a batch goes */
	MemoryContext batch;		/* reset after every batch of rows */
} Xlsx;

/* Raise an error for a libxlsxwriter call that failed. */
static void
check(lxw_error err, const char *what)
{
	if (err != LXW_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not write the Excel export: %s: %s", what, lxw_strerror(err))));
}

/* The cell kind of a column type. */
static XlsxKind
kind_of(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case OIDOID:
			return XLSX_NUMBER;
		case BOOLOID:
			return XLSX_BOOLEAN;
		case DATEOID:
			return XLSX_DATE;
		case TIMESTAMPOID:
			return XLSX_TIMESTAMP;
		case TIMESTAMPTZOID:
			return XLSX_TIMESTAMPTZ;
		case TIMEOID:
			return XLSX_TIME;
		default:
			return XLSX_TEXT;
	}
}

/* The number of characters of a UTF-8 text. */
static int
text_chars(const char *s)
{
	return pg_mbstrlen(s);
}

/* Widen a column to fit n characters, within the bounds. */
static void
fit_width(Xlsx *x, int col, int n)
{
	double		w = Min(Max(n + 2, XLSX_MIN_WIDTH), XLSX_MAX_WIDTH);

	if (w > x->widths[col])
		x->widths[col] = w;
}

/* The workbook, its formats and its data sheet, with the header row. */
static void
open_workbook(Xlsx *x, const char *path, TupleDesc desc, const char *sheet_name)
{
	lxw_workbook_options options = {.constant_memory = LXW_TRUE, .tmpdir = HTTP_SPOOL_DIR,
	.use_zip64 = LXW_TRUE};
	char	   *name = pnstrdup(sheet_name, pg_mbcharcliplen(sheet_name, strlen(sheet_name), 31));
	const char *zone = pg_get_timezone_name(session_timezone);

	x->workbook = workbook_new_opt(path, &options);
	if (x->workbook == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create the Excel export \"%s\"", path)));
	x->sheet = workbook_add_worksheet(x->workbook, name);
	if (x->sheet == NULL)
		x->sheet = workbook_add_worksheet(x->workbook, "rows");
	if (x->sheet == NULL)
		elog(ERROR, "crm_dashboard: could not add a worksheet to the Excel export");
	x->header_format = workbook_add_format(x->workbook);
	format_set_bold(x->header_format);
	x->date_format = workbook_add_format(x->workbook);
	format_set_num_format(x->date_format, "yyyy-mm-dd");
	x->timestamp_format = workbook_add_format(x->workbook);
	format_set_num_format(x->timestamp_format, "yyyy-mm-dd hh:mm:ss");
	x->time_format = workbook_add_format(x->workbook);
	format_set_num_format(x->time_format, "hh:mm:ss");

	x->ncols = Min(desc->natts, LXW_COL_MAX);
	x->kinds = palloc(sizeof(XlsxKind) * (x->ncols + 1));
	x->basetypes = palloc(sizeof(Oid) * (x->ncols + 1));
	x->outfuncs = palloc(sizeof(Oid) * (x->ncols + 1));
	x->widths = palloc0(sizeof(double) * (x->ncols + 1));
	for (int c = 0; c < x->ncols; c++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, c);
		char	   *header = NameStr(att->attname);
		bool		varlena;

		x->kinds[c] = kind_of(att->atttypid);
		x->basetypes[c] = getBaseType(att->atttypid);
		getTypeOutputInfo(att->atttypid, &x->outfuncs[c], &varlena);
		/* a timestamptz is shown in the session's time zone: the header says which */
		if (x->kinds[c] == XLSX_TIMESTAMPTZ)
			header = psprintf("%s (%s)", header, zone ? zone : "UTC");
		check(worksheet_write_string(x->sheet, 0, c, header, x->header_format), "header");
		fit_width(x, c, text_chars(header) + 2);	/* room for the filter button */
		if (x->kinds[c] == XLSX_DATE)
			fit_width(x, c, 10);
		else if (x->kinds[c] == XLSX_TIMESTAMP || x->kinds[c] == XLSX_TIMESTAMPTZ)
			fit_width(x, c, 19);
	}
	worksheet_freeze_panes(x->sheet, 1, 0);
}

/* Whether a number's text holds more significant digits than a double keeps. */
static bool
too_precise(const char *text)
{
	int			digits = 0;
	bool		leading = true;
	const char *p;

	for (p = text; *p && *p != 'e' && *p != 'E'; p++)
	{
		if (*p < '0' || *p > '9')
			continue;
		if (leading && *p == '0')
			continue;
		leading = false;
		digits++;
	}
	/* trailing zeros of an integer part or fraction count as digits here: stay safe */
	return digits > 15;
}

/* Write a number cell, or its text when Excel would change it. */
static void
write_number(Xlsx *x, lxw_row_t row, int col, const char *text)
{
	char	   *end;
	double		v = strtod(text, &end);

	if (*end != '\0' || !isfinite(v) || too_precise(text))
		check(worksheet_write_string(x->sheet, row, col, text, NULL), "a number as text");
	else
		check(worksheet_write_number(x->sheet, row, col, v, NULL), "a number");
}

/*
 * Write a date, timestamp or time cell from its value; false when Excel
 * cannot hold it as a date (infinity, outside the years 1900..9999).
 */
static bool
write_temporal_direct(Xlsx *x, lxw_row_t row, int col, Datum value)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz;
	lxw_format *format = x->timestamp_format;

	memset(&tm, 0, sizeof(tm));
	switch (x->kinds[col])
	{
		case XLSX_DATE:
			if (DATE_NOT_FINITE(DatumGetDateADT(value)))
				return false;
			j2date(DatumGetDateADT(value) + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
			format = x->date_format;
			break;
		case XLSX_TIMESTAMP:
		case XLSX_TIMESTAMPTZ:
			if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value)) ||
				timestamp2tm(DatumGetTimestamp(value), x->kinds[col] == XLSX_TIMESTAMPTZ ? &tz : NULL,
							 &tm, &fsec, NULL, NULL) != 0)
				return false;
			break;
		case XLSX_TIME:
			{
				lxw_datetime dt;

				time2tm(DatumGetTimeADT(value), &tm, &fsec);
				memset(&dt, 0, sizeof(dt));
				dt.hour = tm.tm_hour;
				dt.min = tm.tm_min;
				dt.sec = tm.tm_sec + fsec / 1000000.0;
				check(worksheet_write_datetime(x->sheet, row, col, &dt, x->time_format), "a time");
				return true;
			}
		default:
			return false;
	}
	if (tm.tm_year < 1900 || tm.tm_year > 9999)
		return false;
	{
		lxw_datetime dt = {tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec + fsec / 1000000.0};

		check(worksheet_write_datetime(x->sheet, row, col, &dt, format), "a date");
	}
	return true;
}

/* Write a date, timestamp or time cell, or its text when Excel cannot hold it as a date. */
static void
write_temporal(Xlsx *x, lxw_row_t row, int col, Datum value, const char *text)
{
	if (!write_temporal_direct(x, row, col, value))
		check(worksheet_write_string(x->sheet, row, col, text, NULL), "a date as text");
}

/* Write a text cell, cut to Excel's limit of characters (and noted). */
static void
write_text(Xlsx *x, lxw_row_t row, int col, const char *text, const char *colname)
{
	if (strlen(text) > XLSX_MAX_CELL_CHARS && text_chars(text) > XLSX_MAX_CELL_CHARS)
	{
		/* the first XLSX_MAX_CELL_CHARS characters, never half of one */
		text = pnstrdup(text, pg_mbcharcliplen(text, strlen(text), XLSX_MAX_CELL_CHARS));
		if (x->cells_cut++ == 0)
			x->first_cell_cut = MemoryContextStrdup(x->keep, psprintf("column %s, row %u", colname, (unsigned) row + 1));
	}
	check(worksheet_write_string(x->sheet, row, col, text, NULL), "a text");
}

/*
 * Write a cell of a type Excel holds as a number or boolean straight from
 * its value, without its text; false when the value needs its text (a
 * numeric, an int8 beyond 2^53, a width still to measure).
 */
static bool
write_direct(Xlsx *x, lxw_row_t row, int col, Oid typid, Datum value)
{
	double		v;

	switch (typid)
	{
		case INT2OID:
			v = DatumGetInt16(value);
			break;
		case INT4OID:
			v = DatumGetInt32(value);
			break;
		case INT8OID:
			/* beyond 2^53 a double is not exact: written as text */
			if (DatumGetInt64(value) > (INT64CONST(1) << 53) || DatumGetInt64(value) < -(INT64CONST(1) << 53))
				return false;
			v = (double) DatumGetInt64(value);
			break;
		case FLOAT8OID:
			v = DatumGetFloat8(value);
			if (!isfinite(v))
				return false;
			break;
		case BOOLOID:
			check(worksheet_write_boolean(x->sheet, row, col, DatumGetBool(value), NULL), "a boolean");
			return true;
		default:
			return false;
	}
	check(worksheet_write_number(x->sheet, row, col, v, NULL), "a number");
	return true;
}

/* Write one row of the current batch below the rows already written. */
static void
write_row(Xlsx *x, HeapTuple tuple, TupleDesc desc)
{
	lxw_row_t	row = (lxw_row_t) (x->rows + 1);
	bool		measure = x->rows < XLSX_WIDTH_ROWS;

	for (int c = 0; c < x->ncols; c++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(tuple, desc, c + 1, &isnull);
		char	   *text;

		if (isnull)
			continue;			/* NULL is an empty cell */
		if (!measure && write_direct(x, row, c, x->basetypes[c], value))
			continue;
		/* dates and timestamps past the first rows need their text only outside Excel's years */
		if (!measure && x->kinds[c] != XLSX_TEXT && x->kinds[c] != XLSX_NUMBER && x->kinds[c] != XLSX_BOOLEAN &&
			write_temporal_direct(x, row, c, value))
			continue;
		text = OidOutputFunctionCall(x->outfuncs[c], value);
		if (x->rows < XLSX_WIDTH_ROWS)
			fit_width(x, c, x->kinds[c] == XLSX_TEXT ? text_chars(text) : (int) strlen(text));
		switch (x->kinds[c])
		{
			case XLSX_NUMBER:
				write_number(x, row, c, text);
				break;
			case XLSX_BOOLEAN:
				check(worksheet_write_boolean(x->sheet, row, c, DatumGetBool(value), NULL), "a boolean");
				break;
			case XLSX_DATE:
			case XLSX_TIMESTAMP:
			case XLSX_TIMESTAMPTZ:
			case XLSX_TIME:
				write_temporal(x, row, c, value, text);
				break;
			case XLSX_TEXT:
				write_text(x, row, c, text, NameStr(TupleDescAttr(desc, c)->attname));
				break;
		}
		pfree(text);
	}
	x->rows++;
}

/* The widths the first rows asked for; libxlsxwriter writes them at close. */
static void
set_widths(Xlsx *x)
{
	for (int c = 0; c < x->ncols; c++)
		check(worksheet_set_column(x->sheet, c, c, x->widths[c], NULL), "a column width");
}

/* The Notes sheet and the Export-Note header: what Excel's limits cut. */
static void
add_notes(Xlsx *x, EngineReply *reply, int ncols_total)
{
	List	   *notes = NIL;
	lxw_worksheet *sheet;
	ListCell   *lc;
	int			row = 0;

	if (x->rows_cut > 0)
		notes = lappend(notes, psprintf("Excel holds at most %d rows below the header: this file has the first %d; "
										UINT64_FORMAT " more rows matched. Narrow the filter, or export CSV for every row.",
										XLSX_MAX_ROWS, XLSX_MAX_ROWS, x->rows_cut));
	if (x->cells_cut > 0)
		notes = lappend(notes, psprintf(UINT64_FORMAT " cells were longer than Excel's %d characters and were cut "
										"(the first: %s). Export CSV for the whole values.",
										x->cells_cut, XLSX_MAX_CELL_CHARS, x->first_cell_cut));
	if (ncols_total > x->ncols)
		notes = lappend(notes, psprintf("Excel holds at most %d columns: %d more columns were left out.",
										LXW_COL_MAX, ncols_total - x->ncols));
	if (notes == NIL)
		return;
	sheet = workbook_add_worksheet(x->workbook, "Notes");
	if (sheet == NULL)
		elog(ERROR, "crm_dashboard: could not add the Notes sheet to the Excel export");
	check(worksheet_set_column(sheet, 0, 0, 120, NULL), "the notes' width");
	foreach(lc, notes)
		check(worksheet_write_string(sheet, row++, 0, (char *) lfirst(lc), NULL), "a note");
	engine_header(reply, "Export-Note", (char *) linitial(notes));
}

/* Fetch and write the rows of the portal, at most limit (-1: all) and Excel's limit. */
static void
write_rows(Xlsx *x, Portal portal, int64 limit, int *ncols_total)
{
	int64		left = limit;
	MemoryContext old;

	for (;;)
	{
		long		want = XLSX_BATCH_ROWS;

		CHECK_FOR_INTERRUPTS();
		if (limit >= 0 && left < want)
			want = (long) left;
		if (want == 0)
			break;
		SPI_cursor_fetch(portal, true, want);
		*ncols_total = SPI_tuptable->tupdesc->natts;
		/* the texts and detoasted values of a batch go with it */
		old = MemoryContextSwitchTo(x->batch);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			if (x->rows >= XLSX_MAX_ROWS)
			{
				x->rows_cut += SPI_processed - i;
				break;
			}
			write_row(x, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(x->batch);
		left -= SPI_processed;
		if (SPI_processed < (uint64) want)
		{
			SPI_freetuptable(SPI_tuptable);
			break;
		}
		SPI_freetuptable(SPI_tuptable);
		if (x->rows >= XLSX_MAX_ROWS)
		{
			/* count what Excel cannot hold, for the note, without reading it into the file */
			SPI_cursor_move(portal, true, limit >= 0 ? (long) left : FETCH_ALL);
			x->rows_cut += SPI_processed;
			break;
		}
	}
}

/*
 * Write at most limit rows (-1: all) of the portal as a workbook whose data
 * sheet is called sheet, into a spool file that becomes the reply's body.
 */
void
http_xlsx_portal(EngineReply *reply, Portal portal, int64 limit, const char *sheet)
{
	Xlsx		x;
	char	   *path;
	int			fd = http_spool_create(&path);
	int			ncols_total = 0;
	TupleDesc	desc;

	/* libxlsxwriter writes the file by its name: the spool file reserves that name */
	if (close(fd) != 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not close the spool file: %m")));
	memset(&x, 0, sizeof(x));
	x.keep = CurrentMemoryContext;
	x.batch = AllocSetContextCreate(CurrentMemoryContext, "crm_dashboard xlsx batch", ALLOCSET_DEFAULT_SIZES);
	/* the header needs the columns: the portal knows them before any fetch */
	desc = portal->tupDesc;
	if (desc == NULL)
		elog(ERROR, "crm_dashboard: the export cursor returns no rows");
	PG_TRY();
	{
		lxw_error	err;

		open_workbook(&x, path, desc, sheet);
		ncols_total = desc->natts;
		write_rows(&x, portal, limit, &ncols_total);
		set_widths(&x);
		worksheet_autofilter(x.sheet, 0, 0, (lxw_row_t) x.rows, (lxw_col_t) (Max(x.ncols, 1) - 1));
		add_notes(&x, reply, ncols_total);
		err = workbook_close(x.workbook);
		x.workbook = NULL;		/* workbook_close frees it, whatever it returns */
		check(err, "closing the workbook");
	}
	PG_CATCH();
	{
		if (x.workbook)
			lxw_workbook_free(x.workbook);
		PG_RE_THROW();
	}
	PG_END_TRY();
	http_spool_reply(reply, path, HTTP_XLSX_MEDIA_TYPE);
}
