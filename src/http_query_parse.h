/*
 * http_query_parse.h
 *		The PostgREST URL grammar (select, order, limit, offset, filters),
 *		parsed in plain C with no PostgreSQL headers so that it can be fuzzed
 *		on its own.  Names are not checked here: the caller looks every
 *		column up in the catalog before it reaches SQL.
 */
#ifndef HTTP_QUERY_PARSE_H
#define HTTP_QUERY_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Allocator used for every string and array of a parsed query. */
typedef void *(*HqAllocFn) (void *arg, size_t size);

typedef enum HqOp
{
	HQ_EQ,
	HQ_NEQ,
	HQ_LT,
	HQ_LTE,
	HQ_GT,
	HQ_GTE,
	HQ_LIKE,
	HQ_ILIKE,
	HQ_IN,
	HQ_IS
} HqOp;

/* Values of "is." */
typedef enum HqIsValue
{
	HQ_IS_NULL,
	HQ_IS_NOT_NULL,
	HQ_IS_TRUE,
	HQ_IS_FALSE,
	HQ_IS_UNKNOWN
} HqIsValue;

typedef struct HqFilter
{
	const char *column;
	bool		negate;			/* "not." prefix */
	HqOp		op;
	const char *value;			/* plain value; like/ilike with * turned to % */
	const char **list;			/* in.(...) elements */
	int			nlist;
	HqIsValue	is_value;
} HqFilter;

typedef struct HqSelect
{
	const char *column;			/* "*" for all columns */
	const char *alias;			/* NULL when none */
	const char *cast;			/* NULL when none */
} HqSelect;

typedef struct HqOrder
{
	const char *column;
	bool		descending;
	int			nulls;			/* 0 default, 1 first, 2 last */
} HqOrder;

typedef struct HqQuery
{
	HqAllocFn	alloc;
	void	   *alloc_arg;

	HqSelect   *select;			/* NULL: select=* */
	int			nselect;
	HqOrder    *order;
	int			norder;
	HqFilter   *filters;
	int			nfilters;
	int			maxfilters;
	long long	limit;			/* -1 when absent */
	long long	offset;			/* 0 when absent */

	/* set when a parse function returns false */
	const char *error;			/* PGRST100 or PGRST103 */
	char		message[160];
} HqQuery;

/* Limits that keep a hostile query string from costing much. */
#define HQ_MAX_ITEMS 100		/* select items, order items, filters, in() elements */
#define HQ_MAX_NAME 63			/* a column, alias or type name */

extern void hq_init(HqQuery *q, HqAllocFn alloc, void *alloc_arg);
extern bool hq_is_reserved(const char *key);
extern bool hq_parse_param(HqQuery *q, const char *key, const char *value);
extern size_t hq_form_decode(char *s);

#endif							/* HTTP_QUERY_PARSE_H */
