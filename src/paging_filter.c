/*
 * paging_filter.c
 *		The JSON filter of model_rows, count_rows and the exports: checked
 *		against the catalog and turned into a condition on $n parameters.
 *
 * The form (the README documents it):
 *
 *	filter    := group | condition
 *	group     := {"and": [filter, ...]}  |  {"or": [filter, ...]}
 *	condition := {"column": "<name>", "op": "<operator>" [, "value": <value>]}
 *
 * Each operator says which kinds of column it fits (its type's class: text,
 * number, date, timestamp, time, interval, boolean, other) and what value it
 * takes: none (is_null), one (eq), two (between), a list (in) or a relative
 * time (within_last).  A condition's column must be a column of the model,
 * its operator must fit the column's type, and its value must parse with the
 * column type's input function; nesting and the number of conditions are
 * bounded.  Every mistake is an error naming the column or operator, with
 * the condition's place in the filter ("$.and[1].or[0]") as its detail.
 *
 * The condition uses the operators of the column type's default btree
 * operator family (schema-qualified, whatever the search_path), so that an
 * index on the column serves it; values are only ever $n parameters, parsed
 * to the column's type.  contains and starts_with are case-insensitive
 * (ILIKE, which a pg_trgm index serves), like the search.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "paging.h"

/* What value an operator takes. */
typedef enum FilterValue
{
	VALUE_NONE,
	VALUE_ONE,
	VALUE_PAIR,					/* [low, high] */
	VALUE_LIST,					/* [v, ...] */
	VALUE_INTERVAL				/* "7 days" */
} FilterValue;

/* The kinds of comparison an operator makes, for what a column's type must offer. */
typedef enum FilterNeeds
{
	NEEDS_NOTHING,
	NEEDS_EQUALITY,
	NEEDS_ORDER
} FilterNeeds;

typedef enum FilterOpId
{
	OP_EQ,
	OP_NEQ,
	OP_LT,
	OP_LTE,
	OP_GT,
	OP_GTE,
	OP_BETWEEN,
	OP_IN,
	OP_CONTAINS,
	OP_STARTS_WITH,
	OP_IS_EMPTY,
	OP_NOT_EMPTY,
	OP_WITHIN_LAST,
	OP_IS_TRUE,
	OP_IS_FALSE,
	OP_IS_NULL,
	OP_NOT_NULL,
	OP_COUNT
} FilterOpId;

/* One operator: its name, a label for people, its value and the classes it fits. */
typedef struct FilterOp
{
	const char *name;
	const char *label;
	FilterValue value;
	FilterNeeds needs;
	uint32		classes;		/* bit per FilterClass */
} FilterOp;

#define CLASS(c) (1u << (c))
#define TEXTISH CLASS(FILTER_CLASS_TEXT)
#define ORDERED (CLASS(FILTER_CLASS_NUMBER) | CLASS(FILTER_CLASS_DATE) | CLASS(FILTER_CLASS_TIMESTAMP) | \
				 CLASS(FILTER_CLASS_TIME) | CLASS(FILTER_CLASS_INTERVAL))
#define EQUATABLE (TEXTISH | ORDERED | CLASS(FILTER_CLASS_OTHER))
#define DATES (CLASS(FILTER_CLASS_DATE) | CLASS(FILTER_CLASS_TIMESTAMP))
#define BOOLEANS CLASS(FILTER_CLASS_BOOLEAN)
#define EVERY_CLASS (EQUATABLE | BOOLEANS)

