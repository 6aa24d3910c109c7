/*
 * crm_dashboard.c
 *		Module entry point: each module defines its own settings, shared
 *		memory and workers.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "announce.h"
#include "auth.h"
#include "crm_dashboard.h"
#include "delivery.h"
#include "http.h"
#include "launcher.h"
#include "paging.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(crm_dashboard_library_version);

void
_PG_init(void)
{
	/* pg_upgrade loads the library to check it; it must start no worker */
	if (IsBinaryUpgrade)
		return;
	DiscoveryInit();
	PagingInit();
	QualityInit();
	AuthInit();
	AnnounceInit();
	LauncherInit();
	HttpInit();
	DeliveryInit();
	MarkGUCPrefixReserved("crm_dashboard");
}

/* crm_dashboard.library_version(): the version this library was built as. */
Datum
crm_dashboard_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(EXTVERSION));
}
