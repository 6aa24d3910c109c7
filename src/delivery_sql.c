/*
 * delivery_sql.c
 *		SQL-callable functions of alert delivery: crm_api.test_channel (one
 *		test notification sent from the calling backend, waiting for its
 *		outcome), random_secret, webhook_signature and wake_delivery.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "crm_dashboard.h"
#include "delivery.h"

PG_FUNCTION_INFO_V1(crm_dashboard_test_channel);
PG_FUNCTION_INFO_V1(crm_dashboard_random_secret);
PG_FUNCTION_INFO_V1(crm_dashboard_webhook_signature);
PG_FUNCTION_INFO_V1(crm_dashboard_wake_delivery);

/* How long libcurl waits for sockets before the backend checks for a cancel. */
#define TEST_POLL_MS 100

/* The channel's settings and a test body, in delivery_claim's column order. */
static const char *const test_request_sql =
"SELECT NULL::bigint, s.u::text, 1, NULL::bigint, c.name, c.kind, 'test', c.url, c.secret, "
"       c.smtp_username, c.smtp_password, c.mail_from, c.mail_to, c.require_tls, "
"       crm_dashboard.notification_body(c.kind, crm_dashboard.test_payload(c.id, s.u), c.mail_from, c.mail_to) "
"  FROM crm_dashboard.alert_channel c CROSS JOIN (SELECT gen_random_uuid() AS u) s WHERE c.id = $1";

/* Perform one transfer in this backend, cancellable (statement_timeout, pg_cancel_backend). */
static void
perform_transfer(DeliveryTransfer *t)
{
	CURLM	   *multi = curl_multi_init();
	int			running = 1;
	CURLMsg    *msg;
	int			left;
	CURLcode	result = CURLE_OK;
	sigset_t	saved;

	if (multi == NULL)
		elog(ERROR, "crm_dashboard: could not create a libcurl multi handle");
	PG_TRY();
	{
		curl_multi_add_handle(multi, t->easy);
		while (running > 0)
		{
			delivery_block_signals(&saved);
			(void) curl_multi_perform(multi, &running);
			if (running > 0)
				(void) curl_multi_poll(multi, NULL, 0, TEST_POLL_MS, NULL);
			delivery_restore_signals(&saved);
			CHECK_FOR_INTERRUPTS();
		}
		while ((msg = curl_multi_info_read(multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				result = msg->data.result;
	}
	PG_FINALLY();
	{
		curl_multi_remove_handle(multi, t->easy);
		curl_multi_cleanup(multi);
	}
	PG_END_TRY();
	delivery_transfer_finish(t, result);
}

/* Record a test delivery's outcome on its channel (crm_dashboard.delivery_tested). */
static void
record_test(int64 channel_id, const DeliveryTransfer *t)
{
	Oid			types[5] = {INT8OID, BOOLOID, INT4OID, TEXTOID, FLOAT8OID};
	Datum		values[5];
	char		nulls[6] = "     ";

	values[0] = Int64GetDatum(channel_id);
	queue_outcome_params(t, values + 1, nulls + 1);
	crm_spi_execute("SELECT crm_dashboard.delivery_tested($1, $2, $3, $4, $5)",
					5, types, values, nulls, false, 1, SPI_OK_SELECT);
}

/* What test_channel answers: {ok, status_code, error, duration_ms, notification}. */
static char *
test_result_json(const DeliveryTransfer *t)
{
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfo(&out, "{\"ok\": %s, \"status_code\": ", t->ok ? "true" : "false");
	if (t->status_code)
		appendStringInfo(&out, "%d", t->status_code);
	else
		appendStringInfoString(&out, "null");
	appendStringInfoString(&out, ", \"error\": ");
	if (t->error)
		escape_json(&out, t->error);
	else
		appendStringInfoString(&out, "null");
	appendStringInfo(&out, ", \"duration_ms\": %.1f, \"notification\": ", t->duration_ms);
	escape_json(&out, t->req.uuid ? t->req.uuid : "");
	appendStringInfoChar(&out, '}');
	return out.data;
}

/*
 * crm_api.test_channel(id): send a test notification to the channel now
 * and say what happened: {ok, status_code, error, duration_ms,
 * notification}.  The attempt is recorded (crm_api.alert_deliveries) and
 * counts in the channel's health.
 */
Datum
crm_dashboard_test_channel(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	DeliveryRequest *req;
	DeliveryTransfer *t;
	char	   *volatile result = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		crm_arg_null_error("id");
	values[0] = PG_GETARG_DATUM(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm_dashboard: SPI_connect failed");
	if (crm_spi_execute(test_request_sql, 1, types, values, NULL, true, 1, SPI_OK_SELECT) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("alert channel " INT64_FORMAT " does not exist", PG_GETARG_INT64(0)),
				 errdetail("id"),
				 errhint("They are listed in crm_api.alert_channels.")));
	req = queue_request_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, cxt);
	t = delivery_transfer_new(req, cxt);
	PG_TRY();
	{
		perform_transfer(t);
		record_test(PG_GETARG_INT64(0), t);
		result = test_result_json(t);
	}
	PG_FINALLY();
	{
		delivery_transfer_free(t);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(json_in, CStringGetDatum(result)));
}

/* crm_dashboard.random_secret(): 32 bytes from the system's generator, hex. */
Datum
crm_dashboard_random_secret(PG_FUNCTION_ARGS)
{
	uint8		bytes[32];
	char		hex[sizeof(bytes) * 2 + 1];

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random secret")));
	for (int i = 0; i < (int) sizeof(bytes); i++)
		snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/* crm_dashboard.webhook_signature(secret, signed_at, body): the signature header's value. */
Datum
crm_dashboard_webhook_signature(PG_FUNCTION_ARGS)
{
	char	   *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		signed_at = PG_GETARG_INT64(1);
	text	   *body = PG_GETARG_TEXT_PP(2);

	PG_RETURN_TEXT_P(cstring_to_text(delivery_signature(secret, signed_at, VARDATA_ANY(body),
														VARSIZE_ANY_EXHDR(body))));
}

/* crm_dashboard.wake_delivery(): wake the alerts worker at commit. */
Datum
crm_dashboard_wake_delivery(PG_FUNCTION_ARGS)
{
	delivery_wake_at_commit();
	PG_RETURN_VOID();
}
