/*
 * util_base64url.h
 *		Unpadded base64url (RFC 4648 section 5), the encoding of JWTs and page
 *		cursors.  Plain C with no PostgreSQL headers, so it can be fuzzed.
 */
#ifndef UTIL_BASE64URL_H
#define UTIL_BASE64URL_H

#include <stddef.h>

/* Bytes b64url_encode writes for len input bytes (without the NUL). */
#define B64URL_ENCODED_LEN(len) (((len) + 2) / 3 * 4)
/* Most bytes b64url_decode writes for len characters. */
#define B64URL_DECODED_MAX(len) ((len) / 4 * 3 + 3)

/* Encode len bytes into dst (B64URL_ENCODED_LEN(len) + 1 bytes); returns the length written. */
extern size_t b64url_encode(const unsigned char *src, size_t len, char *dst);

/*
 * Decode len characters into dst (B64URL_DECODED_MAX(len) bytes).  Returns
 * the number of bytes, or -1 when src is not unpadded base64url: another
 * character (including '=', '+' and '/'), a length of 4n+1, or non-zero
 * bits left over in the last character.
 */
extern long b64url_decode(const char *src, size_t len, unsigned char *dst);

#endif							/* UTIL_BASE64URL_H */
