/*
 * launcher_runs.c
 *		The launcher's SQL: state transitions of runs in
 *		crm_dashboard.sync_history (recover, claim, launch, progress, finish).
 *
 * Every function runs inside the launcher's per-batch transaction with SPI
 * connected; values are always $n parameters.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/varlena.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include <cjson/cJSON.h>

#include "crm_dashboard.h"
#include "launcher.h"

static void after_failure(int64 id);
static void after_sync_checks(int64 id);


/*
 * Whether the installed schema is the library's.  After the library was
 * updated and before ALTER EXTENSION UPDATE, the queue's functions may be
 * missing: runs then wait queued (said once in the server log).
 */
static bool
schema_is_current(void)
{
	static char said[64] = "";
	char	   *installed = NULL;

	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'crm_dashboard'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		installed = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (installed == NULL || strcmp(installed, EXTVERSION) == 0)
		return true;
	if (strcmp(said, installed) != 0)
	{
		elog(LOG, "crm_dashboard launcher: crm_dashboard %s is installed, the library is %s; "
			 "runs wait until ALTER EXTENSION crm_dashboard UPDATE", installed, EXTVERSION);
		strlcpy(said, installed, sizeof(said));
	}
	return false;
}

/*
 * Whether the extension is installed and its history table can be locked
 * right now; *extension is its OID (InvalidOid when it is not installed).
 * The conditional lock means DROP EXTENSION never waits for the launcher;
 * we simply try again later.
 */
bool
runs_extension_ready(Oid *extension)
{
	Oid			nsp;
	Oid			rel;

	*extension = get_extension_oid("crm_dashboard", true);
	if (!OidIsValid(*extension))
		return false;
	nsp = get_namespace_oid("crm_dashboard", true);
	rel = OidIsValid(nsp) ? get_relname_relid("sync_history", nsp) : InvalidOid;
	if (!OidIsValid(rel))
		return false;
	if (!ConditionalLockRelationOid(rel, RowExclusiveLock))
		return false;
	return schema_is_current();
}

/* Run a statement with parameters; error unless it returns expected. */
static void
exec_params(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "crm_dashboard launcher: statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
}

/*
 * After a (re)start: runs we launched earlier lost their process (their
 * supervisors killed everything when the previous launcher died).  They are
 * marked failed; what identifies their processes is returned (in the
 * current memory context), so that the caller can kill anything that is
 * still left of them.  Queued runs stay queued and are launched as usual.
 * Rows written by other tools are left alone.
 */
List *
runs_recover(void)
{
	List	   *lost = NIL;
	int			rc;

	uint64		n;
	SPITupleTable *lost_rows;

	rc = SPI_execute("UPDATE crm_dashboard.sync_history "
					 "SET status = 'failed', end_time = greatest(clock_timestamp(), start_time), "
					 "    error_class = 'lost', "
					 "    error_message = 'launcher restarted; the command''s process was lost "
					 "(server restart or crash)' "
					 "WHERE status = 'running' AND sync_type <> 'all' AND configuration ? 'argv' "
					 "RETURNING id, coalesce(pid, 0)",
					 false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "crm_dashboard launcher: could not recover runs");
	n = SPI_processed;
	lost_rows = SPI_tuptable;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		RunProcesses *p = palloc0(sizeof(RunProcesses));

		p->id = DatumGetInt64(SPI_getbinval(lost_rows->vals[i], lost_rows->tupdesc, 1, &isnull));
		p->pgid = DatumGetInt32(SPI_getbinval(lost_rows->vals[i], lost_rows->tupdesc, 2, &isnull));
		/* the recorded group may be someone else's by now (a reboot): verify it */
		p->verify_group = true;
		lost = lappend(lost, p);
	}
	if (n > 0)
		elog(LOG, "crm_dashboard launcher: marked " UINT64_FORMAT " runs lost at restart as failed",
			 n);
	/* a lost run is retried by policy, in this same transaction */
	{
		ListCell   *lc;

		foreach(lc, lost)
			after_failure(((RunProcesses *) lfirst(lc))->id);
	}
	runs_finish_parents();
	return lost;
}

/*
 * After a run that succeeded (or partly): the model's data-quality checks,
 * which make it partial when an error-severity check fails
 * (crm_dashboard.after_sync_checks; it never raises).  Each check has its
 * own time limit, crm_dashboard.check_timeout.  A schema older than the
 * library has no checks: the function is looked up first.
 */
