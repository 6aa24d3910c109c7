/*
 * paging_cursor.c
 *		Opaque page cursors: base64url of a small JSON document.
 *
 * A cursor holds the table it pages ("m"), the fetch direction ("d": "f" forward or "b" backward), the
 * sort column ("s", null for physical order), the sort direction ("desc"),
 * the segment ("g": 0 non-NULL sort values, 1 NULL ones) and the key values
 * as text ("k").  Decoding checks every part against the request and parses
 * each value with its column type's input function, so a tampered cursor is
 * an "invalid cursor" error and never reaches a query.
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "access/xact.h"
#include "common/base64.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "paging.h"

/* Cursors longer than this are not ours (keys are short values). */
#define CURSOR_MAX_LEN 16384

/* Report a cursor that cannot be used, saying why. */
static void
invalid_cursor(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid cursor"),
			 errdetail("%s", why),
			 errhint("Use the next or previous value of a page returned by model_rows with the same sort.")));
}

/* base64url without padding, as used in URLs. */
static char *
base64url_encode(const char *src, int len)
{
	int			cap = pg_b64_enc_len(len) + 1;
	char	   *dst = palloc(cap);
	int			n = pg_b64_encode(src, len, dst, cap);

	if (n < 0)
		elog(ERROR, "crm_dashboard: could not encode a cursor");
	while (n > 0 && dst[n - 1] == '=')
		n--;
	dst[n] = '\0';
	for (char *p = dst; *p; p++)
		*p = (*p == '+') ? '-' : (*p == '/') ? '_' : *p;
	return dst;
}

/* Decode base64url (padding optional); NULL when the text is not base64url. */
static char *
base64url_decode(const char *text, int *outlen)
{
	int			len = strlen(text);
	char	   *std = palloc(len + 4);
	char	   *dst;
	int			i;

	for (i = 0; i < len; i++)
	{
		char		ch = text[i];

		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!(isalnum((unsigned char) ch) || ch == '='))
			return NULL;
		std[i] = ch;
	}
	while (i % 4 != 0)
		std[i++] = '=';
	std[i] = '\0';
	dst = palloc(pg_b64_dec_len(i) + 1);
	*outlen = pg_b64_decode(std, i, dst, pg_b64_dec_len(i));
	if (*outlen < 0)
		return NULL;
	dst[*outlen] = '\0';
	return dst;
}

/* The cursor for a page starting after (or, backward, before) the given key values. */
char *
paging_cursor_encode(const PageSpec *spec, bool backward, int segment, char **values)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"m\":");
	escape_json(&buf, spec->table);
	appendStringInfo(&buf, ",\"d\":\"%s\",\"s\":", backward ? "b" : "f");
	if (spec->sort)
		escape_json(&buf, spec->sort);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ",\"desc\":%s,\"g\":%d,\"k\":[",
					 spec->descending ? "true" : "false", segment);
	for (int i = 0; i < paging_segment_keys(spec, segment); i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, values[i]);
	}
	appendStringInfoString(&buf, "]}");
	return base64url_encode(buf.data, buf.len);
}

/* Copy the key strings of a parsed cursor; returns a problem or NULL. */
static const char *
copy_keys(const cJSON *keys, PageCursor *c)
{
	int			i = 0;
	const cJSON *item;

	if (!cJSON_IsArray(keys))
		return "The cursor has no list of key values.";
	c->nvalues = cJSON_GetArraySize(keys);
	c->values = palloc0(sizeof(char *) * (c->nvalues + 1));
	cJSON_ArrayForEach(item, keys)
	{
		if (!cJSON_IsString(item))
			return "A key value of the cursor is not a string.";
		c->values[i++] = pstrdup(item->valuestring);
	}
	return NULL;
}

/*
 * Read the JSON of a cursor and compare it with the request; returns a
 * problem or NULL.  cJSON allocates with malloc, so nothing here may throw
 * before cJSON_Delete: problems are returned instead.
 */
static const char *
parse_cursor_json(const PageSpec *spec, const char *json, PageCursor *c)
{
	cJSON	   *doc = cJSON_Parse(json);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "m");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "d");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "s");
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc, "desc");
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(doc, "g");
	const char *problem = NULL;

	if (doc == NULL)
		problem = "The cursor is not valid JSON.";
	else if (!cJSON_IsObject(doc))
		problem = "The cursor is not a JSON object.";
	else if (!cJSON_IsString(m) || strcmp(m->valuestring, spec->table) != 0)
		problem = "The cursor belongs to another model.";
	else if (!cJSON_IsString(d) || (strcmp(d->valuestring, "f") != 0 && strcmp(d->valuestring, "b") != 0))
		problem = "The cursor has no direction.";
	else if (!(cJSON_IsNull(s) || cJSON_IsString(s)) || !cJSON_IsBool(desc) || !cJSON_IsNumber(g))
		problem = "The cursor lacks its sort or segment.";
	else if ((cJSON_IsNull(s) ? spec->sort != NULL
			  : (spec->sort == NULL || strcmp(s->valuestring, spec->sort) != 0))
			 || cJSON_IsTrue(desc) != spec->descending)
		problem = "The cursor belongs to a different sort.";
	else if (g->valuedouble != 0 && !(g->valuedouble == 1 && spec->nullable))
		problem = "The cursor names an unknown segment.";
	else
	{
		c->backward = d->valuestring[0] == 'b';
		c->segment = (int) g->valuedouble;
		problem = copy_keys(cJSON_GetObjectItemCaseSensitive(doc, "k"), c);
		if (problem == NULL && c->nvalues != paging_segment_keys(spec, c->segment))
			problem = "The cursor has the wrong number of key values.";
	}
	cJSON_Delete(doc);
	return problem;
}

/* Parse each key value with its type's input function, or report the cursor invalid. */
static void
convert_values(const PageSpec *spec, PageCursor *c)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	c->datums = palloc0(sizeof(Datum) * (c->nvalues + 1));
	for (int i = 0; i < c->nvalues; i++)
		if (!pg_verifymbstr(c->values[i], strlen(c->values[i]), true))
			invalid_cursor("A key value of the cursor is not valid in the database encoding.");

	/* Input functions report bad values with ERROR: trap them in a subtransaction. */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		for (int i = 0; i < c->nvalues; i++)
		{
			Oid			typid = spec->keys[c->segment + i].typid;
			Oid			infunc;
			Oid			ioparam;

			getTypeInputInfo(typid, &infunc, &ioparam);
			c->datums[i] = OidInputFunctionCall(infunc, c->values[i], ioparam, -1);
		}
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

	if (edata != NULL)
	{
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		invalid_cursor(psprintf("A key value of the cursor is not valid: %s.", edata->message));
	}
}

/* Decode and check a cursor given to model_rows as "after". */
PageCursor *
paging_cursor_decode(const PageSpec *spec, const char *text)
{
	PageCursor *c = palloc0(sizeof(PageCursor));
	char	   *json;
	int			len;
	const char *problem;

	if (strlen(text) > CURSOR_MAX_LEN)
		invalid_cursor(psprintf("The cursor is longer than %d characters.", CURSOR_MAX_LEN));
	json = base64url_decode(text, &len);
	if (json == NULL)
		invalid_cursor("The cursor is not base64url text.");
	if (memchr(json, '\0', len) != NULL || !pg_verifymbstr(json, len, true))
		invalid_cursor("The cursor does not decode to text.");
	problem = parse_cursor_json(spec, json, c);
	if (problem != NULL)
		invalid_cursor(problem);
	convert_values(spec, c);
	return c;
}
