/*
 * auth_jwt.c
 *		HS256 JSON Web Tokens with PostgreSQL's own HMAC.
 *
 * Only HS256 is accepted: a token naming any other algorithm (notably
 * "none") is refused before its signature is even looked at, so a forged
 * header cannot downgrade verification.
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "common/hmac.h"
#include "common/sha2.h"
#include "utils/resowner.h"

#include "auth_jwt.h"
#include "util_base64url.h"

/* len bytes as unpadded base64url, in a palloc'd string. */
static char *
to_b64url(const uint8 *data, int len)
{
	char	   *out = palloc(B64URL_ENCODED_LEN(len) + 1);

	b64url_encode(data, len, out);
	return out;
}

/*
 * Decode len characters of unpadded base64url; returns a palloc'd
 * NUL-terminated buffer and its length in *outlen, or NULL when the input is
 * not base64url.
 */
static char *
from_b64url(const char *src, int len, int *outlen)
{
	unsigned char *out = palloc(B64URL_DECODED_MAX(len) + 1);
	long		n = b64url_decode(src, len, out);

	if (n < 0)
		return NULL;
	out[n] = '\0';
	*outlen = (int) n;
	return (char *) out;
}

/*
 * HMAC-SHA256 of data under secret into mac (32 bytes).  With OpenSSL the
 * context is tracked by a resource owner, which an HTTP worker outside any
 * transaction lacks; it then borrows one of its own for the call.
 */
static void
hs256(const char *secret, const char *data, size_t len, uint8 *mac)
{
	static ResourceOwner own = NULL;
	ResourceOwner saved = CurrentResourceOwner;
	pg_hmac_ctx *ctx;

	if (CurrentResourceOwner == NULL)
	{
		if (own == NULL)
			own = ResourceOwnerCreate(NULL, "crm_dashboard jwt");
		CurrentResourceOwner = own;
	}
	ctx = pg_hmac_create(PG_SHA256);
	CurrentResourceOwner = saved;

	if (ctx == NULL)
		elog(ERROR, "out of memory creating an HMAC context");
	if (pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, mac, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *why = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC-SHA256: %s", why);
	}
	pg_hmac_free(ctx);
}

/* Sign payload_json (a JSON object) into a compact HS256 token. */
char *
jwt_sign(const char *payload_json, const char *secret)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char	   *head = to_b64url((const uint8 *) header, strlen(header));
	char	   *body = to_b64url((const uint8 *) payload_json, strlen(payload_json));
	char	   *signing_input = psprintf("%s.%s", head, body);

	hs256(secret, signing_input, strlen(signing_input), mac);
	return psprintf("%s.%s", signing_input, to_b64url(mac, sizeof(mac)));
}

