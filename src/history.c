/*
 * history.c
 *		The last sync of every model and CRM, aggregated into health.
 *
 * Discovery gives the models; one query per call joins them to their latest
 * run with LATERAL index scans (sync_history_model_latest), so the cost grows
 * with the number of models, not with the size of the history.
 *
 * Health of a model is its latest run's status mapped to error (failed),
 * warning (partial, cancelled), running (queued, running) or success; a CRM
 * takes the worst of its models in that order, and "never" when no model
 * has a run.  Those rules, and a run's duration, are SQL functions
 * (crm_dashboard.health_of, worst_health, run_duration) that every query
 * here and every view calls.  A CRM's last sync is the newest latest run among its models,
 * so runs of tables that no longer exist do not colour it.
 *
 * Freshness is SQL (crm_dashboard.freshness_of, src/history.sql); the data
 * watermark beside it is read here, from an index end only.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "crm_dashboard.h"

#define MODEL_ARRAY_TYPES {TEXTARRAYOID, TEXTARRAYOID, OIDARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID}

/* The latest run of model m (a LATERAL subquery). */
#define LATEST_RUN_OF_MODEL \
	"LEFT JOIN LATERAL (SELECT s.* FROM crm_dashboard.sync_history s " \
	"                    WHERE s.crm_source = m.crm AND s.sync_type = m.model " \
	"                    ORDER BY s.start_time DESC, s.id DESC LIMIT 1) h ON true "

/* The newest active run of model m. */
#define ACTIVE_RUN_OF_MODEL \
	"LEFT JOIN LATERAL (SELECT s.id FROM crm_dashboard.sync_history s " \
	"                    WHERE s.crm_source = m.crm AND s.sync_type = m.model " \
	"                      AND s.status IN ('queued', 'running') " \
	"                    ORDER BY s.id DESC LIMIT 1) a ON true "

static const char *const crm_sources_query =
"WITH latest AS ("
"  SELECT m.crm, m.estimate, h.status, h.start_time "
"    FROM " "%s " LATEST_RUN_OF_MODEL
") "
"SELECT c.name::text, c.display_name, c.icon, "
"       count(l.crm)::integer, "
"       (sum(l.estimate) FILTER (WHERE l.estimate >= 0))::bigint, "
"       last.start_time, last.status::text, "
"       crm_dashboard.worst_health(array_agg(crm_dashboard.health_of(l.status)) "
"                                  FILTER (WHERE l.crm IS NOT NULL)), "
"       (SELECT count(*) FROM crm_dashboard.sync_history r "
"         WHERE r.crm_source = c.name AND r.sync_type <> 'all' "
"           AND r.status IN ('queued', 'running'))::integer "
"  FROM crm_dashboard.crm_source c "
"  LEFT JOIN latest l ON l.crm = c.name "
"  LEFT JOIN LATERAL (SELECT r.start_time, r.status FROM latest r "
"                      WHERE r.crm = c.name AND r.start_time IS NOT NULL "
"                      ORDER BY r.start_time DESC LIMIT 1) last ON true "
" WHERE NOT c.hidden "
" GROUP BY c.name, c.display_name, c.icon, c.sort_order, last.start_time, last.status "
" ORDER BY c.sort_order, c.name";

static const char *const crm_models_query =
"SELECT m.crm, m.model, m.table_name, "
"       CASE WHEN m.estimate >= 0 THEN m.estimate::bigint END, "
"       h.id, h.start_time, h.end_time, "
"       crm_dashboard.run_duration(h.status, h.start_time, h.end_time), h.status::text, "
"       h.records_processed, h.records_created, h.records_updated, h.records_failed, "
"       crm_dashboard.health_of(h.status), a.id, a.id IS NOT NULL "
"  FROM %s " LATEST_RUN_OF_MODEL ACTIVE_RUN_OF_MODEL
" ORDER BY m.crm, m.model";

/* Run a query of the form above with the models' arrays as $1..$5. */
static void
materialize_over_models(FunctionCallInfo fcinfo, const char *query, List *models)
{
	Datum		arrays[5];
	Oid			types[5] = MODEL_ARRAY_TYPES;

	crm_models_as_arrays(models, arrays);
	crm_materialize_query(fcinfo, psprintf(query, crm_models_unnest), 5, types, arrays, NULL);
}

