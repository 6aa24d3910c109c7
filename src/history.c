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
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

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

/*
 * The column to show as "updated": the first timestamp-like column whose
 * name says it holds the source's modification time ($6 is the relation).
 */
static const char *const updated_column_query =
"SELECT a.attname::text FROM pg_catalog.pg_attribute a "
" WHERE a.attrelid = $6 AND a.attnum > 0 AND NOT a.attisdropped "
"   AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) "
" ORDER BY array_position(ARRAY['updated_at', 'lastmodifieddate', 'hs_lastmodifieddate', "
"          'last_update', 'date_modified', 'updated', 'modified_at', 'status_modified', "
"          'sync_updated_at']::text[], a.attname::text) NULLS LAST, a.attnum "
" LIMIT 1";

static const char *const model_detail_query =
"SELECT json_build_object("
"  'crm', $1::text, 'model', $2::text, 'table_name', $3::text, "
"  'estimated_rows', CASE WHEN $4::float8 >= 0 THEN $4::float8::bigint END, "
"  'exact_rows', $5::bigint, "
"  'updated_column', (" "%s" "), "
"  'name_problem', crm_dashboard.name_problem($2::text), "
"  'health', crm_dashboard.health_of(h.status), "
"  'latest_run', CASE WHEN h.id IS NULL THEN NULL ELSE json_build_object("
"      'id', h.id, 'status', h.status, 'start_time', h.start_time, 'end_time', h.end_time, "
"      'duration_seconds', crm_dashboard.run_duration(h.status, h.start_time, h.end_time), "
"      'records_processed', h.records_processed, 'records_created', h.records_created, "
"      'records_updated', h.records_updated, 'records_failed', h.records_failed, "
"      'records_total', h.records_total, 'error_message', h.error_message, "
"      'requested_by', h.requested_by, 'requested_via', h.requested_via) END, "
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
	char	   *sql;
	Datum		result;
	bool		isnull;


	values[0] = CStringGetTextDatum(m->crm);
	values[1] = CStringGetTextDatum(m->model);
	values[2] = CStringGetTextDatum(crm_qualified_table(m));
	values[3] = Float8GetDatum(m->reltuples);
	values[4] = exact ? Int64GetDatum(crm_exact_row_count(m)) : (Datum) 0;
	values[5] = ObjectIdGetDatum(m->relid);

	sql = psprintf(model_detail_query, updated_column_query);

	SPI_connect();
	crm_spi_execute(sql, 6, types, values, nulls, true, 1, SPI_OK_SELECT);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();

	PG_RETURN_DATUM(result);
}
