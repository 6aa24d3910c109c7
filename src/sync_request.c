/*
 * sync_request.c
 *		Asking for a sync: validating a request (CRM, model, options), building
 *		the exact argv from the command registry, and queueing the run(s).
 *
 * Model names placed in argv come from the catalog (crm_resolve_model), so
 * nothing a caller types reaches the command except validated values; the
 * command is exec'd as an argument vector, never through a shell.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "auth.h"
#include "crm_dashboard.h"
#include "launcher.h"
#include "sync_options.h"

PG_FUNCTION_INFO_V1(crm_dashboard_start_sync);
PG_FUNCTION_INFO_V1(crm_dashboard_start_syncs);
PG_FUNCTION_INFO_V1(crm_dashboard_command_preview);
PG_FUNCTION_INFO_V1(crm_dashboard_wake_launcher);
PG_FUNCTION_INFO_V1(crm_dashboard_valid_via);
PG_FUNCTION_INFO_V1(crm_dashboard_requester_name);
PG_FUNCTION_INFO_V1(crm_dashboard_check_target);

/* How a run can have been asked for: the one list (sync_history's CHECK uses it too). */
static const char *const via_values[] = {"sql", "ui", "api", "schedule", "external"};

/* Whether via is one of via_values. */
bool
crm_valid_via(const char *via)
{
	for (int i = 0; i < lengthof(via_values); i++)
		if (strcmp(via, via_values[i]) == 0)
			return true;
	return false;
}

/* crm_dashboard.valid_via(via): the same, for sync_history's CHECK constraint. */
Datum
crm_dashboard_valid_via(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(crm_valid_via(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/* A registry entry resolved for one model. */
typedef struct SyncCommand
{
	List	   *argv;			/* of char *, placeholders substituted */
	char	   *working_directory;
	char	   *environment;	/* jsonb text */
	int64		timeout;		/* seconds; 0 when none */
} SyncCommand;

/* Replace every {crm} and {model} in a template element. */
static char *
substitute(const char *element, const char *crm, const char *model)
{
	StringInfoData buf;
	const char *p = element;

	initStringInfo(&buf);
	while (*p)
	{
		if (strncmp(p, "{crm}", 5) == 0)
		{
			appendStringInfoString(&buf, crm);
			p += 5;
		}
		else if (model && strncmp(p, "{model}", 7) == 0)
		{
			appendStringInfoString(&buf, model);
			p += 7;
		}
		else
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/* The first row of a read-only lookup by ($1 crm, $2 model), model NULL for the CRM's own. */
static HeapTuple
lookup_by_model(const char *sql, const char *crm, const char *model, TupleDesc *desc)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(crm), model ? CStringGetTextDatum(model) : (Datum) 0};
	char		nulls[2] = {' ', model ? ' ' : 'n'};

	return crm_spi_first_row(sql, 2, types, values, nulls, true, desc);
}

/*
 * The registry entry for a model, as crm_dashboard.command_for decides (the
 * one rule, which the launcher uses too); lookup_model NULL asks for the
 * CRM-wide row.  NULL when there is none.
 */
static SyncCommand *
find_command(const char *crm, const char *model, const char *lookup_model)
{
	TupleDesc	desc;
	HeapTuple	row = lookup_by_model("SELECT argv, working_directory, environment::text, "
									  "  extract(epoch FROM timeout)::bigint "
									  "FROM crm_dashboard.command_for($1, $2)",
									  crm, lookup_model, &desc);
	SyncCommand *cmd;
	bool		isnull;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	Datum		timeout;

	if (row == NULL)
		return NULL;
	cmd = palloc0(sizeof(SyncCommand));
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 1, &isnull)), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
		cmd->argv = lappend(cmd->argv,
							substitute(enulls[i] ? "" : TextDatumGetCString(elems[i]), crm, model));
	cmd->working_directory = SPI_getvalue(row, desc, 2);
	cmd->environment = SPI_getvalue(row, desc, 3);
	timeout = SPI_getbinval(row, desc, 4, &isnull);
	cmd->timeout = isnull ? 0 : DatumGetInt64(timeout);
	return cmd;
}

/* The registry entry for a model (see find_command); errors when there is none. */
static SyncCommand *
lookup_command(const char *crm, const char *model, const char *lookup_model)
{
	SyncCommand *cmd = find_command(crm, model, lookup_model);

	if (cmd == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no sync command is registered for %s%s%s", crm,
						model ? " model " : "", model ? model : ""),
				 errhint("An administrator registers one with INSERT INTO crm_dashboard.sync_command "
						 "(crm, argv) VALUES ('%s', '{/path/to/command,\"{crm}\",\"{model}\"}').", crm)));
	return cmd;
}

