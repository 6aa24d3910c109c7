/*
 * launcher_reap.c
 *		No process of a run outlives it: the launcher as child subreaper,
 *		reaping every child, and sweeping what is left of ended runs.
 *
 * Each run has a supervisor (launcher_child.c) that already kills what its
 * command leaves behind.  This is the second line, for when a supervisor
 * died before it could (killed by someone, or with the previous launcher):
 *
 * - The launcher is a child subreaper, so the orphans of a dead supervisor
 *   are reparented to the launcher rather than to init.
 * - Every child is reaped (runs' supervisors matched by pid, any other
 *   child, an adopted orphan, just reaped), so no zombie accumulates.
 * - When runs end, and at start for the runs lost by the previous launcher,
 *   a sweep kills what remains of them: their process groups, every process
 *   whose environment carries their CRM_DASHBOARD_SYNC_ID and this server's
 *   CRM_DASHBOARD_CLUSTER, every child of the launcher that is not a live
 *   run's supervisor, and all of their descendants (the /proc ppid tree).
 *   A process of a still-running run (its supervisor, its process group,
 *   its id, and their descendants) is never killed.
 */
#include "postgres.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"

#include "launcher.h"
#include "launcher_proc.h"

/* What the sweep decided about one process. */
#define SWEEP_KILL	0x01		/* belongs to an ended run (or below one) */
#define SWEEP_KEEP	0x02		/* belongs to a live run (or below one): never killed */

/* One process of the sweep's snapshot of /proc. */
typedef struct SweepProc
{
	ProcInfo	info;
	int			parent;			/* index of the parent in the snapshot, -1 if none */
	uint8		flags;
} SweepProc;

/* The snapshot: every live (non-zombie) process but the launcher itself. */
typedef struct Snapshot
{
	SweepProc  *procs;
	int			n;
	int			cap;
} Snapshot;

/* Make the launcher the reaper of its descendants' orphans. */
void
launcher_become_subreaper(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		ereport(WARNING,
				(errmsg("crm_dashboard launcher: could not become a child subreaper: %m"),
				 errdetail("Processes left behind by a run whose supervisor died are then only found by their process group and environment.")));
}

/*
 * Collect the exit of one child without waiting: returns its pid (and
 * status), or 0 when no child has exited.
 */
pid_t
launcher_reap_any(int *wait_status)
{
	pid_t		pid;

	do
		pid = waitpid(-1, wait_status, WNOHANG);
	while (pid < 0 && errno == EINTR);
	return pid > 0 ? pid : 0;
}

/* The value of CRM_DASHBOARD_CLUSTER: this server's data directory. */
const char *
launcher_cluster_tag(void)
{
	return DataDir;
}

/* proc_foreach visitor: append a process to the snapshot. */
static bool
snapshot_add(const ProcInfo *info, void *arg)
{
	Snapshot   *snap = arg;

	if (info->state == 'Z' || info->pid == MyProcPid)
		return true;
	if (snap->n == snap->cap)
	{
		snap->cap *= 2;
		snap->procs = repalloc(snap->procs, sizeof(SweepProc) * snap->cap);
	}
	snap->procs[snap->n].info = *info;
	snap->procs[snap->n].parent = -1;
	snap->procs[snap->n].flags = 0;
	snap->n++;
	return true;
}

/* qsort comparator: by pid. */
static int
sweep_proc_cmp(const void *a, const void *b)
{
	pid_t		x = ((const SweepProc *) a)->info.pid;
	pid_t		y = ((const SweepProc *) b)->info.pid;

	return (x > y) - (x < y);
}

/* Every process, sorted by pid, each linked to its parent. */
static Snapshot
take_snapshot(void)
{
	Snapshot	snap;

	snap.cap = 256;
	snap.n = 0;
	snap.procs = palloc(sizeof(SweepProc) * snap.cap);
	proc_foreach(snapshot_add, &snap);
	qsort(snap.procs, snap.n, sizeof(SweepProc), sweep_proc_cmp);
	for (int i = 0; i < snap.n; i++)
	{
		SweepProc	key;
		SweepProc  *parent;

		key.info.pid = snap.procs[i].info.ppid;
		parent = bsearch(&key, snap.procs, snap.n, sizeof(SweepProc), sweep_proc_cmp);
		snap.procs[i].parent = parent ? (int) (parent - snap.procs) : -1;
	}
	return snap;
}

/*
 * The run id a process carries (CRM_DASHBOARD_SYNC_ID, when its
 * CRM_DASHBOARD_CLUSTER is ours), or 0.  Runs of other servers on the same
 * machine have ids of their own: the cluster tag keeps them apart.
 */