/* Compare two byte strings in time independent of where they differ. */
static bool
equal_constant_time(const uint8 *a, const uint8 *b, size_t len)
{
	uint8		diff = 0;
	size_t		i;

	for (i = 0; i < len; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* Whether the decoded header is exactly an HS256 header. */
static bool
header_is_hs256(const char *json)
{
	cJSON	   *h = cJSON_Parse(json);
	cJSON	   *alg = h ? cJSON_GetObjectItemCaseSensitive(h, "alg") : NULL;
	bool		ok = cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0;

	cJSON_Delete(h);
	return ok;
}

/* Check the time claims of payload p at now; sets claims->reason. */
static JwtStatus
check_times(cJSON *p, int64 now, JwtClaims *claims)
{
	cJSON	   *exp = cJSON_GetObjectItemCaseSensitive(p, "exp");
	cJSON	   *nbf = cJSON_GetObjectItemCaseSensitive(p, "nbf");
	cJSON	   *iat = cJSON_GetObjectItemCaseSensitive(p, "iat");

	if ((exp && !cJSON_IsNumber(exp)) || (nbf && !cJSON_IsNumber(nbf)) ||
		(iat && !cJSON_IsNumber(iat)))
	{
		claims->reason = "JWT time claims must be numbers";
		return JWT_INVALID;
	}
	if (exp && (double) now > exp->valuedouble + JWT_CLOCK_SKEW)
	{
		claims->reason = "JWT expired";
		return JWT_EXPIRED;
	}
	if (nbf && (double) now + JWT_CLOCK_SKEW < nbf->valuedouble)
	{
		claims->reason = "JWT not yet valid";
		return JWT_EXPIRED;
	}
	if (iat && (double) now + JWT_CLOCK_SKEW < iat->valuedouble)
	{
		claims->reason = "JWT issued at future";
		return JWT_EXPIRED;
	}
	return JWT_OK;
}

/*
 * Whether a JSON object names a key twice.  cJSON finds the first of two
 * "role" keys and PostgreSQL's ->> the last, so the role a request runs as
 * and the role SQL reads from request.jwt.claims could differ.
 */
static bool
has_duplicate_keys(cJSON *obj)
{
	cJSON	   *a;
	cJSON	   *b;

	for (a = obj->child; a != NULL; a = a->next)
		for (b = a->next; b != NULL; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return true;
	return false;
}

/*
 * The claims of a dashboard user's token: username (a string) and gen (its
 * token generation, an integer); a token without username is a service
 * token signed with the secret, as PostgREST accepts.
 */
static JwtStatus
read_user_claims(cJSON *p, JwtClaims *claims)
{
	cJSON	   *username = cJSON_GetObjectItemCaseSensitive(p, "username");
	cJSON	   *gen = cJSON_GetObjectItemCaseSensitive(p, "gen");

	claims->generation = -1;
	if (username != NULL && !cJSON_IsString(username))
	{
		claims->reason = "JWT username claim must be a string";
		return JWT_INVALID;
	}
	if (gen != NULL && (!cJSON_IsNumber(gen) || gen->valuedouble < 0 ||
						gen->valuedouble > (double) PG_INT64_MAX / 2 ||
						gen->valuedouble != (double) (int64) gen->valuedouble))
	{
		claims->reason = "JWT gen claim must be a non-negative integer";
		return JWT_INVALID;
	}
	if (username != NULL)
		claims->username = pstrdup(username->valuestring);
	if (gen != NULL)
		claims->generation = (int64) gen->valuedouble;
	return JWT_OK;
}

/* Read the payload: a JSON object with valid times and an optional role. */
static JwtStatus
read_payload(const char *json, int64 now, JwtClaims *claims)
{
	cJSON	   *p = cJSON_Parse(json);
	cJSON	   *role;
	JwtStatus	st;

	if (!cJSON_IsObject(p) || has_duplicate_keys(p))
	{
		cJSON_Delete(p);
		claims->reason = "JWT payload is not a JSON object with distinct keys";
		return JWT_INVALID;
	}
	st = check_times(p, now, claims);
	role = cJSON_GetObjectItemCaseSensitive(p, "role");
	if (st == JWT_OK && role != NULL && !cJSON_IsString(role))
	{
		claims->reason = "JWT role claim must be a string";
		st = JWT_INVALID;
	}
	if (st == JWT_OK && role != NULL)
		claims->role = pstrdup(role->valuestring);
	if (st == JWT_OK)
		st = read_user_claims(p, claims);
	cJSON_Delete(p);
	if (st == JWT_OK)
		claims->json = pstrdup(json);
	return st;
}

/*
 * Verify token against secret at time now (Unix seconds).  On JWT_OK the
 * claims are filled in; otherwise claims->reason says why, in words safe to
 * send to the client (never the token itself).
 */
JwtStatus
jwt_verify(const char *token, const char *secret, int64 now, JwtClaims *claims)
{
	const char *dot1;
	const char *dot2;
	char	   *header;
	char	   *payload;
	char	   *sig;
	int			len;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];

	memset(claims, 0, sizeof(*claims));
	claims->reason = "JWT cannot be decoded";
	if (strlen(token) > JWT_MAX_LENGTH)
		return JWT_INVALID;
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return JWT_INVALID;
	header = from_b64url(token, dot1 - token, &len);
	if (header == NULL || (int) strlen(header) != len)
		return JWT_INVALID;
	if (!header_is_hs256(header))
	{
		claims->reason = "JWT algorithm is not HS256";
		return JWT_INVALID;
	}
	sig = from_b64url(dot2 + 1, strlen(dot2 + 1), &len);
	if (sig == NULL || len != PG_SHA256_DIGEST_LENGTH)
		return JWT_INVALID;
	hs256(secret, token, dot2 - token, mac);
	if (!equal_constant_time(mac, (uint8 *) sig, sizeof(mac)))
	{
		claims->reason = "JWT signature does not match";
		return JWT_INVALID;
	}
	payload = from_b64url(dot1 + 1, dot2 - dot1 - 1, &len);
	if (payload == NULL || (int) strlen(payload) != len)
		return JWT_INVALID;
	return read_payload(payload, now, claims);
}
