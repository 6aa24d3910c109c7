/*
 * launcher.c
 *		The sync launcher worker: settings, shared state and the main loop.
 *
 * One static background worker per cluster connects to the database named
 * by crm_dashboard.database_name (as pg_cron does) and supervises the runs
 * queued in crm_dashboard.sync_history there.  Each loop iteration:
 * interrupts -> reload -> read output -> reap children -> one short
 * transaction for the batch of work (stops, timeouts, finished runs,
 * launches, progress) -> wait on the latch, postmaster death and every
 * child's pipes until the next deadline.  Backends wake it at commit of
 * start_sync/stop_sync by setting its latch, so there is no polling delay.
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/supportnodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "announce.h"
#include "crm_dashboard.h"
#include "launcher.h"

char	   *crm_launcher_database = NULL;
int			crm_max_running_syncs = 4;
int			crm_stop_grace = 10;
int			crm_log_limit = 1024 * 1024;
char	   *crm_sync_user = NULL;
int			crm_priority_aging = 600;

/* What backends need to know about the launcher. */
typedef struct LauncherShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0 while no launcher runs */
	int			procno;			/* its PGPROC number, for the latch */
	Oid			database;		/* InvalidOid until connected */
} LauncherShared;

static LauncherShared *launcher_shared = NULL;

/* Supervised runs, in launcher_context. */
static List *runs = NIL;
static MemoryContext launcher_context = NULL;
static bool recovered = false;
static TimestampTz extension_retry_at = 0;
static TimestampTz last_work_at = 0;
static TimestampTz launch_retry_at = 0;	/* no launches before, after one failed */
static TimestampTz queue_due_at = 0;	/* a queued run becomes due then; 0: none ahead */
static TimestampTz freshness_due_at = 0;	/* next look at the models' freshness */
static TimestampTz retention_due_at = 0;	/* next batch of retention */
static Oid	extension_oid = InvalidOid;	/* the installation our runs belong to */

/* Set by the SIGCHLD handler (launcher_spawn.c). */
extern volatile sig_atomic_t launcher_child_exited;

static bool wake_registered = false;
static bool wake_pending = false;

/* Initialise the zeroed shared state: no launcher yet. */
static void
launcher_shmem_init(void *area)
{
	LauncherShared *shared = area;

	SpinLockInit(&shared->mutex);
	shared->procno = -1;
	shared->database = InvalidOid;
}

