/*
 * crm_dashboard.c
 *		Module entry point: each module defines its own settings, shared
 *		memory and workers.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "announce.h"
#include "auth.h"
#include "crm_dashboard.h"
#include "http.h"
#include "launcher.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* pg_upgrade loads the library to check it; it must start no worker */
	if (IsBinaryUpgrade)
		return;
	DiscoveryInit();
	AuthInit();
	AnnounceInit();
	LauncherInit();
	HttpInit();
	MarkGUCPrefixReserved("crm_dashboard");
}
