/*
 * http_auth.c
 *		Who a request runs as: the JWT's role (Bearer header or the login
 *		cookie), the anonymous role, or a 401; and the transaction-local
 *		settings PostgREST defines for SQL to read.
 *
 * A token's role must be crm_dashboard_viewer or a role that is a member of
 * it (operator, admin, or a site role granted one of them), and never a
 * superuser: a token can only ever narrow what the worker may do.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <time.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "auth.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/json.h"

#include "auth_jwt.h"
#include "crm_dashboard.h"
#include "http.h"
#include "miscadmin.h"

/*
 * The token of a request: the Bearer header, else the login cookie where
 * the route allows it (GET /api/events only: a browser attaches cookies to
 * requests that other pages make, so a cookie must never authorise
 * anything that acts or reads more than the event stream).
 */
static const char *
request_token(HttpRequest *req, bool *malformed)
{
	const char *auth = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	*malformed = false;
	if (auth != NULL)
	{
		if (pg_strncasecmp(auth, "Bearer ", 7) == 0 && auth[7] != '\0')
			return auth + 7;
		*malformed = true;
		return NULL;
	}
	if (!req->cookie_auth)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, HTTP_COOKIE);
}

/* Run anonymously: as crm_dashboard.anon_role, or the login-only role. */
static bool
authenticate_anonymous(HttpRequest *req, bool login_route)
{
	req->anonymous = true;
	if (http_anon_role && http_anon_role[0])
		req->role = pstrdup(http_anon_role);
	else if (login_route)
		req->role = pstrdup(HTTP_LOGIN_ROLE);
	else
	{
		http_reply_error(req, 401, "PGRST302", "Anonymous access is disabled", NULL,
						 "Log in with POST /api/rpc/login and send the token as \"Authorization: Bearer <token>\".");
		return false;
	}
	return true;
}

/*
 * Decide the request's role and claims; replies 401 and returns false when
 * the token is missing (without an anonymous role), malformed or expired.
 */
bool
http_authenticate(HttpRequest *req, bool login_route)
{
	bool		malformed;
	const char *token = request_token(req, &malformed);
	JwtClaims	claims;
	JwtStatus	st;
	MemoryContext old;

	if (malformed)
	{
		http_reply_error(req, 401, "PGRST301", "Expected \"Authorization: Bearer <token>\"", NULL, NULL);
		return false;
	}
	if (token == NULL || token[0] == '\0')
		return authenticate_anonymous(req, login_route);
	if (auth_jwt_key()[0] == '\0')
	{
		http_reply_error(req, 500, "PGRST300", "Server lacks JWT secret", NULL,
						 "Set crm_dashboard.jwt_secret_file (or jwt_secret) and reload.");
		return false;
	}
	old = MemoryContextSwitchTo(req->ctx);
	st = jwt_verify(token, auth_jwt_key(), (int64) time(NULL), &claims);
	MemoryContextSwitchTo(old);
	if (st == JWT_EXPIRED)
		http_reply_error(req, 401, "PGRST303", claims.reason, NULL, NULL);
	else if (st == JWT_INVALID)
		http_reply_error(req, 401, "PGRST301", claims.reason, NULL, NULL);
	else if (claims.role == NULL)
		http_reply_error(req, 401, "PGRST301", "JWT has no role claim", NULL, NULL);
	else
	{
		req->role = claims.role;
		req->claims = claims.json;
		req->username = claims.username;
		req->generation = claims.generation;
		return true;
	}
	return false;
}

/*
 * Inside the request's transaction, before the role switch (with SPI
 * connected): whether a dashboard user's token is still valid.  Logout, a
 * password or role change and deleting the user revoke it at once.
 * Replies 401 and returns false otherwise.
 */
bool
http_check_token(HttpRequest *req)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum		values[3];
	bool		isnull;

	if (req->username == NULL)
		return true;
	values[0] = CStringGetTextDatum(req->username);
	values[1] = CStringGetTextDatum(req->role);
	values[2] = Int64GetDatum(req->generation);
	crm_spi_execute("SELECT crm_dashboard.token_is_current($1, $2, $3)",
							  3, types, values, NULL, true, 1, SPI_OK_SELECT);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return true;
	http_reply_error(req, 401, "PGRST301", "JWT has been revoked",
					 "The user logged out, their password or role changed, or they were deleted.",
					 "Log in again.");
	return false;
}

/*
 * Inside the request's transaction: whether the chosen role may be used.
 * Replies 401 and returns false otherwise.
 */
bool
http_check_role(HttpRequest *req)
{
	Oid			roleid = get_role_oid(req->role, true);
	Oid			viewer = get_role_oid("crm_dashboard_viewer", true);

	if (OidIsValid(roleid) && !superuser_arg(roleid) &&
		(req->anonymous || (OidIsValid(viewer) && is_member_of_role(roleid, viewer))))
		return true;
	http_reply_error(req, 401, "PGRST301",
					 req->anonymous ? "The anonymous role cannot be used" :
					 "JWT role is not a dashboard role",
					 psprintf("Role \"%s\" does not exist, is a superuser, or is not a member of crm_dashboard_viewer.",
							  req->role),
					 NULL);
	return false;
}

/*
 * The request's headers as a JSON object with lower-cased names, for
 * request.headers.  Credentials are left out (SQL, and any log of it, never
 * sees them), and so are headers that are not valid UTF-8, which no text
 * value of the database may hold.
 */
static char *
headers_json(HttpRequest *req)
{
	StringInfoData buf;
	int			n;
	HttpValue  *h = http_values(req, MHD_HEADER_KIND, &n);
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
	{
		const char *value = h[i].value ? h[i].value : "";

		if (pg_strcasecmp(h[i].key, "authorization") == 0 ||
			pg_strcasecmp(h[i].key, "cookie") == 0 ||
			!pg_verify_mbstr(PG_UTF8, h[i].key, strlen(h[i].key), true) ||
			!pg_verify_mbstr(PG_UTF8, value, strlen(value), true))
			continue;
		if (buf.len > 1)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, asc_tolower(h[i].key, strlen(h[i].key)));
		appendStringInfoChar(&buf, ':');
		escape_json(&buf, value);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The client's address as text, or "[unknown]". */
static char *
client_address(HttpRequest *req)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char		buf[INET6_ADDRSTRLEN];
	const struct sockaddr *sa = info ? info->client_addr : NULL;

	if (sa != NULL && sa->sa_family == AF_INET &&
		inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf, sizeof(buf)))
		return pstrdup(buf);
	if (sa != NULL && sa->sa_family == AF_INET6 &&
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, buf, sizeof(buf)))
		return pstrdup(buf);
	return pstrdup("[unknown]");
}

/* Set one transaction-local setting. */
static void
set_local(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, ERROR, false);
}

/* The request's transaction-local settings, role last. */
void
http_set_request_settings(HttpRequest *req)
{
	char	   *headers = headers_json(req);

	set_local("search_path", "crm_api");
	set_local("statement_timeout", psprintf("%d", http_request_timeout * 1000));
	set_local("request.jwt.claims", req->claims ? req->claims : "{}");
	set_local("request.method", req->method);
	set_local("request.path", req->url);
	set_local("request.headers", headers);
	/* who asked, in settings only a superuser (this worker) can set */
	set_local(AUTH_REQUEST_USER_SETTING, req->username ? req->username : "");
	set_local(AUTH_CLIENT_ADDRESS_SETTING, client_address(req));
	set_local("role", req->role);
}