/* crm_sources(): one row per visible CRM with its models' health. */
PG_FUNCTION_INFO_V1(crm_dashboard_crm_sources);
Datum
crm_dashboard_crm_sources(PG_FUNCTION_ARGS)
{
	materialize_over_models(fcinfo, crm_sources_query, crm_list_models(NULL));
	return (Datum) 0;
}

/* crm_models(crm): one row per model of crm (every CRM when NULL). */
PG_FUNCTION_INFO_V1(crm_dashboard_crm_models);
Datum
crm_dashboard_crm_models(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text_or_null(fcinfo, 0);

	materialize_over_models(fcinfo, crm_models_query, crm_list_models(crm));
	return (Datum) 0;
}

/* The exact row count of a model's table (a full count, only when asked). */
int64
crm_exact_row_count(const CrmModel *m)
{
	char	   *sql = psprintf("SELECT pg_catalog.count(*) FROM %s", crm_qualified_table(m));
	int64		count;
	bool		isnull;

	SPI_connect();
	if (crm_spi_execute(sql, 0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT) != 1)
		elog(ERROR, "crm_dashboard: could not count the rows of %s", crm_qualified_table(m));
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return count;
}

static const char *const model_detail_query =
"SELECT json_build_object("
"  'crm', $1::text, 'model', $2::text, 'table_name', $3::text, "
"  'estimated_rows', CASE WHEN $4::float8 >= 0 THEN $4::float8::bigint END, "
"  'exact_rows', $5::bigint, "
"  'updated_column', crm_dashboard.updated_column($6), "
"  'name_problem', crm_dashboard.name_problem($2::text), "
"  'health', crm_dashboard.health_of(h.status), "
"  'latest_run', CASE WHEN h.id IS NULL THEN NULL ELSE json_build_object("
"      'id', h.id, 'status', h.status, 'start_time', h.start_time, 'end_time', h.end_time, "
"      'duration_seconds', crm_dashboard.run_duration(h.status, h.start_time, h.end_time), "
"      'records_processed', h.records_processed, 'records_created', h.records_created, "
"      'records_updated', h.records_updated, 'records_failed', h.records_failed, "
"      'records_total', h.records_total, 'error_message', h.error_message, "
"      'requested_by', h.requested_by, 'requested_via', h.requested_via, "
"      'attempt', h.attempt, 'max_attempts', h.max_attempts, 'error_class', h.error_class) END, "
"  'state', (SELECT row_to_json(st) FROM crm_dashboard.model_state($1, $2) st), "
"  'freshness', (SELECT json_build_object('freshness', f.freshness, 'expected_by', f.expected_by, "
"                    'last_success_at', f.last_success_at, 'overdue_at', f.overdue_at, "
"                    'cadence_seconds', extract(epoch FROM f.cadence)::float8, 'cadence_source', f.cadence_source, "
"                    'grace_seconds', extract(epoch FROM f.grace)::float8, "
"                    'data_watermark', w.watermark, 'watermark_note', w.note, "
"                    'sla', (SELECT row_to_json(x) FROM (SELECT l.expected_every, l.grace, l.set_by, l.set_at "
"                             FROM crm_dashboard.freshness_sla l WHERE l.crm = $1 AND l.model = $2) x), "
"                    'schedules', sc.crons) "
"                  FROM (SELECT array_agg(a.cron) AS crons, min(a.created_at) AS since "
"                          FROM crm_dashboard.active_schedules() a "
"                         WHERE a.crm = $1 AND a.model IN ($2, 'all')) sc "
"                 CROSS JOIN LATERAL crm_dashboard.freshness_of($1, $2, sc.crons, sc.since) f "
"                 CROSS JOIN LATERAL crm_dashboard.data_watermark($1, $2) w), "
"  'policy', (SELECT json_build_object('max_attempts', p.max_attempts, "
"                 'backoff_base_seconds', extract(epoch FROM p.backoff_base)::float8, "
"                 'backoff_cap_seconds', extract(epoch FROM p.backoff_cap)::float8, "
"                 'stall_timeout_seconds', extract(epoch FROM p.stall_timeout)::float8, "
"                 'pause_after_failures', p.pause_after_failures, 'max_running', p.max_running) "
"               FROM crm_dashboard.policy_for($1, $2) p), "
"  'skips', coalesce((SELECT json_agg(row_to_json(k) ORDER BY k.skipped_at DESC) "
"                       FROM (SELECT k.id, k.skipped_at, k.requested_via, k.requested_by, k.reason "
"                               FROM crm_dashboard.sync_skip k WHERE k.crm = $1 AND k.model IN ($2, 'all') "
"                              ORDER BY k.skipped_at DESC LIMIT 5) k), '[]'::json), "
"  'active_run_id', (SELECT s.id FROM crm_dashboard.sync_history s "
"                     WHERE s.crm_source = $1 AND s.sync_type = $2 "
"                       AND s.status IN ('queued', 'running') ORDER BY s.id DESC LIMIT 1), "
"  'last_success_at', (SELECT s.end_time FROM crm_dashboard.sync_history s "
"                       WHERE s.crm_source = $1 AND s.sync_type = $2 AND s.status = 'success' "
"                       ORDER BY s.start_time DESC, s.id DESC LIMIT 1), "
"  'errors', coalesce((SELECT json_agg(json_build_object('run_id', e.id, 'time', coalesce(e.end_time, e.start_time), "
"                                                        'status', e.status, 'message', e.error_message) "
"                                      ORDER BY e.start_time DESC, e.id DESC) "
"                       FROM (SELECT * FROM crm_dashboard.sync_history s "
"                              WHERE s.crm_source = $1 AND s.sync_type = $2 AND s.error_message IS NOT NULL "
"                              ORDER BY s.start_time DESC, s.id DESC LIMIT 20) e), '[]'::json)) "
"  FROM (SELECT $1::text AS crm, $2::text AS model) m " LATEST_RUN_OF_MODEL;