static void
after_sync_checks(int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	bool		isnull;

	exec_params("SELECT to_regprocedure('crm_dashboard.after_sync_checks(bigint)') IS NOT NULL",
				0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1 ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return;
	exec_params("SELECT crm_dashboard.after_sync_checks($1)", 1, types, values, NULL, SPI_OK_SELECT);
}

/*
 * What follows a failed run (crm_dashboard.after_failure): its events, then
 * action required, an automatic pause or a retry, in the transaction that
 * marked it failed, so that a retry is never lost nor queued twice.
 */
static void
after_failure(int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};

	exec_params("SELECT crm_dashboard.after_failure($1)", 1, types, values, NULL, SPI_OK_SELECT);
}

/*
 * Lock up to slots queued runs to start now, best first: the claim step
 * (crm_dashboard.claim_runs) decides from pools, pauses, retry times,
 * priorities and the one-model-at-a-time rule of "all" runs.
 */
List *
runs_claim(int slots)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(slots)};
	List	   *ids = NIL;

	exec_params("SELECT id FROM crm_dashboard.claim_runs($1) AS id",
				1, types, values, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64	   *p = palloc(sizeof(int64));

		*p = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		ids = lappend(ids, p);
	}
	return ids;
}

/* When a queued run becomes due (a retry's backoff ends), or 0 when none is ahead. */
TimestampTz
runs_next_due(void)
{
	bool		isnull = true;
	Datum		due = (Datum) 0;

	exec_params("SELECT crm_dashboard.next_due()", 0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
		due = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(due);
}

/* Record the models' freshness, so that its changes (late, overdue) are events. */
void
runs_note_freshness(void)
{
	exec_params("SELECT crm_dashboard.note_freshness()", 0, NULL, NULL, NULL, SPI_OK_SELECT);
}

/* A text[] datum as a NULL-terminated char * vector. */
static char **
text_array_to_vector(Datum array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	  **v;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	v = palloc0(sizeof(char *) * (n + 1));
	for (int i = 0; i < n; i++)
		v[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return v;
}

/* Role the commands connect as: crm_dashboard.sync_user or the bootstrap superuser. */
static char *
sync_user(void)
{
	if (crm_sync_user && crm_sync_user[0] != '\0')
		return crm_sync_user;
	return GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false);
}

/*
 * The command's complete environment: a fixed PATH and LANG, the
 * registry's variables, then ours (which therefore win).
 */
static char **
build_environment(int64 id, const char *crm, const char *model, const char *env_json)
{
	List	   *vars = NIL;
	cJSON	   *env = env_json ? cJSON_Parse(env_json) : NULL;
	cJSON	   *item;
	char	  **envp;
	int			i = 0;
	ListCell   *lc;

	vars = lappend(vars, "PATH=/usr/local/bin:/usr/bin:/bin");
	vars = lappend(vars, "LANG=C.UTF-8");
	cJSON_ArrayForEach(item, env)
	{
		if (cJSON_IsString(item) && item->string)
			vars = lappend(vars, psprintf("%s=%s", item->string, item->valuestring));
	}
	cJSON_Delete(env);
	vars = lappend(vars, psprintf("CRM_DASHBOARD_SYNC_ID=" INT64_FORMAT, id));
	/* with the id, tells the launcher which processes are the run's (launcher_reap.c) */
	vars = lappend(vars, psprintf("CRM_DASHBOARD_CLUSTER=%s", launcher_cluster_tag()));
	vars = lappend(vars, psprintf("CRM_SOURCE=%s", crm));
	vars = lappend(vars, psprintf("SYNC_TYPE=%s", model));
	vars = lappend(vars, psprintf("PGHOST=%s", crm_local_socket_directory()));
	vars = lappend(vars, psprintf("PGPORT=%d", crm_local_port()));
	vars = lappend(vars, psprintf("PGDATABASE=%s", get_database_name(MyDatabaseId)));
	vars = lappend(vars, psprintf("PGUSER=%s", sync_user()));

	/* later entries override earlier ones of the same name: keep only the last */
	envp = palloc0(sizeof(char *) * (list_length(vars) + 1));
	foreach(lc, vars)
	{
		char	   *var = lfirst(lc);
		Size		namelen = strcspn(var, "=");
		bool		overridden = false;

		for (int j = foreach_current_index(lc) + 1; j < list_length(vars); j++)
		{
			char	   *later = list_nth(vars, j);

			if (strncmp(later, var, namelen + 1) == 0)
				overridden = true;
		}
		if (!overridden)
			envp[i++] = var;
	}
	return envp;
}

/*
 * Mark a run we could not start as failed: permanently when its command
 * cannot be executed (action required), else (no pipe, no fork) to be
 * retried.
 */
static void
fail_launch(int64 id, const char *message, bool transient)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(id), CStringGetTextDatum(message),
	CStringGetTextDatum(transient ? "temporary" : "permanent")};

	exec_params("UPDATE crm_dashboard.sync_history "
				"SET status = 'failed', start_time = clock_timestamp(), end_time = clock_timestamp(), "
				"    error_message = $2, exit_code = 127, error_class = $3 WHERE id = $1",
				3, types, values, NULL, SPI_OK_UPDATE);
	elog(LOG, "crm_dashboard launcher: run " INT64_FORMAT " failed to start: %s", id, message);
	after_failure(id);
}

