/*
 * fingerprint.c
 *		The fingerprint of an error message (see fingerprint.h).
 *
 * The message is read once, left to right: white space, quoted spans,
 * URLs, then tokens (letters, digits and "_", joined by . - : / @ + when a
 * letter or digit follows).  A whole token may be a timestamp, a UUID, an
 * e-mail address or a number; otherwise each of its parts between joiners
 * is looked at on its own (so "ingestion.hubspot_contact" keeps
 * "ingestion." and loses the table name).  Bytes above ASCII count as
 * letters, so UTF-8 text passes through whole.
 */
#include <stdbool.h>
#include <string.h>

#include "fingerprint.h"

/* The fingerprint being written: at most cap - 1 bytes plus a NUL. */
typedef struct FpOut
{
	char	   *buf;
	size_t		cap;
	size_t		len;
	bool		space;			/* white space is pending */
	bool		full;
} FpOut;

/* The CRM, model and table names of the failing run, replaced by <crm>, <model>, <table>. */
typedef struct FpNames
{
	const char *crm;
	size_t		crm_len;
	const char *model;
	size_t		model_len;
	const char *table;
	size_t		table_len;
} FpNames;

/* ASCII classes, whatever the locale. */
static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_word(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c >= 0x80;
}

static bool
is_joiner(unsigned char c)
{
	return c == '.' || c == '-' || c == ':' || c == '/' || c == '@' || c == '+';
}

static bool
is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Append n bytes (as many as fit), after the pending space if any. */
static void
put(FpOut *o, const char *s, size_t n)
{
	if (o->space && o->len > 0)
	{
		o->space = false;
		put(o, " ", 1);
	}
	o->space = false;
	if (o->len + n >= o->cap)
	{
		n = o->cap - 1 - o->len;
		o->full = true;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* Append a placeholder; a timestamp's date and time make one <time>. */
static void
put_placeholder(FpOut *o, const char *ph)
{
	static const char time_ph[] = "<time>";

	if (strcmp(ph, time_ph) == 0 && o->len >= sizeof(time_ph) - 1 &&
		memcmp(o->buf + o->len - (sizeof(time_ph) - 1), time_ph, sizeof(time_ph) - 1) == 0)
	{
		o->space = false;
		return;
	}
	put(o, ph, strlen(ph));
}

/* Whether s[0..n) is n digits. */
static bool
all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit((unsigned char) s[i]))
			return false;
	return true;
}

/* Length of the run of digits at s (at most n). */
static size_t
digits_at(const char *s, size_t n)
{
	size_t		i = 0;

	while (i < n && is_digit((unsigned char) s[i]))
		i++;
	return i;
}

/* 8-4-4-4-12 hexadecimal digits. */
static bool
is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? s[i] != '-' : !is_hex((unsigned char) s[i]))
			return false;
	}
	return true;
}

/* HH:MM[:SS[.fraction]] and an optional zone (Z, +HH[:]MM); returns its length or 0. */
static size_t
time_at(const char *s, size_t n)
{
	size_t		i = digits_at(s, n);

	if (i < 1 || i > 2 || i + 3 > n || s[i] != ':' || digits_at(s + i + 1, n - i - 1) != 2)
		return 0;
	i += 3;
	if (i + 3 <= n && s[i] == ':' && digits_at(s + i + 1, n - i - 1) == 2)
	{
		i += 3;
		if (i + 1 < n && s[i] == '.' && digits_at(s + i + 1, n - i - 1) > 0)
			i += 1 + digits_at(s + i + 1, n - i - 1);
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z'))
		i++;
	else if (i < n && (s[i] == '+' || s[i] == '-') && digits_at(s + i + 1, n - i - 1) >= 2)
		i += 1 + digits_at(s + i + 1, n - i - 1);
	if (i + 2 < n && s[i] == ':' && digits_at(s + i + 1, n - i - 1) == 2)
		i += 3;
	return i;
}

/* YYYY-MM-DD, optionally followed by T and a time; or a time alone. */
static bool
is_timestamp(const char *s, size_t n)
{
	if (n >= 10 && digits_at(s, n) == 4 && s[4] == '-' && digits_at(s + 5, n - 5) == 2 &&
		s[7] == '-' && digits_at(s + 8, n - 8) == 2)
	{
		if (n == 10)
			return true;
		return (s[10] == 'T' || s[10] == 't') && time_at(s + 11, n - 11) == n - 11;
	}
	return time_at(s, n) == n;
}

/* local@domain.tld */
static bool
is_email(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);

	return at != NULL && at > s && memchr(at + 1, '.', n - (at + 1 - s)) != NULL &&
		memchr(at + 1, '@', n - (at + 1 - s)) == NULL;
}

/* Digits with dots between them: 3.5, 10.0.4.17. */
static bool
is_dotted_number(const char *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		size_t		d = digits_at(s + i, n - i);

		if (d == 0)
			return false;
		i += d;
		if (i < n && (s[i] != '.' || i + 1 == n))
			return false;
		if (i < n)
			i++;
	}
	return n > 0;
}

