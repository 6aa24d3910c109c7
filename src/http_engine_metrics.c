/*
 * http_engine_metrics.c
 *		The request engine's side of GET /metrics: the text of
 *		crm_dashboard.metrics_text(), read as the request's role.
 *
 * The worker decided who asks (http_metrics.c): a job named "key" came
 * with crm_dashboard.metrics_token, or metrics_auth is none; a job named
 * "admin" came with a token whose role must be an administrator's, which
 * only the catalogs can tell.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

#include "crm_dashboard.h"
#include "http_engine.h"

/* Serve GET /metrics (the role is already the request's). */
void
engine_metrics(EngineRequest *req, EngineReply *reply)
{
	bool		isnull;
	Datum		d;

	if (strcmp(req->name ? req->name : "", "key") != 0)
	{
		crm_spi_execute("SELECT pg_catalog.pg_has_role(current_user, 'crm_dashboard_admin', 'MEMBER')",
						0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull || !DatumGetBool(d))
		{
			engine_error(reply, 403, "42501", "GET /metrics is for administrators", NULL,
						 "Use an administrator's token, or crm_dashboard.metrics_token for a scraper.");
			return;
		}
	}
	crm_spi_execute("SELECT crm_dashboard.metrics_text()", 0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	reply->status = 200;
	reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resetStringInfo(&reply->body);
	if (!isnull)
		appendStringInfoString(&reply->body, TextDatumGetCString(d));
	engine_header(reply, "Cache-Control", "no-store");
}