static const FilterOp filter_ops[OP_COUNT] = {
	[OP_EQ] = {"eq", "equals", VALUE_ONE, NEEDS_EQUALITY, EQUATABLE},
	[OP_NEQ] = {"neq", "does not equal", VALUE_ONE, NEEDS_EQUALITY, EQUATABLE},
	[OP_LT] = {"lt", "<", VALUE_ONE, NEEDS_ORDER, ORDERED},
	[OP_LTE] = {"lte", "≤", VALUE_ONE, NEEDS_ORDER, ORDERED},
	[OP_GT] = {"gt", ">", VALUE_ONE, NEEDS_ORDER, ORDERED},
	[OP_GTE] = {"gte", "≥", VALUE_ONE, NEEDS_ORDER, ORDERED},
	[OP_BETWEEN] = {"between", "between", VALUE_PAIR, NEEDS_ORDER, ORDERED},
	[OP_IN] = {"in", "is one of", VALUE_LIST, NEEDS_EQUALITY, EQUATABLE},
	[OP_CONTAINS] = {"contains", "contains", VALUE_ONE, NEEDS_NOTHING, TEXTISH},
	[OP_STARTS_WITH] = {"starts_with", "starts with", VALUE_ONE, NEEDS_NOTHING, TEXTISH},
	[OP_IS_EMPTY] = {"is_empty", "is empty", VALUE_NONE, NEEDS_NOTHING, TEXTISH},
	[OP_NOT_EMPTY] = {"not_empty", "is not empty", VALUE_NONE, NEEDS_NOTHING, TEXTISH},
	[OP_WITHIN_LAST] = {"within_last", "in the last", VALUE_INTERVAL, NEEDS_ORDER, DATES},
	[OP_IS_TRUE] = {"is_true", "is true", VALUE_NONE, NEEDS_NOTHING, BOOLEANS},
	[OP_IS_FALSE] = {"is_false", "is false", VALUE_NONE, NEEDS_NOTHING, BOOLEANS},
	[OP_IS_NULL] = {"is_null", "is null", VALUE_NONE, NEEDS_NOTHING, EVERY_CLASS},
	[OP_NOT_NULL] = {"not_null", "is not null", VALUE_NONE, NEEDS_NOTHING, EVERY_CLASS},
};

static const char *const class_names[] = {
	[FILTER_CLASS_TEXT] = "text",
	[FILTER_CLASS_NUMBER] = "number",
	[FILTER_CLASS_DATE] = "date",
	[FILTER_CLASS_TIMESTAMP] = "timestamp",
	[FILTER_CLASS_TIME] = "time",
	[FILTER_CLASS_INTERVAL] = "interval",
	[FILTER_CLASS_BOOLEAN] = "boolean",
	[FILTER_CLASS_OTHER] = "other",
};

/* The longest relative time of within_last, in days (100 years). */
#define FILTER_MAX_RELATIVE_DAYS 36525

/* A value of a condition waiting to be parsed with its column's type. */
typedef struct FilterSlot
{
	int			param;			/* its $n */
	const PageColumn *column;
	const char *op;
	char	   *path;
	Oid			type;			/* what the texts parse as */
	bool		list;			/* an array parameter of all the texts */
	int			ntexts;
	char	  **texts;
} FilterSlot;

/* The state of one filter's walk. */
typedef struct FilterWalk
{
	PageSpec   *spec;
	int			conditions;
	List	   *slots;			/* FilterSlot * */
} FilterWalk;

/* The class of a column type: what a filter may ask of it. */
FilterClass
paging_filter_class(Oid typid)
{
	Oid			base = getBaseType(typid);
	char		category;
	bool		preferred;

	switch (base)
	{
		case BOOLOID:
			return FILTER_CLASS_BOOLEAN;
		case DATEOID:
			return FILTER_CLASS_DATE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return FILTER_CLASS_TIMESTAMP;
		case TIMEOID:
		case TIMETZOID:
			return FILTER_CLASS_TIME;
		case INTERVALOID:
			return FILTER_CLASS_INTERVAL;
		default:
			break;
	}
	get_type_category_preferred(base, &category, &preferred);
	if (category == TYPCATEGORY_STRING)
		return FILTER_CLASS_TEXT;
	if (category == TYPCATEGORY_NUMERIC &&
		OidIsValid(lookup_type_cache(base, TYPECACHE_LT_OPR)->lt_opr))
		return FILTER_CLASS_NUMBER;
	return FILTER_CLASS_OTHER;
}