/*
 * Mark a spawned run as running (and its "all" parent, if it was still
 * queued).  The caller kills the process when this fails.
 */
void
runs_mark_running(Run *run)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(run->id), Int32GetDatum(run->pid)};

	exec_params("WITH r AS (UPDATE crm_dashboard.sync_history "
				"  SET status = 'running', start_time = clock_timestamp(), pid = $2, "
				"      heartbeat = clock_timestamp(), last_output_at = clock_timestamp(), "
				"      rate_limited_until = NULL WHERE id = $1 RETURNING parent_id) "
				"UPDATE crm_dashboard.sync_history p SET status = 'running', start_time = clock_timestamp() "
				"FROM r WHERE p.id = r.parent_id AND p.status = 'queued'",
				2, types, values, NULL, SPI_OK_UPDATE);
}

/* Allocate the in-memory state of a run about to be spawned. */
static Run *
new_run(int64 id, int64 parent_id, int timeout_s, int stall_timeout_s, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "crm_dashboard run", ALLOCSET_SMALL_SIZES);
	Run		   *run = MemoryContextAllocZero(cxt, sizeof(Run));
	MemoryContext old = MemoryContextSwitchTo(cxt);

	run->cxt = cxt;
	run->id = id;
	run->parent_id = parent_id;
	run->state = RUN_RUNNING;
	run->total = -1;
	run->timeout_s = timeout_s;
	run->stall_timeout_s = stall_timeout_s;
	run->started_at = GetCurrentTimestamp();
	run->last_output_at = run->started_at;
	run->deadline = timeout_s > 0
		? TimestampTzPlusMilliseconds(run->started_at, (int64) timeout_s * 1000) : 0;
	run->flushed_at = run->log_flushed_at = run->started_at;
	output_ring_init(&run->log, crm_log_limit);
	MemoryContextSwitchTo(old);
	return run;
}

/*
 * The run's secrets: the registry's values of the variables named in its
 * secret_names, copied into the run's memory so that they live as long as
 * the run.  A value too short to be masked is only noted in the server log.
 */
static void
load_secrets(Run *run, const char *env_json, ArrayType *names)
{
	cJSON	   *env = env_json ? cJSON_Parse(env_json) : NULL;
	Datum	   *elems = NULL;
	bool	   *nulls = NULL;
	int			n = 0;
	List	   *kept = NIL;
	int			pieces = 0;
	ListCell   *lc;
	MemoryContext old;

	if (names)
		deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	old = MemoryContextSwitchTo(run->cxt);
	for (int i = 0; i < n; i++)
	{
		char	   *name = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
		cJSON	   *item = name ? cJSON_GetObjectItemCaseSensitive(env, name) : NULL;
		char	   *value;

		if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
			continue;
		value = pstrdup(item->valuestring);
		if (strlen(value) < SECRET_MIN_LEN)
			elog(LOG, "crm_dashboard launcher: run " INT64_FORMAT ": the value of secret %s is "
				 "shorter than %d bytes and is not masked", run->id, name, SECRET_MIN_LEN);
		kept = lappend(kept, value);
		pieces += secrets_pieces(value, strlen(value));
	}
	run->secrets.cap = pieces;
	run->secrets.values = palloc(sizeof(char *) * Max(pieces, 1));
	run->secrets.lens = palloc(sizeof(size_t) * Max(pieces, 1));
	foreach(lc, kept)
		secrets_add(&run->secrets, lfirst(lc), strlen(lfirst(lc)));
	secrets_finish(&run->secrets);
	MemoryContextSwitchTo(old);
	cJSON_Delete(env);
}

