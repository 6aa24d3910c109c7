/*
 * http_auth.c
 *		Who a request acts for, decided in the worker before any SQL: the
 *		JWT's role and user (Bearer header, or the login cookie on the one
 *		route that accepts it), the anonymous role, or a 401.
 *
 * Verifying a token's signature and times needs no database.  Whether its
 * role may be used (a member of crm_dashboard_viewer, never a superuser) and
 * whether a dashboard user's token was revoked are checked by the request
 * engine inside the request's own transaction (http_engine.c).
 */
#include "postgres.h"

#include <time.h>

#include "auth.h"
#include "auth_jwt.h"
#include "http.h"

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
