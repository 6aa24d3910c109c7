/*
 * util_srf.c
 *		Return the rows of an SPI query as a set-returning function's result.
 *
 * Most of crm_dashboard's reading functions are one catalog-aware query;
 * this keeps the tuplestore plumbing in one place.  The query's columns must
 * match the function's declared result columns in number and type.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "utils/tuplestore.h"

#include "crm_dashboard.h"

void
crm_materialize_query(FunctionCallInfo fcinfo, const char *sql, int nargs,
					  Oid *argtypes, Datum *values, const char *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Datum	   *row;
	bool	   *rownulls;

	InitMaterializedSRF(fcinfo, 0);
	desc = rsinfo->setDesc;
	row = palloc(sizeof(Datum) * desc->natts);
	rownulls = palloc(sizeof(bool) * desc->natts);

	SPI_connect();
	crm_spi_execute(sql, nargs, argtypes, values, nulls, true, 0, SPI_OK_SELECT);
	if (SPI_tuptable->tupdesc->natts != desc->natts)
		elog(ERROR, "crm_dashboard: query returns %d columns, function declares %d",
			 SPI_tuptable->tupdesc->natts, desc->natts);
	for (int c = 0; c < desc->natts; c++)
		if (TupleDescAttr(SPI_tuptable->tupdesc, c)->atttypid != TupleDescAttr(desc, c)->atttypid)
			elog(ERROR, "crm_dashboard: result column %d has type %u, function declares %u",
				 c + 1, TupleDescAttr(SPI_tuptable->tupdesc, c)->atttypid,
				 TupleDescAttr(desc, c)->atttypid);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, rownulls);
		tuplestore_putvalues(rsinfo->setResult, desc, row, rownulls);
	}
	SPI_finish();
}