/* A List of char * as a text[] datum. */
static Datum
list_to_text_array(List *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(1, list_length(items)));
	ListCell   *lc;

	foreach(lc, items)
		elems[foreach_current_index(lc)] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, list_length(items), TEXTOID, -1, false, TYPALIGN_INT));
}

/* A List of char * as a JSON array text. */
static char *
list_to_json(List *items)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	foreach(lc, items)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, lfirst(lc));
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* The models an "all" request runs, smallest (estimated) first. */
static int
compare_estimates(const ListCell *a, const ListCell *b)
{
	double		ra = ((CrmModel *) lfirst(a))->reltuples;
	double		rb = ((CrmModel *) lfirst(b))->reltuples;

	/* unknown sizes (-1) go last */
	if (ra < 0)
		ra = 1e300;
	if (rb < 0)
		rb = 1e300;
	return ra < rb ? -1 : ra > rb ? 1 : strcmp(((CrmModel *) lfirst(a))->model,
												((CrmModel *) lfirst(b))->model);
}

/* The models of an "all" request whose names may go into argv; notes the others. */
static List *
safe_models(List *models)
{
	List	   *safe = NIL;
	ListCell   *lc;

	foreach(lc, models)
	{
		CrmModel   *m = lfirst(lc);
		const char *problem = crm_name_problem(m->model);

		if (problem == NULL)
			safe = lappend(safe, m);
		else
			ereport(NOTICE,
					(errmsg("skipping model \"%s\" of CRM \"%s\": its name is not safe in a command line",
							m->model, m->crm),
					 errdetail("The model name is passed to the sync command, and %s.", problem)));
	}
	return safe;
}

/*
 * Validate the CRM and model; returns the models to run (one, or all in
 * order).  A model whose name is unsafe in argv is refused (or, in "all",
 * skipped with a notice).
 */
static List *
resolve_models(const char *crm, const char *model)
{
	List	   *models;

	if (strcmp(model, "all") != 0)
	{
		CrmModel   *m = crm_resolve_model(crm, model);

		crm_check_argv_name(m);
		return list_make1(m);
	}
	models = safe_models(crm_list_models(crm));
	if (models == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("CRM \"%s\" has no models to sync", crm),
				 errhint("Models are tables named %s_<model> in the schemas of crm_dashboard.schemas.", crm)));
	list_sort(models, compare_estimates);
	return models;
}

/* crm_dashboard.command_preview(crm, model, options): the argv start_sync would run. */
Datum
crm_dashboard_command_preview(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text(fcinfo, 1, "model");
	Jsonb	   *options = crm_arg_given(fcinfo, 2) ? PG_GETARG_JSONB_P(2) : NULL;
	List	   *models = resolve_models(crm, model);
	SyncOptions *opts = sync_options_parse(options);
	SyncCommand *cmd;

	/*
	 * For "all" each model runs its own command; the preview shows the
	 * CRM-wide template with {model} left in place.
	 */
	if (strcmp(model, "all") == 0)
		cmd = lookup_command(crm, NULL, NULL);
	else
		cmd = lookup_command(crm, ((CrmModel *) linitial(models))->model,
							 ((CrmModel *) linitial(models))->model);
	PG_RETURN_DATUM(list_to_text_array(sync_options_append_flags(cmd->argv, opts)));
}

/* An active run in the way of a start: its id, what it syncs, its status and, for a retry, its wait. */
typedef struct ActiveRun
{
	char	   *id;
	char	   *type;
	char	   *status;
	char	   *retry;			/* "attempt 2 of 3, not before ...", or NULL */
} ActiveRun;

/* Serialise starts per CRM, until the transaction ends, so two sessions cannot both pass the checks. */
static void
lock_starts(const char *crm)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(crm)};

	SPI_connect();
	crm_spi_execute("SELECT pg_advisory_xact_lock(hashtext('crm_dashboard.start_sync'), hashtext($1))",
					1, types, values, NULL, false, 0, SPI_OK_SELECT);
	SPI_finish();
}

