/*
 * delivery.c
 *		The alerts worker: settings, registration, wake-up and main loop.
 *
 * The worker keeps up to crm_dashboard.delivery_max_in_flight transfers in
 * one libcurl multi handle, so that an endpoint that hangs holds only its
 * own transfer (until the total timeout) and never the others.  Each
 * round it records the outcomes of the transfers that finished and claims
 * what is due in one short transaction (delivery_queue.c), then lets
 * libcurl run.  It sleeps on its latch when nothing is in flight; a
 * transaction that queues notifications sets that latch at commit
 * (crm_dashboard.wake_delivery).
 */
#include "postgres.h"

#include <sys/select.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"
#include "delivery.h"
#include "launcher.h"

/* How soon to look again at transfers that have no socket yet (resolving a name). */
#define DELIVERY_POLL_MS 10
/* The longest sleep with nothing due: the periodic checks (alerts_tick) run this often anyway. */
#define DELIVERY_IDLE_MS 30000

int			delivery_connect_timeout = 5;
int			delivery_timeout = 15;
int			delivery_max_attempts = 8;
int			delivery_retry_base = 10;
int			delivery_retry_cap = 3600;
int			delivery_max_in_flight = 32;
int			delivery_per_channel = 4;
char	   *delivery_ca_file = NULL;

/* Where the worker's latch is, for wake-ups. */
typedef struct DeliveryShared
{
	pid_t		pid;			/* 0 when no worker runs */
	int			procno;
} DeliveryShared;

static DeliveryShared *delivery_shared = NULL;
static bool wake_pending = false;
static bool wake_callback_registered = false;

/* Initialise the zeroed shared state. */
static void
delivery_shmem_init(void *area)
{
	((DeliveryShared *) area)->procno = -1;
}

/* Define an integer setting in seconds or a count. */
static void
define_int(const char *name, const char *short_desc, const char *long_desc, int *var, int dflt,
		   int min, int max, int flags)
{
	DefineCustomIntVariable(name, short_desc, long_desc, var, dflt, min, max, PGC_SIGHUP, flags,
							NULL, NULL, NULL);
}

/* Define the settings and, when preloaded, the shared state and the worker. */
void
DeliveryInit(void)
{
	define_int("crm_dashboard.delivery_connect_timeout", "Longest wait for an alert receiver to accept a connection.",
			   "Range 1 to 300 seconds.", &delivery_connect_timeout, 5, 1, 300, GUC_UNIT_S);
	define_int("crm_dashboard.delivery_timeout", "Longest time one delivery attempt of an alert notification may take.",
			   "Range 1 to 600 seconds, connecting included.", &delivery_timeout, 15, 1, 600, GUC_UNIT_S);
	define_int("crm_dashboard.delivery_max_attempts", "Attempts to deliver a notification before it counts as failed.",
			   "Range 1 to 100.", &delivery_max_attempts, 8, 1, 100, 0);
	define_int("crm_dashboard.delivery_retry_base", "Base of the exponential backoff between delivery attempts.",
			   "Full jitter: a random wait up to min(cap, base * 2^(attempt-1)).  Range 1 to 3600 seconds.",
			   &delivery_retry_base, 10, 1, 3600, GUC_UNIT_S);
	define_int("crm_dashboard.delivery_retry_cap", "Longest wait between delivery attempts.",
			   "Range 1 to 86400 seconds.", &delivery_retry_cap, 3600, 1, 86400, GUC_UNIT_S);
	define_int("crm_dashboard.delivery_max_in_flight", "Most notifications the alerts worker sends at once.",
			   "Range 1 to 256.", &delivery_max_in_flight, 32, 1, 256, 0);
	define_int("crm_dashboard.delivery_per_channel", "Most notifications in flight to one channel at once.",
			   "Range 1 to 64.", &delivery_per_channel, 4, 1, 64, 0);
	DefineCustomStringVariable("crm_dashboard.delivery_ca_file",
							   "File of CA certificates that verify alert receivers (empty: the system's).",
							   NULL, &delivery_ca_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	delivery_hosts_define_setting();

	if (!process_shared_preload_libraries_in_progress)
		return;
	crm_shmem_register("crm_dashboard delivery", sizeof(DeliveryShared), 0,
					   (void **) &delivery_shared, delivery_shmem_init);

	crm_register_worker("crm_delivery_main", "crm_dashboard alerts worker", "crm_dashboard alerts worker",
						false, 0);
}

/* Whether an alerts worker runs (the library is preloaded and the worker is up). */
bool
delivery_available(void)
{
	return delivery_shared != NULL && delivery_shared->pid != 0;
}

/* At commit, set the worker's latch. */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_pending && delivery_shared != NULL)
	{
		int			procno = delivery_shared->procno;

		if (procno >= 0 && delivery_shared->pid != 0 &&
			ProcGlobal->allProcs[procno].pid == delivery_shared->pid)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
		wake_pending = false;
}