/* model_detail(crm, model, exact_count): a model's summary and recent errors as json. */
PG_FUNCTION_INFO_V1(crm_dashboard_model_detail);
Datum
crm_dashboard_model_detail(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text(fcinfo, 0, "crm");
	char	   *model = crm_arg_text(fcinfo, 1, "model");
	CrmModel   *m = crm_resolve_model(crm, model);
	bool		exact = crm_arg_bool_or(fcinfo, 2, false);
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, INT8OID, OIDOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', exact ? ' ' : 'n', ' '};
	Datum		result;
	bool		isnull;

	values[0] = CStringGetTextDatum(m->crm);
	values[1] = CStringGetTextDatum(m->model);
	values[2] = CStringGetTextDatum(crm_qualified_table(m));
	values[3] = Float8GetDatum(m->reltuples);
	values[4] = exact ? Int64GetDatum(crm_exact_row_count(m)) : (Datum) 0;
	values[5] = ObjectIdGetDatum(m->relid);

	SPI_connect();
	crm_spi_execute(model_detail_query, 6, types, values, nulls, true, 1, SPI_OK_SELECT);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();

	PG_RETURN_DATUM(result);
}

/*
 * Whether a btree index of the relation leads with column attnum, is valid
 * and is not partial: then max(column) is read from its end, never by a
 * scan.  A partitioned table's own (partitioned) index counts: every
 * partition has one like it.
 */
