/*
 * announce.c
 *		Announcing run changes: the sync_history trigger sends each change with
 *		NOTIFY crm_dashboard_sync and, when the library is preloaded, publishes
 *		it at commit into a shared-memory ring read by the HTTP workers.
 *
 * The ring holds ANNOUNCE_SLOTS events; event seq lives in slot seq %
 * ANNOUNCE_SLOTS, so a slow reader notices it was overtaken (announce_get
 * returns false) and skips ahead.  Subscribers' latches are set after each
 * publish.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "announce.h"
#include "crm_dashboard.h"

#define ANNOUNCE_SLOTS 1024
#define ANNOUNCE_MAX_SUBSCRIBERS 64
#define ANNOUNCE_CHANNEL "crm_dashboard_sync"

typedef struct AnnounceShared
{
	LWLock	   *lock;
	uint64		last_seq;		/* newest published; 0 when none */
	int			subscriber_procno[ANNOUNCE_MAX_SUBSCRIBERS];	/* -1 when free */
	int			subscriber_pid[ANNOUNCE_MAX_SUBSCRIBERS];
	uint64		slot_seq[ANNOUNCE_SLOTS];
	char		slot[ANNOUNCE_SLOTS][ANNOUNCE_PAYLOAD_MAX];
} AnnounceShared;

/* An event waiting for its transaction (or subtransaction) to commit. */
typedef struct PendingEvent
{
	int			nest_level;
	char	   *payload;
} PendingEvent;

static AnnounceShared *announce_shared = NULL;
static List *pending = NIL;		/* in TopTransactionContext */
static bool callbacks_registered = false;
static int	my_subscriber_slot = -1;

PG_FUNCTION_INFO_V1(crm_dashboard_announce_sync_change);
PG_FUNCTION_INFO_V1(crm_dashboard_recent_announcements);
PG_FUNCTION_INFO_V1(crm_dashboard_announce_event);

#define ANNOUNCE_AREA "crm_dashboard announce"

/* Initialise the zeroed ring. */
static void
announce_shmem_init(void *area)
{
	AnnounceShared *shared = area;

	shared->lock = &(GetNamedLWLockTranche(ANNOUNCE_AREA))->lock;
	for (int i = 0; i < ANNOUNCE_MAX_SUBSCRIBERS; i++)
		shared->subscriber_procno[i] = -1;
}

/* Register the ring and its lock when preloading (else there is no ring). */
void
AnnounceInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	crm_shmem_register(ANNOUNCE_AREA, sizeof(AnnounceShared), 1,
					   (void **) &announce_shared, announce_shmem_init);
}

/* Whether the ring exists (the library was preloaded). */
bool
announce_available(void)
{
	return announce_shared != NULL;
}

/* The newest published sequence number; 0 when none. */
uint64
announce_last_seq(void)
{
	uint64		seq;

	if (!announce_shared)
		return 0;
	LWLockAcquire(announce_shared->lock, LW_SHARED);
	seq = announce_shared->last_seq;
	LWLockRelease(announce_shared->lock);
	return seq;
}

/* Copy event seq out of the ring; false when not published yet or overwritten. */
bool
announce_get(uint64 seq, char *buf, Size buflen)
{
	bool		ok;
	int			slot = seq % ANNOUNCE_SLOTS;

	if (!announce_shared || seq == 0 || buflen == 0)
		return false;
	LWLockAcquire(announce_shared->lock, LW_SHARED);
	ok = announce_shared->slot_seq[slot] == seq;
	if (ok)
		strlcpy(buf, announce_shared->slot[slot], buflen);
	LWLockRelease(announce_shared->lock);
	return ok;
}

/* Free our subscriber slot when the process exits. */
static void
announce_unsubscribe(int code, Datum arg)
{
	if (my_subscriber_slot < 0 || !announce_shared)
		return;
	LWLockAcquire(announce_shared->lock, LW_EXCLUSIVE);
	announce_shared->subscriber_procno[my_subscriber_slot] = -1;
	LWLockRelease(announce_shared->lock);
	my_subscriber_slot = -1;
}