/*
 * An identifier: letters and digits mixed, with at least four digits, or
 * at least eight characters of which two are digits, or eight hexadecimal
 * digits or more (not names like psycopg2, utf8mb4 or sha256).
 */
static bool
is_id(const char *s, size_t n)
{
	size_t		digits = 0,
				letters = 0,
				hex = 0;

	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = s[i];

		if (is_digit(c))
			digits++;
		else if (is_alpha(c))
			letters++;
		if (is_hex(c))
			hex++;
	}
	if (digits == 0)
		return false;
	if (letters == 0)
		return digits >= 4 && n > digits;	/* digits with _ or -: 2024_01, 51-0017 */
	return digits >= 4 || (n >= 8 && digits >= 2) || (n >= 8 && hex == n);
}

/* A number with a short unit: 300s, 412ms, 12kB; returns the unit's offset or 0. */
static size_t
number_unit(const char *s, size_t n)
{
	size_t		d = digits_at(s, n);

	if (d == 0 || d == n || n - d > 3)
		return 0;
	for (size_t i = d; i < n; i++)
		if (!is_alpha((unsigned char) s[i]))
			return 0;
	return d;
}

/* A decimal number with a short unit: 3.5s; returns the unit's offset or 0. */
static size_t
decimal_unit(const char *s, size_t n)
{
	size_t		d = digits_at(s, n);
	size_t		f;

	if (d == 0 || d + 1 >= n || s[d] != '.')
		return 0;
	f = digits_at(s + d + 1, n - d - 1);
	if (f == 0)
		return 0;
	return number_unit(s + d + 1, n - d - 1) == f ? d + 1 + f : 0;
}

/* Whether a[0..n) and b[0..n) are the same ASCII letters but for case (a CRM's display name). */
static bool
same_ignoring_case(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		unsigned char x = a[i],
					y = b[i];

		if (x != y && !(is_alpha(x) && is_alpha(y) && (x | 0x20) == (y | 0x20)))
			return false;
	}
	return true;
}

/* One part of a token (between joiners). */
static void
put_part(FpOut *o, const FpNames *names, const char *s, size_t n, bool keep_number)
{
	size_t		unit;

	if (names->table_len > 0 && n == names->table_len && memcmp(s, names->table, n) == 0)
		put_placeholder(o, "<table>");
	else if (names->model_len > 0 && n == names->model_len && memcmp(s, names->model, n) == 0)
		put_placeholder(o, "<model>");
	else if (names->crm_len > 0 && n == names->crm_len && same_ignoring_case(s, names->crm, n))
		put_placeholder(o, "<crm>");
	else if (all_digits(s, n))
	{
		if (keep_number)
			put(o, s, n);
		else
			put_placeholder(o, "<n>");
	}
	else if ((unit = number_unit(s, n)) > 0)
	{
		put_placeholder(o, "<n>");
		put(o, s + unit, n - unit);
	}
	else if (is_id(s, n))
		put_placeholder(o, "<id>");
	else
		put(o, s, n);
}

/* A whole token: a timestamp, UUID, e-mail or number, else part by part. */
static void
put_token(FpOut *o, const FpNames *names, const char *s, size_t n, bool after_http)
{
	size_t		start = 0;
	size_t		unit;

	if (is_uuid(s, n))
		put_placeholder(o, "<id>");
	else if (is_timestamp(s, n))
		put_placeholder(o, "<time>");
	else if (is_email(s, n))
		put_placeholder(o, "<email>");
	else if (is_dotted_number(s, n) && memchr(s, '.', n) != NULL)
		put_placeholder(o, "<n>");
	else if ((unit = decimal_unit(s, n)) > 0)
	{
		/* 3.5s, 0.25ms */
		put_placeholder(o, "<n>");
		put(o, s + unit, n - unit);
	}
	else
	{
		/* an HTTP status says which failure it is: "HTTP 429" stays */
		bool		keep = after_http && n == 3 && all_digits(s, n);

		for (size_t i = 0; i <= n; i++)
		{
			if (i < n && !is_joiner((unsigned char) s[i]))
				continue;
			put_part(o, names, s + start, i - start, keep);
			if (i < n)
				put(o, s + i, 1);
			start = i + 1;
		}
	}
}

/* Length of a URL (scheme://...) at s, trailing punctuation excluded; 0 if none. */
static size_t
url_at(const char *s, size_t n)
{
	size_t		i = 0;

	if (n == 0 || !is_alpha((unsigned char) s[0]))
		return 0;
	while (i < n && ((is_alpha((unsigned char) s[i]) || is_digit((unsigned char) s[i])) || s[i] == '+' || s[i] == '.' || s[i] == '-'))
		i++;
	if (i + 3 > n || memcmp(s + i, "://", 3) != 0)
		return 0;
	i += 3;
	while (i < n && !is_space((unsigned char) s[i]) && s[i] != '"' && s[i] != '\'' && s[i] != '<' && s[i] != '>')
		i++;
	while (i > 0 && strchr(".,;:!?)]}", s[i - 1]) != NULL)
		i--;
	return i;
}