/* The first active run of these models (or of "all" of the CRM, when all), or NULL. */
static ActiveRun *
active_run(const char *crm, List *models, bool all)
{
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, BOOLOID};
	Datum		values[3];
	List	   *names = NIL;
	ListCell   *lc;
	TupleDesc	desc;
	HeapTuple	row;
	ActiveRun  *run;

	foreach(lc, models)
		names = lappend(names, ((CrmModel *) lfirst(lc))->model);
	values[0] = CStringGetTextDatum(crm);
	values[1] = list_to_text_array(names);
	values[2] = BoolGetDatum(all);
	row = crm_spi_first_row("SELECT id, sync_type, status, "
							"  CASE WHEN status = 'queued' AND first_attempt_id IS NOT NULL "
							"       THEN format('attempt %s of %s, not before %s', attempt, "
							"                   coalesce(max_attempts, attempt), not_before) END "
							"FROM crm_dashboard.sync_history "
							"WHERE crm_source = $1 AND status IN ('queued', 'running') "
							"  AND (sync_type = ANY ($2) OR ($3 AND sync_type = 'all')) "
							"ORDER BY id LIMIT 1",
							3, types, values, NULL, false, &desc);
	if (row == NULL)
		return NULL;
	run = palloc0(sizeof(ActiveRun));
	run->id = SPI_getvalue(row, desc, 1);
	run->type = SPI_getvalue(row, desc, 2);
	run->status = SPI_getvalue(row, desc, 3);
	run->retry = SPI_getvalue(row, desc, 4);
	return run;
}

/* Refuse a second active run of a model (or of "all" of the CRM), naming the active one. */
static void
check_not_active(const char *crm, List *models, bool all)
{
	ActiveRun  *run;

	lock_starts(crm);
	run = active_run(crm, models, all);
	if (run == NULL)
		return;
	/* a retry waiting for its backoff: say so, a person may want to start afresh */
	if (run->retry)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a retry of %s %s is already queued (run %s)", crm, run->type, run->id),
				 errdetail("Run %s is %s.", run->id, run->retry),
				 errhint("Wait for it, or stop it with crm_api.stop_sync(%s) and start again.", run->id)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("a sync of %s %s is already %s (run %s)", crm, run->type, run->status, run->id),
			 errhint("Wait for run %s to finish, or stop it with crm_api.stop_sync(%s).", run->id, run->id)));
}

/* Refuse when no launcher will pick the run up. */
static void
check_launcher(void)
{
	Oid			db;

	if (launcher_available(&db))
		return;
	if (!OidIsValid(db))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sync launcher is not running"),
				 errhint("Add crm_dashboard to shared_preload_libraries and restart the server.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("sync launcher serves database \"%s\", not \"%s\"",
					crm_launcher_database, get_database_name(MyDatabaseId)),
			 errhint("Start syncs in database \"%s\", or change crm_dashboard.database_name.",
					 crm_launcher_database)));
}

/*
 * Who asked and how.  The bundled HTTP server names the dashboard user in
 * crm_dashboard.request_user, a setting only superusers can set, so a
 * request through it is recorded as that user, via 'ui'.  Anyone else is
 * recorded as their session user, via 'sql' (request.jwt.claims, which any
 * session may set, is never trusted).  via_arg overrides how (pg_cron jobs
 * pass 'schedule'); it is a private argument of crm_dashboard.start_sync.
 */
static void
requester(const char *via_arg, char **via, char **username)
{
	const char *dashboard_user = auth_request_user();

	*username = dashboard_user ? pstrdup(dashboard_user) : NULL;
	if (via_arg)
	{
		if (!crm_valid_via(via_arg))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for \"via\": \"%s\"", via_arg),
					 errhint("Use sql, ui, api, schedule or external.")));
		*via = pstrdup(via_arg);
	}
	else
		*via = pstrdup(dashboard_user ? "ui" : "sql");
}

/* crm_dashboard.requester_name(): who acts, as start_sync records it. */
Datum
crm_dashboard_requester_name(PG_FUNCTION_ARGS)
{
	const char *dashboard_user = auth_request_user();

	if (dashboard_user)
		PG_RETURN_TEXT_P(cstring_to_text(dashboard_user));
	PG_RETURN_TEXT_P(cstring_to_text(GetUserNameFromId(GetSessionUserId(), false)));
}

/*
 * crm_dashboard.check_target(crm, model): the usual errors for an unknown
 * CRM, or (model not NULL) an unknown model of it.
 */
Datum
crm_dashboard_check_target(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text_or_null(fcinfo, 1);

	if (model)
		crm_resolve_model(crm, model);
	else
		crm_check_crm(crm);
	PG_RETURN_VOID();
}

/* What a pause holding a model says about itself. */
typedef struct PauseInfo
{
	int64		id;
	bool		whole_crm;		/* the CRM is paused, not only the model */
	char	   *text;			/* "model paused by alice: API migration" */
	char	   *detail;			/* "Paused by alice: API migration." */
} PauseInfo;

