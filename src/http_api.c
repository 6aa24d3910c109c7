/*
 * http_api.c
 *		Routing under /api: the origin check, schema profiles, content
 *		negotiation, the login cookie, then views, functions and events.
 *
 * Cross-site request forgery is met twice.  The login cookie authenticates
 * nothing but GET /api/events (EventSource cannot send a header); every
 * other request needs "Authorization: Bearer", which no other page can make
 * a browser send.  And a request whose Origin or Sec-Fetch-Site shows that a
 * page of another origin made it is refused before anything else: to a
 * browser another port of the same host is the same site (so SameSite
 * cookies travel) but another origin.
 */
#include "postgres.h"


#include <cjson/cJSON.h>

#include "mb/pg_wchar.h"
#include "utils/formatting.h"

#include "auth.h"
#include "crm_dashboard.h"
#include "http.h"

#define COOKIE_PATH "/api/events"

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
	else if (IS("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
		*media = HTTP_MEDIA_XLSX;
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
					 accept, "Ask for application/json, text/csv or application/vnd.pgrst.object+json "
					 "(or, from export_rows, the xlsx media type).");
	return false;
}

/*
 * An origin in canonical form: lower case, without the default port of its
 * scheme or a trailing slash, as browsers serialise the Origin header.
 */
static char *
canonical_origin(const char *s, size_t len)
{
	char	   *o = asc_tolower(s, len);
	size_t		n = strlen(o);

	if (n > 0 && o[n - 1] == '/')
		o[--n] = '\0';
	if (strncmp(o, "http://", 7) == 0 && n > 3 && strcmp(o + n - 3, ":80") == 0)
		o[n - 3] = '\0';
	else if (strncmp(o, "https://", 8) == 0 && n > 4 && strcmp(o + n - 4, ":443") == 0)
		o[n - 4] = '\0';
	return o;
}

/* The server's own origin as the client addressed it (its Host), or NULL. */
static char *
own_origin(HttpRequest *req)
{
	const char *host = http_header(req, MHD_HTTP_HEADER_HOST);
	char	   *origin;

	if (host == NULL || host[0] == '\0')
		return NULL;
	/* the bundled server speaks plain HTTP; TLS ends at a proxy, if any */
	origin = psprintf("http://%s", host);
	return canonical_origin(origin, strlen(origin));
}

/* Whether origin (canonical) is listed in crm_dashboard.http_allowed_origins. */
static bool
origin_listed(const char *origin)
{
	const char *p = http_allowed_origins ? http_allowed_origins : "";

	while (*p)
	{
		size_t		len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len > 0 && strcmp(canonical_origin(p, len), origin) == 0)
			return true;
		p += len;
	}
	return false;
}

/* Reply 403 to a request that a page of another origin made. */
static void
refuse_origin(HttpRequest *req, const char *own, const char *message, const char *hint)
{
	http_reply_error(req, 403, "42501", message,
					 psprintf("This server's origin is %s. Pages of other origins (another port is "
							  "another origin) may not call the API, so that no other site can act "
							  "for a signed-in user.",
							  own ? own : "unknown (the request names no Host)"),
					 hint);
}

/*
 * Refuse a request that a page of another origin made (403): its Origin is
 * neither the server's own nor listed in crm_dashboard.http_allowed_origins,
 * or its Sec-Fetch-Site says same-site or cross-site.  Requests without
 * these headers (curl, BI tools, a browser's same-origin GETs) pass.
 */
static bool
check_origin(HttpRequest *req)
{
	const char *origin = http_header(req, "Origin");
	const char *site = http_header(req, "Sec-Fetch-Site");
	char	   *own;

	if (origin == NULL && site == NULL)
		return true;
	own = own_origin(req);
	if (origin != NULL)
	{
		char	   *theirs = canonical_origin(origin, strlen(origin));

		if ((own == NULL || strcmp(theirs, own) != 0) && !origin_listed(theirs))
		{
			refuse_origin(req, own, psprintf("request from origin \"%s\" refused", origin),
						  "Open the dashboard at its own address; if a proxy serves it under "
						  "another origin, add that origin to crm_dashboard.http_allowed_origins.");
			return false;
		}
	}
	if (site != NULL && (pg_strcasecmp(site, "same-site") == 0 || pg_strcasecmp(site, "cross-site") == 0))
	{
		refuse_origin(req, own,
					  psprintf("request from another origin refused (Sec-Fetch-Site: %s)", site),
					  "Open the dashboard at its own address.");
		return false;
	}
	return true;
}