/* The type cache entry with the btree operators of a column's type. */
static TypeCacheEntry *
column_operators(const PageColumn *c)
{
	return lookup_type_cache(getBaseType(c->typid),
							 TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR | TYPECACHE_GT_OPR |
							 TYPECACHE_BTREE_OPFAMILY);
}

/* Whether an operator fits a column: its class, and the comparisons its type offers. */
static bool
op_fits(const FilterOp *op, const PageColumn *c)
{
	TypeCacheEntry *tc;

	if ((op->classes & CLASS(c->filter_class)) == 0)
		return false;
	if (op->needs == NEEDS_NOTHING)
		return true;
	tc = column_operators(c);
	if (op->needs == NEEDS_EQUALITY)
		return OidIsValid(tc->eq_opr);
	return OidIsValid(tc->lt_opr) && OidIsValid(tc->gt_opr) && OidIsValid(tc->btree_opf);
}

/* The operators that fit a column, as a JSON array of names. */
char *
paging_filter_operators(const PageColumn *c)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < OP_COUNT; i++)
		if (op_fits(&filter_ops[i], c))
			appendStringInfo(&buf, "%s\"%s\"", buf.len > 1 ? "," : "", filter_ops[i].name);
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* "eq, neq, ...": the operators that fit a column (every operator when c is NULL). */
static char *
operator_list(const PageColumn *c)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < OP_COUNT; i++)
		if (c == NULL || op_fits(&filter_ops[i], c))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", filter_ops[i].name);
	return buf.data;
}

/*
 * The filter form for clients (crm_api.capabilities): every operator with
 * its label, value and classes, and the limits.
 */
char *
paging_filter_description(void)
{
	static const char *const value_names[] = {"none", "one", "pair", "list", "interval"};
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"operators\":[");
	for (int i = 0; i < OP_COUNT; i++)
	{
		const FilterOp *op = &filter_ops[i];
		bool		first = true;

		appendStringInfo(&buf, "%s{\"name\":\"%s\",\"label\":", i ? "," : "", op->name);
		escape_json(&buf, op->label);
		appendStringInfo(&buf, ",\"value\":\"%s\",\"classes\":[", value_names[op->value]);
		for (int k = 0; k < lengthof(class_names); k++)
			if (op->classes & CLASS(k))
			{
				appendStringInfo(&buf, "%s\"%s\"", first ? "" : ",", class_names[k]);
				first = false;
			}
		appendStringInfoString(&buf, "]}");
	}
	appendStringInfo(&buf, "],\"max_depth\":%d,\"max_conditions\":%d,\"max_list\":%d,"
					 "\"max_value_length\":%d}",
					 PAGING_FILTER_MAX_DEPTH, PAGING_FILTER_MAX_CONDITIONS,
					 PAGING_FILTER_MAX_LIST, PAGING_FILTER_MAX_VALUE_LEN);
	return buf.data;
}

/* The name of a class, for clients. */
const char *
paging_filter_class_name(FilterClass c)
{
	return class_names[c];
}

/* Raise a filter error: where it is goes into the detail. */
static void pg_attribute_noreturn()
filter_error(const char *path, int sqlstate, const char *message, const char *hint)
{
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("%s", message),
			 errdetail("In the filter at %s.", path),
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

#define FORM_HINT "A filter is a condition {\"column\": \"email\", \"op\": \"contains\", \"value\": \"@example.com\"} " \
	"or a group {\"and\": [...]} or {\"or\": [...]} of filters."

/* Whether a value is a JSON object (a nested container that is one). */
static bool
is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/* Whether a value is a JSON array. */
static bool
is_array(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data);
}

/* The keys of one filter object. */
typedef struct FilterObject
{
	JsonbValue *and_list;
	JsonbValue *or_list;
	JsonbValue *column;
	JsonbValue *op;
	JsonbValue *value;
} FilterObject;