/* What a queued run needs to be launched, read from its row and registry. */
typedef struct LaunchSpec
{
	SpawnRequest req;
	int64		parent_id;
	int			timeout;		/* seconds; 0 for none */
	int			stall;			/* seconds; 0 for none */
	char	   *environment;	/* the registry's, as JSON text */
	ArrayType  *secret_names;	/* or NULL */
} LaunchSpec;

/*
 * Read a queued run's launch spec (false when the row is gone).  The
 * environment comes from the registry at launch, not from the run's
 * configuration: it may hold secrets, and viewers can read runs.
 */
static bool
read_launch_spec(int64 id, LaunchSpec *spec)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		datum;
	char	   *timeout;

	exec_params("SELECT h.configuration -> 'argv', h.configuration ->> 'working_directory', "
				"  c.environment::text, h.configuration ->> 'timeout_seconds', h.crm_source, "
				"  h.sync_type, coalesce(h.parent_id, 0), "
				"  ARRAY(SELECT jsonb_array_elements_text(h.configuration -> 'argv')), c.secret_names, "
				"  least(extract(epoch FROM p.stall_timeout), 86400)::integer "
				"FROM crm_dashboard.sync_history h "
				"LEFT JOIN LATERAL crm_dashboard.command_for(h.crm_source, h.sync_type) c ON true "
				"LEFT JOIN LATERAL crm_dashboard.policy_for(h.crm_source, h.sync_type) p ON true "
				"WHERE h.id = $1",
				1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return false;
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	spec->req.argv = text_array_to_vector(SPI_getbinval(tuple, desc, 8, &isnull));
	spec->req.working_directory = SPI_getvalue(tuple, desc, 2);
	spec->environment = SPI_getvalue(tuple, desc, 3);
	spec->req.envp = build_environment(id, SPI_getvalue(tuple, desc, 5), SPI_getvalue(tuple, desc, 6),
									   spec->environment);
	timeout = SPI_getvalue(tuple, desc, 4);
	spec->timeout = timeout ? atoi(timeout) : 0;
	spec->parent_id = DatumGetInt64(SPI_getbinval(tuple, desc, 7, &isnull));
	datum = SPI_getbinval(tuple, desc, 10, &isnull);
	spec->stall = isnull ? 0 : DatumGetInt32(datum);
	datum = SPI_getbinval(tuple, desc, 9, &isnull);
	spec->secret_names = isnull ? NULL : DatumGetArrayTypeP(datum);
	return true;
}

/*
 * Spawn a claimed run from what start_sync recorded in its configuration.
 * Returns the supervised run, or NULL when it could not start (then failed).
 * Nothing after the fork can fail, so a spawned process is never lost; the
 * caller then marks the run running (runs_mark_running).
 */
Run *
runs_launch(int64 id, MemoryContext parent)
{
	LaunchSpec	spec;
	char	   *error;
	int			out_fd,
				err_fd;
	pid_t		pid;
	pid_t		supervisor;
	bool		transient;
	Run		   *run;

	if (!read_launch_spec(id, &spec))
		return NULL;
	if (spec.req.argv[0] == NULL)
	{
		fail_launch(id, "the recorded argv is empty", false);
		return NULL;
	}

	run = new_run(id, spec.parent_id, spec.timeout, spec.stall, parent);
	load_secrets(run, spec.environment, spec.secret_names);
	run_streams_init(run, -1, -1);
	pid = launcher_spawn(id, &spec.req, &out_fd, &err_fd, &supervisor, &error, &transient);
	if (pid < 0)
	{
		MemoryContextDelete(run->cxt);
		fail_launch(id, error, transient);
		return NULL;
	}
	run->pid = pid;
	run->supervisor = supervisor;
	run->out.fd = out_fd;
	run->err.fd = err_fd;
	return run;
}

/* Make an active "all" run's figures the live sums of its model runs. */
static void
refresh_parent(int64 parent_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(parent_id)};

	exec_params("SELECT crm_dashboard.refresh_parent($1)", 1, types, values, NULL, SPI_OK_SELECT);
}

/* Clamp a counter to the integer columns of the original SyncHistory model. */
static Datum
count_datum(int64 v)
{
	return Int32GetDatum((int32) Min(Max(v, 0), PG_INT32_MAX));
}

/* Set a timestamptz parameter, NULL when 0. */
static void
timestamp_param(Datum *value, char *null, TimestampTz t)
{
	*value = TimestampTzGetDatum(t);
	*null = t ? ' ' : 'n';
}

/*
 * Write a run's counters, heartbeat, rate-limit wait, last output, metrics
 * (and the log's new output when with_log); then its "all" run's live sums.
 */
