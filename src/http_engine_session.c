/*-------------------------------------------------------------------------
 *
 * http_engine_session.c
 *		A pooled connection serves one user after another: what a request
 *		changed in its session must not reach the next one.
 *
 * The request's own settings, its role among them, are SET LOCAL and end
 * with its transaction.  What a function might change for the whole
 * session is undone here, as DISCARD ALL would (which cannot run inside
 * the request's transaction, and would also drop the pool's own prepared
 * statements):
 *
 *	- session settings (set_config(..., false)), temporary objects, sequence
 *	  values (currval) and LISTEN registrations: at the end of a request that
 *	  succeeded.  A failed one rolls all of these back by itself.
 *	- statements prepared with SQL PREPARE, cursors WITH HOLD and
 *	  session-level advisory locks: at the start of the next request, since
 *	  these outlive even a failed transaction.  Looking for the first two
 *	  costs a query, so a utility hook notes when a PREPARE or a DECLARE ran
 *	  in this backend, and only then does the next request look.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/portalcmds.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "http_engine.h"

/* Leftovers that survive a transaction's end: SQL-level prepared statements and held cursors. */
#define LEFTOVERS_SQL \
	"SELECT 'statement', name FROM pg_catalog.pg_prepared_statements WHERE from_sql " \
	"UNION ALL SELECT 'cursor', name FROM pg_catalog.pg_cursors WHERE is_holdable"

static SPIPlanPtr leftovers_plan = NULL;

/* Whether a PREPARE or DECLARE ran since the last look (true at first: the library may load late). */
static bool leftovers_possible = true;
static ProcessUtility_hook_type previous_utility_hook = NULL;

/* Note the statements that can leave a prepared statement or a held cursor behind. */
static void
note_leftovers(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			   ProcessUtilityContext context, ParamListInfo params,
			   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, PrepareStmt) || IsA(stmt, DeclareCursorStmt))
		leftovers_possible = true;
	if (previous_utility_hook)
		previous_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* Install the hook (from _PG_init: every backend, the pooled ones among them). */
void
engine_session_init(void)
{
	previous_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = note_leftovers;
}

/*
 * Before a request: drop what an earlier one may have left that no
 * rollback removes.  Runs inside SPI, as the connection's own user.
 */
void
engine_session_clean(void)
{
	LockReleaseSession(USER_LOCKMETHOD);
	if (!leftovers_possible)
		return;
	leftovers_possible = false;
	if (leftovers_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(LEFTOVERS_SQL, 0, NULL);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "crm_dashboard: could not prepare the session check: %s",
				 SPI_result_code_string(SPI_result));
		leftovers_plan = plan;
	}
	if (SPI_execute_plan(leftovers_plan, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "crm_dashboard: the session check failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *kind = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (strcmp(kind, "statement") == 0)
			DropPreparedStatement(name, false);
		else
			PerformPortalClose(name);
	}
}

/*
 * After a request that succeeded: undo its session-wide changes, inside its
 * transaction, so that they go with its commit.
 */
void
engine_session_reset(void)
{
	ResetAllOptions();
	ResetTempTableNamespace();
	ResetSequenceCaches();
	Async_UnlistenAll();
}
