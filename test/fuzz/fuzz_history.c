/*
 * fuzz_history.c
 *		libFuzzer target for the plain-C parts of history at scale: cutting
 *		a log into store chunks (src/log_chunk.c) and the fingerprint of an
 *		error message (src/fingerprint.c).
 *
 * Invariants: chunks cover the input exactly, each is non-empty and at
 * most the maximum, and ends on a newline or (a line longer than a chunk)
 * never inside a UTF-8 character of valid input; the line count is the
 * number of newlines.  A fingerprint never overruns its buffer, is
 * NUL-terminated at the length returned, at most FINGERPRINT_MAX bytes,
 * never contains a NUL, and is stable: the same message gives the same
 * fingerprint, whatever the buffer beyond it held.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"
#include "log_chunk.h"

/* Whether data[0..len) is valid UTF-8 (structure only). */
static bool
valid_utf8(const uint8_t *data, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		uint8_t		c = data[i];
		size_t		n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;

		if (n == 0 || i + n > len)
			return false;
		for (size_t k = 1; k < n; k++)
			if ((data[i + k] & 0xC0) != 0x80)
				return false;
		i += n;
	}
	return true;
}

/* Cut data into chunks of at most max bytes and check each. */
static void
check_chunks(const uint8_t *data, size_t len, size_t max, bool utf8)
{
	size_t		done = 0;
	size_t		lines = 0;

	while (done < len)
	{
		size_t		n = log_chunk_cut((const char *) data + done, len - done, max);

		assert(n >= 1 && n <= len - done);
		assert(n <= max || max == 0);
		if (done + n < len && memchr(data + done, '\n', n) != NULL)
			assert(data[done + n - 1] == '\n');
		if (utf8 && done + n < len)
			assert((data[done + n] & 0xC0) != 0x80);
		lines += log_count_lines((const char *) data + done, n);
		done += n;
	}
	assert(done == len);
	assert(lines == log_count_lines((const char *) data, len));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		out[FINGERPRINT_MAX + 1];
	char		again[FINGERPRINT_MAX + 64];
	size_t		n;
	size_t		m;
	bool		utf8 = valid_utf8(data, size);

	check_chunks(data, size, 64, utf8);
	check_chunks(data, size, 7, utf8);
	check_chunks(data, size, LOG_CHUNK_MAX, utf8);

	n = error_fingerprint((const char *) data, size, "hubspot", "contact", "hubspot_contact", out, sizeof(out));
	assert(n <= FINGERPRINT_MAX && out[n] == '\0' && strlen(out) == n);
	memset(again, 'x', sizeof(again));
	m = error_fingerprint((const char *) data, size, "hubspot", "contact", "hubspot_contact", again, sizeof(again));
	assert(m == n && memcmp(out, again, n + 1) == 0);
	/* a tiny buffer is never overrun */
	m = error_fingerprint((const char *) data, size, NULL, NULL, NULL, again, 3);
	assert(m <= 2 && again[m] == '\0');
	if (utf8)
		assert(valid_utf8((const uint8_t *) out, n));
	return 0;
}