void
runs_flush(Run *run, TimestampTz now, bool with_log)
{
	Oid			types[9] = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID, INT8OID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[9];
	char		nulls[9] = "         ";
	bool		counted = run->dirty;

	values[0] = Int64GetDatum(run->id);
	values[1] = count_datum(run->processed);
	values[2] = count_datum(run->created);
	values[3] = count_datum(run->updated);
	values[4] = count_datum(run->failed);
	values[5] = Int64GetDatum(run->total);
	if (run->total < 0)
		nulls[5] = 'n';
	/* metrics only with new counters: a bare heartbeat must not announce */
	if (run->dirty)
		values[6] = CStringGetTextDatum(run_metrics_json(run, now));
	else
		nulls[6] = 'n';
	timestamp_param(&values[7], &nulls[7], run->rate_wait_until);
	timestamp_param(&values[8], &nulls[8], run->last_output_at);
	exec_params("UPDATE crm_dashboard.sync_history SET records_processed = $2, "
				"  records_created = $3, records_updated = $4, records_failed = $5, "
				"  records_total = $6, performance_metrics = coalesce($7::jsonb, performance_metrics), heartbeat = clock_timestamp(), "
				"  rate_limited_until = $8, last_output_at = $9 "
				"WHERE id = $1 AND status = 'running'",
				9, types, values, nulls, SPI_OK_UPDATE);
	/* the log store gets the new output only (launcher_log.c) */
	if (with_log && SPI_processed == 1)
		runs_write_log(run);
	if (counted && run->parent_id)
		refresh_parent(run->parent_id);
	run->dirty = false;
	run->flushed_at = now;
	if (with_log)
	{
		run->log_dirty = false;
		run->log_flushed_at = now;
	}
}

/* Exit statuses of sysexits.h that say what went wrong. */
#define EXIT_TEMPFAIL 75		/* EX_TEMPFAIL: try again later */
#define EXIT_NOPERM 77			/* EX_NOPERM: e.g. a revoked API key */
#define EXIT_CONFIG 78			/* EX_CONFIG: configuration error */

/*
 * The final status, error class and message of an exited run.  The class
 * follows sysexits.h: 75 is temporary (after a rate_limited event: retried
 * when the wait ends, without using an attempt), 77 and 78 permanent
 * (action required), as is an error event with "retryable": false; any
 * other failure is temporary, a stall or timeout too.  A run stopped by a
 * person has no class: it is never retried.
 */
static const char *
final_status(Run *run, char **message, const char **error_class, int *exit_code, int *exit_signal)
{
	char	   *how = launcher_describe_exit(run->wait_status, exit_code, exit_signal);
	char	   *lines = run_error_lines(run, 5);

	*message = NULL;
	*error_class = NULL;
	if (run->stop_reason == STOP_REQUESTED)
	{
		*message = "stopped on request";
		return "cancelled";
	}
	if (run->stop_reason == STOP_TIMEOUT)
	{
		*message = psprintf("timed out after %d s", run->timeout_s);
		*error_class = "timeout";
		return "failed";
	}
	if (run->stop_reason == STOP_STALLED)
	{
		*message = psprintf("stalled: no output for %d s", run->stall_timeout_s);
		*error_class = "stalled";
		return "failed";
	}
	if (*exit_code == 0)
	{
		if (run->failed > 0)
		{
			*message = psprintf(INT64_FORMAT " records failed%s%s", run->failed,
								run->last_error ? "; last error: " : "",
								run->last_error ? run->last_error : "");
			return "partial";
		}
		return "success";
	}
	*message = lines ? psprintf("%s: %s", how, lines) : how;
	if (*exit_code == EXIT_TEMPFAIL && run->rate_limited)
	{
		*error_class = "rate_limited";
		*message = psprintf("rate limited: %s (%s)", run->rate_message ? run->rate_message : "no message", how);
	}
	else if (*exit_code == EXIT_NOPERM || *exit_code == EXIT_CONFIG || run->permanent)
		*error_class = "permanent";
	else
		*error_class = "temporary";
	return "failed";
}

/*
 * Write the outcome of an exited run; a failure is followed, in the same
 * transaction, by what the policy says (crm_dashboard.after_failure).
 */
