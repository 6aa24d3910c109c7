/*
 * paging_cursor_codec.h
 *		The text form of page cursors: base64url of a small JSON document.
 *		Plain C with no PostgreSQL headers, so that the decoder of this
 *		client-supplied text can be fuzzed on its own.
 */
#ifndef PAGING_CURSOR_CODEC_H
#define PAGING_CURSOR_CODEC_H

#include <stdbool.h>
#include <stddef.h>

/* Cursors longer than this are not ours (keys are short values). */
#define CURSOR_MAX_LEN 16384
/* Most key values a cursor carries (a primary key has at most 32 columns). */
#define CURSOR_MAX_KEYS 40

/* Allocator for every string and array of a decoded cursor. */
typedef void *(*CursorAllocFn) (void *arg, size_t size);

/* What a cursor says: where a page starts, and for which request. */
typedef struct CursorDoc
{
	const char *model;			/* "m": the quoted table it pages */
	bool		backward;		/* "d": "b" backward, "f" forward */
	const char *sort;			/* "s": the sort column, NULL for physical order */
	bool		descending;		/* "desc" */
	int			segment;		/* "g": 0 non-NULL sort values, 1 NULL ones */
	int			nkeys;
	const char **keys;			/* "k": key values as text */
} CursorDoc;

/* The cursor text of doc (allocated with alloc); NULL when out of memory. */
extern char *cursor_encode(const CursorDoc *doc, CursorAllocFn alloc, void *arg);

/*
 * Decode a cursor into doc; returns NULL, or a sentence saying why text is
 * not a cursor (it is then left unusable).  Only the shape is checked here;
 * whether the cursor fits the request is the caller's business.
 */
extern const char *cursor_decode(const char *text, CursorDoc *doc, CursorAllocFn alloc, void *arg);

#endif							/* PAGING_CURSOR_CODEC_H */