/* Define the launcher's settings; when preloaded, its memory and worker. */
void
LauncherInit(void)
{
	/*
	 * PGC_POSTMASTER variables may only be created while preloading; loaded
	 * later, the setting is informational only (no launcher runs anyway).
	 */
	DefineCustomStringVariable("crm_dashboard.database_name",
							   "Database in which the sync launcher runs.",
							   "The extension must be installed there; start_sync works only in it.",
							   &crm_launcher_database, "postgres",
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.max_running_syncs",
							"Most sync commands running at once; further runs wait queued.",
							"Range 1 to 1000.",
							&crm_max_running_syncs, 4, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.stop_grace",
							"Time between SIGTERM and SIGKILL when a sync is stopped or times out.",
							"Range 0 to 3600 seconds.",
							&crm_stop_grace, 10, 0, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.log_limit",
							"Bytes of command output kept per sync run (the newest are kept).",
							"Range 4 kB to 64 MB; applies to runs launched after a change.",
							&crm_log_limit, 1024 * 1024, 4096, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.priority_aging",
							"Waiting time that raises a queued run by one priority level.",
							"A person's start goes before a schedule, a schedule before a retry; a run that "
							"waited this long goes before one of the next level queued now.  0 to 86400 "
							"seconds; 0 is first come, first served.",
							&crm_priority_aging, 600, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("crm_dashboard.sync_user",
							   "Role that sync commands connect as (PGUSER).",
							   "Empty means the bootstrap superuser.",
							   &crm_sync_user, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	crm_shmem_register("crm_dashboard launcher", sizeof(LauncherShared), 0,
					   (void **) &launcher_shared, launcher_shmem_init);

	crm_register_worker("crm_launcher_main", "crm_dashboard sync launcher", "crm_dashboard sync launcher",
						false, 0);
}

/*
 * Whether runs queued in this database will be launched: the library is
 * preloaded and the launcher serves this database (or has not connected yet).
 */
bool
launcher_available(Oid *database)
{
	Oid			db;

	*database = InvalidOid;
	if (launcher_shared == NULL)
		return false;
	SpinLockAcquire(&launcher_shared->mutex);
	db = launcher_shared->database;
	SpinLockRelease(&launcher_shared->mutex);
	*database = db;
	return !OidIsValid(db) || db == MyDatabaseId;
}

PG_FUNCTION_INFO_V1(crm_dashboard_launcher_serves_here);

/*
 * crm_dashboard.launcher_serves_here(): whether the preloaded launcher is
 * configured for this database (it then applies retention here).
 */
Datum
crm_dashboard_launcher_serves_here(PG_FUNCTION_ARGS)
{
	char	   *name;

	if (launcher_shared == NULL || crm_launcher_database == NULL)
		PG_RETURN_BOOL(false);
	name = get_database_name(MyDatabaseId);
	PG_RETURN_BOOL(name != NULL && strcmp(name, crm_launcher_database) == 0);
}

PG_FUNCTION_INFO_V1(crm_dashboard_max_running_syncs);
PG_FUNCTION_INFO_V1(crm_dashboard_priority_aging);
PG_FUNCTION_INFO_V1(crm_dashboard_mostly_true_support);

/*
 * Planner support of crm_dashboard.run_may_start: most queued runs may
 * start.  Without it the planner guesses that a boolean function keeps a
 * third of the rows (and an IS NULL test half a percent), and for the
 * claim step's "first few of this CRM's queue" prefers reading and sorting
 * the whole queue to walking the queue's index in order.
 */
Datum
crm_dashboard_mostly_true_support(PG_FUNCTION_ARGS)
{
	Node	   *request = (Node *) PG_GETARG_POINTER(0);

	if (IsA(request, SupportRequestSelectivity))
	{
		((SupportRequestSelectivity *) request)->selectivity = 0.9;
		PG_RETURN_POINTER(request);
	}
	PG_RETURN_POINTER(NULL);
}

/* crm_dashboard.max_running_syncs(): the global limit, for the claim step's words. */
Datum
crm_dashboard_max_running_syncs(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(crm_max_running_syncs);
}

/* crm_dashboard.priority_aging(): crm_dashboard.priority_aging as an interval. */
Datum
crm_dashboard_priority_aging(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = (int64) crm_priority_aging * USECS_PER_SEC;
	PG_RETURN_INTERVAL_P(result);
}

/* Set the launcher's latch after our transaction committed. */
static void
launcher_xact_callback(XactEvent event, void *arg)
{
	int			procno;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
		return;
	if (event == XACT_EVENT_COMMIT && wake_pending && launcher_shared != NULL)
	{
		SpinLockAcquire(&launcher_shared->mutex);
		procno = launcher_shared->procno;
		SpinLockRelease(&launcher_shared->mutex);
		if (procno >= 0)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
	wake_pending = false;
}

/* Wake the launcher when the current transaction commits (not before: it would see nothing). */
void
launcher_wake_at_commit(void)
{
	if (launcher_shared == NULL)
		return;
	if (!wake_registered)
	{
		RegisterXactCallback(launcher_xact_callback, NULL);
		wake_registered = true;
	}
	wake_pending = true;
}

/* Publish ourselves so that backends can set our latch. */
static void
launcher_attach(void)
{
	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->pid = MyProcPid;
	launcher_shared->procno = MyProc->pgprocno;
	launcher_shared->database = MyDatabaseId;
	SpinLockRelease(&launcher_shared->mutex);
}

/* What identifies a run's processes, for launcher_sweep. */
static RunProcesses *
run_processes(const Run *run)
{
	RunProcesses *p = palloc0(sizeof(RunProcesses));

	p->id = run->id;
	p->pgid = run->pid;
	p->supervisor = run->state == RUN_EXITED ? 0 : run->supervisor;
	return p;
}

/* The processes of the runs still running (their supervisors not reaped). */
static List *
live_run_processes(void)
{
	List	   *live = NIL;
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->state != RUN_EXITED)
			live = lappend(live, run_processes(run));
	}
	return live;
}

/*
 * Kill what is left of the ended runs (those given, and every exited run
 * not yet forgotten), and every orphan we adopted, sparing the live runs.
 * Normally their supervisors did already; this catches what a supervisor
 * that died left behind.
 */
static void
sweep_ended_runs(List *ended)
{
	ListCell   *lc;
	int			killed;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->state == RUN_EXITED)
			ended = lappend(ended, run_processes(run));
	}
	killed = launcher_sweep(ended, live_run_processes());
	if (killed > 0)
		elog(LOG, "crm_dashboard launcher: killed %d processes left behind by ended runs", killed);
}

