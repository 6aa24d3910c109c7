/*
 * auth_jwt.h
 *		HS256 JSON Web Tokens: signing for login, verification for requests.
 */
#ifndef CRM_DASHBOARD_AUTH_JWT_H
#define CRM_DASHBOARD_AUTH_JWT_H

#include "postgres.h"

/* Clock skew allowed on exp, nbf and iat, in seconds. */
#define JWT_CLOCK_SKEW 30

/* Longest token accepted, in bytes. */
#define JWT_MAX_LENGTH 4096

typedef enum JwtStatus
{
	JWT_OK,
	JWT_INVALID,				/* malformed, bad signature, wrong alg: PGRST301 */
	JWT_EXPIRED					/* exp passed, nbf or iat in the future: PGRST303 */
} JwtStatus;

typedef struct JwtClaims
{
	char	   *json;			/* the payload as sent (palloc'd) */
	char	   *role;			/* the role claim, or NULL */
	char	   *username;		/* a dashboard user's token: the username claim, or NULL */
	int64		generation;		/* the gen claim, or -1 when absent */
	const char *reason;			/* why the token was refused */
} JwtClaims;

extern char *jwt_sign(const char *payload_json, const char *secret);
extern JwtStatus jwt_verify(const char *token, const char *secret, int64 now, JwtClaims *claims);

#endif							/* CRM_DASHBOARD_AUTH_JWT_H */