/* Read the keys of a filter object, refusing any other key. */
static void
read_object(JsonbContainer *container, const char *path, FilterObject *obj)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	   *key = NULL;

	memset(obj, 0, sizeof(*obj));
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue **slot = NULL;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "and") == 0)
			slot = &obj->and_list;
		else if (strcmp(key, "or") == 0)
			slot = &obj->or_list;
		else if (strcmp(key, "column") == 0)
			slot = &obj->column;
		else if (strcmp(key, "op") == 0)
			slot = &obj->op;
		else if (strcmp(key, "value") == 0)
			slot = &obj->value;
		else
			filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
						 psprintf("unknown key \"%s\" in the filter", key),
						 "A condition has the keys column, op and value; a group has one key, "
						 "and or or, holding an array of filters.");
		*slot = palloc(sizeof(JsonbValue));
		**slot = v;
	}
}

/* The text of a scalar JSON value, as a column type's input function takes it. */
static char *
scalar_text(const JsonbValue *v, const char *path, const FilterOp *op)
{
	char	   *text;

	if (v->type == jbvNull)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("a value of filter operator \"%s\" must not be null", op->name),
					 "Find missing values with the operator is_null.");
	if (v->type == jbvString)
		text = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvNumeric)
		text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvBool)
		text = pstrdup(v->val.boolean ? "true" : "false");
	else
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("a value of filter operator \"%s\" must be a string, number or boolean, not %s",
							  op->name, crm_json_type_name(v)),
					 NULL);
	if (pg_mbstrlen(text) > PAGING_FILTER_MAX_VALUE_LEN)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("a filter value is too long (%d characters)", pg_mbstrlen(text)),
					 psprintf("A value is at most %d characters.", PAGING_FILTER_MAX_VALUE_LEN));
	return text;
}

/* The texts of an array value of 1..max scalars. */
static char **
array_texts(const JsonbValue *v, const char *path, const FilterOp *op, int min, int max,
			const char *shape, int *n)
{
	JsonbContainer *arr;
	char	  **texts;

	if (!is_array(v) || JsonContainerSize(v->val.binary.data) < min ||
		JsonContainerSize(v->val.binary.data) > max)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("filter operator \"%s\" needs %s, not %s", op->name, shape,
							  is_array(v) ? psprintf("an array of %u", JsonContainerSize(v->val.binary.data))
							  : crm_json_type_name(v)),
					 NULL);
	arr = v->val.binary.data;
	*n = JsonContainerSize(arr);
	texts = palloc(sizeof(char *) * *n);
	for (int i = 0; i < *n; i++)
		texts[i] = scalar_text(getIthJsonbValueFromContainer(arr, i), path, op);
	return texts;
}

/* A schema-qualified operator, for SQL text: OPERATOR(pg_catalog.=). */
static char *
operator_sql(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator form;
	char	   *sql;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "crm_dashboard: cache lookup failed for operator %u", opno);
	form = (Form_pg_operator) GETSTRUCT(tup);
	sql = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(form->oprnamespace)),
				   NameStr(form->oprname));
	ReleaseSysCache(tup);
	return sql;
}

/* The btree operator of a column's type for a strategy (<, <=, =, >=, >). */
static char *
btree_operator(const PageColumn *c, int strategy)
{
	TypeCacheEntry *tc = column_operators(c);
	Oid			opno = get_opfamily_member(tc->btree_opf, tc->btree_opintype, tc->btree_opintype,
										   strategy);

	if (!OidIsValid(opno))
		elog(ERROR, "crm_dashboard: type %s has no btree operator of strategy %d", c->typname, strategy);
	return operator_sql(opno);
}

/* The equality operator of a column's type. */
static char *
equality_operator(const PageColumn *c)
{
	return operator_sql(column_operators(c)->eq_opr);
}

