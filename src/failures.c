/*
 * failures.c
 *		crm_dashboard.error_fingerprint, the SQL face of fingerprint.c:
 *		what stays the same when a failure happens again.
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "crm_dashboard.h"
#include "fingerprint.h"

PG_FUNCTION_INFO_V1(crm_dashboard_error_fingerprint);

/*
 * crm_dashboard.error_fingerprint(message, crm, model): the message with
 * numbers, ids, quoted values, URLs and timestamps as placeholders, and the
 * run's CRM, model and table (<crm>_<model>) as <crm>, <model> and <table>.  NULL for
 * a NULL message; crm and model may be NULL.
 */
Datum
crm_dashboard_error_fingerprint(PG_FUNCTION_ARGS)
{
	text	   *message;
	char	   *model = crm_arg_text_or_null(fcinfo, 2);
	char	   *crm = crm_arg_text_or_null(fcinfo, 1);
	char	   *table = (crm && model) ? psprintf("%s_%s", crm, model) : NULL;
	char		out[FINGERPRINT_MAX + 1];
	size_t		len;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	message = PG_GETARG_TEXT_PP(0);
	len = error_fingerprint(VARDATA_ANY(message), VARSIZE_ANY_EXHDR(message), crm, model, table,
							out, sizeof(out));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, len));
}
