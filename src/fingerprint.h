/*
 * fingerprint.h
 *		The fingerprint of an error message: what stays the same when the
 *		same failure happens again, so that failures group across runs and
 *		models ("HTTP 429 Too Many Requests ... retry after <n> s").
 *
 * Numbers, ids, quoted values, URLs, e-mail addresses and timestamps become
 * placeholders (<n>, <id>, <value>, <url>, <email>, <time>); the failing
 * run's CRM (in any case), model and table names become <crm>, <model> and
 * <table>; white space is
 * collapsed.  A status after "HTTP" stays: it says which failure it is.
 *
 * Plain C only (no PostgreSQL headers), so that the fuzz target can check it.
 */
#ifndef CRM_DASHBOARD_FINGERPRINT_H
#define CRM_DASHBOARD_FINGERPRINT_H

#include <stddef.h>

/* Bytes of a message looked at, and the longest fingerprint. */
#define FINGERPRINT_INPUT_MAX 2000
#define FINGERPRINT_MAX 500

extern size_t error_fingerprint(const char *msg, size_t len, const char *crm, const char *model,
								const char *table, char *out, size_t cap);

#endif							/* CRM_DASHBOARD_FINGERPRINT_H */