/* Have every later publish set this process's latch (once per process). */
void
announce_subscribe(void)
{
	if (!announce_shared || my_subscriber_slot >= 0)
		return;
	LWLockAcquire(announce_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ANNOUNCE_MAX_SUBSCRIBERS; i++)
	{
		int			procno = announce_shared->subscriber_procno[i];

		/* free, or left by a process that died without cleaning up */
		if (procno < 0 || ProcGlobal->allProcs[procno].pid != announce_shared->subscriber_pid[i])
		{
			announce_shared->subscriber_procno[i] = MyProc->pgprocno;
			announce_shared->subscriber_pid[i] = MyProcPid;
			my_subscriber_slot = i;
			break;
		}
	}
	LWLockRelease(announce_shared->lock);
	if (my_subscriber_slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many announcement subscribers (%d)", ANNOUNCE_MAX_SUBSCRIBERS)));
	on_shmem_exit(announce_unsubscribe, (Datum) 0);
}

/* Put committed events into the ring and wake the subscribers. */
static void
publish_pending(void)
{
	ListCell   *lc;

	if (pending == NIL || !announce_shared)
		return;
	LWLockAcquire(announce_shared->lock, LW_EXCLUSIVE);
	foreach(lc, pending)
	{
		PendingEvent *ev = lfirst(lc);
		uint64		seq = ++announce_shared->last_seq;
		int			slot = seq % ANNOUNCE_SLOTS;

		strlcpy(announce_shared->slot[slot], ev->payload, ANNOUNCE_PAYLOAD_MAX);
		announce_shared->slot_seq[slot] = seq;
	}
	for (int i = 0; i < ANNOUNCE_MAX_SUBSCRIBERS; i++)
	{
		int			procno = announce_shared->subscriber_procno[i];

		if (procno >= 0 && ProcGlobal->allProcs[procno].pid == announce_shared->subscriber_pid[i])
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
	LWLockRelease(announce_shared->lock);
}

/* Publish at commit; forget on abort (the list's memory goes with the transaction). */
static void
announce_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			publish_pending();
			pending = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending = NIL;
			break;
		default:
			break;
	}
}

/* Drop the events of an aborted subtransaction; hand a committed one's to its parent. */
static void
announce_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingEvent *ev = lfirst(lc);

		if (ev->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			pending = foreach_delete_current(pending, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			ev->nest_level = level - 1;
	}
}

/* Queue an event for the ring until commit. */
static void
queue_for_ring(const char *payload)
{
	MemoryContext old;
	PendingEvent *ev;

	if (!announce_shared)
		return;
	if (!callbacks_registered)
	{
		RegisterXactCallback(announce_xact_callback, NULL);
		RegisterSubXactCallback(announce_subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	ev = palloc(sizeof(PendingEvent));
	ev->nest_level = GetCurrentTransactionNestLevel();
	ev->payload = pstrdup(payload);
	pending = lappend(pending, ev);
	MemoryContextSwitchTo(old);
}

/*
 * Append "key": value of a column, JSON-typed by its SQL type; timestamps in
 * ISO 8601 whatever the session's DateStyle.
 */
static void
add_field(StringInfo buf, HeapTuple tuple, TupleDesc desc, const char *key, const char *column,
		  bool quoted)
{
	int			attno = SPI_fnumber(desc, column);
	bool		isnull = true;
	Datum		datum = attno > 0 ? heap_getattr(tuple, attno, desc, &isnull) : (Datum) 0;

	appendStringInfo(buf, "%s\"%s\":", buf->len > 1 ? "," : "", key);
	if (isnull)
		appendStringInfoString(buf, "null");
	else if (SPI_gettypeid(desc, attno) == TIMESTAMPTZOID)
	{
		char		iso[MAXDATELEN + 1];

		escape_json(buf, JsonEncodeDateTime(iso, datum, TIMESTAMPTZOID, NULL));
	}
	else if (quoted)
		escape_json(buf, SPI_getvalue(tuple, desc, attno));
	else
		appendStringInfoString(buf, SPI_getvalue(tuple, desc, attno));
}

/* performance_metrics -> records_per_second as JSON number text, or NULL. */
static char *
metrics_rate(Jsonb *metrics)
{
	JsonbValue	key;
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(metrics))
		return NULL;
	key.type = jbvString;
	key.val.string.val = "records_per_second";
	key.val.string.len = strlen("records_per_second");
	v = findJsonbValueFromContainer(&metrics->root, JB_FOBJECT, &key);
	if (v == NULL || v->type != jbvNumeric)
		return NULL;
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
}

/* The event payload of one row: only what the live views need. */
static char *
row_payload(HeapTuple tuple, TupleDesc desc)
{
	StringInfoData buf;
	int			attno = SPI_fnumber(desc, "performance_metrics");
	bool		isnull;
	char	   *rps = NULL;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	add_field(&buf, tuple, desc, "id", "id", false);
	add_field(&buf, tuple, desc, "crm", "crm_source", true);
	add_field(&buf, tuple, desc, "model", "sync_type", true);
	add_field(&buf, tuple, desc, "status", "status", true);
	add_field(&buf, tuple, desc, "processed", "records_processed", false);
	add_field(&buf, tuple, desc, "created", "records_created", false);
	add_field(&buf, tuple, desc, "updated", "records_updated", false);
	add_field(&buf, tuple, desc, "failed", "records_failed", false);
	add_field(&buf, tuple, desc, "total", "records_total", false);
	if (attno > 0)
	{
		Datum		metrics = heap_getattr(tuple, attno, desc, &isnull);

		if (!isnull)
			rps = metrics_rate(DatumGetJsonbP(metrics));
	}
	appendStringInfo(&buf, ",\"records_per_second\":%s", rps ? rps : "null");
	add_field(&buf, tuple, desc, "start_time", "start_time", true);
	add_field(&buf, tuple, desc, "end_time", "end_time", true);
	add_field(&buf, tuple, desc, "parent_id", "parent_id", false);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Trigger AFTER INSERT OR UPDATE ON sync_history FOR EACH ROW: announce the
 * row unless nothing the payload shows changed (heartbeat or log updates).
 */
Datum
crm_dashboard_announce_sync_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	row;
	char	   *payload;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("announce_sync_change must be an AFTER ... FOR EACH ROW trigger")));
	desc = RelationGetDescr(trigdata->tg_relation);
	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	payload = row_payload(row, desc);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		strcmp(payload, row_payload(trigdata->tg_trigtuple, desc)) == 0)
		return PointerGetDatum(NULL);

	Async_Notify(ANNOUNCE_CHANNEL, payload);
	queue_for_ring(payload);
	return PointerGetDatum(NULL);
}