static bool
has_leading_index(Relation rel, AttrNumber attnum)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = index->rd_index;

		if (form->indisvalid && form->indnkeyatts >= 1 && form->indkey.values[0] == attnum &&
			index->rd_rel->relam == BTREE_AM_OID &&
			heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
			found = true;
		index_close(index, AccessShareLock);
		if (found)
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * The plan of "max(column)" of each table asked about, kept for the
 * session: planning costs more than the read itself, and crm_models asks
 * for every model on every page load.  A plan is made again when the
 * table's "updated" column changes; the plan cache revalidates it when the
 * table changes.
 */
typedef struct WatermarkPlan
{
	Oid			relid;			/* hash key */
	char		column[NAMEDATALEN];
	SPIPlanPtr	plan;
} WatermarkPlan;

static HTAB *watermark_plans = NULL;

/* The kept plan of max(column) of a model's table, made if need be. */
static SPIPlanPtr
watermark_plan(const CrmModel *m, const char *column)
{
	WatermarkPlan *entry;
	bool		found;

	if (watermark_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(WatermarkPlan);
		watermark_plans = hash_create("crm_dashboard watermark plans", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(watermark_plans, &m->relid, HASH_ENTER, &found);
	if (found && strcmp(entry->column, column) == 0)
		return entry->plan;
	if (found && entry->plan)
		SPI_freeplan(entry->plan);
	entry->plan = NULL;
	entry->column[0] = '\0';
	entry->plan = SPI_prepare(psprintf("SELECT pg_catalog.max(%s)::timestamptz FROM %s",
									   quote_identifier(column), crm_qualified_table(m)), 0, NULL);
	if (entry->plan == NULL || SPI_keepplan(entry->plan) != 0)
		elog(ERROR, "crm_dashboard: could not plan the watermark of %s", crm_qualified_table(m));
	strlcpy(entry->column, column, NAMEDATALEN);
	return entry->plan;
}

/*
 * max(column) of a table, planned (and, should the plan cache plan again,
 * replanned) with sequential and bitmap scans off, so that it comes from
 * the index end whatever the statistics say; the settings are restored
 * when it returns, like a SET clause's.
 */
static Datum
indexed_max(const CrmModel *m, const char *column, bool *isnull)
{
	int			nest = NewGUCNestLevel();
	Datum		result;

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_execute_plan(watermark_plan(m, column), NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "crm_dashboard: could not read the watermark of %s", crm_qualified_table(m));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	AtEOXact_GUC(true, nest);
	return result;
}

/* The "updated" column of a table (crm_dashboard.updated_column), or NULL; SPI connected. */
static char *
updated_column(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	crm_spi_execute("SELECT crm_dashboard.updated_column($1)", 1, types, values, NULL, true, 1, SPI_OK_SELECT);
	return SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
}

/*
 * A model's data watermark into values/nulls (watermark, note): the newest
 * value of its "updated" column, read from an index leading with it; else
 * NULL with "not indexed" or "no updated column", rather than scan a large
 * table on every page load.  SPI connected.
 */
static void
model_watermark(const CrmModel *m, Datum *values, bool *nulls)
{
	char	   *column = updated_column(m->relid);
	const char *note = NULL;
	Relation	rel;

	values[0] = values[1] = (Datum) 0;
	nulls[0] = nulls[1] = true;
	if (column == NULL)
		note = "no updated column";
	else if ((rel = try_relation_open(m->relid, AccessShareLock)) == NULL)
		note = "not indexed";
	else
	{
		bool		indexed = has_leading_index(rel, get_attnum(m->relid, column));

		relation_close(rel, AccessShareLock);
		if (indexed)
			values[0] = indexed_max(m, column, &nulls[0]);
		else
			note = "not indexed";
	}
	if (note)
	{
		values[1] = CStringGetTextDatum(note);
		nulls[1] = false;
	}
}

/* crm_dashboard.data_watermark(crm, model): one model's data watermark and note. */
PG_FUNCTION_INFO_V1(crm_dashboard_data_watermark);
Datum
crm_dashboard_data_watermark(PG_FUNCTION_ARGS)
{
	CrmModel   *m = crm_resolve_model(crm_arg_text(fcinfo, 0, "crm"), crm_arg_text(fcinfo, 1, "model"));
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2];
	HeapTuple	tuple;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm_dashboard: data_watermark must return a record");
	SPI_connect();
	model_watermark(m, values, nulls);
	SPI_finish();
	tuple = heap_form_tuple(BlessTupleDesc(desc), values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/*
 * crm_dashboard.model_watermarks(crm): (crm, model, watermark, note) of
 * every model of crm (NULL: of every CRM), with one discovery for all.
 */
PG_FUNCTION_INFO_V1(crm_dashboard_model_watermarks);
Datum
crm_dashboard_model_watermarks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *models = crm_list_models(crm_arg_text_or_null(fcinfo, 0));
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	foreach(lc, models)
	{
		CrmModel   *m = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, true, true};

		values[0] = CStringGetTextDatum(m->crm);
		values[1] = CStringGetTextDatum(m->model);
		model_watermark(m, values + 2, nulls + 2);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
