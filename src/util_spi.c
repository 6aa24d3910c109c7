/*
 * util_spi.c
 *		Running a statement through SPI with $n parameters, and failing loudly
 *		when SPI does not answer as expected: the one helper for what every
 *		module's SQL needs.
 */
#include "postgres.h"

#include "executor/spi.h"

#include "crm_dashboard.h"

/*
 * Run sql (SPI must be connected) with nargs parameters of the given types
 * (nulls as SPI takes them: NULL, or 'n' for a NULL parameter), fetching at
 * most tcount rows (0: all).  A result other than expected (SPI_OK_SELECT,
 * SPI_OK_UPDATE, ...) cannot happen and raises an internal error naming the
 * statement.  Returns the number of rows processed.
 */
uint64
crm_spi_execute(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				bool read_only, long tcount, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, tcount);

	if (rc != expected)
		elog(ERROR, "crm_dashboard: statement failed (%s): %s", SPI_result_code_string(rc), sql);
	return SPI_processed;
}
