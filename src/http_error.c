/*
 * http_error.c
 *		PostgREST's error conventions, shared by the HTTP workers and the
 *		request engine that runs in their pooled connections: the error
 *		object {code, message, details, hint} and the SQLSTATE -> HTTP status
 *		mapping.  Plain StringInfo and JSON escaping only, no libmicrohttpd.
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"

#include "http_error.h"

/*
 * value with every byte that does not start a valid UTF-8 sequence replaced
 * by U+FFFD: error texts may quote request headers, which libmicrohttpd
 * passes on as they came, and a JSON reply must be valid UTF-8.
 */
static const char *
valid_utf8(const char *value)
{
	StringInfoData buf;
	const unsigned char *p = (const unsigned char *) value;

	if (pg_verify_mbstr(PG_UTF8, value, strlen(value), true))
		return value;
	initStringInfo(&buf);
	while (*p)
	{
		int			len = pg_utf_mblen(p);

		if (strnlen((const char *) p, len) == len && pg_utf8_islegal(p, len))
		{
			appendBinaryStringInfo(&buf, (const char *) p, len);
			p += len;
		}
		else
		{
			appendStringInfoString(&buf, "\xEF\xBF\xBD");
			p++;
		}
	}
	return buf.data;
}

/* Append "key": value-or-null to an error object. */
static void
append_field(StringInfo buf, const char *key, const char *value, bool last)
{
	appendStringInfo(buf, "\"%s\":", key);
	if (value)
		escape_json(buf, valid_utf8(value));
	else
		appendStringInfoString(buf, "null");
	if (!last)
		appendStringInfoChar(buf, ',');
}

/* Append PostgREST's error object {code, message, details, hint} (NULL fields are null). */
void
http_error_json(StringInfo buf, const char *code, const char *message, const char *details,
				const char *hint)
{
	appendStringInfoChar(buf, '{');
	append_field(buf, "code", code, false);
	append_field(buf, "details", details, false);
	append_field(buf, "hint", hint, false);
	append_field(buf, "message", message, true);
	appendStringInfoChar(buf, '}');
}

/* The WWW-Authenticate header a reply of status with code carries, or NULL. */
const char *
http_www_authenticate(int status, const char *code)
{
	if (status != 401)
		return NULL;
	if (code && strcmp(code, "PGRST303") == 0)
		return "Bearer error=\"invalid_token\", error_description=\"JWT expired\"";
	return "Bearer";
}

/* The class (first two characters) of a SQLSTATE is one of list. */
static bool
class_in(const char *sqlstate, const char *const *list)
{
	for (; *list; list++)
		if (strncmp(sqlstate, *list, 2) == 0)
			return true;
	return false;
}

/* PostgREST's SQLSTATE -> HTTP status mapping (its errors reference). */
int
http_sqlstate_status(const char *s, bool anonymous)
{
	static const char *const server_classes[] = {
		"09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "XX", "P0", NULL
	};
	static const char *const forbidden_classes[] = {"0L", "0P", "28", NULL};

	if (strcmp(s, "23503") == 0 || strcmp(s, "23505") == 0)
		return 409;
	if (strcmp(s, "25006") == 0)
		return 405;
	if (strcmp(s, "P0001") == 0)
		return 400;
	if (strcmp(s, "42883") == 0 || strcmp(s, "42P01") == 0)
		return 404;
	if (strcmp(s, "42501") == 0)
		return anonymous ? 401 : 403;
	if (strcmp(s, "42P17") == 0 || strcmp(s, "53400") == 0)
		return 500;
	if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strcmp(s, "57P01") == 0)
		return 503;
	if (class_in(s, forbidden_classes))
		return 403;
	if (class_in(s, server_classes))
		return 500;
	if (strncmp(s, "PT", 2) == 0 && isdigit((unsigned char) s[2]) &&
		isdigit((unsigned char) s[3]) && isdigit((unsigned char) s[4]))
		return atoi(s + 2);
	return 400;
}

