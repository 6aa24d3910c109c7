/*
 * http_error.h
 *		PostgREST's error conventions (src/http_error.c).
 */
#ifndef CRM_DASHBOARD_HTTP_ERROR_H
#define CRM_DASHBOARD_HTTP_ERROR_H

#include "postgres.h"

#include "lib/stringinfo.h"

extern void http_error_json(StringInfo buf, const char *code, const char *message,
							const char *details, const char *hint);
extern const char *http_www_authenticate(int status, const char *code);
extern int	http_sqlstate_status(const char *sqlstate, bool anonymous);

#endif							/* CRM_DASHBOARD_HTTP_ERROR_H */