/* The active pause holding a model (model NULL: the CRM), or NULL. */
static PauseInfo *
pause_of(const char *crm, const char *model)
{
	TupleDesc	desc;
	HeapTuple	row = lookup_by_model("SELECT p.id, p.model IS NULL, crm_dashboard.pause_text(p), "
									  "  format('Paused by %s: %s.', p.paused_by, p.reason) "
									  "FROM crm_dashboard.pause_of($1, $2) p",
									  crm, model, &desc);
	PauseInfo  *pause;
	bool		isnull;

	if (row == NULL)
		return NULL;
	pause = palloc0(sizeof(PauseInfo));
	pause->id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	pause->whole_crm = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
	pause->text = SPI_getvalue(row, desc, 3);
	pause->detail = SPI_getvalue(row, desc, 4);
	return pause;
}

/* Record that a pause skipped a requested sync (crm_api.sync_skips), and say so. */
static void
record_skip(const char *crm, const char *model, const char *via, const char *username,
			const PauseInfo *pause, Jsonb *options)
{
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, JSONBOID};
	Datum		values[7];
	char		nulls[7] = "       ";

	values[0] = CStringGetTextDatum(crm);
	values[1] = CStringGetTextDatum(model);
	values[2] = CStringGetTextDatum(via);
	values[3] = username ? CStringGetTextDatum(username) : (Datum) 0;
	nulls[3] = username ? ' ' : 'n';
	values[4] = CStringGetTextDatum(pause->text);
	values[5] = Int64GetDatum(pause->id);
	values[6] = JsonbPGetDatum(options);
	SPI_connect();
	crm_spi_execute("INSERT INTO crm_dashboard.sync_skip "
					"  (crm, model, requested_via, requested_by, reason, pause_id, options) "
					"VALUES ($1, $2, $3, coalesce($4, session_user), $5, $6, $7)",
					7, types, values, nulls, false, 0, SPI_OK_INSERT);
	SPI_finish();
	ereport(NOTICE,
			(errmsg("skipping the %s sync of %s %s: %s",
					strcmp(via, "schedule") == 0 ? "scheduled" : "requested", crm, model, pause->text),
			 errdetail("%s", pause->detail),
			 errhint("The skip is listed in crm_api.sync_skips.")));
}

/*
 * The SQLSTATE of "paused": PT409, which the bundled server and PostgREST
 * answer with HTTP 409 Conflict (the state of the model, not the request,
 * is in the way; class 55 would be a 500).
 */
#define ERRCODE_PAUSED MAKE_SQLSTATE('P','T','4','0','9')

/* Refuse to start a paused model (model NULL: a paused CRM). */
static void pg_attribute_noreturn()
paused_error(const char *crm, const char *model, const PauseInfo *pause)
{
	if (pause->whole_crm || model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PAUSED),
				 errmsg("CRM %s is paused", crm),
				 errdetail("%s", pause->detail),
				 errhint("Resume it with crm_api.resume_sync('%s'), or start anyway with the option "
						 "{\"ignore_pause\": true}.", crm)));
	ereport(ERROR,
			(errcode(ERRCODE_PAUSED),
			 errmsg("%s %s is paused", crm, model),
			 errdetail("%s", pause->detail),
			 errhint("Resume it with crm_api.resume_sync('%s', '%s'), or start anyway with the option "
					 "{\"ignore_pause\": true}.", crm, model)));
}

/*
 * The models of a request that are not paused.  A paused model (or CRM) is
 * skipped, and the skip recorded, when a schedule asked, or when a person
 * asked for "all" and other models remain; a person asking for it alone is
 * refused.  ignore_pause lets a person's start (never a schedule's) run
 * anyway.  NIL: nothing to run.
 */
static List *
unpaused_models(const char *crm, List *models, bool all, const char *via, const char *username,
				Jsonb *options, bool ignore_pause)
{
	bool		scheduled = strcmp(via, "schedule") == 0;
	PauseInfo  *pause;
	List	   *kept = NIL;
	ListCell   *lc;

	if (ignore_pause && !scheduled)
		return models;
	if (all && (pause = pause_of(crm, NULL)) != NULL)
	{
		if (!scheduled)
			paused_error(crm, NULL, pause);
		record_skip(crm, "all", via, username, pause, options);
		return NIL;
	}
	foreach(lc, models)
	{
		const char *m = ((CrmModel *) lfirst(lc))->model;

		if ((pause = pause_of(crm, m)) == NULL)
			kept = lappend(kept, lfirst(lc));
		else if (!scheduled && !all)
			paused_error(crm, m, pause);
		else
			record_skip(crm, m, via, username, pause, options);
	}
	if (kept == NIL && all && !scheduled)
		ereport(ERROR,
				(errcode(ERRCODE_PAUSED),
				 errmsg("every model of CRM %s is paused", crm),
				 errhint("Resume them with crm_api.resume_sync, or start anyway with the option "
						 "{\"ignore_pause\": true}.")));
	return kept;
}