/* Wake the alerts worker when the current transaction commits. */
void
delivery_wake_at_commit(void)
{
	if (delivery_shared == NULL)
		return;
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_pending = true;
}

/* Forget the worker's latch at exit. */
static void
delivery_detach(int code, Datum arg)
{
	if (delivery_shared != NULL && delivery_shared->pid == MyProcPid)
	{
		delivery_shared->pid = 0;
		delivery_shared->procno = -1;
	}
}

/* One round in the database: record finished transfers, claim due ones. */
typedef struct Round
{
	List	   *finished;		/* DeliveryTransfer *, to record */
	int			slots;			/* how many may be claimed */
	MemoryContext cxt;			/* where claimed requests go */
	List	   *claimed;		/* DeliveryRequest * */
	bool		tick;			/* run the periodic checks */
	TimestampTz next_due;		/* out: when to look again */
	bool		ready;			/* out: the extension was there */
} Round;

static bool recovered = false;

/* One short transaction: the round's SQL.  Skipped while the extension is missing. */
static void
database_round(Round *round)
{
	ListCell   *lc;
	Oid			extension;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm_dashboard: SPI_connect failed");
	pgstat_report_activity(STATE_RUNNING, "delivering alert notifications");
	round->ready = queue_extension_ready(&extension);
	round->next_due = 0;
	if (round->ready)
	{
		if (!recovered)
		{
			int			n = queue_recover();

			if (n > 0)
				elog(LOG, "crm_dashboard alerts worker: %d notification(s) interrupted earlier are sent again", n);
			recovered = true;
		}
		foreach(lc, round->finished)
			queue_record(lfirst(lc));
		if (round->slots > 0)
			round->claimed = queue_claim(round->slots, round->cxt);
		round->next_due = queue_next_due();
		if (round->tick)
		{
			TimestampTz tick_due = queue_tick();

			if (tick_due != 0 && (round->next_due == 0 || tick_due < round->next_due))
				round->next_due = tick_due;
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Run database_round, surviving its errors (reported; the round is tried again later). */
static bool
try_round(Round *round, MemoryContext loop_cxt)
{
	volatile bool ok = true;

	PG_TRY();
	{
		database_round(round);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		round->claimed = NIL;
		round->ready = false;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Start the claimed transfers on the multi handle; a request that cannot start is recorded as failed. */
static List *
start_transfers(CURLM *multi, List *claimed, List *inflight, List **failed, MemoryContext cxt)
{
	ListCell   *lc;

	foreach(lc, claimed)
	{
		DeliveryRequest *req = lfirst(lc);
		DeliveryTransfer *t = delivery_transfer_new(req, cxt);
		CURLMcode	rc = curl_multi_add_handle(multi, t->easy);

		if (rc != CURLM_OK)
		{
			MemoryContext old = MemoryContextSwitchTo(t->cxt);

			t->done = true;
			t->error = psprintf("could not start the transfer: %s", curl_multi_strerror(rc));
			MemoryContextSwitchTo(old);
			*failed = lappend(*failed, t);
			continue;
		}
		inflight = lappend(inflight, t);
	}
	return inflight;
}

/*
 * Wait for any socket of the transfers in flight, libcurl's own timeout,
 * the latch (new notifications), or at most max_ms.  Returns whether the
 * latch was set.  The sockets go into a WaitEventSet beside the latch, so
 * that a commit wakes the worker at once even while an endpoint hangs.
 */
static bool
wait_for_transfers(CURLM *multi, long max_ms)
{
	fd_set		rd,
				wr,
				ex;
	int			maxfd = -1;
	long		timeout = -1;
	WaitEventSet *set;
	WaitEvent	events[8];
	int			n;
	int			nsockets = 0;
	bool		latch = false;

	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_ZERO(&ex);
	(void) curl_multi_fdset(multi, &rd, &wr, &ex, &maxfd);
	(void) curl_multi_timeout(multi, &timeout);
	if (timeout < 0 || timeout > max_ms)
		timeout = max_ms;
	/* no socket yet (a name being resolved): look again soon */
	if (maxfd < 0 && timeout > DELIVERY_POLL_MS)
		timeout = DELIVERY_POLL_MS;
	for (int fd = 0; fd <= maxfd; fd++)
		if (FD_ISSET(fd, &rd) || FD_ISSET(fd, &wr))
			nsockets++;
	set = CreateWaitEventSet(CurrentMemoryContext, 2 + nsockets);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int fd = 0; fd <= maxfd; fd++)
	{
		uint32		ev = (FD_ISSET(fd, &rd) ? WL_SOCKET_READABLE : 0) | (FD_ISSET(fd, &wr) ? WL_SOCKET_WRITEABLE : 0);

		if (ev)
			AddWaitEventToSet(set, ev, fd, NULL, NULL);
	}
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

/* Let libcurl work; move the transfers that finished from *inflight to the returned list. */
static List *
run_transfers(CURLM *multi, List **inflight)
{
	List	   *finished = NIL;
	CURLMsg    *msg;
	int			running;
	int			left;
	sigset_t	saved;

	/* resolver threads start inside libcurl: keep signals off them */
	delivery_block_signals(&saved);
	(void) curl_multi_perform(multi, &running);
	delivery_restore_signals(&saved);
	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		DeliveryTransfer *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		curl_multi_remove_handle(multi, msg->easy_handle);
		delivery_transfer_finish(t, msg->data.result);
		*inflight = list_delete_ptr(*inflight, t);
		finished = lappend(finished, t);
	}
	return finished;
}

/* The alerts worker's state between wake-ups. */
typedef struct DeliveryLoop
{
	MemoryContext loop_cxt;		/* reset at every wake-up */
	MemoryContext transfer_cxt; /* transfers and the lists of them */
	CURLM	   *multi;
	List	   *inflight;		/* transfers under way */
	List	   *finished;		/* transfers whose outcome is still to record */
	bool		work;			/* look for due notifications at once */
	TimestampTz next_due;		/* the earliest due notification, or 0 */
	TimestampTz tick_at;		/* the next periodic check (snoozes, reminders) */
} DeliveryLoop;

/* Connect, announce ourselves and make libcurl's multi handle. */
static void
delivery_setup(DeliveryLoop *l)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(crm_launcher_database, NULL, 0);

	delivery_shared->procno = MyProc->pgprocno;
	delivery_shared->pid = MyProcPid;
	on_shmem_exit(delivery_detach, (Datum) 0);

	memset(l, 0, sizeof(*l));
	l->work = true;
	l->loop_cxt = AllocSetContextCreate(TopMemoryContext, "crm_dashboard alerts loop", ALLOCSET_DEFAULT_SIZES);
	l->transfer_cxt = AllocSetContextCreate(TopMemoryContext, "crm_dashboard alerts transfers", ALLOCSET_DEFAULT_SIZES);
	delivery_curl_init();
	l->multi = curl_multi_init();
	if (l->multi == NULL)
		elog(ERROR, "crm_dashboard: could not create a libcurl multi handle");
	elog(LOG, "crm_dashboard alerts worker started in database \"%s\"", crm_launcher_database);
}

/* After a round that committed: free what it recorded, start what it claimed. */
static void
after_round(DeliveryLoop *l, Round *round, TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, l->finished)
		delivery_transfer_free(lfirst(lc));
	list_free(l->finished);
	l->finished = NIL;
	/* the lists outlive the round: they live beside the transfers */
	MemoryContextSwitchTo(l->transfer_cxt);
	l->inflight = start_transfers(l->multi, round->claimed, l->inflight, &l->finished, l->transfer_cxt);
	MemoryContextSwitchTo(l->loop_cxt);
	l->next_due = round->next_due;

	/*
	 * What is due and was not claimed waits for a transfer of its channel to
	 * finish (the per-channel limit, or an earlier notice of its alert): a
	 * finished transfer starts a round anyway, so do not spin on it.
	 */
	if (l->next_due != 0 && l->next_due <= GetCurrentTimestamp())
		l->next_due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
	if (round->tick)
		l->tick_at = TimestampTzPlusMilliseconds(now, DELIVERY_IDLE_MS);
	/* a full claim may have left more that is due */
	l->work = round->claimed != NIL && list_length(round->claimed) == round->slots;
}

/* Record outcomes and claim what is due, when anything calls for it. */
static void
maybe_round(DeliveryLoop *l, TimestampTz now)
{
	Round		round = {0};

	if (!(l->work || l->finished != NIL || (l->next_due != 0 && now >= l->next_due) || now >= l->tick_at))
		return;
	round.finished = l->finished;
	round.slots = delivery_max_in_flight - list_length(l->inflight);
	round.cxt = l->loop_cxt;
	round.tick = now >= l->tick_at;
	if (try_round(&round, l->loop_cxt))
		after_round(l, &round, now);
	else
	{
		/* keep the outcomes to record; look again in a second */
		l->next_due = TimestampTzPlusMilliseconds(now, 1000);
		l->work = false;
	}
	if (!round.ready)
		l->next_due = TimestampTzPlusMilliseconds(now, 5000);
}

/* Milliseconds until the next due notification or periodic check. */
static long
ms_until_next(DeliveryLoop *l)
{
	TimestampTz until = l->tick_at;

	if (l->next_due != 0 && l->next_due < until)
		until = l->next_due;
	return Max(0, (until - GetCurrentTimestamp() + 999) / 1000);
}

/* Move the transfers on, waiting on their sockets and the latch when idle. */
static void
drive_transfers(DeliveryLoop *l)
{
	List	   *done;

	if (!l->work && l->finished == NIL && wait_for_transfers(l->multi, ms_until_next(l)))
		l->work = true;
	MemoryContextSwitchTo(l->transfer_cxt);
	done = run_transfers(l->multi, &l->inflight);
	l->finished = list_concat(l->finished, done);
	list_free(done);
	MemoryContextSwitchTo(l->loop_cxt);
}

/* With no transfer under way: sleep until woken or something is due. */
static void
wait_idle(DeliveryLoop *l)
{
	int			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   ms_until_next(l), PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		l->work = true;
	}
}

/* Entry point of the alerts worker. */
void
crm_delivery_main(Datum arg)
{
	DeliveryLoop l;

	delivery_setup(&l);
	for (;;)
	{
		MemoryContextSwitchTo(l.loop_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		maybe_round(&l, GetCurrentTimestamp());
		if (l.inflight != NIL)
			drive_transfers(&l);
		else if (l.finished == NIL && !l.work)
			wait_idle(&l);
		MemoryContextReset(l.loop_cxt);
	}
}