/*
 * At exit: kill every run's processes and every orphan we adopted
 * (PDEATHSIG reaches only the direct children), then forget ourselves.
 */
static void
launcher_detach(int code, Datum arg)
{
	List	   *ended = NIL;
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		launcher_signal_group(run->pid, SIGKILL);
		ended = lappend(ended, run_processes(run));
	}
	/* no run is live any more: supervisors and all below them go too */
	launcher_sweep(ended, NIL);
	SpinLockAcquire(&launcher_shared->mutex);
	launcher_shared->pid = 0;
	launcher_shared->procno = -1;
	SpinLockRelease(&launcher_shared->mutex);
}

/* Read what every child wrote so far, without blocking. */
static void
read_all_output(void)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->out.fd >= 0)
			run_read_stream(run, &run->out);
		if (run->err.fd >= 0)
			run_read_stream(run, &run->err);
	}
}

/* The run whose supervisor is pid, or NULL. */
static Run *
run_of_supervisor(pid_t pid)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->state != RUN_EXITED && run->supervisor == pid)
			return run;
	}
	return NULL;
}

/*
 * Take the last output of an exited run and close its pipes.  Leftover
 * processes could hold the pipes open (or keep writing) forever: they were
 * killed, so what is in the pipes now is a bounded amount.
 */
static void
drain_exited(Run *run)
{
	for (int i = 0; i < 16 && run->out.fd >= 0 && run_read_stream(run, &run->out); i++)
		;
	for (int i = 0; i < 16 && run->err.fd >= 0 && run_read_stream(run, &run->err); i++)
		;
	run_close_streams(run);
}

/*
 * Collect every child's exit.  A run's supervisor exits as its command did
 * and ends the run; any other child is an orphan we adopted.  Then sweep
 * what the ended runs left, and close their pipes.  Returns whether a run
 * ended.
 */
static bool
reap_children(void)
{
	List	   *ended = NIL;
	bool		stray = false;
	ListCell   *lc;
	pid_t		pid;
	int			status;

	launcher_child_exited = false;
	while ((pid = launcher_reap_any(&status)) > 0)
	{
		Run		   *run = run_of_supervisor(pid);

		if (run == NULL)
		{
			stray = true;
			continue;
		}
		run->state = RUN_EXITED;
		run->wait_status = status;
		launcher_signal_group(run->pid, SIGKILL);
		ended = lappend(ended, run);
	}
	if (ended == NIL && !stray)
		return false;
	sweep_ended_runs(NIL);
	foreach(lc, ended)
		drain_exited(lfirst(lc));
	return ended != NIL;
}

/* Send SIGTERM to a run and arm the SIGKILL deadline. */
static void
begin_stop(Run *run, StopReason reason, TimestampTz now)
{
	if (run->state != RUN_RUNNING)
		return;
	run->stop_reason = reason;
	run->state = RUN_STOPPING;
	run->kill_at = TimestampTzPlusMilliseconds(now, crm_stop_grace * 1000);
	launcher_signal_group(run->pid, crm_stop_grace > 0 ? SIGTERM : SIGKILL);
}

/* Stop the runs whose stop was requested with stop_sync. */
static void
enforce_stops(TimestampTz now)
{
	List	   *ids = NIL;
	List	   *stop;
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->state == RUN_RUNNING)
			ids = lappend(ids, &run->id);
	}
	stop = ids ? runs_stop_requested(ids) : NIL;
	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);
		ListCell   *sc;

		foreach(sc, stop)
			if (*(int64 *) lfirst(sc) == run->id)
				begin_stop(run, STOP_REQUESTED, now);
	}
}

/*
 * When a run that prints nothing counts as stalled, or 0 (no stall
 * timeout).  A wait for the CRM's rate limit the command announced is not
 * a stall: the clock starts again when the wait ends.
 */