/*
 * Refuse when the installed schema is not the library's (the library was
 * updated, ALTER EXTENSION UPDATE not run yet): the queue needs its tables.
 */
static void
check_schema_version(void)
{
	char	   *installed = NULL;

	SPI_connect();
	crm_spi_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'crm_dashboard'",
					0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 1)
		installed = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (installed && strcmp(installed, EXTVERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crm_dashboard %s is installed in this database, but its library is %s",
						installed, EXTVERSION),
				 errhint("Run ALTER EXTENSION crm_dashboard UPDATE.")));
	SPI_finish();
}

/* What a model's checks before a sync found (crm_dashboard.pre_sync_checks). */
typedef struct PreSyncChecks
{
	List	   *failures;		/* error-severity checks that failed, one line each */
	Datum		result_ids;		/* bigint[] of every result, to attach to the run */
} PreSyncChecks;

/* Run a model's data-quality checks before its sync and keep the results. */
static PreSyncChecks *
pre_sync_checks(const char *crm, const char *model)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(crm), CStringGetTextDatum(model)};
	PreSyncChecks *checks = palloc0(sizeof(PreSyncChecks));
	TupleDesc	desc;
	HeapTuple	row = crm_spi_first_row("SELECT failures, result_ids FROM crm_dashboard.pre_sync_checks($1, $2)",
										2, types, values, NULL, false, &desc);
	bool		isnull;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (row == NULL)
		return checks;
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 1, &isnull)), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		checks->failures = lappend(checks->failures, TextDatumGetCString(elems[i]));
	checks->result_ids = PointerGetDatum(DatumGetArrayTypePCopy(SPI_getbinval(row, desc, 2, &isnull)));
	return checks;
}

/* The failing checks, for a message. */
static char *
failures_text(List *failures, const char *separator)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, failures)
		appendStringInfo(&buf, "%s%s", buf.len ? separator : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * Refuse the sync of a model whose error-severity checks fail, listing
 * them, unless forced (then say so and go on).
 */
static void
refuse_failing_checks(const char *crm, const char *model, PreSyncChecks *checks, bool force)
{
	int			n = list_length(checks->failures);

	if (n == 0)
		return;
	if (force)
	{
		ereport(NOTICE,
				(errmsg("starting %s %s although %d data-quality check%s failed", crm, model, n, n > 1 ? "s" : ""),
				 errdetail("%s", failures_text(checks->failures, "\n"))));
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("%d data-quality check%s of %s %s failed: the sync is refused", n, n > 1 ? "s" : "", crm, model),
			 errdetail("%s", failures_text(checks->failures, "\n")),
			 errhint("Fix the data, or start anyway with the option {\"force\": true}; crm_api.quality_results has the results.")));
}

/* Attach a model's pre-sync results to its run. */
static void
attach_results(PreSyncChecks *checks, int64 run_id)
{
	Oid			types[2] = {INT8ARRAYOID, INT8OID};
	Datum		values[2] = {checks->result_ids, Int64GetDatum(run_id)};

	if (checks->result_ids == (Datum) 0)
		return;
	SPI_connect();
	crm_spi_execute("SELECT crm_dashboard.attach_results($1, $2)", 2, types, values, NULL, false, 0, SPI_OK_SELECT);
	SPI_finish();
}

