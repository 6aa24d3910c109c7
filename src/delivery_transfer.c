/*
 * delivery_transfer.c
 *		One notification as a libcurl transfer, and what its outcome means.
 *
 * Webhooks get the notification's JSON with its idempotency key
 * (Idempotency-Key and X-Crm-Dashboard-Delivery: the notification's uuid,
 * the same on every attempt) and X-Crm-Dashboard-Signature:
 * t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">, keyed with the
 * channel's secret (the scheme of Stripe's webhooks: a receiver recomputes
 * it, compares in constant time, and refuses old timestamps).  Slack gets
 * its incoming-webhook JSON.  E-mail goes over SMTP: smtps:// is TLS from
 * the start; smtp:// upgrades with STARTTLS when the server offers it, and
 * insists on it when the channel requires TLS or has credentials.
 *
 * Every transfer: only its own protocols, no redirects, no proxy from the
 * environment, the connect and total timeouts of the settings, and an
 * open-socket callback that checks each address libcurl is about to
 * connect to against crm_dashboard.delivery_allowed_hosts.
 *
 * libcurl's callbacks (reading the body, keeping the reply, opening
 * sockets) are plain C writing into the transfer's fixed buffers: no
 * PostgreSQL error may unwind through libcurl.  libcurl's resolver threads
 * are started with every signal blocked (delivery_block_signals), so that
 * PostgreSQL's signal handlers always run on the main thread.
 */
#include "postgres.h"

#include <pthread.h>
#include <time.h>

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"
#include "delivery.h"

/*
 * Block every signal in this thread (saving the mask), so that threads
 * libcurl starts now inherit a mask that keeps signals off them.
 */
void
delivery_block_signals(sigset_t *saved)
{
	sigset_t	all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, saved);
}

