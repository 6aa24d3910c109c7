/*
 * schedules.c
 *		Scheduled syncs: the check of a cron expression before schedule_sync
 *		hands it to pg_cron, and when a schedule fires next, from which
 *		freshness derives a model's cadence (the rest is SQL,
 *		src/schedules.sql).
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"
#include "schedules_cron.h"

PG_FUNCTION_INFO_V1(crm_dashboard_check_schedule);
PG_FUNCTION_INFO_V1(crm_dashboard_cron_next);

/* Seconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define UNIX_TO_PG_SECONDS ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/*
 * crm_dashboard.check_schedule(cron): raise invalid_parameter_value, naming
 * the offending part, unless pg_cron would run cron exactly as written.  As
 * for a sync option, the detail is the name of the faulty argument.
 */
Datum
crm_dashboard_check_schedule(PG_FUNCTION_ARGS)
{
	char	   *cron = crm_arg_text(fcinfo, 0, "cron");
	char		why[256];

	if (!cron_check(cron, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule \"%s\": %s", cron, why),
				 errdetail("cron"),
				 errhint("Use five fields, minute hour day-of-month month day-of-week, such as "
						 "'*/15 * * * *' or '0 3 * * mon-fri', or one of @hourly, @daily, @weekly, @monthly.")));
	PG_RETURN_VOID();
}

/*
 * crm_dashboard.cron_next(cron, after): the first time after "after" at
 * which the schedule fires (UTC, as pg_cron reads it), or NULL for an
 * invalid expression, @reboot, or one that never fires (say, February 30).
 */
Datum
crm_dashboard_cron_next(PG_FUNCTION_ARGS)
{
	char	   *cron = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
	int64		unix_after;
	int64_t		next;

	if (TIMESTAMP_NOT_FINITE(after))
		PG_RETURN_NULL();
	/* whole seconds, rounded down, so that a fire at the next minute is not missed */
	unix_after = (after >= 0 ? after / USECS_PER_SEC : -((-after + USECS_PER_SEC - 1) / USECS_PER_SEC))
		+ UNIX_TO_PG_SECONDS;
	if (!cron_next(cron, unix_after, &next))
		PG_RETURN_NULL();
	next -= UNIX_TO_PG_SECONDS;
	if (next > (END_TIMESTAMP - 1) / USECS_PER_SEC)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ((TimestampTz) next * USECS_PER_SEC);
}