/* Insert one queued run; returns its id. */
static int64
insert_run(const char *crm, const char *model, int64 parent_id, Jsonb *options,
		   const char *via, const char *username, SyncCommand *cmd, List *argv, int64 timeout)
{
	Oid			types[10] = {TEXTOID, TEXTOID, INT8OID, JSONBOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, INT8OID};
	Datum		values[10];
	char		nulls[10] = "          ";
	int64		id;
	bool		isnull;

	values[0] = CStringGetTextDatum(crm);
	values[1] = CStringGetTextDatum(model);
	values[2] = Int64GetDatum(parent_id);
	nulls[2] = parent_id ? ' ' : 'n';
	values[3] = JsonbPGetDatum(options);
	values[4] = CStringGetTextDatum(via);
	values[5] = username ? CStringGetTextDatum(username) : (Datum) 0;
	nulls[5] = username ? ' ' : 'n';
	values[6] = argv ? CStringGetTextDatum(list_to_json(argv)) : (Datum) 0;
	nulls[6] = argv ? ' ' : 'n';
	values[7] = cmd && cmd->working_directory ? CStringGetTextDatum(cmd->working_directory) : (Datum) 0;
	nulls[7] = cmd && cmd->working_directory ? ' ' : 'n';
	values[8] = cmd ? CStringGetTextDatum(cmd->environment) : (Datum) 0;
	nulls[8] = cmd ? ' ' : 'n';
	values[9] = Int64GetDatum(timeout);
	nulls[9] = timeout > 0 ? ' ' : 'n';

	SPI_connect();
	crm_spi_execute("INSERT INTO crm_dashboard.sync_history "
							  "  (crm_source, sync_type, status, parent_id, requested_by, requested_via, "
							  "   priority, not_before, max_attempts, configuration) "
							  "VALUES ($1, $2, 'queued', $3, coalesce($6, session_user), $5, "
							  "  crm_dashboard.priority_of($5, false), now(), "
							  "  CASE WHEN $2 <> 'all' THEN (SELECT p.max_attempts FROM crm_dashboard.policy_for($1, $2) p) END, "
							  "  jsonb_strip_nulls(jsonb_build_object("
							  "    'options', $4, 'argv', $7::jsonb, 'via', $5, "
							  "    'requested_by', jsonb_build_object('session_user', session_user, 'username', $6), "
							  "    'client_addr', inet_client_addr()::text, 'working_directory', $8, "
							  "    'environment_keys', (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys($9::jsonb) k), "
							  "    'timeout_seconds', $10))) "
							  "RETURNING id",
							  10, types, values, nulls, false, 1, SPI_OK_INSERT_RETURNING);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}

/*
 * crm_dashboard.start_sync(crm, model, options, via): validate, queue, wake
 * the launcher at commit; returns the run id (the parent's for "all"), or
 * NULL when a pause skipped the whole request (a schedule's).
 */
Datum
crm_dashboard_start_sync(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text(fcinfo, 1, "model");
	Jsonb	   *options = crm_arg_given(fcinfo, 2) ? PG_GETARG_JSONB_P(2) : NULL;
	char	   *via_arg = crm_arg_text_or_null(fcinfo, 3);
	bool		all = strcmp(model, "all") == 0;
	List	   *models = resolve_models(crm, model);
	SyncOptions *opts = sync_options_parse(options);
	List	   *commands = NIL;
	List	   *checks = NIL;
	ListCell   *lc;
	char	   *via;
	char	   *username;
	int64		parent = 0;
	int64		id = 0;

	requester(via_arg, &via, &username);
	if (options == NULL)
		options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	check_schema_version();
	models = unpaused_models(crm, models, all, via, username, options,
							 sync_options_flag(opts, SYNC_OPTION_IGNORE_PAUSE));
	if (models == NIL)
		PG_RETURN_NULL();
	foreach(lc, models)
	{
		const char *m = ((CrmModel *) lfirst(lc))->model;

		commands = lappend(commands, lookup_command(crm, m, m));
	}
	check_not_active(crm, models, all);
	check_launcher();
	foreach(lc, models)
	{
		PreSyncChecks *c = pre_sync_checks(crm, ((CrmModel *) lfirst(lc))->model);

		refuse_failing_checks(crm, ((CrmModel *) lfirst(lc))->model, c,
							  sync_options_flag(opts, SYNC_OPTION_FORCE));
		checks = lappend(checks, c);
	}

	if (all)
		parent = insert_run(crm, "all", 0, options, via, username, NULL, NULL, 0);
	foreach(lc, models)
	{
		SyncCommand *cmd = list_nth(commands, foreach_current_index(lc));
		int64		timeout = sync_options_number(opts, SYNC_OPTION_TIMEOUT);

		if (timeout == 0)
			timeout = cmd->timeout;

		id = insert_run(crm, ((CrmModel *) lfirst(lc))->model, parent, options, via, username,
						cmd, sync_options_append_flags(list_copy(cmd->argv), opts), timeout);
		attach_results(list_nth(checks, foreach_current_index(lc)), id);
	}
	launcher_wake_at_commit();
	PG_RETURN_INT64(all ? parent : id);
}

/* The most models one start_syncs call takes. */
#define BULK_MAX_MODELS 500

