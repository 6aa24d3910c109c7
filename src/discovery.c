/*
 * discovery.c
 *		Which CRMs and models exist, read afresh from the catalogs.
 *
 * A model is a table, partitioned table or foreign table named
 * <table_prefix><model> in its CRM's schema (or, for CRMs without one, in
 * any schema of crm_dashboard.schemas).  Views, partitions, temp tables and
 * tables of other prefixes are not models.  One catalog query answers every
 * question, so a new table shows up without registration and nothing is
 * cached that could go stale.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "mb/pg_wchar.h"
#include "utils/varlena.h"

#include "crm_dashboard.h"

static char *discovery_schemas = NULL;

/*
 * The candidate models.  When two prefixes match one table, the longest
 * prefix wins, so a CRM named "sales" never claims "salespro_" tables.
 */
static const char *const model_query =
"SELECT DISTINCT ON (c.oid) s.name::text, substr(c.relname, length(s.table_prefix) + 1), "
"       c.oid, n.nspname::text, c.relname::text, c.relkind, "
"       CASE WHEN c.relkind = 'p' THEN "
"            coalesce((SELECT sum(greatest(l.reltuples, 0)) FROM pg_catalog.pg_partition_tree(c.oid) t "
"                       JOIN pg_catalog.pg_class l ON l.oid = t.relid WHERE t.isleaf), -1) "
"            ELSE c.reltuples END::float8, "
"       s.sort_order "
"  FROM crm_dashboard.crm_source s "
"  JOIN pg_catalog.pg_namespace n "
"    ON n.nspname = coalesce(s.schema_name, n.nspname) "
"   AND (s.schema_name IS NOT NULL OR n.nspname = ANY ($1::name[])) "
"  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid "
"   AND c.relkind IN ('r', 'p', 'f') AND NOT c.relispartition "
"   AND left(c.relname, length(s.table_prefix)) = s.table_prefix "
"   AND length(c.relname) > length(s.table_prefix) "
" WHERE NOT s.hidden AND ($2::text IS NULL OR s.name = $2) "
"   AND ($3::text IS NULL OR c.relname = s.table_prefix || $3) "
" ORDER BY c.oid, length(s.table_prefix) DESC";