/*
 * A quoted span at s (s[0] is the quote): its length including both
 * quotes, or 0 when this is no opening quote or it has no end.  A quote
 * closes only where no letter or digit follows (so "Can't" is no span).
 */
static size_t
quoted_at(const char *s, size_t n, bool *has_space)
{
	*has_space = false;
	for (size_t i = 1; i < n; i++)
	{
		if (s[i] == '\n')
			return 0;
		if (is_space((unsigned char) s[i]))
			*has_space = true;
		if (s[i] == s[0] && i > 1 && (i + 1 == n || !is_word((unsigned char) s[i + 1])))
			return i + 1;
	}
	return 0;
}

/* The length of buf[0..len) without a UTF-8 character cut off at its end. */
static size_t
utf8_complete_prefix(const char *buf, size_t len)
{
	size_t		lead = len;
	size_t		need;
	unsigned char c;

	while (lead > 0 && ((unsigned char) buf[lead - 1] & 0xC0) == 0x80 && len - lead < 3)
		lead--;
	if (lead == 0)
		return len;
	c = buf[lead - 1];
	if (c < 0x80)
		return len;
	need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	return len - (lead - 1) < need ? lead - 1 : len;
}

/* Whether the token at s[0..n) is "HTTP" or "HTTP/..." (a status follows). */
static bool
is_http(const char *s, size_t n)
{
	return n >= 4 && (s[0] | 0x20) == 'h' && (s[1] | 0x20) == 't' && (s[2] | 0x20) == 't' &&
		(s[3] | 0x20) == 'p' && (n == 4 || s[4] == '/');
}

/* The length of the word at s[0..len): word characters, and joiners between them. */
static size_t
word_length(const char *s, size_t len)
{
	size_t		n = 1;

	while (n < len && (is_word((unsigned char) s[n]) ||
					   (is_joiner((unsigned char) s[n]) && n + 1 < len && is_word((unsigned char) s[n + 1]))))
		n++;
	return n;
}

/*
 * Write the fingerprint of the piece of msg[0..len) at i (a space, a quoted
 * value, a URL, a punctuation mark or a word) and return its length.
 * *after_http says whether the last word was HTTP: the status after it stays.
 */
static size_t
fingerprint_piece(FpOut *o, const FpNames *names, const char *msg, size_t len, size_t i,
				  bool *after_http)
{
	unsigned char c = msg[i];
	size_t		n;
	bool		has_space;

	if (is_space(c) || c == '\0')
	{
		o->space = true;
		return 1;
	}
	if ((c == '\'' || c == '"' || c == '`') && (i == 0 || !is_word((unsigned char) msg[i - 1])) &&
		(n = quoted_at(msg + i, len - i, &has_space)) > 0 && !has_space)
		put_placeholder(o, "<value>");
	else if ((n = url_at(msg + i, len - i)) > 0)
		put_placeholder(o, "<url>");
	else if (!is_word(c))
	{
		n = 1;
		put(o, msg + i, n);
	}
	else
	{
		n = word_length(msg + i, len - i);
		put_token(o, names, msg + i, n, *after_http);
		*after_http = is_http(msg + i, n);
		return n;
	}
	*after_http = false;
	return n;
}

/*
 * Write the fingerprint of msg[0..len) into out (cap bytes, NUL-terminated,
 * at most FINGERPRINT_MAX + 1); crm, model and table may be NULL.  Returns its
 * length.  The result ends on a UTF-8 character boundary when msg does.
 */
size_t
error_fingerprint(const char *msg, size_t len, const char *crm, const char *model, const char *table,
				  char *out, size_t cap)
{
	FpOut		o = {out, cap < FINGERPRINT_MAX + 1 ? cap : FINGERPRINT_MAX + 1, 0, false, false};
	FpNames		names = {crm, crm ? strlen(crm) : 0, model, model ? strlen(model) : 0,
	table, table ? strlen(table) : 0};
	bool		after_http = false;
	size_t		i = 0;

	if (cap == 0)
		return 0;
	if (len > FINGERPRINT_INPUT_MAX)
	{
		len = FINGERPRINT_INPUT_MAX;
		while (len > 0 && ((unsigned char) msg[len] & 0xC0) == 0x80)
			len--;
	}
	while (i < len && !o.full)
		i += fingerprint_piece(&o, &names, msg, len, i, &after_http);
	/* a cut through a UTF-8 character leaves its first bytes: drop them */
	if (o.full)
		o.len = utf8_complete_prefix(o.buf, o.len);
	out[o.len] = '\0';
	return o.len;
}
