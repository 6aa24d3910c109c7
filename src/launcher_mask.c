/*
 * launcher_mask.c
 *		Replace a run's secrets by "***" (see launcher_mask.h).
 *
 * secrets_mask is the one function that masks: the launcher calls it on
 * every line of output it keeps (and on every piece of a line too long to
 * keep whole), and secrets_mask_json calls it on every string of a JSON
 * event, after JSON escapes are decoded.
 *
 * Plain C only, no PostgreSQL headers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* memmem */
#endif
#include "launcher_mask.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* How many pieces secrets_add may take from a value: one per line. */
int
secrets_pieces(const char *value, size_t len)
{
	int			n = 1;

	for (size_t i = 0; i < len; i++)
		n += value[i] == '\n';
	return n;
}

/*
 * Add a value's lines (without "\r\n") of at least SECRET_MIN_LEN bytes:
 * output is masked line by line, so a line is what can be found in it.
 * The value must outlive the set.
 */
void
secrets_add(SecretSet *s, const char *value, size_t len)
{
	const char *end = value + len;

	while (value <= end && s->n < s->cap)
	{
		const char *nl = memchr(value, '\n', end - value);
		const char *stop = nl ? nl : end;
		size_t		n = stop - value;

		if (n > 0 && value[n - 1] == '\r')
			n--;
		if (n >= SECRET_MIN_LEN)
		{
			s->values[s->n] = value;
			s->lens[s->n] = n;
			s->n++;
		}
		if (nl == NULL)
			break;
		value = nl + 1;
	}
}

/* Order the values longest first (a secret holding another is masked whole). */
void
secrets_finish(SecretSet *s)
{
	s->longest = 0;
	s->any_star = false;
	for (int i = 1; i < s->n; i++)
		for (int j = i; j > 0 && s->lens[j] > s->lens[j - 1]; j--)
		{
			const char *v = s->values[j];
			size_t		l = s->lens[j];

			s->values[j] = s->values[j - 1];
			s->lens[j] = s->lens[j - 1];
			s->values[j - 1] = v;
			s->lens[j - 1] = l;
		}
	for (int i = 0; i < s->n; i++)
	{
		if (s->lens[i] > s->longest)
			s->longest = s->lens[i];
		if (memchr(s->values[i], '*', s->lens[i]))
			s->any_star = true;
	}
}

/* Replace each occurrence of one secret in buf, in place; returns the new length. */
static size_t
mask_one(char *buf, size_t len, const char *secret, size_t slen)
{
	char	   *end = buf + len;
	char	   *r = buf;
	char	   *w = buf;
	char	   *hit;

	while ((hit = memmem(r, end - r, secret, slen)) != NULL)
	{
		memmove(w, r, hit - r);
		w += hit - r;
		memcpy(w, SECRET_MASK, sizeof(SECRET_MASK) - 1);
		w += sizeof(SECRET_MASK) - 1;
		r = hit + slen;
	}
	if (r == buf)
		return len;				/* no occurrence */
	memmove(w, r, end - r);
	return (w - buf) + (end - r);
}

/*
 * Mask every secret in len bytes of buf, in place (the result is never
 * longer); returns the new length.  When a secret holds '*', a "***" put in
 * may complete another occurrence, so the masking is repeated until nothing
 * changes (each round shortens the text, so this ends).
 */
size_t
secrets_mask(const SecretSet *s, char *buf, size_t len)
{
	bool		changed = true;

	while (changed)
	{
		size_t		before = len;

		for (int i = 0; i < s->n; i++)
			len = mask_one(buf, len, s->values[i], s->lens[i]);
		changed = s->any_star && len != before;
	}
	return len;
}

/* Mask a NUL-terminated string in place; true when it changed. */
static bool
mask_string(const SecretSet *s, char *str)
{
	size_t		len;
	size_t		masked;

	if (str == NULL)
		return false;
	len = strlen(str);
	masked = secrets_mask(s, str, len);
	str[masked] = '\0';
	return masked != len;
}

/* Whether text holds a secret. */
static bool
holds_secret(const SecretSet *s, const char *text, size_t len)
{
	for (int i = 0; i < s->n; i++)
		if (memmem(text, len, s->values[i], s->lens[i]))
			return true;
	return false;
}

/* Whether a number, written the ways cJSON or the command may write it, holds a secret. */
static bool
number_holds_secret(const SecretSet *s, double d)
{
	char		text[64];

	snprintf(text, sizeof(text), "%.17g", d);
	if (holds_secret(s, text, strlen(text)))
		return true;
	snprintf(text, sizeof(text), "%.15g", d);
	if (holds_secret(s, text, strlen(text)))
		return true;
	if (isfinite(d) && fabs(d) < 9.2e18 && d == (double) (int64_t) d)
	{
		snprintf(text, sizeof(text), "%lld", (long long) (int64_t) d);
		return holds_secret(s, text, strlen(text));
	}
	return false;
}

/* Make a scalar the string "***" in place (its pointer stays valid). */
static bool
make_mask_string(cJSON *item)
{
	char	   *mask = cJSON_malloc(sizeof(SECRET_MASK));

	if (mask == NULL)
		return false;
	memcpy(mask, SECRET_MASK, sizeof(SECRET_MASK));
	item->type = (item->type & cJSON_StringIsConst) | cJSON_String;
	item->valuestring = mask;
	item->valueint = 0;
	item->valuedouble = 0;
	return true;
}

/*
 * Mask every key and string of a parsed JSON value in place, and replace a
 * number or literal that holds a secret by the string "***".  The items
 * stay where they are, so pointers into the tree remain valid.  Returns
 * whether anything changed.
 */
bool
secrets_mask_json(const SecretSet *s, cJSON *item)
{
	bool		changed = false;

	if (item == NULL || s->n == 0)
		return false;
	if (!(item->type & cJSON_StringIsConst))
		changed |= mask_string(s, item->string);
	if (cJSON_IsString(item))
		changed |= mask_string(s, item->valuestring);
	else if (cJSON_IsNumber(item))
	{
		if (number_holds_secret(s, item->valuedouble))
			changed |= make_mask_string(item);
	}
	else if (cJSON_IsBool(item) || cJSON_IsNull(item))
	{
		const char *text = cJSON_IsTrue(item) ? "true" : cJSON_IsFalse(item) ? "false" : "null";

		if (holds_secret(s, text, strlen(text)))
			changed |= make_mask_string(item);
	}
	for (cJSON *child = item->child; child; child = child->next)
		changed |= secrets_mask_json(s, child);
	return changed;
}