/* Restore the mask delivery_block_signals saved. */
void
delivery_restore_signals(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* X-Crm-Dashboard-Signature for body: t=<signed_at>,v1=<hex HMAC-SHA256 of "<t>.<body>">. */
char *
delivery_signature(const char *secret, int64 signed_at, const char *body, size_t len)
{
	static ResourceOwner between_transactions = NULL;
	ResourceOwner saved = CurrentResourceOwner;
	pg_hmac_ctx *ctx;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	char	   *prefix = psprintf(INT64_FORMAT ".", signed_at);
	const char *why = NULL;

	/*
	 * OpenSSL's HMAC contexts are tracked by the current resource owner,
	 * which the alerts worker has none of between its transactions.
	 */
	if (saved == NULL)
	{
		if (between_transactions == NULL)
			between_transactions = ResourceOwnerCreate(NULL, "crm_dashboard webhook signatures");
		CurrentResourceOwner = between_transactions;
	}
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		why = "out of memory";
	else if (pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
			 pg_hmac_update(ctx, (const uint8 *) prefix, strlen(prefix)) < 0 ||
			 pg_hmac_update(ctx, (const uint8 *) body, len) < 0 ||
			 pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
		why = pstrdup(pg_hmac_error(ctx));
	pg_hmac_free(ctx);
	CurrentResourceOwner = saved;
	if (why)
		elog(ERROR, "crm_dashboard: could not compute a webhook signature: %s", why);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return psprintf("t=" INT64_FORMAT ",v1=%s", signed_at, hex);
}

/* libcurl keeps the start of the receiver's reply (the rest is read and dropped). */
static size_t
keep_reply(char *data, size_t size, size_t n, void *arg)
{
	DeliveryTransfer *t = arg;
	size_t		len = size * n;
	size_t		room = sizeof(t->reply) - 1 - t->reply_len;
	size_t		take = len < room ? len : room;

	memcpy(t->reply + t->reply_len, data, take);
	t->reply_len += take;
	t->reply[t->reply_len] = '\0';
	return len;
}

/* libcurl reads the e-mail message to upload. */
static size_t
read_message(char *buffer, size_t size, size_t n, void *arg)
{
	DeliveryTransfer *t = arg;
	size_t		left = strlen(t->req.body) - t->body_sent;
	size_t		take = size * n < left ? size * n : left;

	memcpy(buffer, t->req.body + t->body_sent, take);
	t->body_sent += take;
	return take;
}

/* libcurl opens a connection: only to an address the allow-list allows. */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
	DeliveryTransfer *t = arg;

	if (!delivery_address_allowed(t->host, &address->addr, t->refused, sizeof(t->refused)))
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* Set a libcurl option, or fail naming it (an option libcurl refuses is our bug or a missing feature). */
#define SET(t, opt, value) \
	do { \
		if (curl_easy_setopt((t)->easy, (opt), (value)) != CURLE_OK) \
			elog(ERROR, "crm_dashboard: libcurl refused option %s", #opt); \
	} while (0)

/* Append a header line. */
static void
add_header(DeliveryTransfer *t, const char *line)
{
	struct curl_slist *l = curl_slist_append(t->headers, line);

	if (l == NULL)
		elog(ERROR, "crm_dashboard: out of memory for a header");
	t->headers = l;
}

/* The options every transfer has: timeouts, protocols, no redirect nor proxy, the address check. */
static void
common_options(DeliveryTransfer *t, const char *protocols)
{
	SET(t, CURLOPT_URL, t->req.url);
	SET(t, CURLOPT_PROTOCOLS_STR, protocols);
	SET(t, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	SET(t, CURLOPT_FOLLOWLOCATION, 0L);
	SET(t, CURLOPT_NOSIGNAL, 1L);
	SET(t, CURLOPT_PROXY, "");
	SET(t, CURLOPT_NOPROXY, "*");
	SET(t, CURLOPT_CONNECTTIMEOUT_MS, (long) delivery_connect_timeout * 1000L);
	SET(t, CURLOPT_TIMEOUT_MS, (long) delivery_timeout * 1000L);
	SET(t, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(t, CURLOPT_OPENSOCKETDATA, t);
	SET(t, CURLOPT_ERRORBUFFER, t->curl_error);
	SET(t, CURLOPT_PRIVATE, t);
	SET(t, CURLOPT_WRITEFUNCTION, keep_reply);
	SET(t, CURLOPT_WRITEDATA, t);
	SET(t, CURLOPT_USERAGENT, "crm_dashboard/" EXTVERSION);
	if (delivery_ca_file && delivery_ca_file[0])
		SET(t, CURLOPT_CAINFO, delivery_ca_file);
}

/* A webhook or Slack message: a JSON POST; webhooks signed and keyed. */
static void
http_options(DeliveryTransfer *t)
{
	common_options(t, "http,https");
	SET(t, CURLOPT_POST, 1L);
	SET(t, CURLOPT_POSTFIELDS, t->req.body);
	SET(t, CURLOPT_POSTFIELDSIZE, (long) strlen(t->req.body));
	add_header(t, "Content-Type: application/json; charset=utf-8");
	/* no "100 Continue" round trip before the body */
	add_header(t, "Expect:");
	if (t->req.kind == DELIVERY_WEBHOOK)
	{
		add_header(t, psprintf("Idempotency-Key: %s", t->req.uuid));
		add_header(t, psprintf("X-Crm-Dashboard-Delivery: %s", t->req.uuid));
		add_header(t, psprintf("X-Crm-Dashboard-Event: alert.%s", t->req.event));
		add_header(t, psprintf("X-Crm-Dashboard-Attempt: %d", t->req.attempt));
		add_header(t, psprintf("X-Crm-Dashboard-Signature: %s",
							   delivery_signature(t->req.secret ? t->req.secret : "", (int64) time(NULL),
												  t->req.body, strlen(t->req.body))));
	}
	SET(t, CURLOPT_HTTPHEADER, t->headers);
}

/* An e-mail: the message uploaded to the recipients, over TLS or STARTTLS. */
static void
smtp_options(DeliveryTransfer *t)
{
	ListCell   *lc;
	bool		credentials = t->req.smtp_username && t->req.smtp_username[0];

	common_options(t, "smtp,smtps");
	SET(t, CURLOPT_MAIL_FROM, psprintf("<%s>", t->req.mail_from));
	foreach(lc, t->req.mail_to)
	{
		struct curl_slist *l = curl_slist_append(t->recipients, psprintf("<%s>", (char *) lfirst(lc)));

		if (l == NULL)
			elog(ERROR, "crm_dashboard: out of memory for a recipient");
		t->recipients = l;
	}
	SET(t, CURLOPT_MAIL_RCPT, t->recipients);
	SET(t, CURLOPT_UPLOAD, 1L);
	SET(t, CURLOPT_READFUNCTION, read_message);
	SET(t, CURLOPT_READDATA, t);
	SET(t, CURLOPT_INFILESIZE, (long) strlen(t->req.body));
	/* a password never crosses the network in the clear */
	SET(t, CURLOPT_USE_SSL, (long) (t->req.require_tls || credentials ? CURLUSESSL_ALL : CURLUSESSL_TRY));
	if (credentials)
	{
		SET(t, CURLOPT_USERNAME, t->req.smtp_username);
		SET(t, CURLOPT_PASSWORD, t->req.smtp_password ? t->req.smtp_password : "");
	}
}

/* The host of the request's URL (brackets of an IPv6 literal removed). */
static char *
url_host(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL;
	char	   *copy;
	size_t		len;

	if (u == NULL)
		elog(ERROR, "crm_dashboard: out of memory parsing a URL");
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
	{
		curl_url_cleanup(u);
		return pstrdup("");
	}
	copy = pstrdup(host);
	curl_free(host);
	curl_url_cleanup(u);
	len = strlen(copy);
	if (len > 2 && copy[0] == '[' && copy[len - 1] == ']')
	{
		copy[len - 1] = '\0';
		copy++;
	}
	return copy;
}

/* A deep copy of a request in the current memory context. */
static void
copy_request(DeliveryRequest *dst, const DeliveryRequest *src)
{
	ListCell   *lc;

#define DUP(f) (dst->f = src->f ? pstrdup(src->f) : NULL)
	*dst = *src;
	DUP(uuid);
	DUP(channel);
	DUP(event);
	DUP(url);
	DUP(secret);
	DUP(smtp_username);
	DUP(smtp_password);
	DUP(mail_from);
	DUP(body);
#undef DUP
	dst->mail_to = NIL;
	foreach(lc, src->mail_to)
		dst->mail_to = lappend(dst->mail_to, pstrdup(lfirst(lc)));
	if (dst->body == NULL)
		dst->body = pstrdup("");
}

/*
 * A transfer ready to be added to a multi handle (or performed), in a
 * memory context of its own under parent.  Freed with
 * delivery_transfer_free().
 */
DeliveryTransfer *
delivery_transfer_new(const DeliveryRequest *req, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "crm_dashboard delivery", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	DeliveryTransfer *t = palloc0(sizeof(DeliveryTransfer));

	t->cxt = cxt;
	PG_TRY();
	{
		copy_request(&t->req, req);
		t->host = url_host(t->req.url);
		delivery_curl_init();
		t->easy = curl_easy_init();
		if (t->easy == NULL)
			elog(ERROR, "crm_dashboard: could not create a libcurl handle");
		if (t->req.kind == DELIVERY_EMAIL)
			smtp_options(t);
		else
			http_options(t);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		delivery_transfer_free(t);
		PG_RE_THROW();
	}
	PG_END_TRY();
	t->started_at = GetCurrentTimestamp();
	MemoryContextSwitchTo(old);
	return t;
}

/* Release a transfer's libcurl handle and lists, then its memory. */
void
delivery_transfer_free(DeliveryTransfer *t)
{
	if (t->easy)
		curl_easy_cleanup(t->easy);
	if (t->headers)
		curl_slist_free_all(t->headers);
	if (t->recipients)
		curl_slist_free_all(t->recipients);
	t->easy = NULL;
	t->headers = t->recipients = NULL;
	MemoryContextDelete(t->cxt);
}

/* text with every occurrence of secret replaced by ***. */
static char *
replace_all(const char *text, const char *secret)
{
	StringInfoData buf;
	const char *p = text;
	const char *hit;
	size_t		n = strlen(secret);

	initStringInfo(&buf);
	while ((hit = strstr(p, secret)) != NULL)
	{
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfoString(&buf, "***");
		p = hit + n;
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

/*
 * text with the request's secrets replaced by *** (the URL, its path and
 * query, which are Slack's secret, the signing secret, the SMTP password),
 * control characters by spaces, and what is not UTF-8 by '?': a reply or a
 * libcurl message may quote what it was sent.
 */
static char *
mask_text(const DeliveryTransfer *t, const char *text)
{
	const char *scheme_end = t->req.url ? strstr(t->req.url, "://") : NULL;
	const char *path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
	const char *secrets[4] = {t->req.url, path, t->req.secret, t->req.smtp_password};
	char	   *out = pstrdup(text);

	for (int i = 0; i < lengthof(secrets); i++)
		if (secrets[i] != NULL && strlen(secrets[i]) >= 4)
			out = replace_all(out, secrets[i]);
	for (unsigned char *p = (unsigned char *) out; *p;)
	{
		int			len = pg_utf_mblen(p);

		if (*p < 0x20 || *p == 0x7f)
			*p++ = ' ';
		else if (strnlen((char *) p, len) == len && pg_utf8_islegal(p, len))
			p += len;
		else
			*p++ = '?';
	}
	return out;
}

/* Whether an HTTP status is worth another attempt: 408, 425, 429, and 3xx or 5xx. */
static bool
status_retryable(int status)
{
	return status == 408 || status == 425 || status == 429 || status < 400 || status >= 500;
}

/*
 * The outcome of a finished transfer: delivered (2xx; an SMTP transfer that
 * completed), to be retried (a network error, a timeout, 3xx, 408, 425,
 * 429, 5xx), or failed for good (another 4xx, a login refused, an address
 * the allow-list refuses).  Errors are masked (mask_text).
 */
void
delivery_transfer_finish(DeliveryTransfer *t, CURLcode result)
{
	long		code = 0;
	curl_off_t	retry = 0;
	MemoryContext old = MemoryContextSwitchTo(t->cxt);

	t->done = true;
	t->duration_ms = (double) (GetCurrentTimestamp() - t->started_at) / 1000.0;
	(void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	(void) curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry);
	t->status_code = (int) code;
	t->retry_after = (int) Min(Max(retry, 0), 86400);
	if (result == CURLE_OK && (t->req.kind == DELIVERY_EMAIL || (code >= 200 && code < 300)))
	{
		t->ok = true;
		t->error = NULL;
	}
	else if (result == CURLE_OK)
	{
		t->permanent = !status_retryable((int) code);
		t->error = mask_text(t, t->reply_len > 0 ? psprintf("HTTP %ld: %.200s", code, t->reply)
							 : psprintf("HTTP %ld", code));
	}
	else if (t->refused[0])
	{
		t->permanent = true;
		t->error = mask_text(t, t->refused);
	}
	else
	{
		t->permanent = result == CURLE_LOGIN_DENIED || result == CURLE_UNSUPPORTED_PROTOCOL ||
			result == CURLE_URL_MALFORMAT;
		t->error = mask_text(t, psprintf("%s%s%s", curl_easy_strerror(result),
										 t->curl_error[0] ? ": " : "", t->curl_error));
	}
	MemoryContextSwitchTo(old);
}