void
DiscoveryInit(void)
{
	DefineCustomStringVariable("crm_dashboard.schemas",
							   "Schemas searched for CRM model tables.",
							   "A comma-separated list, used for CRMs whose crm_source.schema_name is NULL.",
							   &discovery_schemas,
							   "ingestion",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
}

/* The discovery schemas as a text[] datum, for a query parameter. */
static Datum
discovery_schema_array(void)
{
	char	   *raw = pstrdup(discovery_schemas ? discovery_schemas : "");
	List	   *names = NIL;
	ListCell   *lc;
	Datum	   *elems;
	int			i = 0;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in crm_dashboard.schemas")));
	elems = palloc(sizeof(Datum) * (list_length(names) + 1));
	foreach(lc, names)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Copy one row of model_query's result into a CrmModel in the caller's context. */
static CrmModel *
model_from_row(HeapTuple tuple, TupleDesc desc, MemoryContext target)
{
	MemoryContext old = MemoryContextSwitchTo(target);
	CrmModel   *m = palloc0(sizeof(CrmModel));
	bool		isnull;

	m->crm = SPI_getvalue(tuple, desc, 1);
	m->model = SPI_getvalue(tuple, desc, 2);
	m->relid = DatumGetObjectId(SPI_getbinval(tuple, desc, 3, &isnull));
	m->schema = SPI_getvalue(tuple, desc, 4);
	m->table = SPI_getvalue(tuple, desc, 5);
	m->relkind = DatumGetChar(SPI_getbinval(tuple, desc, 6, &isnull));
	m->reltuples = DatumGetFloat8(SPI_getbinval(tuple, desc, 7, &isnull));
	MemoryContextSwitchTo(old);
	return m;
}

static int
compare_models(const ListCell *a, const ListCell *b)
{
	const CrmModel *ma = lfirst(a);
	const CrmModel *mb = lfirst(b);
	int			c = strcmp(ma->crm, mb->crm);

	return c != 0 ? c : strcmp(ma->model, mb->model);
}

/* Run model_query; crm and model may be NULL for "any". */
static List *
query_models(const char *crm, const char *model)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[3] = {TEXTARRAYOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', crm ? ' ' : 'n', model ? ' ' : 'n'};
	List	   *result = NIL;

	values[0] = discovery_schema_array();
	values[1] = crm ? CStringGetTextDatum(crm) : (Datum) 0;
	values[2] = model ? CStringGetTextDatum(model) : (Datum) 0;

	SPI_connect();
	crm_spi_execute(model_query, 3, argtypes, values, nulls, true, 0, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		CrmModel   *m = model_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, caller);
		/* the list too, not only its models, must outlive SPI_finish */
		MemoryContext spi = MemoryContextSwitchTo(caller);

		result = lappend(result, m);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();

	list_sort(result, compare_models);
	return result;
}

/* The visible CRM names, comma-separated, for hints. */
static char *
known_crm_names(void)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *names;

	SPI_connect();
	crm_spi_execute("SELECT string_agg(name, ', ' ORDER BY sort_order, name) "
					"FROM crm_dashboard.crm_source WHERE NOT hidden", 0, NULL, NULL, NULL, true, 0, SPI_OK_SELECT);
	names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	names = MemoryContextStrdup(caller, names ? names : "(none)");
	SPI_finish();
	return names;
}

/* Reject empty, oversized or non-printable names before any lookup. */
static void
check_name_shape(const char *what, const char *name)
{
	if (name == NULL || name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s name must not be empty", what)));
	if (strlen(name) > CRM_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s name is too long (%zu bytes)", what, strlen(name)),
				 errdetail("Names are at most %d bytes.", CRM_MAX_NAME_LEN)));
}

void
crm_check_crm(const char *crm)
{
	bool		found;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	check_name_shape("CRM", crm);
	values[0] = CStringGetTextDatum(crm);
	SPI_connect();
	crm_spi_execute("SELECT 1 FROM crm_dashboard.crm_source WHERE name = $1 AND NOT hidden",
							  1, argtypes, values, NULL, true, 1, SPI_OK_SELECT);
	found = SPI_processed > 0;
	SPI_finish();

	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown CRM \"%s\"", crm),
				 errhint("Known CRMs: %s.", known_crm_names())));
}

/* The model names of a CRM, comma-separated, for hints. */
static char *
known_model_names(const char *crm)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, query_models(crm, NULL))
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", ((CrmModel *) lfirst(lc))->model);
	return buf.len ? buf.data : "(none)";
}

CrmModel *
crm_resolve_model(const char *crm, const char *model)
{
	List	   *found;

	crm_check_crm(crm);
	check_name_shape("model", model);
	found = query_models(crm, model);
	if (found == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown model \"%s\" of CRM \"%s\"", model, crm),
				 errhint("Models of %s: %s.", crm, known_model_names(crm))));
	return linitial(found);
}

List *
crm_list_models(const char *crm)
{
	if (crm != NULL)
		crm_check_crm(crm);
	return query_models(crm, NULL);
}

char *
crm_qualified_table(const CrmModel *m)
{
	return quote_qualified_identifier(m->schema, m->table);
}

/*
 * The models as parallel arrays (crm text[], model text[], relid oid[],
 * qualified table text[], estimated rows float8[]), so one query can join
 * them against the history with unnest().
 */