static TimestampTz
stall_deadline(const Run *run)
{
	if (run->stall_timeout_s <= 0 || run->state != RUN_RUNNING)
		return 0;
	return TimestampTzPlusMilliseconds(Max(run->last_output_at, run->rate_wait_until),
									   (int64) run->stall_timeout_s * 1000);
}

/*
 * Stop runs whose timeout passed or that stalled, SIGKILL those whose
 * grace ended.  Outside any transaction: a locked or dropped history table
 * must not delay them.
 */
static void
enforce_timers(TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);
		TimestampTz stall = stall_deadline(run);

		if (run->deadline && now >= run->deadline)
			begin_stop(run, STOP_TIMEOUT, now);
		if (stall && now >= stall)
			begin_stop(run, STOP_STALLED, now);
		if (run->state == RUN_STOPPING && run->kill_at && now >= run->kill_at)
		{
			launcher_signal_group(run->pid, SIGKILL);
			run->kill_at = 0;
		}
	}
}

/*
 * Call fn(arg) in a subtransaction, so that a failing statement rolls back
 * only its own changes and not the other runs' of the same batch.  Returns
 * false after reporting the error.
 */
static bool
in_subtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/* in_subtransaction body: write a run's outcome. */
static void
finish_one(void *arg)
{
	runs_finish((Run *) arg);
}

/*
 * Write the outcome of exited runs.  They are forgotten only once the
 * transaction committed (after_commit): were it rolled back, a run
 * forgotten here would stay "running" forever.
 */
static void
finish_exited(void)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->state == RUN_EXITED && !run->finish_pending)
			run->finish_pending = in_subtransaction(finish_one, run);
	}
}

/*
 * Kill a run's processes and free it (the caller drops it from the list).
 * Its supervisor, killed too, is reaped later like any other child.
 */
static void
discard_run(Run *run, const char *why)
{
	elog(LOG, "crm_dashboard launcher: killing run " INT64_FORMAT " (pid %d): %s",
		 run->id, (int) run->pid, why);
	launcher_signal_group(run->pid, SIGKILL);
	run->state = RUN_EXITED;
	sweep_ended_runs(list_make1(run_processes(run)));
	run_close_streams(run);
	MemoryContextDelete(run->cxt);
}

/* The batch committed: finished runs are recorded for good, forget them. */
static void
after_commit(void)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		run->launch_pending = false;
		if (run->finish_pending)
		{
			runs = foreach_delete_current(runs, lc);
			MemoryContextDelete(run->cxt);
		}
	}
}

/*
 * The batch was rolled back: outcomes will be written again; runs launched
 * in it are queued again in the table, so their processes must go (else
 * they would run unsupervised and be launched a second time).
 */
static void
after_abort(void)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		run->finish_pending = false;
		if (run->launch_pending)
		{
			runs = foreach_delete_current(runs, lc);
			discard_run(run, "its launch was rolled back");
			launch_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
		}
	}
}

/*
 * Kill every run: the extension was dropped (or dropped and created again),
 * so their rows are gone, nobody can watch or stop them, and their ids may
 * be reused by new runs.
 */
static void
discard_orphaned_runs(void)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		discard_run(lfirst(lc), "the crm_dashboard extension was dropped");
		runs = foreach_delete_current(runs, lc);
	}
}

/* in_subtransaction body: record the models' freshness (alerts watch its changes). */
static void
note_freshness(void *arg)
{
	runs_note_freshness();
}

/* What launching one claimed run needs and yields (see launch_one). */
typedef struct LaunchJob
{
	int64		id;
	Run		   *run;
} LaunchJob;

/* in_subtransaction body: spawn a run and mark it running. */
static void
launch_one(void *arg)
{
	LaunchJob  *job = arg;

	job->run = runs_launch(job->id, launcher_context);
	if (job->run)
		runs_mark_running(job->run);
}

/* Runs holding a slot: all but those whose outcome is written already. */
static int
runs_holding_slots(void)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, runs)
		n += ((Run *) lfirst(lc))->finish_pending ? 0 : 1;
	return n;
}

/*
 * Launch queued runs while slots are free, oldest first.  After a failed
 * launch, wait a second: the killed process's SIGCHLD would otherwise start
 * the next attempt at once, a busy loop for as long as the cause lasts.
 */
