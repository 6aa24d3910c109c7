/*
 * schedules.c
 *		Scheduled syncs: the check of a cron expression before schedule_sync
 *		hands it to pg_cron (the rest is SQL, src/schedules.sql).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "crm_dashboard.h"
#include "schedules_cron.h"

PG_FUNCTION_INFO_V1(crm_dashboard_check_schedule);

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