/* What became of one model of a start_syncs request. */
typedef struct BulkOutcome
{
	char	   *model;
	const char *outcome;		/* started, already_running, paused, ... */
	int64		run_id;			/* the new run, or the active one in the way; 0: none */
	char	   *message;
	CrmModel   *m;				/* the model, when it may start */
	SyncCommand *cmd;
	PreSyncChecks *checks;
} BulkOutcome;

/* The model called name among models, or NULL. */
static CrmModel *
find_model(List *models, const char *name)
{
	ListCell   *lc;

	foreach(lc, models)
		if (strcmp(((CrmModel *) lfirst(lc))->model, name) == 0)
			return lfirst(lc);
	return NULL;
}

/* Whether an earlier outcome of the request names the same model. */
static bool
listed_before(List *outcomes, const char *name)
{
	ListCell   *lc;

	foreach(lc, outcomes)
		if (strcmp(((BulkOutcome *) lfirst(lc))->model, name) == 0)
			return true;
	return false;
}

/* Record that o's model may not start, and why. */
static void
refuse_model(BulkOutcome *o, const char *outcome, char *message)
{
	o->outcome = outcome;
	o->message = message;
	o->m = NULL;
}

/*
 * Refuse a listed model by its name alone (empty, listed twice, not a model
 * of the CRM, unsafe to pass to a command); otherwise o->m is the model,
 * and the answer is false.
 */
static bool
refused_by_name(BulkOutcome *o, const char *crm, List *models, List *earlier)
{
	const char *problem;

	if (o->model[0] == '\0')
		refuse_model(o, "invalid", pstrdup("A model name must not be empty."));
	else if (listed_before(earlier, o->model))
		refuse_model(o, "duplicate", pstrdup("The model is listed more than once: it runs once."));
	else if ((o->m = find_model(models, o->model)) == NULL)
		refuse_model(o, "unknown_model", psprintf("CRM %s has no model \"%s\".", crm, o->model));
	else if ((problem = crm_name_problem(o->model)) != NULL)
		refuse_model(o, "unsafe_name",
					 psprintf("The model name is passed to the sync command, and %s.", problem));
	else
		return false;
	return true;
}

/*
 * Decide whether one model of a bulk request may start, by the rules of a
 * single start (the same helpers: name, command, active run, pause, the
 * data-quality checks before a sync, which force overrides); when
 * it may not, o says why.  A pause skipped is recorded, as for "all".
 */
static void
judge_model(BulkOutcome *o, const char *crm, List *models, List *earlier, const char *via,
			const char *username, Jsonb *options, bool ignore_pause, bool force)
{
	ActiveRun  *run;
	PauseInfo  *pause;

	if (refused_by_name(o, crm, models, earlier))
		return;
	if ((o->cmd = find_command(crm, o->model, o->model)) == NULL)
		refuse_model(o, "no_command", psprintf("No sync command is registered for %s model %s.", crm, o->model));
	else if ((run = active_run(crm, list_make1(o->m), false)) != NULL)
	{
		o->run_id = pg_strtoint64(run->id);
		refuse_model(o, strcmp(run->status, "running") == 0 ? "already_running" : "already_queued",
					 run->retry ? psprintf("A retry is already queued (run %s, %s).", run->id, run->retry)
					 : psprintf("A sync of %s %s is already %s (run %s).", crm, o->model, run->status, run->id));
	}
	else if (!ignore_pause && (pause = pause_of(crm, o->model)) != NULL)
	{
		record_skip(crm, o->model, via, username, pause, options);
		refuse_model(o, "paused",
					 psprintf("%s Start it anyway with the option {\"ignore_pause\": true}.", pause->detail));
	}
	else if ((o->checks = pre_sync_checks(crm, o->model))->failures != NIL && !force)
		refuse_model(o, "failing_checks",
					 psprintf("Data-quality checks failed: %s. Start it with the option {\"force\": true} to sync anyway.",
							  failures_text(o->checks->failures, "; ")));
	else
		o->outcome = "started";
}

/* The models of a start_syncs call, as C strings (NULL elements are refused). */
static List *
bulk_names(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *names = NIL;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("models must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0 || n > BULK_MAX_MODELS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("models must name 1 to %d models, not %d", BULK_MAX_MODELS, n),
				 errhint("For every model of a CRM, use crm_api.start_sync(crm, 'all').")));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("models must not contain NULL (element %d)", i + 1)));
		names = lappend(names, TextDatumGetCString(elems[i]));
	}
	return names;
}