static void
launch_queued(TimestampTz now)
{
	int			slots = crm_max_running_syncs - runs_holding_slots();
	List	   *ids;
	ListCell   *lc;

	if (slots <= 0 || now < launch_retry_at)
		return;
	launch_retry_at = 0;
	ids = runs_claim(slots);
	foreach(lc, ids)
	{
		LaunchJob	job = {*(int64 *) lfirst(lc), NULL};

		if (!in_subtransaction(launch_one, &job))
		{
			/* spawned but not marked running: the row stays queued */
			if (job.run)
				discard_run(job.run, "it could not be marked running");
			launch_retry_at = TimestampTzPlusMilliseconds(now, 1000);
			continue;
		}
		if (job.run)
		{
			MemoryContext old = MemoryContextSwitchTo(launcher_context);

			job.run->launch_pending = true;
			runs = lappend(runs, job.run);
			MemoryContextSwitchTo(old);
		}
	}
}

/*
 * How long kept output may wait for the table: briefly for a run's first
 * output, then a heartbeat.  Only the new output is written
 * (launcher_log.c), so a large log costs no more per write than a small one.
 */
static long
log_flush_interval(const Run *run)
{
	if (run->log_flushed_at == run->started_at)
		return LAUNCHER_FLUSH_MS;
	return LAUNCHER_HEARTBEAT_MS;
}

/* Push coalesced counters (every LAUNCHER_FLUSH_MS at most) and heartbeats. */
static void
flush_progress(TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);
		bool		due = run->dirty
			? TimestampDifferenceExceeds(run->flushed_at, now, LAUNCHER_FLUSH_MS)
			: TimestampDifferenceExceeds(run->flushed_at, now, LAUNCHER_HEARTBEAT_MS);
		bool		with_log = run->log_dirty &&
			TimestampDifferenceExceeds(run->log_flushed_at, now, log_flush_interval(run));

		if (run->finish_pending)
			continue;
		if (due || with_log)
			runs_flush(run, now, with_log);
	}
}

/*
 * The next time the loop must do database work without being woken.  At
 * least every 10 s: a lost wake-up (e.g. start_sync in a prepared
 * transaction, which wakes nobody at COMMIT PREPARED) must not leave a run
 * queued forever.
 */
static TimestampTz
next_deadline(void)
{
	TimestampTz next = TimestampTzPlusMilliseconds(last_work_at, 10000);
	ListCell   *lc;

	if (extension_retry_at && extension_retry_at < next)
		next = extension_retry_at;
	if (launch_retry_at && launch_retry_at < next)
		next = launch_retry_at;
	if (queue_due_at && queue_due_at < next)
		next = queue_due_at;
	if (freshness_due_at && freshness_due_at < next)
		next = freshness_due_at;
	if (retention_due_at && retention_due_at < next)
		next = retention_due_at;
	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);
		TimestampTz stall = stall_deadline(run);
		TimestampTz t;

		t = TimestampTzPlusMilliseconds(run->flushed_at,
										run->dirty ? LAUNCHER_FLUSH_MS : LAUNCHER_HEARTBEAT_MS);
		next = Min(next, t);
		if (run->log_dirty)
			next = Min(next, TimestampTzPlusMilliseconds(run->log_flushed_at, log_flush_interval(run)));
		if (run->deadline && run->state == RUN_RUNNING)
			next = Min(next, run->deadline);
		if (run->kill_at)
			next = Min(next, run->kill_at);
		if (stall)
			next = Min(next, stall);
	}
	return next;
}

/*
 * Whether the batch can use the extension's tables now; kills our runs once
 * the installation they belong to is gone (a rolled-back DROP EXTENSION
 * changes nothing: the OID only changes when the drop committed).
 */
static bool
extension_usable(void)
{
	Oid			extension;
	bool		ready = runs_extension_ready(&extension);

	if (extension != extension_oid && runs != NIL)
		discard_orphaned_runs();
	extension_oid = extension;
	return ready;
}

/*
 * One short transaction for a batch of work.  Skipped (retried later) while
 * the extension is missing or being dropped, so DROP EXTENSION never waits
 * for us.
 */