/* Add a parameter of the column's type (or type) to be parsed from texts later. */
static int
add_slot(FilterWalk *w, const PageColumn *c, const FilterOp *op, const char *path, Oid type,
		 bool list, char **texts, int ntexts)
{
	FilterSlot *slot = palloc0(sizeof(FilterSlot));
	Oid			param_type = type;

	if (list)
	{
		param_type = get_array_type(type);
		if (!OidIsValid(param_type))
		{
			/* a domain without an array type: compare as its base type */
			type = getBaseType(type);
			param_type = get_array_type(type);
		}
		if (!OidIsValid(param_type))
			filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
						 psprintf("filter operator \"in\" does not apply to column \"%s\" of type %s",
								  c->name, c->typname),
						 psprintf("Type %s has no array type; use eq conditions in an \"or\" group.",
								  c->typname));
	}
	slot->param = paging_add_param(w->spec, param_type, (Datum) 0);
	slot->column = c;
	slot->op = op->name;
	slot->path = pstrdup(path);
	slot->type = type;
	slot->list = list;
	slot->texts = texts;
	slot->ntexts = ntexts;
	w->slots = lappend(w->slots, slot);
	return slot->param;
}

/* Add a text parameter (a LIKE pattern) that needs no parsing. */
static int
add_text(FilterWalk *w, const char *text)
{
	return paging_add_param(w->spec, TEXTOID, CStringGetTextDatum(text));
}

/* The column expression, cast to text for LIKE unless it is text already. */
static char *
text_expression(const PageColumn *c)
{
	if (c->typid == TEXTOID)
		return psprintf("t.%s", quote_identifier(c->name));
	return psprintf("t.%s::pg_catalog.text", quote_identifier(c->name));
}

/* The bounds of within_last: "now" for the column's type, as SQL. */
static const char *
now_of(const PageColumn *c)
{
	Oid			base = getBaseType(c->typid);

	if (base == DATEOID)
		return "CURRENT_DATE";
	if (base == TIMESTAMPOID)
		return "LOCALTIMESTAMP";
	return "pg_catalog.now()";
}

/* A parameter parsed from one scalar value as type. */
static int
one_value(FilterWalk *w, const PageColumn *c, const FilterOp *op, const JsonbValue *value,
		  const char *path, Oid type)
{
	char	  **texts = palloc(sizeof(char *));

	texts[0] = scalar_text(value, path, op);
	return add_slot(w, c, op, path, type, false, texts, 1);
}

/* The btree strategy of a comparison operator. */
static int
strategy_of(FilterOpId id)
{
	switch (id)
	{
		case OP_LT:
			return BTLessStrategyNumber;
		case OP_LTE:
			return BTLessEqualStrategyNumber;
		case OP_GT:
			return BTGreaterStrategyNumber;
		default:
			return BTGreaterEqualStrategyNumber;
	}
}

/* "col <> $n", with the negator of the type's equality (or NOT (col = $n)). */
static char *
not_equal_sql(const PageColumn *c, const char *col, int param)
{
	Oid			negator = get_negator(column_operators(c)->eq_opr);

	if (OidIsValid(negator))
		return psprintf("%s %s $%d", col, operator_sql(negator), param);
	return psprintf("NOT (%s %s $%d)", col, equality_operator(c), param);
}

/*
 * within_last: from now minus the interval up to now, in the column's own
 * terms (a date column compares with dates, so its index serves it).
 */
static char *
within_last_sql(const PageColumn *c, const char *col, int param)
{
	const char *ge = btree_operator(c, BTGreaterEqualStrategyNumber);
	const char *le = btree_operator(c, BTLessEqualStrategyNumber);

	if (getBaseType(c->typid) == DATEOID)
		return psprintf("(%s %s (CURRENT_DATE OPERATOR(pg_catalog.-) $%d)::pg_catalog.date AND %s %s CURRENT_DATE)",
						col, ge, param, col, le);
	return psprintf("(%s %s (%s OPERATOR(pg_catalog.-) $%d) AND %s %s %s)",
					col, ge, now_of(c), param, col, le, now_of(c));
}