static int64
process_run_id(pid_t pid)
{
	size_t		len;
	char	   *env = proc_read_environ(pid, &len);
	const char *cluster;
	const char *id;
	int64		result = 0;

	if (env == NULL)
		return 0;
	cluster = proc_environ_lookup(env, len, "CRM_DASHBOARD_CLUSTER");
	id = proc_environ_lookup(env, len, "CRM_DASHBOARD_SYNC_ID");
	if (cluster && id && strcmp(cluster, launcher_cluster_tag()) == 0)
		result = strtoi64(id, NULL, 10);
	free(env);
	return result;
}

/*
 * Whether some process of group pgid carries run id: a lost run's recorded
 * process group is trusted only then, as its number may have been reused
 * since (after a reboot, say).
 */
static bool
group_carries_id(const Snapshot *snap, pid_t pgid, int64 id, const int64 *ids)
{
	for (int i = 0; i < snap->n; i++)
		if (snap->procs[i].info.pgrp == pgid && ids[i] == id)
			return true;
	return false;
}

/*
 * Seed the flags of one process from what identifies the live and ended
 * runs (trusted[k]: whether the k-th ended run's process group is its own).
 */
static uint8
seed_flags(const Snapshot *snap, int i, const int64 *ids, List *ended, const bool *trusted,
		   List *live)
{
	const ProcInfo *p = &snap->procs[i].info;
	uint8		flags = 0;
	ListCell   *lc;

	foreach(lc, live)
	{
		RunProcesses *r = lfirst(lc);

		if (p->pid == r->supervisor || ids[i] == r->id ||
			(r->pgid > 1 && (p->pid == r->pgid || p->pgrp == r->pgid)))
			flags |= SWEEP_KEEP;
	}
	foreach(lc, ended)
	{
		RunProcesses *r = lfirst(lc);

		if (ids[i] == r->id ||
			(trusted[foreach_current_index(lc)] && (p->pid == r->pgid || p->pgrp == r->pgid)))
			flags |= SWEEP_KILL;
	}
	/* an orphan we adopted, or the supervisor of an ended run */
	if (p->ppid == MyProcPid && !(flags & SWEEP_KEEP))
		flags |= SWEEP_KILL;
	return flags;
}

/* Descendants inherit their ancestors' flags (one pass per tree level). */
static void
propagate_flags(Snapshot *snap)
{
	bool		changed = true;

	for (int pass = 0; changed && pass < snap->n; pass++)
	{
		changed = false;
		for (int i = 0; i < snap->n; i++)
		{
			int			parent = snap->procs[i].parent;
			uint8		inherited;

			if (parent < 0)
				continue;
			inherited = snap->procs[parent].flags & ~snap->procs[i].flags;
			if (inherited)
			{
				snap->procs[i].flags |= inherited;
				changed = true;
			}
		}
	}
}

/*
 * Kill (SIGKILL) what remains of the ended runs, and every orphan the
 * launcher adopted, with all of their descendants; never a process of a
 * live run.  Both lists hold RunProcesses.  Returns how many were killed.
 */
int
launcher_sweep(List *ended, List *live)
{
	Snapshot	snap = take_snapshot();
	int64	   *ids = palloc0(sizeof(int64) * Max(snap.n, 1));
	bool	   *trusted = palloc0(sizeof(bool) * Max(list_length(ended), 1));
	bool		want_ids = ended != NIL || live != NIL;
	int			killed = 0;
	ListCell   *lc;

	/* only processes of our user can be read; the others stay 0 */
	for (int i = 0; want_ids && i < snap.n; i++)
		ids[i] = process_run_id(snap.procs[i].info.pid);
	foreach(lc, ended)
	{
		RunProcesses *r = lfirst(lc);

		trusted[foreach_current_index(lc)] = r->pgid > 1 &&
			(!r->verify_group || group_carries_id(&snap, r->pgid, r->id, ids));
	}
	for (int i = 0; i < snap.n; i++)
		snap.procs[i].flags = seed_flags(&snap, i, ids, ended, trusted, live);
	propagate_flags(&snap);

	for (int i = 0; i < snap.n; i++)
	{
		pid_t		pid = snap.procs[i].info.pid;

		if (snap.procs[i].flags != SWEEP_KILL)
			continue;
		/* never ourselves or the server: only ever a run's leftovers */
		if (pid <= 1 || pid == MyProcPid || pid == PostmasterPid || pid == getppid())
			continue;
		if (kill(pid, SIGKILL) == 0)
			killed++;
	}
	pfree(trusted);
	pfree(ids);
	pfree(snap.procs);
	return killed;
}
