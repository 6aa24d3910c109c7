/*
 * fuzz_query_parse.c
 *		libFuzzer target for the URL/filter parser (src/http_query_parse.c):
 *		the input is a query string, split and form-decoded as the server
 *		does, then every pair is parsed.  AddressSanitizer catches any
 *		out-of-bounds access; the checks below catch broken invariants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_query_parse.h"

/* Every allocation of one input, freed together afterwards. */
typedef struct Arena
{
	void	  **blocks;
	size_t		n;
	size_t		cap;
} Arena;

/* The parser's allocator: malloc, remembered for arena_free. */
static void *
arena_alloc(void *arg, size_t size)
{
	Arena	   *a = arg;
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		abort();
	if (a->n == a->cap)
	{
		a->cap = a->cap ? a->cap * 2 : 64;
		a->blocks = realloc(a->blocks, a->cap * sizeof(void *));
		if (a->blocks == NULL)
			abort();
	}
	a->blocks[a->n++] = p;
	return p;
}

/* Free every block of the arena. */
static void
arena_free(Arena *a)
{
	size_t		i;

	for (i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
}

/* Check what a successful parse promises its caller. */
static void
check_query(const HqQuery *q)
{
	int			i;

	if (q->nselect > HQ_MAX_ITEMS || q->norder > HQ_MAX_ITEMS || q->nfilters > HQ_MAX_ITEMS)
		abort();
	for (i = 0; i < q->nselect; i++)
		if (q->select[i].column == NULL || strlen(q->select[i].column) > HQ_MAX_NAME)
			abort();
	for (i = 0; i < q->nfilters; i++)
	{
		const HqFilter *f = &q->filters[i];

		if (f->column == NULL || f->op > HQ_IS || f->nlist > HQ_MAX_ITEMS)
			abort();
		if (f->op != HQ_IN && f->op != HQ_IS && f->value == NULL)
			abort();
	}
	if (q->limit < -1 || q->offset < 0)
		abort();
}

/* Parse one input as a query string. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);
	char	   *save = NULL;
	char	   *pair;
	Arena		arena = {0};
	HqQuery		q;
	int			ok = 1;

	memcpy(s, data, size);
	s[size] = '\0';
	hq_init(&q, arena_alloc, &arena);
	for (pair = strtok_r(s, "&", &save); pair && ok; pair = strtok_r(NULL, "&", &save))
	{
		char	   *eq = strchr(pair, '=');
		char	   *value = NULL;

		if (eq)
		{
			*eq = '\0';
			value = eq + 1;
			hq_form_decode(value);
		}
		hq_form_decode(pair);
		ok = hq_parse_param(&q, pair, value);
		if (!ok && (q.error == NULL || q.message[0] == '\0'))
			abort();			/* every failure must say why */
	}
	if (ok)
		check_query(&q);
	arena_free(&arena);
	free(s);
	return 0;
}
