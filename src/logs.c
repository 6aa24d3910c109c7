/*
 * logs.c
 *		SQL functions of the log store (src/logs.sql): cutting a whole log
 *		into chunks the way the launcher cuts the tail of a running one.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"

#include "crm_dashboard.h"
#include "log_chunk.h"

PG_FUNCTION_INFO_V1(crm_dashboard_log_split);

/*
 * crm_dashboard.log_split(log): (seq, first_line, first_byte, body) of each
 * chunk, numbered from 1.  The log is valid text already, and chunks end
 * on character boundaries, so every body is valid text too.
 */
Datum
crm_dashboard_log_split(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *log = PG_GETARG_TEXT_PP(0);
	const char *data = VARDATA_ANY(log);
	Size		len = VARSIZE_ANY_EXHDR(log);
	Size		done = 0;
	int64		line = 1;
	int32		seq = 0;

	InitMaterializedSRF(fcinfo, 0);
	while (done < len)
	{
		Size		n = log_chunk_cut(data + done, len - done, LOG_CHUNK_MAX);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(++seq);
		values[1] = Int64GetDatum(line);
		values[2] = Int64GetDatum((int64) done);
		values[3] = PointerGetDatum(cstring_to_text_with_len(data + done, n));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		line += log_count_lines(data + done, n);
		done += n;
	}
	PG_RETURN_NULL();
}