/*
 * Whether a JSON body is UTF-8 text without NUL bytes (which JSON text
 * cannot hold, nor can the request document that carries it); 400 otherwise.
 */
static bool
check_body_text(HttpRequest *req)
{
	if (pg_verify_mbstr(PG_UTF8, req->body.data, req->body.len, true))
		return true;
	http_reply_error(req, 400, "PGRST102", "Empty or invalid json",
					 "The body is not valid UTF-8, or holds a NUL character.",
					 "Send a UTF-8 JSON object without \\u0000 escapes.");
	return false;
}

/*
 * Whether a function call's body is JSON: Content-Type application/json
 * (parameters such as charset allowed), or no type with an empty body.
 * Replies 415 otherwise, with PostgREST's code and message for a body type
 * it cannot take (PGRST102, "Content-Type not acceptable: ..."): a form or
 * text/plain body is what a page of another site can make a browser send.
 */
static bool
check_body_type(HttpRequest *req)
{
	const char *type = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *p = type;
	size_t		len;

	if (type == NULL && req->body.len == 0)
		return true;
	if (type != NULL)
	{
		while (*p == ' ' || *p == '\t')
			p++;
		len = strcspn(p, "; \t");
		if (len == strlen("application/json") && pg_strncasecmp(p, "application/json", len) == 0)
		{
			p += len;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '\0' || *p == ';')
				return check_body_text(req);
		}
	}
	http_reply_error(req, 415, "PGRST102",
					 psprintf("Content-Type not acceptable: %s", type ? type : "(none)"),
					 "Function arguments are a JSON object sent as application/json.",
					 "Send the body with \"Content-Type: application/json\".");
	return false;
}

/*
 * Set the HttpOnly login cookie from a successful login's JSON reply.  Its
 * path is the one route that accepts it, so browsers send it nowhere else.
 */
static void
set_login_cookie(HttpRequest *req)
{
	cJSON	   *doc = cJSON_Parse(req->reply.body.data);
	cJSON	   *token = doc ? cJSON_GetObjectItemCaseSensitive(doc, "token") : NULL;

	if (cJSON_IsString(token))
		http_reply_header(req, MHD_HTTP_HEADER_SET_COOKIE,
						  psprintf("%s=%s; HttpOnly; SameSite=Strict; Path=%s; Max-Age=%d",
								   HTTP_COOKIE, token->valuestring, COOKIE_PATH, auth_jwt_expiry()));
	cJSON_Delete(doc);
}

/*
 * The reply of a logout: 204, clearing the login cookie, and the one 1.0.0
 * set on Path=/api, which browsers would otherwise keep sending until it
 * expires.
 */
static void
clear_cookies(HttpRequest *req)
{
	req->reply.headers = NIL;
	resetStringInfo(&req->reply.body);
	req->reply.content_type = NULL;
	req->reply.status = MHD_HTTP_NO_CONTENT;
	http_reply_header(req, MHD_HTTP_HEADER_SET_COOKIE,
					  HTTP_COOKIE "=; HttpOnly; SameSite=Strict; Path=" COOKIE_PATH "; Max-Age=0");
	http_reply_header(req, MHD_HTTP_HEADER_SET_COOKIE,
					  HTTP_COOKIE "=; HttpOnly; SameSite=Strict; Path=/api; Max-Age=0");
}

/*
 * POST /api/rpc/logout: revoke the dashboard user's tokens (crm_api.logout:
 * every session of theirs ends at once) and clear the cookies.  Logging out
 * with a token that is already invalid, or none, still clears them.
 */
static void
logout(HttpRequest *req)
{
	if (http_authenticate(req, false) && req->username != NULL)
		http_job_start(req, "rpc", "logout", HTTP_MEDIA_JSON, true, clear_cookies);
	else
		clear_cookies(req);
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

	if (!req->read_only && !check_body_type(req))
		return;
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
	/* a login never waits behind other requests' queries: the reserved connection */
	http_job_start(req, "rpc", fn, media, login, login ? set_login_cookie : NULL);
}

/* Route a request under /api/ (path is what follows "/api/"). */
void
http_api_dispatch(HttpRequest *req, const char *path)
{
	HttpMedia	media;

	if (!check_origin(req))
		return;
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
		req->cookie_auth = strcmp(req->method, "GET") == 0;
		if (http_authenticate(req, false))
			http_job_start(req, "events", NULL, HTTP_MEDIA_JSON, true, http_sse_open);
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
		http_job_start(req, "read", path, media, false, NULL);
}
