/*
 * paging_cursor.c
 *		Opaque page cursors, checked against the request they come with.
 *
 * A cursor (its text form lives in paging_cursor_codec.c) holds the table it
 * pages, the fetch direction, the sort column and direction, the segment
 * (0: non-NULL sort values, 1: NULL ones) and the key values as text.
 * Decoding checks every part against the request and parses each value with
 * its column type's input function, so a tampered cursor is an "invalid
 * cursor" error and never reaches a query.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"

#include "paging.h"
#include "paging_cursor_codec.h"

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

/* The codec's allocator: the current memory context. */
static void *
cursor_palloc(void *arg, size_t size)
{
	return palloc(size);
}

/* The cursor for a page starting after (or, backward, before) the given key values. */
char *
paging_cursor_encode(const PageSpec *spec, bool backward, int segment, char **values)
{
	CursorDoc	doc = {spec->table, backward, spec->sort, spec->descending, segment,
	paging_segment_keys(spec, segment), (const char **) values};
	char	   *text = cursor_encode(&doc, cursor_palloc, NULL);

	if (text == NULL)
		elog(ERROR, "crm_dashboard: could not encode a cursor");
	return text;
}

/* Whether a decoded cursor belongs to this request; returns a problem or NULL. */
static const char *
cursor_mismatch(const PageSpec *spec, const CursorDoc *doc)
{
	if (strcmp(doc->model, spec->table) != 0)
		return "The cursor belongs to another model.";
	if ((doc->sort == NULL) != (spec->sort == NULL) ||
		(doc->sort && strcmp(doc->sort, spec->sort) != 0) ||
		doc->descending != spec->descending)
		return "The cursor belongs to a different sort.";
	if (doc->segment == 1 && !spec->nullable)
		return "The cursor names an unknown segment.";
	if (doc->nkeys != paging_segment_keys(spec, doc->segment))
		return "The cursor has the wrong number of key values.";
	return NULL;
}

/* Parse each key value with its type's input function, or report the cursor invalid. */
static void
convert_values(const PageSpec *spec, PageCursor *c)
{
	Oid		   *types = palloc0(sizeof(Oid) * (c->nvalues + 1));
	char	   *message;

	c->datums = palloc0(sizeof(Datum) * (c->nvalues + 1));
	for (int i = 0; i < c->nvalues; i++)
	{
		if (!pg_verifymbstr(c->values[i], strlen(c->values[i]), true))
			invalid_cursor("A key value of the cursor is not valid in the database encoding.");
		types[i] = spec->keys[c->segment + i].typid;
	}
	if (crm_input_values(c->nvalues, c->values, types, c->datums, &message) >= 0)
		invalid_cursor(psprintf("A key value of the cursor is not valid: %s.", message));
}

/* Decode and check a cursor given to model_rows as "after". */
PageCursor *
paging_cursor_decode(const PageSpec *spec, const char *text)
{
	PageCursor *c = palloc0(sizeof(PageCursor));
	CursorDoc	doc;
	const char *problem = cursor_decode(text, &doc, cursor_palloc, NULL);

	if (problem == NULL && !pg_verifymbstr(doc.model, strlen(doc.model), true))
		problem = "The cursor does not decode to text.";
	if (problem == NULL)
		problem = cursor_mismatch(spec, &doc);
	if (problem != NULL)
		invalid_cursor(problem);
	c->backward = doc.backward;
	c->segment = doc.segment;
	c->nvalues = doc.nkeys;
	c->values = (char **) doc.keys;
	convert_values(spec, c);
	return c;
}
