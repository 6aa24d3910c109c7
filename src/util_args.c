/*
 * util_args.c
 *		Reading the arguments of SQL-callable functions: NULL checks with one
 *		error shape, and trailing arguments that older SQL definitions lack.
 *
 * A C function is called with whatever its SQL definition declares.  Between
 * installing a newer library and ALTER EXTENSION UPDATE, that definition may
 * be an older one with fewer arguments, so arguments added in a release are
 * read only when PG_NARGS() says they were passed.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "crm_dashboard.h"

/* Whether argument n was passed and is not NULL. */
bool
crm_arg_given(FunctionCallInfo fcinfo, int n)
{
	return n < PG_NARGS() && !PG_ARGISNULL(n);
}

/* Raise the error for a NULL where a value is required. */
void
crm_arg_null_error(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not be null", name),
			 errhint("Pass a value for \"%s\".", name)));
}

/* Text argument n, which must be given (its name goes into the error). */
char *
crm_arg_text(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (!crm_arg_given(fcinfo, n))
		crm_arg_null_error(name);
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* Text argument n, or NULL when it is NULL or was not passed. */
char *
crm_arg_text_or_null(FunctionCallInfo fcinfo, int n)
{
	return crm_arg_given(fcinfo, n) ? text_to_cstring(PG_GETARG_TEXT_PP(n)) : NULL;
}

/* Boolean argument n, or dflt when it is NULL or was not passed. */
bool
crm_arg_bool_or(FunctionCallInfo fcinfo, int n, bool dflt)
{
	return crm_arg_given(fcinfo, n) ? PG_GETARG_BOOL(n) : dflt;
}
