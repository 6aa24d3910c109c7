/*
 * util_shmem.c
 *		One place that asks PostgreSQL for crm_dashboard's shared memory.
 *
 * Modules (launcher state, announcement ring, login throttle) register a
 * named struct while the library is preloaded; one pair of hooks, chained
 * once, requests the space (PG15 allows that only in shmem_request_hook)
 * and creates or attaches every struct at startup.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "crm_dashboard.h"

#define CRM_SHMEM_MAX 8

typedef struct ShmemArea
{
	const char *name;			/* also the LWLock tranche name, when locks > 0 */
	Size		size;
	int			locks;
	void	  **pointer;
	CrmShmemInit init;
} ShmemArea;

static ShmemArea areas[CRM_SHMEM_MAX];
static int	n_areas = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Ask for every registered area and its locks. */
static void
crm_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (int i = 0; i < n_areas; i++)
	{
		RequestAddinShmemSpace(MAXALIGN(areas[i].size));
		if (areas[i].locks > 0)
			RequestNamedLWLockTranche(areas[i].name, areas[i].locks);
	}
}

/* Create (and initialise) or attach every registered area. */
static void
crm_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (int i = 0; i < n_areas; i++)
	{
		bool		found;

		*areas[i].pointer = ShmemInitStruct(areas[i].name, areas[i].size, &found);
		if (!found)
		{
			memset(*areas[i].pointer, 0, areas[i].size);
			areas[i].init(*areas[i].pointer);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Register a shared struct of size bytes (with locks LWLocks in a tranche of
 * the same name) whose address lands in *pointer in every process; init
 * fills it, zeroed, once.  Only while preloading.
 */
void
crm_shmem_register(const char *name, Size size, int locks, void **pointer, CrmShmemInit init)
{
	Assert(process_shared_preload_libraries_in_progress);
	if (n_areas == CRM_SHMEM_MAX)
		elog(ERROR, "crm_dashboard: too many shared memory areas");
	if (n_areas == 0)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = crm_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = crm_shmem_startup;
	}
	areas[n_areas++] = (ShmemArea)
	{
		name, size, locks, pointer, init
	};
}
