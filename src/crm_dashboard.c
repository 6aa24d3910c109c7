/*
 * crm_dashboard.c
 *		Module entry point: each module defines its own settings and hooks.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "crm_dashboard.h"
#include "http.h"
#include "launcher.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	DiscoveryInit();
	LauncherInit();
	HttpInit();
	LoginThrottleInit();
	MarkGUCPrefixReserved("crm_dashboard");
}
