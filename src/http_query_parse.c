/*
 * http_query_parse.c
 *		Parse PostgREST query parameters into an HqQuery.
 *
 * Plain C only (no PostgreSQL headers): the fuzz target links this file
 * alone.  Every function is total: any byte string gives either a parsed
 * query or an error message, with bounded work and memory.
 */
#include "http_query_parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {
	"eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in", "is"
};

/* Prepare an empty query (select=*, no limit). */
void
hq_init(HqQuery *q, HqAllocFn alloc, void *alloc_arg)
{
	memset(q, 0, sizeof(*q));
	q->alloc = alloc;
	q->alloc_arg = alloc_arg;
	q->limit = -1;
}

/* Record a parse error; always returns false for the caller to return. */
static bool hq_fail(HqQuery *q, const char *code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static bool
hq_fail(HqQuery *q, const char *code, const char *fmt,...)
{
	va_list		ap;

	q->error = code;
	va_start(ap, fmt);
	vsnprintf(q->message, sizeof(q->message), fmt, ap);
	va_end(ap);
	return false;
}

/* Copy len bytes of s into a NUL-terminated string from the query's allocator. */
static char *
hq_strndup(HqQuery *q, const char *s, size_t len)
{
	char	   *r = q->alloc(q->alloc_arg, len + 1);

	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/* Whether a key is one of PostgREST's reserved (non-filter) parameters. */
bool
hq_is_reserved(const char *key)
{
	return strcmp(key, "select") == 0 || strcmp(key, "order") == 0 ||
		strcmp(key, "limit") == 0 || strcmp(key, "offset") == 0 ||
		strcmp(key, "and") == 0 || strcmp(key, "or") == 0 ||
		strcmp(key, "not.and") == 0 || strcmp(key, "not.or") == 0;
}

/*
 * Decode a form-encoded component in place (%XX escapes, '+' as space);
 * returns the new length.  A malformed escape is kept verbatim, as browsers
 * do, and so is %00: a NUL would silently cut the string short (and no
 * PostgreSQL text value can hold one anyway).
 */
size_t
hq_form_decode(char *s)
{
	char	   *w = s;
	const char *r = s;

	while (*r)
	{
		if (*r == '+')
		{
			*w++ = ' ';
			r++;
		}
		else if (*r == '%' && isxdigit((unsigned char) r[1]) && isxdigit((unsigned char) r[2]) &&
				 !(r[1] == '0' && r[2] == '0'))
		{
			char		hex[3] = {r[1], r[2], '\0'};

			*w++ = (char) strtol(hex, NULL, 16);
			r += 3;
		}
		else
			*w++ = *r++;
	}
	*w = '\0';
	return strlen(s);
}

/* Check a name's length; names are looked up in the catalog later. */
static bool
hq_check_name(HqQuery *q, const char *name, size_t len, const char *what)
{
	if (len == 0)
		return hq_fail(q, "PGRST100", "empty %s", what);
	if (len > HQ_MAX_NAME)
		return hq_fail(q, "PGRST100", "%s is longer than %d bytes", what, HQ_MAX_NAME);
	return true;
}

/* Count the comma-separated items of s (for sizing arrays). */
static int
hq_count_items(const char *s)
{
	int			n = 1;

	for (; *s; s++)
		if (*s == ',')
			n++;
	return n;
}

/* Parse one select item: [alias:]column[::cast]. */
static bool
hq_parse_select_item(HqQuery *q, const char *s, size_t len, HqSelect *item)
{
	const char *end = s + len;
	const char *p;
	const char *col = s;
	const char *colend;

	memset(item, 0, sizeof(*item));
	/* an alias ends at the first single ':' (a '::' starts a cast) */
	for (p = s; p < end; p++)
	{
		if (*p == ':' && p + 1 < end && p[1] == ':')
			break;
		if (*p == ':')
		{
			if (!hq_check_name(q, s, p - s, "alias"))
				return false;
			item->alias = hq_strndup(q, s, p - s);
			col = p + 1;
			break;
		}
	}
	colend = end;
	for (p = col; p + 1 < end; p++)
	{
		if (p[0] == ':' && p[1] == ':')
		{
			colend = p;
			if (!hq_check_name(q, p + 2, end - (p + 2), "cast"))
				return false;
			item->cast = hq_strndup(q, p + 2, end - (p + 2));
			break;
		}
	}
	if (!hq_check_name(q, col, colend - col, "column in select"))
		return false;
	item->column = hq_strndup(q, col, colend - col);
	if (strcmp(item->column, "*") == 0 && (item->alias || item->cast))
		return hq_fail(q, "PGRST100", "\"*\" takes no alias or cast");
	return true;
}

/* select=a,alias:b,c::text */
static bool
hq_parse_select(HqQuery *q, const char *value)
{
	int			cap = hq_count_items(value);
	const char *s = value;

	if (cap > HQ_MAX_ITEMS)
		return hq_fail(q, "PGRST100", "select has more than %d items", HQ_MAX_ITEMS);
	q->select = q->alloc(q->alloc_arg, sizeof(HqSelect) * cap);
	q->nselect = 0;
	for (;;)
	{
		const char *comma = strchr(s, ',');
		size_t		len = comma ? (size_t) (comma - s) : strlen(s);

		if (!hq_parse_select_item(q, s, len, &q->select[q->nselect]))
			return false;
		q->nselect++;
		if (!comma)
			break;
		s = comma + 1;
	}
	return true;
}

/* Apply one order modifier (asc, desc, nullsfirst, nullslast). */
static bool
hq_order_modifier(HqQuery *q, HqOrder *item, const char *m, size_t len)
{
	if (len == 3 && strncmp(m, "asc", 3) == 0)
		item->descending = false;
	else if (len == 4 && strncmp(m, "desc", 4) == 0)
		item->descending = true;
	else if (len == 10 && strncmp(m, "nullsfirst", 10) == 0)
		item->nulls = 1;
	else if (len == 9 && strncmp(m, "nullslast", 9) == 0)
		item->nulls = 2;
	else
		return hq_fail(q, "PGRST100", "unknown order modifier \"%.*s\"", (int) (len > 40 ? 40 : len), m);
	return true;
}

/* order=col.desc.nullslast,col2 */
static bool
hq_parse_order(HqQuery *q, const char *value)
{
	int			cap = hq_count_items(value);
	const char *s = value;

	if (cap > HQ_MAX_ITEMS)
		return hq_fail(q, "PGRST100", "order has more than %d items", HQ_MAX_ITEMS);
	q->order = q->alloc(q->alloc_arg, sizeof(HqOrder) * cap);
	q->norder = 0;
	for (;;)
	{
		const char *comma = strchr(s, ',');
		const char *end = comma ? comma : s + strlen(s);
		const char *dot = memchr(s, '.', end - s);
		const char *colend = dot ? dot : end;
		HqOrder    *item = &q->order[q->norder];
		int			nmods = 0;

		memset(item, 0, sizeof(*item));
		if (!hq_check_name(q, s, colend - s, "column in order"))
			return false;
		item->column = hq_strndup(q, s, colend - s);
		while (dot)
		{
			const char *m = dot + 1;
			const char *next = memchr(m, '.', end - m);
			const char *mend = next ? next : end;

			if (++nmods > 2 || !hq_order_modifier(q, item, m, mend - m))
				return q->error ? false : hq_fail(q, "PGRST100", "too many order modifiers");
			dot = next;
		}
		q->norder++;
		if (!comma)
			break;
		s = comma + 1;
	}
	return true;
}

/* A non-negative decimal integer (limit, offset). */
static bool
hq_parse_count(HqQuery *q, const char *key, const char *value, long long *out)
{
	char	   *end;
	long long	v;

	if (*value == '-' && key[0] == 'l' && isdigit((unsigned char) value[1]))
		return hq_fail(q, "PGRST103", "limit must not be negative");
	if (!isdigit((unsigned char) *value))
		return hq_fail(q, "PGRST100", "%s must be a non-negative integer", key);
	errno = 0;
	v = strtoll(value, &end, 10);
	if (*end != '\0' || errno == ERANGE)
		return hq_fail(q, "PGRST100", "%s must be a non-negative integer", key);
	*out = v;
	return true;
}

/* Parse the body of in.(a,b,"c,d") into the filter's list. */
static bool
hq_parse_in_list(HqQuery *q, HqFilter *f, const char *v)
{
	size_t		len = strlen(v);
	const char *p;
	const char *end;
	char	   *buf;

	if (len < 2 || v[0] != '(' || v[len - 1] != ')')
		return hq_fail(q, "PGRST100", "in. needs a parenthesised list, as in in.(1,2)");
	f->list = q->alloc(q->alloc_arg, sizeof(char *) * (HQ_MAX_ITEMS + 1));
	f->nlist = 0;
	p = v + 1;
	end = v + len - 1;
	if (p == end)
		return true;			/* in.() matches nothing */
	buf = q->alloc(q->alloc_arg, len + 1);
	for (;;)
	{
		char	   *w = buf;

		if (f->nlist >= HQ_MAX_ITEMS)
			return hq_fail(q, "PGRST100", "in. has more than %d elements", HQ_MAX_ITEMS);
		if (p < end && *p == '"')
		{
			/* quoted element: backslash escapes the next byte */
			for (p++; p < end && *p != '"'; p++)
			{
				if (*p == '\\' && p + 1 < end)
					p++;
				*w++ = *p;
			}
			if (p >= end)
				return hq_fail(q, "PGRST100", "unterminated quoted element in in. list");
			p++;
			if (p < end && *p != ',')
				return hq_fail(q, "PGRST100", "unexpected text after a quoted element in in. list");
		}
		else
			while (p < end && *p != ',')
				*w++ = *p++;
		f->list[f->nlist++] = hq_strndup(q, buf, w - buf);
		if (p >= end)
			break;
		p++;					/* the comma */
	}
	return true;
}

/* Parse the value of is. */
static bool
hq_parse_is(HqQuery *q, HqFilter *f, const char *v)
{
	static const char *const names[] = {"null", "not_null", "true", "false", "unknown"};
	int			i;

	for (i = 0; i < 5; i++)
		if (strcasecmp(v, names[i]) == 0)
		{
			f->is_value = (HqIsValue) i;
			return true;
		}
	return hq_fail(q, "PGRST100", "is. takes null, not_null, true, false or unknown");
}

/* Store a plain operand, turning * into % for like and ilike. */
static void
hq_plain_value(HqQuery *q, HqFilter *f, const char *v)
{
	char	   *copy = hq_strndup(q, v, strlen(v));

	if (f->op == HQ_LIKE || f->op == HQ_ILIKE)
	{
		char	   *c;

		for (c = copy; *c; c++)
			if (*c == '*')
				*c = '%';
	}
	f->value = copy;
}

/* column=[not.]op.value */
static bool
hq_parse_filter(HqQuery *q, const char *key, const char *value)
{
	HqFilter   *f;
	const char *dot;
	size_t		oplen;
	int			i;

	if (!hq_check_name(q, key, strlen(key), "filter column"))
		return false;
	if (q->nfilters >= HQ_MAX_ITEMS)
		return hq_fail(q, "PGRST100", "more than %d filters", HQ_MAX_ITEMS);
	if (q->filters == NULL)
		q->filters = q->alloc(q->alloc_arg, sizeof(HqFilter) * HQ_MAX_ITEMS);
	f = &q->filters[q->nfilters];
	memset(f, 0, sizeof(*f));
	f->column = hq_strndup(q, key, strlen(key));
	if (strncmp(value, "not.", 4) == 0)
	{
		f->negate = true;
		value += 4;
	}
	dot = strchr(value, '.');
	if (dot == NULL)
		return hq_fail(q, "PGRST100", "filter on \"%.63s\" needs an operator, as in %.63s=eq.value", key, key);
	oplen = dot - value;
	for (i = 0; i < (int) (sizeof(op_names) / sizeof(op_names[0])); i++)
		if (strlen(op_names[i]) == oplen && strncmp(value, op_names[i], oplen) == 0)
			break;
	if (i == (int) (sizeof(op_names) / sizeof(op_names[0])))
		return hq_fail(q, "PGRST100", "unknown operator \"%.*s\"", (int) (oplen > 20 ? 20 : oplen), value);
	f->op = (HqOp) i;
	if (f->op == HQ_IN && !hq_parse_in_list(q, f, dot + 1))
		return false;
	if (f->op == HQ_IS && !hq_parse_is(q, f, dot + 1))
		return false;
	if (f->op != HQ_IN && f->op != HQ_IS)
		hq_plain_value(q, f, dot + 1);
	q->nfilters++;
	return true;
}

/*
 * Parse one decoded key=value pair of the query string into q.  Returns
 * false with q->error and q->message set when the pair is malformed.
 */
bool
hq_parse_param(HqQuery *q, const char *key, const char *value)
{
	if (value == NULL)
		value = "";
	if (strcmp(key, "select") == 0)
		return hq_parse_select(q, value);
	if (strcmp(key, "order") == 0)
		return hq_parse_order(q, value);
	if (strcmp(key, "limit") == 0)
		return hq_parse_count(q, key, value, &q->limit);
	if (strcmp(key, "offset") == 0)
		return hq_parse_count(q, key, value, &q->offset);
	if (hq_is_reserved(key))
		return hq_fail(q, "PGRST100", "logical operator \"%s\" is not supported by this server", key);
	return hq_parse_filter(q, key, value);
}
