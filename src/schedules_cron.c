/*
 * schedules_cron.c
 *		The cron syntax pg_cron 1.4 accepts, checked strictly.
 *
 * pg_cron parses schedules with Vixie cron's crontab reader, which reads five
 * fields and ignores whatever follows them (in a crontab that is the
 * command), so "* * * * * * * *" is accepted and means "every minute"; a
 * range that runs backwards ("30-10") is accepted and never fires.  This
 * checker takes the same grammar and refuses such expressions with a reason:
 *
 *	schedule := "@" macro | field{5}, separated by spaces or tabs
 *	field    := range ("," range)*
 *	range    := "*" ["/" step] | value ["-" value ["/" step]]
 *	value    := digits | a month or weekday name (jan, mon, ...; any case)
 */
#include "schedules_cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct CronField
{
	const char *name;
	int			low;
	int			high;
	const char *const *names;	/* names for low, low+1, ...; NULL when none */
} CronField;

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const CronField fields[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day-of-month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day-of-week", 0, 7, day_names},
};

static const char *const macros[] = {
	"reboot", "restart", "yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly", NULL
};

/* Print a reason into why; always returns false. */
static bool
refuse(char *why, size_t whylen, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static bool
refuse(char *why, size_t whylen, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return false;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Read a value of a field at *p: a number of at most three digits, or a
 * name.  Advances *p; returns -1 when there is no valid value.
 */
static int
read_value(const char **p, const CronField *f)
{
	const char *s = *p;
	int			n = 0;
	int			len = 0;

	while (s[len] >= '0' && s[len] <= '9')
		len++;
	if (len > 0 && len <= 3)
	{
		for (int i = 0; i < len; i++)
			n = n * 10 + (s[i] - '0');
		*p = s + len;
		return n;
	}
	if (len > 0 || f->names == NULL)
		return -1;
	for (int i = 0; f->names[i] != NULL; i++)
		if (strncasecmp(s, f->names[i], 3) == 0 &&
			!((s[3] >= 'a' && s[3] <= 'z') || (s[3] >= 'A' && s[3] <= 'Z')))
		{
			*p = s + 3;
			return f->low + i;
		}
	return -1;
}

/* Check one comma-separated item of a field (text ends at end). */
static bool
check_range(const char *item, const char *end, const CronField *f, char *why, size_t whylen)
{
	const char *p = item;
	char		text[64];
	int			first;
	int			last;

	snprintf(text, sizeof(text), "%.*s", (int) (end - item), item);
	if (*p == '*')
		p++;
	else
	{
		first = read_value(&p, f);
		if (first < f->low || first > f->high)
			return refuse(why, whylen, "the %s field \"%s\" must be *, or a number from %d to %d%s",
						  f->name, text, f->low, f->high, f->names ? " or a name" : "");
		if (*p == '/')
			return refuse(why, whylen, "the %s field \"%s\" has a step without a range (write */n or a-b/n)",
						  f->name, text);
		if (*p == '-')
		{
			p++;
			last = read_value(&p, f);
			if (last < f->low || last > f->high)
				return refuse(why, whylen, "the %s field \"%s\" must end at a number from %d to %d%s",
							  f->name, text, f->low, f->high, f->names ? " or a name" : "");
			if (last < first)
				return refuse(why, whylen, "the %s field \"%s\" runs backwards", f->name, text);
		}
	}
	if (*p == '/')
	{
		int			step = 0;
		int			digits = 0;

		for (p++; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
			step = step * 10 + (*p - '0');
		if (digits == 0 || step == 0)
			return refuse(why, whylen, "the %s field \"%s\" has no positive step", f->name, text);
	}
	if (p != end)
		return refuse(why, whylen, "the %s field \"%s\" is not valid cron syntax", f->name, text);
	return true;
}

/* Check one field (text from start to end) against its definition. */
static bool
check_field(const char *start, const char *end, const CronField *f, char *why, size_t whylen)
{
	const char *item = start;

	for (;;)
	{
		const char *comma = memchr(item, ',', end - item);
		const char *item_end = comma ? comma : end;

		if (item_end == item)
			return refuse(why, whylen, "the %s field has an empty list item", f->name);
		if (!check_range(item, item_end, f, why, whylen))
			return false;
		if (!comma)
			return true;
		item = comma + 1;
	}
}

/* Check "@name". */
static bool
check_macro(const char *s, size_t len, char *why, size_t whylen)
{
	char		name[32];

	for (int i = 0; macros[i] != NULL; i++)
		if (len - 1 == strlen(macros[i]) && strncmp(s + 1, macros[i], len - 1) == 0)
			return true;
	snprintf(name, sizeof(name), "%.*s", (int) (len > 20 ? 20 : len), s);
	return refuse(why, whylen, "unknown schedule \"%s\"; use @hourly, @daily, @weekly, @monthly, "
				  "@yearly or @reboot", name);
}

bool
cron_check(const char *expr, char *why, size_t whylen)
{
	const char *start = expr;
	const char *end = expr + strlen(expr);
	int			n = 0;

	if (end - expr > CRON_MAX_LENGTH)
		return refuse(why, whylen, "the schedule is longer than %d bytes", CRON_MAX_LENGTH);
	while (start < end && is_blank(*start))
		start++;
	while (end > start && is_blank(end[-1]))
		end--;
	if (start == end)
		return refuse(why, whylen, "the schedule is empty");
	for (const char *c = start; c < end; c++)
		if ((unsigned char) *c < 0x20 && *c != '\t')
			return refuse(why, whylen, "the schedule holds a control character");
	if (*start == '@')
	{
		for (const char *c = start; c < end; c++)
			if (is_blank(*c))
				return refuse(why, whylen, "a schedule like @daily is one word");
		return check_macro(start, end - start, why, whylen);
	}
	while (start < end)
	{
		const char *field_end = start;

		while (field_end < end && !is_blank(*field_end))
			field_end++;
		if (n == 5)
			return refuse(why, whylen, "the schedule has more than five fields (minute hour "
						  "day-of-month month day-of-week)");
		if (!check_field(start, field_end, &fields[n], why, whylen))
			return false;
		n++;
		start = field_end;
		while (start < end && is_blank(*start))
			start++;
	}
	if (n < 5)
		return refuse(why, whylen, "the schedule has fewer than five fields (minute hour "
					  "day-of-month month day-of-week)");
	return true;
}

/*
 * ---- When a schedule fires next --------------------------------------------
 *
 * The five fields become bit sets (bit n: value n matches), the day rule of
 * Vixie cron applies, and the search walks forward from the next whole
 * minute: a month that does not match jumps to the next month's first day, a
 * day to the next day, an hour to the next matching hour.  Dates are civil
 * days since 1970-01-01 (proleptic Gregorian, UTC), computed without the C
 * library, so that any input gives the same answer everywhere.
 */

/* A parsed schedule: one bit set per field, and whether each day field began with *. */
typedef struct CronSpec
{
	uint64_t	bits[5];
	bool		dom_star;
	bool		dow_star;
} CronSpec;

/* The five fields a macro stands for; NULL for @reboot and @restart, which never recur. */
static const char *
macro_fields(const char *name, size_t len)
{
	static const struct
	{
		const char *name;
		const char *fields;
	}			expansions[] =
	{
		{"yearly", "0 0 1 1 *"},
		{"annually", "0 0 1 1 *"},
		{"monthly", "0 0 1 * *"},
		{"weekly", "0 0 * * 0"},
		{"daily", "0 0 * * *"},
		{"midnight", "0 0 * * *"},
		{"hourly", "0 * * * *"},
	};

	for (size_t i = 0; i < sizeof(expansions) / sizeof(expansions[0]); i++)
		if (len == strlen(expansions[i].name) && strncmp(name, expansions[i].name, len) == 0)
			return expansions[i].fields;
	return NULL;
}

/* Set the bits of one comma-separated item of a field (already checked). */
static void
parse_range(const char *item, const char *end, const CronField *f, uint64_t *bits)
{
	const char *p = item;
	int			first = f->low;
	int			last = f->high;
	int			step = 1;

	if (*p == '*')
		p++;
	else
	{
		first = last = read_value(&p, f);
		if (*p == '-')
		{
			p++;
			last = read_value(&p, f);
		}
	}
	if (p < end && *p == '/')
	{
		step = 0;
		for (p++; p < end && *p >= '0' && *p <= '9' && step < 10000; p++)
			step = step * 10 + (*p - '0');
	}
	if (first < f->low || last > f->high || first > last || step <= 0)
		return;
	for (int v = first; v <= last; v += step)
		*bits |= UINT64_C(1) << v;
}

/* Parse a checked expression into spec; false for @reboot. */
static bool
parse_spec(const char *expr, CronSpec *spec)
{
	const char *start = expr;
	const char *end = expr + strlen(expr);

	memset(spec, 0, sizeof(*spec));
	while (start < end && is_blank(*start))
		start++;
	while (end > start && is_blank(end[-1]))
		end--;
	if (start < end && *start == '@')
	{
		const char *fields = macro_fields(start + 1, end - start - 1);

		return fields != NULL && parse_spec(fields, spec);
	}
	for (int n = 0; n < 5 && start < end; n++)
	{
		const char *field_end = start;
		const char *item = start;

		while (field_end < end && !is_blank(*field_end))
			field_end++;
		if (n == 2)
			spec->dom_star = *start == '*';
		if (n == 4)
			spec->dow_star = *start == '*';
		while (item < field_end)
		{
			const char *comma = memchr(item, ',', field_end - item);
			const char *item_end = comma ? comma : field_end;

			parse_range(item, item_end, &fields[n], &spec->bits[n]);
			item = comma ? comma + 1 : field_end;
		}
		start = field_end;
		while (start < end && is_blank(*start))
			start++;
	}
	/* Sunday is 0 and 7 */
	if (spec->bits[4] & (UINT64_C(1) << 7))
		spec->bits[4] |= 1;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The date of a day since 1970-01-01 (the inverse of days_from_civil). */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era;
	int64_t		doe;
	int64_t		yoe;
	int64_t		doy;
	int64_t		mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* floor(a / b) for b > 0. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0));
}

/* Whether a day (its day of the month and of the week, 0 Sunday) matches. */
static bool
day_matches(const CronSpec *spec, int mday, int wday)
{
	bool		dom = (spec->bits[2] >> mday) & 1;
	bool		dow = (spec->bits[4] >> wday) & 1;

	return (spec->dom_star || spec->dow_star) ? (dom && dow) : (dom || dow);
}

/* The first set bit at or above from, below limit; -1 when none. */
static int
next_bit(uint64_t bits, int from, int limit)
{
	for (int v = from; v < limit; v++)
		if ((bits >> v) & 1)
			return v;
	return -1;
}

/* Times further out than this (about 290,000 years) are not searched. */
#define CRON_TIME_LIMIT (INT64_C(9200000000000))

bool
cron_next(const char *expr, int64_t after, int64_t *next)
{
	char		why[8];
	CronSpec	spec;
	int64_t		t;
	int64_t		day;
	int64_t		first_day;
	int			hour;
	int			minute;

	if (!cron_check(expr, why, sizeof(why)) || !parse_spec(expr, &spec))
		return false;
	if (after < -CRON_TIME_LIMIT || after > CRON_TIME_LIMIT)
		return false;
	t = (floor_div(after, 60) + 1) * 60;
	day = floor_div(t, 86400);
	hour = (int) ((t - day * 86400) / 3600);
	minute = (int) ((t - day * 86400) % 3600 / 60);
	first_day = day;
	while (day - first_day <= CRON_HORIZON_DAYS)
	{
		int64_t		y;
		int			m;
		int			d;
		int			wday = (int) (((day % 7) + 11) % 7);	/* 1970-01-01 was a Thursday */

		civil_from_days(day, &y, &m, &d);
		if (!((spec.bits[3] >> m) & 1))
		{
			day = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
			hour = minute = 0;
			continue;
		}
		if (!day_matches(&spec, d, wday) || next_bit(spec.bits[1], hour, 24) < 0)
		{
			day++;
			hour = minute = 0;
			continue;
		}
		if (next_bit(spec.bits[1], hour, 24) != hour)
		{
			hour = next_bit(spec.bits[1], hour, 24);
			minute = 0;
		}
		if ((minute = next_bit(spec.bits[0], minute, 60)) < 0)
		{
			hour++;
			minute = 0;
			if (hour == 24)
			{
				day++;
				hour = 0;
			}
			continue;
		}
		*next = day * 86400 + hour * 3600 + minute * 60;
		return true;
	}
	return false;
}
