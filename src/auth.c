/*
 * auth.c
 *		The authentication settings: the token secret and lifetime (used by
 *		crm_api.login with or without the bundled HTTP server), and the two
 *		settings through which the HTTP server says whom a request acts for.
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"

#include "auth.h"

static char *jwt_secret = NULL;
static char *jwt_secret_file = NULL;
static int	jwt_expiry = 8 * 3600;
static char *request_user = NULL;
static char *client_address = NULL;

/* A JWT secret is either unset or long enough to resist brute force. */
static bool
check_jwt_secret(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] != '\0' && strlen(*newval) < 32)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crm_dashboard.jwt_secret must be at least 32 characters long");
		return false;
	}
	return true;
}

/* The secret read from crm_dashboard.jwt_secret_file (a GUC "extra"). */
static char *file_secret = NULL;

/* Read a secret file: its text without trailing white space, or NULL. */
static char *
read_secret_file(const char *path)
{
	char		buf[4097];
	size_t		n;
	FILE	   *f = fopen(path, "r");

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char) buf[n - 1]))
		buf[--n] = '\0';
	return strdup(buf);
}

/* A secret file must be readable and hold at least 32 characters. */
static bool
check_jwt_secret_file(char **newval, void **extra, GucSource source)
{
	char	   *secret;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	secret = read_secret_file(*newval);
	if (secret == NULL || strlen(secret) < 32)
	{
		free(secret);
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crm_dashboard.jwt_secret_file \"%s\" must be a readable file of at least 32 characters",
						 *newval);
		return false;
	}
	/* a GUC "extra" is malloc'd; the GUC machinery frees it */
	*extra = secret;
	return true;
}

/* Keep the secret read by the check hook. */
static void
assign_jwt_secret_file(const char *newval, void *extra)
{
	file_secret = extra;
}

/* The secret that signs and verifies tokens: the file's, else the setting's. */
const char *
auth_jwt_key(void)
{
	if (file_secret != NULL && file_secret[0] != '\0')
		return file_secret;
	return jwt_secret ? jwt_secret : "";
}

/* Lifetime of the tokens crm_api.login issues, in seconds. */
int
auth_jwt_expiry(void)
{
	return jwt_expiry;
}

/*
 * The dashboard user the current transaction acts for, or NULL when the
 * caller is a plain SQL session.  Only the bundled HTTP server sets it (a
 * superuser-only setting), so no SQL user can claim to be someone else.
 */
const char *
auth_request_user(void)
{
	return request_user && request_user[0] ? request_user : NULL;
}

/* This session's client address as inet_client_addr() gives it, or NULL (Unix socket). */
static char *
session_address(void)
{
	LOCAL_FCINFO(call, 0);
	Datum		addr;

	InitFunctionCallInfoData(*call, NULL, 0, InvalidOid, NULL, NULL);
	addr = inet_client_addr(call);
	if (call->isnull)
		return NULL;
	return DatumGetCString(DirectFunctionCall1(inet_out, addr));
}

/*
 * The client's address: the one the HTTP server reports for its request,
 * else this session's own, else NULL (a Unix socket or a worker).
 */
const char *
auth_client_address(void)
{
	if (client_address && client_address[0])
		return client_address;
	return session_address();
}

/* Define the authentication settings; the throttle defines its own. */
void
AuthInit(void)
{
	DefineCustomStringVariable("crm_dashboard.jwt_secret",
							   "Secret for HS256 tokens (at least 32 characters).",
							   "Only superusers can read it.  Reload to change.",
							   &jwt_secret, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_jwt_secret, NULL, NULL);
	DefineCustomStringVariable("crm_dashboard.jwt_secret_file",
							   "File holding the token secret; wins over crm_dashboard.jwt_secret.",
							   "Read at start and on reload.  Unlike jwt_secret, the secret itself never "
							   "appears in the server log's \"parameter changed\" lines.",
							   &jwt_secret_file, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   check_jwt_secret_file, assign_jwt_secret_file, NULL);
	DefineCustomIntVariable("crm_dashboard.jwt_expiry",
							"Lifetime of tokens issued by crm_api.login.",
							"Range 60 s .. 30 days.",
							&jwt_expiry, 8 * 3600, 60, 30 * 86400, PGC_SIGHUP,
							GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable(AUTH_REQUEST_USER_SETTING,
							   "Dashboard user a request of the bundled HTTP server acts for.",
							   "Set by the HTTP server for each request (transaction-local); only superusers "
							   "can set it, so SQL callers are recorded as their session user.",
							   &request_user, "", PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable(AUTH_CLIENT_ADDRESS_SETTING,
							   "Client address of a request of the bundled HTTP server.",
							   "Set by the HTTP server for each request; used by the login throttle and the log.",
							   &client_address, "", PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	AuthThrottleInit();
}
