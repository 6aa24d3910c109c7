/*
 * auth_password.c
 *		Dashboard users' passwords and login.
 *
 * Passwords are stored as SCRAM-SHA-256 secrets built by PostgreSQL's own
 * pg_be_scram_build_secret() (random salt, 4096 PBKDF2 iterations, the
 * format of pg_authid.rolpassword) and checked with
 * scram_verify_plain_password().  That needs no extra extension (pgcrypto
 * would), is salted and iterated, and is what the server already trusts for
 * its own roles.  Login for an unknown user verifies against a dummy
 * secret, so its cost does not reveal which usernames exist.
 */
#include "postgres.h"

#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "auth.h"
#include "auth_jwt.h"
#include "crm_dashboard.h"

/*
 * From libpq/scram.h (exported by the server).  That header pulls in
 * libpq-be.h and with it the GSSAPI headers of the server's build, which a
 * build machine need not have, so the two prototypes are repeated here.
 */
extern char *pg_be_scram_build_secret(const char *password);
extern bool scram_verify_plain_password(const char *username, const char *password,
										const char *secret);

/*
 * Longest password accepted.  Every one of the 4096 PBKDF2 rounds hashes
 * the whole password again, so without a cap one anonymous login request
 * with a body-sized password would cost the worker seconds of CPU.
 */
#define PASSWORD_MAX_BYTES 1024

PG_FUNCTION_INFO_V1(crm_dashboard_hash_password);
PG_FUNCTION_INFO_V1(crm_dashboard_login);

/* The secret unknown users are checked against (built once per process). */
static const char *
dummy_secret(void)
{
	static char *secret = NULL;

	if (secret == NULL)
	{
		char	   *s = pg_be_scram_build_secret("crm_dashboard: no such user");

		secret = MemoryContextStrdup(TopMemoryContext, s);
	}
	return secret;
}

/* Refuse a password too long to hash at a bounded cost. */
static void
check_password_length(const char *password)
{
	if (strlen(password) > PASSWORD_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is longer than %d bytes", PASSWORD_MAX_BYTES),
				 errhint("Use a password of at most %d bytes.", PASSWORD_MAX_BYTES)));
}

/* crm_dashboard.hash_password(password): a salted SCRAM-SHA-256 secret. */
Datum
crm_dashboard_hash_password(PG_FUNCTION_ARGS)
{
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(0));

	check_password_length(password);
	PG_RETURN_TEXT_P(cstring_to_text(pg_be_scram_build_secret(password)));
}

/* A dashboard user as stored, for checking a login and signing its token. */
typedef struct DashboardUser
{
	char	   *secret;
	char	   *role;
	char	   *generation;		/* token generation, as text */
} DashboardUser;

/* The stored secret, role and token generation of username; false when there is no such user. */
static bool
lookup_user(const char *username, DashboardUser *user)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(username)};

	crm_spi_execute("SELECT password_hash, role, token_generation FROM crm_dashboard.dashboard_user "
							  " WHERE username = $1",
							  1, types, values, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	user->secret = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	user->role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	user->generation = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	return true;
}

/*
 * The signed token's claims.  "gen" ties the token to the user's token
 * generation, so that logout and password or role changes revoke it.
 */
static char *
token_payload(const char *username, const DashboardUser *user, int64 now, int64 exp)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"role\":");
	escape_json(&buf, user->role);
	appendStringInfoString(&buf, ",\"username\":");
	escape_json(&buf, username);
	appendStringInfo(&buf, ",\"gen\":%s,\"iat\":" INT64_FORMAT ",\"exp\":" INT64_FORMAT "}",
					 user->generation, now, exp);
	return buf.data;
}

/* Record the login and build the reply {token, username, role, expires_at}. */
static char *
login_reply(const char *username, const char *role, const char *token, int64 exp)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[4] = {CStringGetTextDatum(username), CStringGetTextDatum(role),
	CStringGetTextDatum(token), Int64GetDatum(exp)};

	crm_spi_execute("UPDATE crm_dashboard.dashboard_user SET last_login_at = now() "
							  " WHERE username = $1",
							  1, types, values, NULL, false, 0, SPI_OK_UPDATE);
	crm_spi_execute("SELECT json_build_object('token', $3, 'username', $1, 'role', $2, "
							  "       'expires_at', to_timestamp($4))::text",
							  4, types, values, NULL, false, 1, SPI_OK_SELECT);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* Refuse to log in at all while no token secret is configured. */
static void
check_jwt_configured(void)
{
	if (auth_jwt_key()[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crm_dashboard.jwt_secret is not set"),
				 errhint("Set crm_dashboard.jwt_secret_file (or jwt_secret) to at least 32 random characters and reload.")));
}

/*
 * crm_dashboard.login(username, password): a signed token for a dashboard
 * user, or 28P01 without saying which of the two was wrong.
 */
Datum
crm_dashboard_login(PG_FUNCTION_ARGS)
{
	char	   *username = crm_arg_text(fcinfo, 0, "username");
	char	   *password = crm_arg_text(fcinfo, 1, "password");
	const char *address = auth_client_address() ? auth_client_address() : "[local]";
	DashboardUser user = {0};
	bool		found;
	bool		ok;
	int64		now = (int64) time(NULL);
	char	   *reply;
	text	   *result;

	check_jwt_configured();
	check_password_length(password);
	auth_throttle_check(username, address);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm_dashboard: SPI_connect failed");
	found = lookup_user(username, &user);
	ok = scram_verify_plain_password(username, password, found ? user.secret : dummy_secret());
	/* counted outside the transaction, which a failed login rolls back */
	auth_throttle_record(username, address, found && ok);
	if (!found || !ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("invalid username or password"),
				 errhint("Check both and try again.")));
	reply = login_reply(username, user.role,
						jwt_sign(token_payload(username, &user, now, now + auth_jwt_expiry()),
								 auth_jwt_key()),
						now + auth_jwt_expiry());
	/* the result must outlive SPI's memory */
	result = SPI_palloc(VARHDRSZ + strlen(reply));
	SET_VARSIZE(result, VARHDRSZ + strlen(reply));
	memcpy(VARDATA(result), reply, strlen(reply));
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