/* The SQL of one condition on column c; its values become parameters. */
static char *
condition_sql(FilterWalk *w, const PageColumn *c, FilterOpId id, const JsonbValue *value,
			  const char *path)
{
	const FilterOp *op = &filter_ops[id];
	char	   *col = psprintf("t.%s", quote_identifier(c->name));
	char	  **texts;
	int			n;

	switch (id)
	{
		case OP_EQ:
			return psprintf("%s %s $%d", col, equality_operator(c),
							one_value(w, c, op, value, path, c->typid));
		case OP_NEQ:
			return not_equal_sql(c, col, one_value(w, c, op, value, path, c->typid));
		case OP_LT:
		case OP_LTE:
		case OP_GT:
		case OP_GTE:
			return psprintf("%s %s $%d", col, btree_operator(c, strategy_of(id)),
							one_value(w, c, op, value, path, c->typid));
		case OP_BETWEEN:
			texts = array_texts(value, path, op, 2, 2, "an array of two values [low, high]", &n);
			return psprintf("(%s %s $%d AND %s %s $%d)",
							col, btree_operator(c, BTGreaterEqualStrategyNumber),
							add_slot(w, c, op, path, c->typid, false, texts, 1),
							col, btree_operator(c, BTLessEqualStrategyNumber),
							add_slot(w, c, op, path, c->typid, false, texts + 1, 1));
		case OP_IN:
			texts = array_texts(value, path, op, 1, PAGING_FILTER_MAX_LIST,
								psprintf("an array of 1 to %d values", PAGING_FILTER_MAX_LIST), &n);
			return psprintf("%s %s ANY ($%d)", col, equality_operator(c),
							add_slot(w, c, op, path, c->typid, true, texts, n));
		case OP_CONTAINS:
		case OP_STARTS_WITH:
			return psprintf("%s OPERATOR(pg_catalog.~~*) $%d", text_expression(c),
							add_text(w, paging_like_pattern(scalar_text(value, path, op), id == OP_CONTAINS)));
		case OP_IS_EMPTY:
			return psprintf("(%s IS NULL OR %s OPERATOR(pg_catalog.=) '')", col, text_expression(c));
		case OP_NOT_EMPTY:
			return psprintf("(%s IS NOT NULL AND %s OPERATOR(pg_catalog.<>) '')", col, text_expression(c));
		case OP_WITHIN_LAST:
			return within_last_sql(c, col, one_value(w, c, op, value, path, INTERVALOID));
		case OP_IS_TRUE:
			return psprintf("%s OPERATOR(pg_catalog.=) true", col);
		case OP_IS_FALSE:
			return psprintf("%s OPERATOR(pg_catalog.=) false", col);
		case OP_IS_NULL:
			return psprintf("%s IS NULL", col);
		case OP_NOT_NULL:
			return psprintf("%s IS NOT NULL", col);
		case OP_COUNT:
			break;
	}
	elog(ERROR, "crm_dashboard: unknown filter operator %d", (int) id);
	return NULL;
}

/* The operator called name, or report the known ones. */
static FilterOpId
find_operator(const JsonbValue *v, const char *path)
{
	char	   *name;

	if (v->type != jbvString)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("\"op\" must be a string, not %s", crm_json_type_name(v)),
					 psprintf("Operators: %s.", operator_list(NULL)));
	name = pnstrdup(v->val.string.val, v->val.string.len);
	for (int i = 0; i < OP_COUNT; i++)
		if (strcmp(filter_ops[i].name, name) == 0)
			return (FilterOpId) i;
	filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
				 psprintf("unknown filter operator \"%s\"", name),
				 psprintf("Operators: %s.", operator_list(NULL)));
	return OP_COUNT;			/* keep compiler quiet */
}

