/*
 * log_chunk.c
 *		Where the next chunk of a log ends (see log_chunk.h).
 */
#include <string.h>

#include "log_chunk.h"

/*
 * Length of the first chunk of data: all of it when it fits in max bytes,
 * else up to the last newline within max bytes, else (one line longer than
 * a chunk) max bytes backed off to the start of a UTF-8 character, so that
 * no chunk ends inside one.  Always at least 1 when len > 0.
 */
size_t
log_chunk_cut(const char *data, size_t len, size_t max)
{
	size_t		cut;

	if (len <= max)
		return len;
	if (max == 0)
		return 1;
	for (cut = max; cut > 0; cut--)
		if (data[cut - 1] == '\n')
			return cut;
	/* no newline: a piece of a long line, ending before a continuation byte */
	for (cut = max; cut > 0 && ((unsigned char) data[cut] & 0xC0) == 0x80; cut--)
		;
	/* a run of continuation bytes as long as a chunk is not UTF-8 anyway */
	return cut > 0 ? cut : max;
}

/* How many newlines data holds. */
size_t
log_count_lines(const char *data, size_t len)
{
	size_t		n = 0;
	const char *end = data + len;
	const char *p = data;

	while (p < end && (p = memchr(p, '\n', end - p)) != NULL)
	{
		n++;
		p++;
	}
	return n;
}
