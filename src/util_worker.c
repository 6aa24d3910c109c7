/*
 * util_worker.c
 *		Registering crm_dashboard's background workers, one way for all.
 *
 * The sync launcher, the alerts worker and the HTTP workers are registered
 * while the library is preloaded.  Each connects to a database and uses
 * the extension's shared memory; the postmaster starts it again 5 s after
 * it exits with an error, soon enough to keep the service up and slow
 * enough never to spin on a fault that persists.
 */
#include "postgres.h"

#include "postmaster/bgworker.h"

#include "crm_dashboard.h"

/*
 * Register a worker whose entry point is the library's function, named name
 * in the process list and type in pg_stat_activity, with arg as its main
 * argument.  during_recovery: it may start on a hot standby (only readers
 * may); otherwise it starts when the server accepts writes.
 */
void
crm_register_worker(const char *function, const char *name, const char *type,
					bool during_recovery, int arg)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = during_recovery ? BgWorkerStart_ConsistentState : BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "crm_dashboard", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, type, BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum(arg);
	RegisterBackgroundWorker(&worker);
}
