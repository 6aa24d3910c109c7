/*
 * delivery.h
 *		Delivering alert notifications: the alerts worker, a background
 *		worker that sends the outbox (crm_dashboard.alert_notification) with
 *		libcurl's multi interface, so that one endpoint that hangs never
 *		delays the others, and crm_api.test_channel, which sends one test
 *		from the calling backend.
 *
 * Modules, top to bottom:
 *	delivery.c			settings, the worker's registration, wake-up and loop
 *	delivery_queue.c	the worker's SQL: recover, claim with a lease, record outcomes, tick
 *	delivery_sql.c		SQL-callable: test_channel, random_secret, webhook_signature, wake_delivery
 *	delivery_transfer.c	one notification as a libcurl transfer: webhook (signed), Slack, SMTP;
 *						its outcome (delivered, retry, failed for good)
 *	delivery_hosts.c	which addresses may be called (crm_dashboard.delivery_allowed_hosts),
 *						checked on every connection, and channel URLs (check_delivery_url)
 *	delivery.sql		channels, rendering, the claim step and outcomes (SQL)
 *
 * At least once: a notification is leased in a committed transaction before
 * any byte of it is sent, and its outcome is recorded after; a worker that
 * dies in between leaves the lease, and its successor sends it again with
 * the same idempotency key (the notification's uuid).
 */
#ifndef CRM_DASHBOARD_DELIVERY_H
#define CRM_DASHBOARD_DELIVERY_H

#include "postgres.h"

#include <signal.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* Settings (delivery.c). */
extern int	delivery_connect_timeout;	/* seconds */
extern int	delivery_timeout;	/* seconds, a whole attempt */
extern int	delivery_max_attempts;
extern int	delivery_retry_base;	/* seconds */
extern int	delivery_retry_cap; /* seconds */
extern int	delivery_max_in_flight;
extern int	delivery_per_channel;
extern char *delivery_ca_file;

/* Bytes of a receiver's reply kept for the error of a failed attempt. */
#define DELIVERY_REPLY_KEEP 512
#define DELIVERY_WHY_MAX 256

typedef enum DeliveryKind
{
	DELIVERY_WEBHOOK,
	DELIVERY_SLACK,
	DELIVERY_EMAIL
} DeliveryKind;

/* What one notification (or a test) sends, as the claim step returns it. */
typedef struct DeliveryRequest
{
	int64		notification_id;	/* 0 for a test */
	int64		delivery_id;	/* its attempt's row; 0 for a test */
	int			attempt;
	char	   *uuid;			/* the idempotency key */
	char	   *channel;		/* the channel's name, for the log */
	DeliveryKind kind;
	char	   *event;			/* firing, resolved, reminder, test */
	char	   *url;
	char	   *secret;			/* a webhook's signing key */
	char	   *smtp_username;
	char	   *smtp_password;
	char	   *mail_from;
	List	   *mail_to;		/* char * */
	bool		require_tls;
	char	   *body;
} DeliveryRequest;

/*
 * One attempt in flight.  libcurl's callbacks write only into the fixed
 * buffers here (they run inside libcurl, where no PostgreSQL error may be
 * thrown); everything else is in cxt.
 */
typedef struct DeliveryTransfer
{
	MemoryContext cxt;
	DeliveryRequest req;
	char	   *host;			/* the URL's host, for the allow-list */
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *recipients;
	size_t		body_sent;		/* SMTP: bytes of the message handed to libcurl */
	char		reply[DELIVERY_REPLY_KEEP];
	size_t		reply_len;
	char		curl_error[CURL_ERROR_SIZE];
	char		refused[DELIVERY_WHY_MAX];	/* why an address was refused, or "" */
	TimestampTz started_at;
	bool		done;
	/* the outcome, once done */
	bool		ok;
	bool		permanent;		/* not worth another attempt */
	int			status_code;	/* HTTP status or SMTP reply code; 0 when none */
	int			retry_after;	/* seconds the receiver asked to wait; 0 when it did not */
	double		duration_ms;
	char	   *error;			/* masked; NULL when ok */
} DeliveryTransfer;

/* delivery.c */
extern void DeliveryInit(void);
extern PGDLLEXPORT void crm_delivery_main(Datum arg);
extern void delivery_wake_at_commit(void);
extern bool delivery_available(void);

/* delivery_transfer.c */
extern DeliveryTransfer *delivery_transfer_new(const DeliveryRequest *req, MemoryContext parent);
extern void delivery_transfer_finish(DeliveryTransfer *t, CURLcode result);
extern void delivery_transfer_free(DeliveryTransfer *t);
extern char *delivery_signature(const char *secret, int64 signed_at, const char *body, size_t len);
extern void delivery_block_signals(sigset_t *saved);
extern void delivery_restore_signals(const sigset_t *saved);

/* delivery_hosts.c (the bottom: transfers check their addresses here) */
extern void delivery_curl_init(void);
extern void delivery_hosts_define_setting(void);
extern bool delivery_address_allowed(const char *host, const struct sockaddr *addr, char *why, size_t whylen);

/* delivery_queue.c */
extern bool queue_extension_ready(Oid *extension);
extern DeliveryRequest *queue_request_from_row(HeapTuple row, TupleDesc desc, MemoryContext cxt);
extern int	queue_recover(void);
extern List *queue_claim(int slots, MemoryContext cxt);
extern void queue_outcome_params(const DeliveryTransfer *t, Datum *values, char *nulls);
extern void queue_record(DeliveryTransfer *t);
extern TimestampTz queue_next_due(void);
extern TimestampTz queue_tick(void);

#endif							/* CRM_DASHBOARD_DELIVERY_H */