/* Add the list of models to a bulk parent run's configuration. */
static void
note_bulk_models(int64 parent, List *outcomes)
{
	List	   *started = NIL;
	ListCell   *lc;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	foreach(lc, outcomes)
		if (((BulkOutcome *) lfirst(lc))->m)
			started = lappend(started, ((BulkOutcome *) lfirst(lc))->model);
	values[0] = Int64GetDatum(parent);
	values[1] = CStringGetTextDatum(list_to_json(started));
	SPI_connect();
	crm_spi_execute("UPDATE crm_dashboard.sync_history "
					"SET configuration = configuration || jsonb_build_object('models', $2::jsonb) "
					"WHERE id = $1",
					2, types, values, NULL, false, 0, SPI_OK_UPDATE);
	SPI_finish();
}

/* Queue the models that may start, one after another under one parent run; returns the parent. */
static int64
queue_bulk(const char *crm, List *outcomes, Jsonb *options, SyncOptions *opts, const char *via,
		   const char *username)
{
	int64		parent = insert_run(crm, "all", 0, options, via, username, NULL, NULL, 0);
	ListCell   *lc;

	note_bulk_models(parent, outcomes);
	foreach(lc, outcomes)
	{
		BulkOutcome *o = lfirst(lc);
		int64		timeout = sync_options_number(opts, SYNC_OPTION_TIMEOUT);

		if (o->m == NULL)
			continue;
		if (timeout == 0)
			timeout = o->cmd->timeout;
		o->run_id = insert_run(crm, o->model, parent, options, via, username, o->cmd,
							   sync_options_append_flags(list_copy(o->cmd->argv), opts), timeout);
		attach_results(o->checks, o->run_id);
		o->message = psprintf("Queued as run " INT64_FORMAT " of run " INT64_FORMAT ".%s", o->run_id, parent,
							  o->checks->failures ? psprintf(" Forced although data-quality checks failed: %s.",
															 failures_text(o->checks->failures, "; ")) : "");
	}
	launcher_wake_at_commit();
	return parent;
}

/*
 * crm_dashboard.start_syncs(crm, models, options): queue several models of
 * a CRM in one transaction, under one parent run that runs them one after
 * another, with one set of options.  Each model gets an outcome row
 * (started, already_running, already_queued, paused, failing_checks,
 * unsafe_name, unknown_model, no_command, duplicate, invalid): a model that cannot
 * start never fails the request, and never goes unmentioned.  What is wrong
 * with the request itself (unknown CRM, bad options, no launcher) is an
 * error.
 */
Datum
crm_dashboard_start_syncs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	List	   *names;
	Jsonb	   *options = crm_arg_given(fcinfo, 2) ? PG_GETARG_JSONB_P(2) : NULL;
	SyncOptions *opts = sync_options_parse(options);
	List	   *models;
	List	   *outcomes = NIL;
	ListCell   *lc;
	char	   *via;
	char	   *username;
	int64		parent = 0;
	bool		any = false;

	if (PG_ARGISNULL(1))
		crm_arg_null_error("models");
	names = bulk_names(PG_GETARG_ARRAYTYPE_P(1));
	models = crm_list_models(crm);
	requester(NULL, &via, &username);
	if (options == NULL)
		options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	check_schema_version();
	check_launcher();
	lock_starts(crm);
	foreach(lc, names)
	{
		BulkOutcome *o = palloc0(sizeof(BulkOutcome));

		o->model = lfirst(lc);
		judge_model(o, crm, models, outcomes, via, username, options,
					sync_options_flag(opts, SYNC_OPTION_IGNORE_PAUSE),
					sync_options_flag(opts, SYNC_OPTION_FORCE));
		any |= o->m != NULL;
		outcomes = lappend(outcomes, o);
	}
	if (any)
		parent = queue_bulk(crm, outcomes, options, opts, via, username);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	foreach(lc, outcomes)
	{
		BulkOutcome *o = lfirst(lc);
		Datum		values[5];
		bool		nulls[5] = {false, false, o->run_id == 0, parent == 0, false};

		values[0] = CStringGetTextDatum(o->model);
		values[1] = CStringGetTextDatum(o->outcome);
		values[2] = Int64GetDatum(o->run_id);
		values[3] = Int64GetDatum(o->m ? parent : 0);
		nulls[3] = o->m == NULL;
		values[4] = CStringGetTextDatum(o->message);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* crm_dashboard.wake_launcher(): wake the launcher when this transaction commits. */
Datum
crm_dashboard_wake_launcher(PG_FUNCTION_ARGS)
{
	launcher_wake_at_commit();
	PG_RETURN_VOID();
}
