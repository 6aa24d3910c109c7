/*
 * fuzz_cursor.c
 *		libFuzzer target for the page cursor decoder (src/paging_cursor_codec.c),
 *		which reads text a client sends as model_rows' "after".
 *
 * Invariants: no crash, leak or out-of-bounds read on any input; a cursor
 * that decodes encodes again to text that decodes to the same fields.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paging_cursor_codec.h"

/* Allocations of one input, freed together. */
typedef struct Arena
{
	void	   *blocks[4096];
	int			n;
} Arena;

static void *
arena_alloc(void *arg, size_t size)
{
	Arena	   *a = arg;

	if (a->n == 4096)
		return NULL;
	return a->blocks[a->n++] = malloc(size ? size : 1);
}

static void
arena_free(Arena *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->blocks[i]);
	a->n = 0;
}

/* Whether two decoded cursors say the same. */
static int
same_doc(const CursorDoc *x, const CursorDoc *y)
{
	if (strcmp(x->model, y->model) != 0 || x->backward != y->backward ||
		(x->sort == NULL) != (y->sort == NULL) || (x->sort && strcmp(x->sort, y->sort) != 0) ||
		x->descending != y->descending || x->segment != y->segment || x->nkeys != y->nkeys)
		return 0;
	for (int i = 0; i < x->nkeys; i++)
		if (strcmp(x->keys[i], y->keys[i]) != 0)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Arena arena;
	char	   *text = malloc(size + 1);
	CursorDoc	doc;
	CursorDoc	again;

	memcpy(text, data, size);
	text[size] = '\0';
	if (cursor_decode(text, &doc, arena_alloc, &arena) == NULL)
	{
		char	   *encoded = cursor_encode(&doc, arena_alloc, &arena);

		assert(doc.segment == 0 || doc.segment == 1);
		if (encoded != NULL && cursor_decode(encoded, &again, arena_alloc, &arena) == NULL)
			assert(same_doc(&doc, &again));
	}
	arena_free(&arena);
	free(text);
	return 0;
}
