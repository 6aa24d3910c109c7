/*
 * http_api.c
 *		Routing under /api: schema profiles, content negotiation, the
 *		login cookie, then views, functions and events.
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "executor/spi.h"

#include "auth.h"
#include "http.h"

/* Media types we can answer with, by name. */
static bool
media_from_name(const char *name, size_t len, HttpMedia *media)
{
#define IS(s) (len == strlen(s) && pg_strncasecmp(name, s, len) == 0)
	if (IS("application/json") || IS("*/*") || IS("application/*"))
		*media = HTTP_MEDIA_JSON;
	else if (IS("text/csv") || IS("text/*"))
		*media = HTTP_MEDIA_CSV;
	else if (IS("application/vnd.pgrst.object+json") || IS("application/vnd.pgrst.object"))
		*media = HTTP_MEDIA_OBJECT;
	else
		return false;
	return true;
#undef IS
}

/*
 * Pick the first media type of Accept that we can produce (JSON when the
 * header is absent); replies 406 PGRST107 and returns false otherwise.
 */
bool
http_parse_accept(HttpRequest *req, HttpMedia *media)
{
	const char *accept = http_header(req, MHD_HTTP_HEADER_ACCEPT);
	const char *p = accept;

	*media = HTTP_MEDIA_JSON;
	if (accept == NULL || accept[0] == '\0')
		return true;
	while (*p)
	{
		const char *end = p + strcspn(p, ",");
		const char *typeend = p + strcspn(p, ",;");

		while (p < typeend && *p == ' ')
			p++;
		while (typeend > p && typeend[-1] == ' ')
			typeend--;
		if (media_from_name(p, typeend - p, media))
			return true;
		p = *end ? end + 1 : end;
	}
	http_reply_error(req, 406, "PGRST107", "None of these media types are available",
					 accept, "Ask for application/json, text/csv or application/vnd.pgrst.object+json.");
	return false;
}

/* Set the HttpOnly login cookie from a successful login's JSON reply. */
static void
set_login_cookie(HttpRequest *req)
{
	cJSON	   *doc = cJSON_Parse(req->reply.body.data);
	cJSON	   *token = doc ? cJSON_GetObjectItemCaseSensitive(doc, "token") : NULL;

	if (cJSON_IsString(token))
		http_reply_header(req, MHD_HTTP_HEADER_SET_COOKIE,
						  psprintf("%s=%s; HttpOnly; SameSite=Strict; Path=/api; Max-Age=%d",
								   HTTP_COOKIE, token->valuestring, auth_jwt_expiry()));
	cJSON_Delete(doc);
}

/* Inside the request's transaction: revoke the signed-in user's tokens. */
static void
revoke_tokens(HttpRequest *req, void *arg)
{
	if (SPI_execute("SELECT crm_api.logout()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "crm_dashboard: logout failed");
}

/*
 * POST /api/rpc/logout: revoke the dashboard user's tokens (every session of
 * theirs ends at once) and clear the login cookie.  Logging out with a token
 * that is already invalid, or none, still clears the cookie.
 */
static void
logout(HttpRequest *req)
{
	if (http_authenticate(req, false) && req->username != NULL)
		http_in_transaction(req, revoke_tokens, NULL);
	if (req->reply.status >= 500)
		return;
	req->reply.headers = NIL;
	resetStringInfo(&req->reply.body);
	req->reply.content_type = NULL;
	req->reply.status = MHD_HTTP_NO_CONTENT;
	http_reply_header(req, MHD_HTTP_HEADER_SET_COOKIE,
					  HTTP_COOKIE "=; HttpOnly; SameSite=Strict; Path=/api; Max-Age=0");
}

/* Refuse a schema other than crm_api (Accept-Profile or Content-Profile). */
static bool
check_profile(HttpRequest *req)
{
	const char *profile = http_header(req, req->read_only ? "Accept-Profile" : "Content-Profile");

	if (profile == NULL || strcmp(profile, "crm_api") == 0)
		return true;
	http_reply_error(req, 406, "PGRST106", "The schema must be one of the following: crm_api",
					 NULL, NULL);
	return false;
}

/* Reply 405 naming the allowed methods. */
static void
method_not_allowed(HttpRequest *req, const char *allow)
{
	http_reply_error(req, 405, "PGRST117",
					 psprintf("method %s is not allowed here", req->method), NULL, NULL);
	http_reply_header(req, "Allow", allow);
}

/* POST or GET /api/rpc/<fn>. */
static void
route_rpc(HttpRequest *req, const char *fn)
{
	bool		login = strcmp(fn, "login") == 0;
	HttpMedia	media;

	if (strcmp(fn, "logout") == 0)
	{
		if (strcmp(req->method, "POST") == 0)
			logout(req);
		else
			method_not_allowed(req, "POST");
		return;
	}
	if (!http_parse_accept(req, &media) || !http_authenticate(req, login))
		return;
	http_call_rpc(req, fn, media);
	if (login && req->reply.status == 200)
		set_login_cookie(req);
}

/* Route a request under /api/ (path is what follows "/api/"). */
void
http_api_dispatch(HttpRequest *req, const char *path)
{
	HttpMedia	media;

	if (!req->read_only && strcmp(req->method, "POST") != 0)
	{
		method_not_allowed(req, "GET, HEAD, POST");
		return;
	}
	if (!check_profile(req))
		return;
	if (strncmp(path, "rpc/", 4) == 0 && path[4] != '\0' && strchr(path + 4, '/') == NULL)
	{
		route_rpc(req, path + 4);
		return;
	}
	if (strcmp(path, "events") == 0)
	{
		if (!req->read_only)
		{
			method_not_allowed(req, "GET");
			return;
		}
		if (http_authenticate(req, false))
			http_sse_start(req);
		return;
	}
	if (path[0] == '\0' || strchr(path, '/') != NULL)
	{
		http_reply_error(req, 404, "PGRST125", psprintf("Invalid path specified in request URL: %s", req->url),
						 NULL, NULL);
		return;
	}
	if (!req->read_only)
	{
		method_not_allowed(req, "GET, HEAD");
		return;
	}
	if (http_parse_accept(req, &media) && http_authenticate(req, false))
		http_read_view(req, path, media);
}