static void
do_database_work(void)
{
	TimestampTz now = GetCurrentTimestamp();

	last_work_at = now;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm_dashboard: SPI_connect failed");
	pgstat_report_activity(STATE_RUNNING, "supervising sync runs");

	if (!extension_usable())
	{
		extension_retry_at = TimestampTzPlusMilliseconds(now, 5000);
		SPI_finish();
		PopActiveSnapshot();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		return;
	}
	extension_retry_at = 0;
	if (!recovered)
	{
		sweep_ended_runs(runs_recover());
		recovered = true;
	}
	enforce_stops(now);
	finish_exited();
	launch_queued(now);
	runs_finish_parents();
	flush_progress(now);
	queue_due_at = runs_next_due();
	if (now >= freshness_due_at)
	{
		in_subtransaction(note_freshness, NULL);
		freshness_due_at = TimestampTzPlusMilliseconds(now, LAUNCHER_FRESHNESS_MS);
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	after_commit();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Run do_database_work, surviving its errors: report, roll back, retry later. */
static void
try_database_work(MemoryContext loop_context)
{
	PG_TRY();
	{
		do_database_work();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		after_abort();
		extension_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
	}
	PG_END_TRY();
}

/*
 * One batch of retention (crm_dashboard.apply_retention), in a short
 * transaction of its own so that its locks never wait behind the runs'
 * work nor hold it up.  While retention is behind, the next batch follows
 * shortly; else the policy is looked at again in 10 s.
 */
static void
do_retention(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		behind = false;
	bool		isnull;

	retention_due_at = TimestampTzPlusMilliseconds(now, LAUNCHER_RETENTION_MS);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm_dashboard: SPI_connect failed");
	pgstat_report_activity(STATE_RUNNING, "applying the retention policy");
	/* an installation older than the library has no retention yet */
	if (extension_usable() &&
		SPI_execute("SELECT to_regprocedure('crm_dashboard.apply_retention(text)') IS NOT NULL",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
		SPI_execute("SELECT (crm_dashboard.apply_retention('launcher') ->> 'behind')::boolean",
					false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		behind = !isnull && DatumGetBool(d);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	if (behind)
		retention_due_at = TimestampTzPlusMilliseconds(now, LAUNCHER_RETENTION_BEHIND_MS);
}

/* Run do_retention, surviving its errors: report, roll back, retry later. */
static void
try_retention(MemoryContext loop_context)
{
	PG_TRY();
	{
		do_retention();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
}

/* Wait for the latch, postmaster death, any child's output, or the deadline. */
static bool
wait_for_work(TimestampTz deadline)
{
	WaitEventSet *set;
	WaitEvent	events[16];
	ListCell   *lc;
	long		timeout;
	int			n;
	bool		latch = false;

	set = CreateWaitEventSet(CurrentMemoryContext, 2 + 2 * list_length(runs));
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	foreach(lc, runs)
	{
		Run		   *run = lfirst(lc);

		if (run->out.fd >= 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, run->out.fd, NULL, NULL);
		if (run->err.fd >= 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, run->err.fd, NULL, NULL);
	}
	timeout = Max(0, (deadline - GetCurrentTimestamp() + 999) / 1000);
	n = WaitEventSetWait(set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
	for (int i = 0; i < n; i++)
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch = true;
		}
	FreeWaitEventSet(set);
	return latch;
}

/* Entry point of the launcher background worker. */
void
crm_launcher_main(Datum arg)
{
	MemoryContext loop_context;
	bool		work = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	launcher_install_sigchld();
	launcher_become_subreaper();
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(crm_launcher_database, NULL, 0);

	launcher_context = AllocSetContextCreate(TopMemoryContext, "crm_dashboard launcher",
											 ALLOCSET_DEFAULT_SIZES);
	loop_context = AllocSetContextCreate(TopMemoryContext, "crm_dashboard launcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	launcher_attach();
	on_shmem_exit(launcher_detach, (Datum) 0);
	elog(LOG, "crm_dashboard sync launcher started in database \"%s\"", crm_launcher_database);

	for (;;)
	{
		TimestampTz now;

		MemoryContextSwitchTo(loop_context);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		read_all_output();
		if (reap_children())
			work = true;
		now = GetCurrentTimestamp();
		enforce_timers(now);
		if (work || now >= next_deadline())
			try_database_work(loop_context);
		if (now >= retention_due_at)
			try_retention(loop_context);
		work = wait_for_work(next_deadline()) || launcher_child_exited;
		MemoryContextReset(loop_context);
	}
}
