/*
 * http_static.c
 *		The static UI: files of crm_dashboard.ui_directory over HTTP, and the
 *		same bytes, media type and ETag through crm_api.ui_file() for a real
 *		PostgREST or a proxy.
 *
 * GET / and any extension-less path outside /api and /ui serve index.html,
 * so the UI's history-API routes (/crm/hubspot) survive a reload.  A path is
 * refused if it holds "..", a backslash or a percent sign (a second level
 * of encoding, or an undecoded %00), and the resolved real path must stay
 * inside the UI directory, so neither symlinks nor encodings can escape it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "http.h"

PG_FUNCTION_INFO_V1(crm_dashboard_ui_file);

/* Largest file crm_api.ui_file() returns. */
#define UI_FILE_MAX (16 * 1024 * 1024)

/* Media types by file extension. */
static const char *const media_types[][2] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".json", "application/json; charset=utf-8"},
	{".map", "application/json; charset=utf-8"},
	{".webmanifest", "application/manifest+json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".jpg", "image/jpeg"},
	{".jpeg", "image/jpeg"},
	{".gif", "image/gif"},
	{".webp", "image/webp"},
	{".ico", "image/x-icon"},
	{".woff", "font/woff"},
	{".woff2", "font/woff2"},
	{".txt", "text/plain; charset=utf-8"},
};

/* The media type of a file, by its extension. */
const char *
http_media_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	int			i;

	if (dot != NULL && strchr(dot, '/') == NULL)
		for (i = 0; i < lengthof(media_types); i++)
			if (pg_strcasecmp(dot, media_types[i][0]) == 0)
				return media_types[i][1];
	return "application/octet-stream";
}

/* A strong ETag from the file's size and modification time. */
char *
http_file_etag(const struct stat *st)
{
	return psprintf("\"%llx-%llx\"", (unsigned long long) st->st_size,
					(unsigned long long) st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec);
}

/*
 * The real path of relpath inside the UI directory, or NULL with *error set
 * to "invalid" (refused outright) or "missing" (no such regular file).
 */
char *
http_ui_resolve(const char *relpath, const char **error)
{
	char		root[PATH_MAX];
	char		full[PATH_MAX];
	char	   *joined;
	size_t		rootlen;
	struct stat st;

	*error = "invalid";
	if (relpath[0] == '/' || strstr(relpath, "..") || strchr(relpath, '\\') ||
		strchr(relpath, '%') || strlen(relpath) > 1024)
		return NULL;
	*error = "missing";
	if (realpath(http_ui_directory, root) == NULL)
		return NULL;
	joined = psprintf("%s/%s", root, relpath[0] ? relpath : "index.html");
	if (realpath(joined, full) == NULL)
		return NULL;
	rootlen = strlen(root);
	if (strncmp(full, root, rootlen) != 0 || full[rootlen] != '/')
	{
		*error = "invalid";
		return NULL;
	}
	if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	*error = NULL;
	return pstrdup(full);
}

/* The file a URL path names, relative to the UI directory. */
static const char *
ui_relative_path(const char *url)
{
	const char *last = strrchr(url, '/');

	if (strncmp(url, "/ui/", 4) == 0)
		return url + 4;
	if (strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0 || strchr(last, '.') == NULL)
		return "index.html";	/* a route of the single-page UI */
	return url + 1;
}

/* Whether If-None-Match names etag. */
static bool
etag_matches(HttpRequest *req, const char *etag)
{
	const char *inm = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);

	return inm != NULL && (strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL);
}

/* GET|HEAD of a UI file. */
void
http_serve_static(HttpRequest *req)
{
	const char *error;
	char	   *path = http_ui_resolve(ui_relative_path(req->url), &error);
	struct stat st;
	int			fd;
	char	   *etag;

	if (path == NULL || (fd = open(path, O_RDONLY)) < 0)
	{
		http_reply_error(req, strcmp(error ? error : "", "invalid") == 0 ? 400 : 404,
						 "PGRST125", psprintf("no such file: %s", req->url), NULL, NULL);
		return;
	}
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		http_reply_error(req, 404, "PGRST125", psprintf("no such file: %s", req->url), NULL, NULL);
		return;
	}
	etag = http_file_etag(&st);
	http_reply_header(req, MHD_HTTP_HEADER_ETAG, etag);
	http_reply_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (etag_matches(req, etag))
	{
		close(fd);
		req->reply.status = MHD_HTTP_NOT_MODIFIED;
		return;
	}
	req->reply.status = MHD_HTTP_OK;
	req->reply.content_type = http_media_type(path);
	req->reply.fd = fd;
	req->reply.fd_size = st.st_size;
}

/* Read a whole (small) file into a bytea. */
static bytea *
read_file_bytes(const char *path, struct stat *st)
{
	int			fd = open(path, O_RDONLY);
	bytea	   *data;
	ssize_t		n = 0;

	if (fd < 0 || fstat(fd, st) != 0 || st->st_size > UI_FILE_MAX)
	{
		if (fd >= 0)
			close(fd);
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('P', 'T', '4', '0', '4')),
				 errmsg("could not read UI file \"%s\"", path)));
	}
	data = palloc(VARHDRSZ + st->st_size);
	while (n < st->st_size)
	{
		ssize_t		r = read(fd, VARDATA(data) + n, st->st_size - n);

		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	SET_VARSIZE(data, VARHDRSZ + n);
	return data;
}

/*
 * crm_api.ui_file(path): the bytes, media type and ETag of a UI file, the
 * same as GET /ui/<path> sends.
 */
Datum
crm_dashboard_ui_file(PG_FUNCTION_ARGS)
{
	char	   *rel = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *error;
	char	   *path = http_ui_resolve(rel[0] == '/' ? rel + 1 : rel, &error);
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	struct stat st;

	if (path == NULL && strcmp(error, "invalid") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid UI file path \"%s\"", rel),
				 errhint("Paths are relative to the UI directory and may not contain \"..\", \"\\\" or \"%%\".")));
	if (path == NULL)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('P', 'T', '4', '0', '4')),
				 errmsg("UI file \"%s\" does not exist", rel)));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm_api.ui_file must return a record");
	values[0] = PointerGetDatum(read_file_bytes(path, &st));
	values[1] = CStringGetTextDatum(http_media_type(path));
	values[2] = CStringGetTextDatum(http_file_etag(&st));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