/* One condition: its column, its operator for the column's type, its value. */
static char *
walk_condition(FilterWalk *w, const FilterObject *obj, const char *path)
{
	const FilterOp *op;
	FilterOpId	id;
	PageColumn *c;
	char	   *name;

	if (++w->conditions > PAGING_FILTER_MAX_CONDITIONS)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE, "the filter has too many conditions",
					 psprintf("A filter holds at most %d conditions.", PAGING_FILTER_MAX_CONDITIONS));
	if (obj->column == NULL || obj->op == NULL)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("a filter condition needs \"column\" and \"op\"; %s",
							  obj->column ? "\"op\" is missing" :
							  obj->op ? "\"column\" is missing" : "both are missing"),
					 FORM_HINT);
	if (obj->column->type != jbvString)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("\"column\" must be a string, not %s", crm_json_type_name(obj->column)),
					 "Name one of the model's columns, as model_rows lists them.");
	name = pnstrdup(obj->column->val.string.val, obj->column->val.string.len);
	c = paging_find_column(w->spec, name);
	if (c == NULL)
		paging_unknown_column(w->spec, name, psprintf("In the filter at %s.", path));
	id = find_operator(obj->op, path);
	op = &filter_ops[id];
	if (!op_fits(op, c))
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("filter operator \"%s\" does not apply to column \"%s\" of type %s",
							  op->name, c->name, c->typname),
					 psprintf("Operators for %s (%s): %s.", c->name, c->typname, operator_list(c)));
	/* "value": null beside an operator without a value is no value */
	if (op->value == VALUE_NONE && obj->value != NULL && obj->value->type != jbvNull)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("filter operator \"%s\" takes no value", op->name),
					 "Leave \"value\" out of this condition.");
	if (op->value != VALUE_NONE && obj->value == NULL)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("filter operator \"%s\" needs a value", op->name),
					 op->value == VALUE_PAIR ? "Give \"value\": [low, high]." :
					 op->value == VALUE_LIST ? "Give \"value\": [v1, v2, ...]." :
					 op->value == VALUE_INTERVAL ? "Give \"value\": \"7 days\"." :
					 "Give \"value\".");
	return condition_sql(w, c, id, obj->value, path);
}

static char *walk_filter(FilterWalk *w, const JsonbValue *v, const char *path, int depth);

/* One group: its members joined with AND or OR. */
static char *
walk_group(FilterWalk *w, const JsonbValue *list, bool is_and, const char *path, int depth)
{
	const char *name = is_and ? "and" : "or";
	StringInfoData sql;
	JsonbContainer *arr;
	int			n;

	if (depth > PAGING_FILTER_MAX_DEPTH)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE, "the filter is nested too deeply",
					 psprintf("Groups may be nested at most %d deep.", PAGING_FILTER_MAX_DEPTH));
	if (!is_array(list))
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("\"%s\" must hold an array of filters, not %s", name, crm_json_type_name(list)),
					 FORM_HINT);
	arr = list->val.binary.data;
	n = JsonContainerSize(arr);
	if (n == 0)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("an \"%s\" group must hold at least one filter", name),
					 "Remove the empty group, or put a condition in it.");
	initStringInfo(&sql);
	appendStringInfoChar(&sql, '(');
	for (int i = 0; i < n; i++)
	{
		char	   *member_path = psprintf("%s.%s[%d]", path, name, i);

		appendStringInfo(&sql, "%s%s", i ? (is_and ? " AND " : " OR ") : "",
						 walk_filter(w, getIthJsonbValueFromContainer(arr, i), member_path, depth));
	}
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* A filter at path: a group or a condition. */
static char *
walk_filter(FilterWalk *w, const JsonbValue *v, const char *path, int depth)
{
	FilterObject obj;
	int			kinds;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	if (!is_object(v))
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("a filter must be a JSON object, not %s", crm_json_type_name(v)),
					 FORM_HINT);
	read_object(v->val.binary.data, path, &obj);
	kinds = (obj.and_list != NULL) + (obj.or_list != NULL) +
		(obj.column != NULL || obj.op != NULL || obj.value != NULL);
	if (kinds == 0)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE, "a filter must not be an empty object",
					 FORM_HINT);
	if (kinds > 1)
		filter_error(path, ERRCODE_INVALID_PARAMETER_VALUE,
					 "a filter object is either a group (\"and\" or \"or\") or a condition (\"column\", \"op\", \"value\")",
					 "Put conditions inside the group's array instead.");
	if (obj.and_list || obj.or_list)
		return walk_group(w, obj.and_list ? obj.and_list : obj.or_list, obj.and_list != NULL,
						  path, depth + 1);
	return walk_condition(w, &obj, path);
}

