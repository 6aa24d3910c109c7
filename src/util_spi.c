/*
 * util_spi.c
 *		Running a statement through SPI with $n parameters, and failing loudly
 *		when SPI does not answer as expected: the one helper for what every
 *		module's SQL needs.
 *
 * Statements are prepared once per backend and kept: the SQL of every
 * module is fixed text with values as parameters (identifiers, quoted, are
 * the only part built at run time), so the same few hundred texts come
 * back, and planning the catalog joins of discovery or the views of
 * crm_api is a large share of their cost.  Kept plans are PostgreSQL's
 * plan cache entries: DDL, ANALYZE or a changed search_path re-plans them
 * as it would a prepared statement.  The least recently used go when
 * PLAN_CACHE_SIZE are kept, but never one that is running: a statement's
 * functions run statements of their own through here.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "access/htup_details.h"
#include "executor/spi.h"
#include "utils/memutils.h"

#include "crm_dashboard.h"

#define PLAN_CACHE_SIZE 128

typedef struct CachedSpiPlan
{
	uint32		hash;			/* of sql and the parameter types */
	char	   *sql;			/* NULL: a free slot */
	int			nargs;
	Oid		   *types;
	SPIPlanPtr	plan;
	uint64		last_used;
	int			running;		/* executions under way (nested calls): never evicted then */
} CachedSpiPlan;

static CachedSpiPlan plans[PLAN_CACHE_SIZE];
static uint64 plan_clock = 0;

static uint32
plan_hash(const char *sql, int nargs, const Oid *types)
{
	uint32		h = hash_bytes((const unsigned char *) sql, strlen(sql));

	if (nargs > 0)
		h = hash_combine(h, hash_bytes((const unsigned char *) types, sizeof(Oid) * nargs));
	return h;
}

static bool
plan_matches(const CachedSpiPlan *p, uint32 hash, const char *sql, int nargs, const Oid *types)
{
	return p->sql != NULL && p->hash == hash && p->nargs == nargs &&
		(nargs == 0 || memcmp(p->types, types, sizeof(Oid) * nargs) == 0) &&
		strcmp(p->sql, sql) == 0;
}

static SPIPlanPtr
prepare(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "crm_dashboard: could not prepare a statement (%s): %s",
			 SPI_result_code_string(SPI_result), sql);
	return plan;
}

/* Free a slot's plan and text. */
static void
forget_plan(CachedSpiPlan *p)
{
	if (p->sql == NULL)
		return;
	SPI_freeplan(p->plan);
	pfree(p->sql);
	if (p->types)
		pfree(p->types);
	memset(p, 0, sizeof(*p));
}

/*
 * The slot holding the kept plan of sql with these parameter types,
 * prepared on first use; NULL when every slot runs a statement now (the
 * caller then runs a plan of its own).
 */
static pg_noinline CachedSpiPlan *
cached_plan(const char *sql, int nargs, Oid *types)
{
	uint32		hash = plan_hash(sql, nargs, types);
	CachedSpiPlan *victim = NULL;
	SPIPlanPtr	plan;

	for (int i = 0; i < PLAN_CACHE_SIZE; i++)
	{
		CachedSpiPlan *p = &plans[i];

		if (plan_matches(p, hash, sql, nargs, types))
		{
			p->last_used = ++plan_clock;
			return p;
		}
		if (p->running == 0 &&
			(victim == NULL || p->sql == NULL ||
			 (victim->sql != NULL && p->last_used < victim->last_used)))
			victim = p;
	}
	if (victim == NULL)
		return NULL;
	plan = prepare(sql, nargs, types);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "crm_dashboard: could not keep a prepared statement: %s", sql);
	forget_plan(victim);
	victim->hash = hash;
	victim->sql = MemoryContextStrdup(TopMemoryContext, sql);
	victim->nargs = nargs;
	if (nargs > 0)
	{
		victim->types = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * nargs);
		memcpy(victim->types, types, sizeof(Oid) * nargs);
	}
	victim->plan = plan;
	victim->last_used = ++plan_clock;
	return victim;
}

/*
 * Run sql (SPI must be connected) with nargs parameters of the given types
 * (nulls as SPI takes them: NULL, or 'n' for a NULL parameter), fetching at
 * most tcount rows (0: all), through a kept plan.  Returns SPI's result
 * code, as SPI_execute_with_args would.
 */
int
crm_spi_run(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
			bool read_only, long tcount)
{
	CachedSpiPlan *volatile slot = cached_plan(sql, nargs, types);
	volatile int rc;

	if (slot == NULL)
	{
		SPIPlanPtr	plan = prepare(sql, nargs, types);

		rc = SPI_execute_plan(plan, values, nulls, read_only, tcount);
		SPI_freeplan(plan);
		return rc;
	}
	slot->running++;
	PG_TRY();
	{
		rc = SPI_execute_plan(slot->plan, values, nulls, read_only, tcount);
	}
	PG_FINALLY();
	{
		slot->running--;
	}
	PG_END_TRY();
	return rc;
}

/*
 * crm_spi_run, for a result that can only be the expected one
 * (SPI_OK_SELECT, SPI_OK_UPDATE, ...): anything else raises an internal
 * error naming the statement.  Returns the number of rows processed.
 */
uint64
crm_spi_execute(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				bool read_only, long tcount, int expected)
{
	int			rc = crm_spi_run(sql, nargs, types, values, nulls, read_only, tcount);

	if (rc != expected)
		elog(ERROR, "crm_dashboard: statement failed (%s): %s", SPI_result_code_string(rc), sql);
	return SPI_processed;
}

/*
 * The first row a query gives, copied into the caller's memory context with
 * its descriptor (*desc), or NULL when it gives none.  It connects to SPI for
 * the statement itself: SPI_getvalue and SPI_getbinval read the copy after.
 */
HeapTuple
crm_spi_first_row(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				  bool read_only, TupleDesc *desc)
{
	MemoryContext caller = CurrentMemoryContext;
	HeapTuple	row = NULL;

	SPI_connect();
	crm_spi_execute(sql, nargs, types, values, nulls, read_only, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		row = heap_copytuple(SPI_tuptable->vals[0]);
		*desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return row;
}
