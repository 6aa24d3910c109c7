/*
 * paging.h
 *		Keyset pages of a model's rows: shared by paging*.c.
 *
 * The order of a page is segment 0 (rows whose sort column is not NULL,
 * ordered by the sort column and then the tie-breaker keys) followed by
 * segment 1 (rows whose sort column is NULL, ordered by the tie-breakers
 * alone), both in the requested direction.  The tie-breakers are the primary
 * key columns, or the physical position (ctid) of tables without one.
 */
#ifndef PAGING_H
#define PAGING_H

#include "crm_dashboard.h"
#include "utils/jsonb.h"

/* Longest search string accepted. */
#define PAGING_MAX_SEARCH_LEN 200
#define PAGING_MAX_PER_PAGE 1000
#define PAGING_DEFAULT_PER_PAGE 25

/* Limits of a filter (paging_filter.c). */
#define PAGING_FILTER_MAX_DEPTH 4	/* groups nested at most this deep */
#define PAGING_FILTER_MAX_CONDITIONS 50
#define PAGING_FILTER_MAX_LIST 1000 /* values of one "in" */
#define PAGING_FILTER_MAX_VALUE_LEN 1000	/* characters of one value */

/* What a filter may ask of a column, by its type (paging_filter.c). */
typedef enum FilterClass
{
	FILTER_CLASS_TEXT,
	FILTER_CLASS_NUMBER,
	FILTER_CLASS_DATE,
	FILTER_CLASS_TIMESTAMP,
	FILTER_CLASS_TIME,
	FILTER_CLASS_INTERVAL,
	FILTER_CLASS_BOOLEAN,
	FILTER_CLASS_OTHER
} FilterClass;

/* One column of a model table. */
typedef struct PageColumn
{
	char	   *name;
	Oid			typid;
	char	   *typname;		/* format_type with typmod, for display */
	bool		notnull;
	int			pkpos;			/* 1-based position in the primary key, or 0 */
	bool		searchable;
	bool		sortable;
	FilterClass filter_class;
} PageColumn;

/* One expression of the keyset order: a column, ctid or tableoid. */
typedef struct PageKey
{
	char	   *expr;			/* SQL text, e.g. t."id" */
	Oid			typid;
} PageKey;

/* Everything needed to build the queries of one paging request. */
typedef struct PageSpec
{
	CrmModel   *model;
	char	   *table;			/* quoted schema.table */
	int			ncolumns;
	PageColumn *columns;
	const char *sort;			/* sort column, NULL for physical order */
	bool		descending;
	bool		nullable;		/* the sort column may be NULL: segment 1 exists */
	int			nkeys;			/* keys[0] is the sort column unless sort is NULL */
	PageKey    *keys;
	char	   *filter;			/* condition of search and filter on $1..$nparams, or NULL */
	int			nparams;		/* its parameters */
	int			maxparams;
	Oid		   *param_types;
	Datum	   *param_values;
	bool		nothing;		/* a search on a model without text columns */
	const char *note;
} PageSpec;

/* A decoded cursor: where a page starts and in which direction it runs. */
typedef struct PageCursor
{
	bool		backward;
	int			segment;
	int			nvalues;
	char	  **values;			/* key values as text; segment 1 omits keys[0] */
	Datum	   *datums;			/* values converted to the key types */
} PageCursor;

/* paging.c */
extern void PagingInit(void);

/* paging_condition.c */
extern char *paging_like_pattern(const char *text, bool anywhere);
extern int	paging_add_param(PageSpec *spec, Oid type, Datum value);
extern void paging_add_condition(PageSpec *spec, const char *condition);
extern char *paging_column_names(const PageSpec *spec, bool sortable_only);
extern PageColumn *paging_find_column(const PageSpec *spec, const char *name);
extern void paging_unknown_column(const PageSpec *spec, const char *name, const char *where)
			pg_attribute_noreturn();

/* paging_query.c */
extern PageSpec *paging_spec(const char *crm, const char *model, const char *sort,
							 bool descending, const char *search, Jsonb *filter);
extern int	paging_segment_keys(const PageSpec *spec, int segment);
extern char *paging_query(const PageSpec *spec, int segment, bool reverse,
						  bool has_after, int limit);
extern char *paging_export_query(const PageSpec *spec);
extern Datum *paging_params(const PageSpec *spec, const PageCursor *after,
							int segment, Oid **types, int *nparams);

/* paging_filter.c */
extern FilterClass paging_filter_class(Oid typid);
extern const char *paging_filter_class_name(FilterClass c);
extern void paging_apply_filter(PageSpec *spec, Jsonb *filter);
extern char *paging_filter_operators(const PageColumn *c);
extern char *paging_filter_description(void);

/* paging_cursor.c */
extern char *paging_cursor_encode(const PageSpec *spec, bool backward, int segment,
								  char **values);
extern PageCursor *paging_cursor_decode(const PageSpec *spec, const char *text);

#endif							/* PAGING_H */
