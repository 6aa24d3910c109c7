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