/*
 * Whether a parsed relative time is usable: positive, at most 100 years, and
 * written with a unit (a bare "7" would be seven seconds).
 */
static bool
relative_time_ok(const char *text, Datum value)
{
	Interval   *iv = DatumGetIntervalP(value);
	bool		has_unit = false;
	double		days;

	for (const char *p = text; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			has_unit = true;
	if (!has_unit || iv->month < 0 || iv->day < 0 || iv->time < 0)
		return false;
	days = iv->month * 30.0 + iv->day + iv->time / (double) USECS_PER_DAY;
	return days > 0 && days <= FILTER_MAX_RELATIVE_DAYS;
}

/* Report a value that did not parse as its column's type. */
static void pg_attribute_noreturn()
bad_value(const FilterSlot *slot, const char *text, const char *why)
{
	if (slot->type == INTERVALOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid relative time \"%s\" for filter operator \"%s\"", text, slot->op),
				 errdetail("In the filter at %s%s%s", slot->path, why ? ": " : ".", why ? why : ""),
				 errhint("Give a positive interval with a unit, such as \"7 days\", \"12 hours\" or "
						 "\"1 month\", of at most 100 years.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid filter value \"%s\" for column \"%s\" of type %s",
					text, slot->column->name, slot->column->typname),
			 errdetail("In the filter at %s: %s", slot->path, why),
			 errhint("Write the value as PostgreSQL reads a value of type %s.", slot->column->typname)));
	pg_unreachable();
}

/* Parse every waiting value with its type and put it in its parameter. */
static void
parse_values(FilterWalk *w)
{
	ListCell   *lc;

	foreach(lc, w->slots)
	{
		FilterSlot *slot = lfirst(lc);
		Oid		   *types = palloc(sizeof(Oid) * slot->ntexts);
		Datum	   *values = palloc(sizeof(Datum) * slot->ntexts);
		char	   *why;
		int			bad;

		for (int i = 0; i < slot->ntexts; i++)
			types[i] = slot->type;
		bad = crm_input_values(slot->ntexts, slot->texts, types, values, &why);
		if (bad >= 0)
			bad_value(slot, slot->texts[bad], why);
		if (slot->type == INTERVALOID && !relative_time_ok(slot->texts[0], values[0]))
			bad_value(slot, slot->texts[0], NULL);
		if (slot->list)
		{
			int16		typlen;
			bool		typbyval;
			char		typalign;

			get_typlenbyvalalign(slot->type, &typlen, &typbyval, &typalign);
			values[0] = PointerGetDatum(construct_array(values, slot->ntexts, slot->type,
														typlen, typbyval, typalign));
		}
		w->spec->param_values[slot->param - 1] = values[0];
	}
}

/*
 * Check a filter against the model's columns and AND its condition to the
 * spec's, its values as parameters.
 */
void
paging_apply_filter(PageSpec *spec, Jsonb *filter)
{
	FilterWalk	w = {spec, 0, NIL};
	JsonbValue	root;

	if (JB_ROOT_IS_SCALAR(filter) || !JB_ROOT_IS_OBJECT(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a filter must be a JSON object, not %s",
						JB_ROOT_IS_SCALAR(filter) ? "a scalar" : "an array"),
				 errhint(FORM_HINT)));
	root.type = jbvBinary;
	root.val.binary.data = &filter->root;
	root.val.binary.len = VARSIZE(filter) - VARHDRSZ;
	paging_add_condition(spec, walk_filter(&w, &root, "$", 0));
	parse_values(&w);
}

PG_FUNCTION_INFO_V1(crm_dashboard_filter_syntax);

/* crm_dashboard.filter_syntax(): the filter operators and limits, for clients. */
Datum
crm_dashboard_filter_syntax(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(paging_filter_description()));
}
