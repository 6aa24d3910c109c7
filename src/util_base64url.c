/*
 * util_base64url.c
 *		Unpadded base64url, written once for tokens and cursors.
 *
 * Decoding is strict (one spelling per byte string): only the url alphabet,
 * no padding, and no stray bits in the last character, so that two
 * different texts never decode to the same token or cursor.  The alphabet is
 * tested byte by byte, never with the locale-dependent isalnum().
 */
#include "util_base64url.h"

static const char alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of a base64url character, or -1. */
static int
sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t
b64url_encode(const unsigned char *src, size_t len, char *dst)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i + 2 < len; i += 3)
	{
		unsigned long v = ((unsigned long) src[i] << 16) | (src[i + 1] << 8) | src[i + 2];

		dst[n++] = alphabet[(v >> 18) & 63];
		dst[n++] = alphabet[(v >> 12) & 63];
		dst[n++] = alphabet[(v >> 6) & 63];
		dst[n++] = alphabet[v & 63];
	}
	if (len - i == 1)
	{
		dst[n++] = alphabet[src[i] >> 2];
		dst[n++] = alphabet[(src[i] & 3) << 4];
	}
	else if (len - i == 2)
	{
		unsigned long v = ((unsigned long) src[i] << 8) | src[i + 1];

		dst[n++] = alphabet[(v >> 10) & 63];
		dst[n++] = alphabet[(v >> 4) & 63];
		dst[n++] = alphabet[(v & 15) << 2];
	}
	dst[n] = '\0';
	return n;
}

long
b64url_decode(const char *src, size_t len, unsigned char *dst)
{
	unsigned long acc = 0;
	int			bits = 0;
	long		n = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		int			v = sextet((unsigned char) src[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned long) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			dst[n++] = (unsigned char) ((acc >> bits) & 0xff);
		}
	}
	/* the leftover bits of the last character must be zero */
	if ((acc & ((1UL << bits) - 1)) != 0)
		return -1;
	return n;
}
