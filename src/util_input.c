/*
 * util_input.c
 *		Parsing client-supplied text with a column type's input function,
 *		without letting a bad value abort the caller's transaction.
 *
 * Cursor keys, filter values and check parameters are text a client sent,
 * to be compared with a column: each is parsed with the input function of
 * the column's type, so it reaches a query only as a typed $n parameter.
 * PostgreSQL 15's input functions report a bad value with ERROR, so the
 * values are parsed inside one subtransaction; the first value that does
 * not parse is reported back with the input function's own message, and
 * the caller words the error (which value, of which column, where).
 * Cancellation and other errors that are not about the value go on up.
 *
 * Also here: the words for a JSON value's type, so that every message about
 * a value of the wrong JSON type (options, filters) says it the same way.
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "crm_dashboard.h"

/* Whether an error raised by an input function is about the value it was given. */
static bool
is_value_error(int sqlerrcode)
{
	/* class 22 (data exception: bad syntax, out of range) and 23 (a domain's CHECK) */
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

/*
 * Parse texts[0..n-1] with the input functions of types[0..n-1] (typmod -1)
 * into values[], allocated in the caller's memory context.  Returns -1 when
 * every value parsed, else the index of the first one that did not, with
 * the input function's message in *message.  A text that is not valid in
 * the database encoding counts as not parsing.
 */
int
crm_input_values(int n, char **texts, const Oid *types, Datum *values, char **message)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;
	volatile int current = -1;

	*message = NULL;
	for (int i = 0; i < n; i++)
		if (!pg_verifymbstr(texts[i], strlen(texts[i]), true))
		{
			*message = pstrdup("The value is not valid in the database encoding.");
			return i;
		}
	if (n == 0)
		return -1;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			Oid			infunc;
			Oid			ioparam;

			current = i;
			getTypeInputInfo(types[i], &infunc, &ioparam);
			values[i] = OidInputFunctionCall(infunc, texts[i], ioparam, -1);
		}
		current = -1;
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	CurrentResourceOwner = owner;

	if (edata == NULL)
		return -1;
	if (!is_value_error(edata->sqlerrcode))
		ReThrowError(edata);
	*message = edata->message ? pstrdup(edata->message) : pstrdup("The value does not parse.");
	return current;
}

/* The JSON type of a value in words, for messages ("a string", "an array"). */
const char *
crm_json_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "an unexpected value";
	}
}