void
crm_models_as_arrays(List *models, Datum *arrays)
{
	int			n = list_length(models);
	Datum	   *crm = palloc(sizeof(Datum) * (n + 1));
	Datum	   *model = palloc(sizeof(Datum) * (n + 1));
	Datum	   *relid = palloc(sizeof(Datum) * (n + 1));
	Datum	   *table = palloc(sizeof(Datum) * (n + 1));
	Datum	   *estimate = palloc(sizeof(Datum) * (n + 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, models)
	{
		CrmModel   *m = lfirst(lc);

		crm[i] = CStringGetTextDatum(m->crm);
		model[i] = CStringGetTextDatum(m->model);
		relid[i] = ObjectIdGetDatum(m->relid);
		table[i] = CStringGetTextDatum(crm_qualified_table(m));
		estimate[i] = Float8GetDatum(m->reltuples);
		i++;
	}
	arrays[0] = PointerGetDatum(construct_array(crm, n, TEXTOID, -1, false, TYPALIGN_INT));
	arrays[1] = PointerGetDatum(construct_array(model, n, TEXTOID, -1, false, TYPALIGN_INT));
	arrays[2] = PointerGetDatum(construct_array(relid, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	arrays[3] = PointerGetDatum(construct_array(table, n, TEXTOID, -1, false, TYPALIGN_INT));
	arrays[4] = PointerGetDatum(construct_array(estimate, n, FLOAT8OID, sizeof(float8),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* The unnest() that turns crm_models_as_arrays' five parameters into rows. */
const char *const crm_models_unnest =
"unnest($1::text[], $2::text[], $3::oid[], $4::text[], $5::float8[]) "
"AS m(crm, model, relid, table_name, estimate)";

/* Text-like types are searchable: the string category (text, varchar, char, name, citext). */
const char *const crm_searchable_type_condition = "t.typcategory = 'S'";

/*
 * Why a CRM or model name may not be placed in a command's argv, or NULL
 * when it may.  Names become arguments of the sync command, so one that
 * starts with "-" would be read as an option ("--settings=evil"), and
 * anything beyond lower-case letters, digits and "_" may mean something to
 * the command or the shell a user later pastes it into.
 */
const char *
crm_name_problem(const char *name)
{
	const char *c;

	if (name[0] == '\0')
		return "it is empty";
	if (name[0] == '-')
		return "it starts with \"-\", so a command would read it as an option";
	for (c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return psprintf("it contains \"%s\"; only a-z, 0-9 and _ are allowed",
							pnstrdup(c, pg_mblen(c)));
	return NULL;
}

/* crm_dashboard.name_problem(name): crm_name_problem for SQL (discovery shows it). */
PG_FUNCTION_INFO_V1(crm_dashboard_name_problem);
Datum
crm_dashboard_name_problem(PG_FUNCTION_ARGS)
{
	const char *problem = crm_name_problem(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/* Refuse a name that may not go into argv, saying why and what to do. */
void
crm_check_argv_name(const CrmModel *m)
{
	const char *problem = crm_name_problem(m->model);

	if (problem == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_NAME),
			 errmsg("model \"%s\" of CRM \"%s\" cannot be synced: its name is not safe in a command line",
					m->model, m->crm),
			 errdetail("The model name is passed to the sync command, and %s.", problem),
			 errhint("Rename the table, e.g. ALTER TABLE %s RENAME TO %s_<name>, using only a-z, 0-9 and _.",
					 crm_qualified_table(m), m->crm)));
}

/*
 * model_columns(crm, model): the columns of one model, or of every model when
 * both are NULL.
 */
PG_FUNCTION_INFO_V1(crm_dashboard_model_columns);
Datum
crm_dashboard_model_columns(PG_FUNCTION_ARGS)
{
	char	   *crm = crm_arg_text_or_null(fcinfo, 0);
	char	   *model = crm_arg_text_or_null(fcinfo, 1);
	List	   *models;
	Datum		arrays[5];
	Oid			types[5] = {TEXTARRAYOID, TEXTARRAYOID, OIDARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID};
	char	   *sql;

	if (model != NULL && crm == NULL)
		crm_arg_null_error("crm");
	if (model != NULL)
		models = list_make1(crm_resolve_model(crm, model));
	else
		models = crm_list_models(crm);
	crm_models_as_arrays(models, arrays);

	sql = psprintf("SELECT m.crm, m.model, a.attnum::integer, a.attname::text, "
				   "       pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, "
				   "       coalesce(a.attnum = ANY (i.indkey), false), %s "
				   "  FROM %s "
				   "  JOIN pg_catalog.pg_attribute a ON a.attrelid = m.relid "
				   "   AND a.attnum > 0 AND NOT a.attisdropped "
				   "  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
				   "  LEFT JOIN pg_catalog.pg_index i ON i.indrelid = m.relid AND i.indisprimary "
				   " ORDER BY m.crm, m.model, a.attnum",
				   crm_searchable_type_condition, crm_models_unnest);
	crm_materialize_query(fcinfo, sql, 5, types, arrays, NULL);
	return (Datum) 0;
}