/*
 * crm_dashboard.recent_announcements(after): the events still in the ring
 * with a sequence number above after (a polling reader's view of the ring;
 * no rows without preloading).
 */
Datum
crm_dashboard_recent_announcements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		after = PG_GETARG_INT64(0);
	uint64		last = announce_last_seq();
	uint64		first = last > ANNOUNCE_SLOTS ? last - ANNOUNCE_SLOTS + 1 : 1;
	char	   *buf = palloc(ANNOUNCE_PAYLOAD_MAX);

	InitMaterializedSRF(fcinfo, 0);
	for (uint64 seq = Max(first, (uint64) Max(after, 0) + 1); seq <= last; seq++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (!announce_get(seq, buf, ANNOUNCE_PAYLOAD_MAX) || announce_event_name(buf, NULL, 0) != buf)
			continue;			/* overwritten, or not a run's change */
		values[0] = Int64GetDatum((int64) seq);
		values[1] = CStringGetTextDatum(buf);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * An event of the ring other than a run's change is kept as "name\n" and
 * its JSON.  Returns where the JSON starts, and copies the event's name
 * into name (when given): "sync" for a run's change.
 */
const char *
announce_event_name(const char *payload, char *name, Size namelen)
{
	const char *nl = payload[0] != '{' ? strchr(payload, '\n') : NULL;

	if (nl == NULL)
	{
		if (name)
			strlcpy(name, "sync", namelen);
		return payload;
	}
	if (name)
		strlcpy(name, payload, Min(namelen, (Size) (nl - payload) + 1));
	return nl + 1;
}

/*
 * crm_dashboard.announce_event(event, payload): at commit, NOTIFY
 * crm_dashboard_<event> and publish the payload (JSON) to the event
 * streams as an event of that name.  The name is a lower-case word.
 */
Datum
crm_dashboard_announce_event(PG_FUNCTION_ARGS)
{
	char	   *event = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *payload = text_to_cstring(PG_GETARG_TEXT_PP(1));
	size_t		len = strlen(event);

	if (len == 0 || len > 32 || strspn(event, "abcdefghijklmnopqrstuvwxyz_") != len || strcmp(event, "sync") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event name \"%s\"", event),
				 errhint("Events are lower-case words other than sync, up to 32 characters.")));
	if (strlen(payload) + len + 2 > ANNOUNCE_PAYLOAD_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event payload is too long (%zu bytes)", strlen(payload)),
				 errhint("Keep it under %d bytes.", ANNOUNCE_PAYLOAD_MAX - 34)));
	Async_Notify(psprintf("crm_dashboard_%s", event), payload);
	queue_for_ring(psprintf("%s\n%s", event, payload));
	PG_RETURN_VOID();
}