void
runs_finish(Run *run)
{
	Oid			types[14] = {INT8OID, TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID, INT8OID,
	TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[14];
	char		nulls[14] = "              ";
	char	   *message;
	const char *error_class;
	int			exit_code,
				exit_signal;
	const char *status = final_status(run, &message, &error_class, &exit_code, &exit_signal);

	values[0] = Int64GetDatum(run->id);
	values[1] = CStringGetTextDatum(status);
	values[2] = count_datum(run->processed);
	values[3] = count_datum(run->created);
	values[4] = count_datum(run->updated);
	values[5] = count_datum(run->failed);
	values[6] = Int64GetDatum(run->total);
	nulls[6] = run->total < 0 ? 'n' : ' ';
	values[7] = message ? CStringGetTextDatum(message) : (Datum) 0;
	nulls[7] = message ? ' ' : 'n';
	values[8] = Int32GetDatum(exit_code);
	nulls[8] = exit_code >= 0 ? ' ' : 'n';
	values[9] = Int32GetDatum(exit_signal);
	nulls[9] = exit_signal > 0 ? ' ' : 'n';
	values[10] = CStringGetTextDatum(run_metrics_json(run, GetCurrentTimestamp()));
	values[11] = error_class ? CStringGetTextDatum(error_class) : (Datum) 0;
	nulls[11] = error_class ? ' ' : 'n';
	timestamp_param(&values[12], &nulls[12], run->rate_wait_until);
	timestamp_param(&values[13], &nulls[13], run->last_output_at);
	exec_params("UPDATE crm_dashboard.sync_history SET status = $2, "
				"  end_time = greatest(clock_timestamp(), start_time), records_processed = $3, "
				"  records_created = $4, records_updated = $5, records_failed = $6, "
				"  records_total = $7, error_message = $8, exit_code = $9, exit_signal = $10, "
				"  performance_metrics = $11::jsonb, heartbeat = clock_timestamp(), "
				"  error_class = $12, rate_limited_until = $13, last_output_at = $14 "
				"WHERE id = $1 AND status = 'running'",
				14, types, values, nulls, SPI_OK_UPDATE);
	if (SPI_processed == 1)
	{
		/* the rest of the output, in the transaction that ends the run */
		runs_write_log(run);
		if (strcmp(status, "failed") == 0)
			after_failure(run->id);
		else
			after_sync_checks(run->id);
	}
	if (run->parent_id)
		refresh_parent(run->parent_id);
}

/* Which of the running ids have a stop request (stop_sync). */
List *
runs_stop_requested(List *running_ids)
{
	Datum	   *ids = palloc(sizeof(Datum) * list_length(running_ids));
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, running_ids)
		ids[foreach_current_index(lc)] = Int64GetDatum(*(int64 *) lfirst(lc));
	values[0] = PointerGetDatum(construct_array(ids, list_length(running_ids), INT8OID,
												8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	exec_params("SELECT id FROM crm_dashboard.sync_history WHERE id = ANY ($1) AND stop_requested",
				1, types, values, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64	   *p = palloc(sizeof(int64));

		*p = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		result = lappend(result, p);
	}
	return result;
}

/*
 * Finish "all" runs none of whose model runs is still active (a retry
 * still queued keeps it going): cancelled when stopped, failed when every
 * model failed, partial when some did not succeed, success otherwise; its
 * figures are the sums of the latest attempt of each model
 * (crm_dashboard.children_totals).
 */
void
runs_finish_parents(void)
{
	int			rc;

	rc = SPI_execute(
					 "UPDATE crm_dashboard.sync_history p SET "
					 "  status = CASE WHEN p.stop_requested THEN 'cancelled' "
					 "                WHEN a.n_failed = a.n THEN 'failed' "
					 "                WHEN a.n_failed + a.n_other > 0 THEN 'partial' "
					 "                ELSE 'success' END, "
					 "  end_time = greatest(clock_timestamp(), p.start_time), "
					 "  records_processed = least(a.processed, 2147483647), "
					 "  records_created = least(a.created, 2147483647), "
					 "  records_updated = least(a.updated, 2147483647), "
					 "  records_failed = least(a.failed, 2147483647), "
					 "  records_total = a.total, "
					 "  error_message = CASE WHEN p.stop_requested THEN 'stopped on request' "
					 "       WHEN a.n_failed > 0 THEN format('%s of %s models failed', a.n_failed, a.n) END "
					 "FROM crm_dashboard.sync_history q "
					 "CROSS JOIN LATERAL crm_dashboard.children_totals(q.id) a "
					 "WHERE q.sync_type = 'all' AND q.status IN ('queued', 'running') "
					 "  AND a.n > 0 AND a.n_active = 0 AND p.id = q.id",
					 false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "crm_dashboard launcher: could not finish \"all\" runs");
}
