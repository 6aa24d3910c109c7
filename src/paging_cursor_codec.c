/*
 * paging_cursor_codec.c
 *		Encoding and decoding page cursors (see paging_cursor_codec.h).
 *
 * cJSON allocates with malloc: every cJSON object is deleted before
 * returning, and whatever the caller keeps is copied with its allocator.
 */
#include "paging_cursor_codec.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "util_base64url.h"

/* A copy of s made with the caller's allocator. */
static char *
copy_string(const char *s, size_t len, CursorAllocFn alloc, void *arg)
{
	char	   *out = alloc(arg, len + 1);

	if (out != NULL)
	{
		memcpy(out, s, len);
		out[len] = '\0';
	}
	return out;
}

/* The JSON document of a cursor; NULL when out of memory. */
static cJSON *
cursor_json(const CursorDoc *doc)
{
	cJSON	   *json = cJSON_CreateObject();
	cJSON	   *keys = cJSON_CreateArray();

	if (json == NULL || keys == NULL)
	{
		cJSON_Delete(json);
		cJSON_Delete(keys);
		return NULL;
	}
	cJSON_AddStringToObject(json, "m", doc->model);
	cJSON_AddStringToObject(json, "d", doc->backward ? "b" : "f");
	if (doc->sort)
		cJSON_AddStringToObject(json, "s", doc->sort);
	else
		cJSON_AddNullToObject(json, "s");
	cJSON_AddBoolToObject(json, "desc", doc->descending);
	cJSON_AddNumberToObject(json, "g", doc->segment);
	for (int i = 0; i < doc->nkeys; i++)
		cJSON_AddItemToArray(keys, cJSON_CreateString(doc->keys[i]));
	cJSON_AddItemToObject(json, "k", keys);
	return json;
}

char *
cursor_encode(const CursorDoc *doc, CursorAllocFn alloc, void *arg)
{
	cJSON	   *json = cursor_json(doc);
	char	   *text = json ? cJSON_PrintUnformatted(json) : NULL;
	char	   *out = NULL;

	cJSON_Delete(json);
	if (text != NULL)
	{
		out = alloc(arg, B64URL_ENCODED_LEN(strlen(text)) + 1);
		if (out != NULL)
			b64url_encode((const unsigned char *) text, strlen(text), out);
		cJSON_free(text);
	}
	return out;
}

/* Copy the key strings of "k" into doc; returns a problem or NULL. */
static const char *
decode_keys(const cJSON *keys, CursorDoc *doc, CursorAllocFn alloc, void *arg)
{
	const cJSON *item;
	int			i = 0;

	if (!cJSON_IsArray(keys))
		return "The cursor has no list of key values.";
	doc->nkeys = cJSON_GetArraySize(keys);
	if (doc->nkeys > CURSOR_MAX_KEYS)
		return "The cursor has too many key values.";
	doc->keys = alloc(arg, sizeof(char *) * (doc->nkeys + 1));
	if (doc->keys == NULL)
		return "The cursor is too large.";
	cJSON_ArrayForEach(item, keys)
	{
		if (!cJSON_IsString(item))
			return "A key value of the cursor is not a string.";
		doc->keys[i] = copy_string(item->valuestring, strlen(item->valuestring), alloc, arg);
		if (doc->keys[i++] == NULL)
			return "The cursor is too large.";
	}
	return NULL;
}

/* Read the fields of a parsed cursor document; returns a problem or NULL. */
static const char *
decode_fields(const cJSON *json, CursorDoc *doc, CursorAllocFn alloc, void *arg)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "m");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(json, "d");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(json, "s");
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(json, "desc");
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(json, "g");

	if (!cJSON_IsObject(json))
		return "The cursor is not a JSON object.";
	if (!cJSON_IsString(m))
		return "The cursor names no model.";
	if (!cJSON_IsString(d) || (strcmp(d->valuestring, "f") != 0 && strcmp(d->valuestring, "b") != 0))
		return "The cursor has no direction.";
	if (!(cJSON_IsNull(s) || cJSON_IsString(s)) || !cJSON_IsBool(desc) || !cJSON_IsNumber(g))
		return "The cursor lacks its sort or segment.";
	if (g->valuedouble != 0 && g->valuedouble != 1)
		return "The cursor names an unknown segment.";
	doc->model = copy_string(m->valuestring, strlen(m->valuestring), alloc, arg);
	doc->backward = d->valuestring[0] == 'b';
	doc->sort = cJSON_IsString(s) ? copy_string(s->valuestring, strlen(s->valuestring), alloc, arg) : NULL;
	doc->descending = cJSON_IsTrue(desc);
	doc->segment = (int) g->valuedouble;
	if (doc->model == NULL || (cJSON_IsString(s) && doc->sort == NULL))
		return "The cursor is too large.";
	return decode_keys(cJSON_GetObjectItemCaseSensitive(json, "k"), doc, alloc, arg);
}

const char *
cursor_decode(const char *text, CursorDoc *doc, CursorAllocFn alloc, void *arg)
{
	size_t		len = strlen(text);
	unsigned char *raw;
	long		n;
	cJSON	   *json;
	const char *problem;

	memset(doc, 0, sizeof(*doc));
	if (len > CURSOR_MAX_LEN)
		return "The cursor is too long.";
	raw = alloc(arg, B64URL_DECODED_MAX(len) + 1);
	if (raw == NULL)
		return "The cursor is too large.";
	n = b64url_decode(text, len, raw);
	if (n < 0)
		return "The cursor is not base64url text.";
	if (memchr(raw, '\0', n) != NULL)
		return "The cursor does not decode to text.";
	{
		const char *end = NULL;

		json = cJSON_ParseWithLengthOpts((const char *) raw, n, &end, false);
		if (json == NULL || end != (const char *) raw + n)
		{
			cJSON_Delete(json);
			return "The cursor is not valid JSON.";
		}
	}
	problem = decode_fields(json, doc, alloc, arg);
	cJSON_Delete(json);
	return problem;
}
