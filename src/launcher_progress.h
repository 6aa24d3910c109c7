/*
 * launcher_progress.h
 *		The JSON-lines progress protocol of sync commands: one line of a
 *		command's stdout, parsed into the event it describes.
 *
 *		{"event": "progress", "processed": 500, "created": 120, "total": 2000}
 *		{"event": "error", "message": "email invalid", "record": "51000017"}
 *		{"event": "error", "message": "API key revoked", "retryable": false}
 *		{"event": "rate_limited", "retry_after": 52, "message": "HTTP 429"}
 *		{"event": "heartbeat"}
 *		{"event": "summary", "processed": 2000, "created": 480, "failed": 20}
 *
 * Plain C only (no PostgreSQL headers), so that it can be fuzzed on its own
 * (test/fuzz/fuzz_progress.c).  Parsing is total: any bytes give an event,
 * PROGRESS_TEXT for everything that is not exactly one JSON object.
 *
 * A new kind of event is a row in the kinds table of launcher_progress.c, a
 * value here, and whatever fields it carries added to ProgressEvent; a line
 * with an event name this version does not know stays log text.
 */
#ifndef CRM_DASHBOARD_LAUNCHER_PROGRESS_H
#define CRM_DASHBOARD_LAUNCHER_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* What a line is. */
typedef enum ProgressKind
{
	PROGRESS_TEXT,				/* not an event: text, malformed JSON, not an object */
	PROGRESS_UNKNOWN,			/* an object whose "event" this version does not know */
	PROGRESS_PROGRESS,			/* counters so far */
	PROGRESS_ERROR,				/* one failed record or step */
	PROGRESS_SUMMARY,			/* the final counters */
	PROGRESS_RATE_LIMITED,		/* the command waits for the CRM's rate limit */
	PROGRESS_HEARTBEAT			/* alive, nothing else to say */
} ProgressKind;

#define PROGRESS_KIND_LAST PROGRESS_HEARTBEAT

/* The counters an event may carry. */
typedef enum ProgressCounter
{
	PROGRESS_PROCESSED,
	PROGRESS_CREATED,
	PROGRESS_UPDATED,
	PROGRESS_FAILED,
	PROGRESS_TOTAL,
	PROGRESS_NCOUNTERS
} ProgressCounter;

/* Largest counter accepted; larger (or negative, or non-numeric) ones are absent. */
#define PROGRESS_COUNTER_MAX (INT64_MAX / 2)

/* Longest rate-limit wait, seconds (a day); longer ones are taken as this long. */
#define PROGRESS_RETRY_AFTER_MAX 86400.0

/* What an error event says about retrying (its "retryable" field). */
typedef enum ProgressRetryable
{
	PROGRESS_RETRYABLE_UNSAID,	/* absent, or not a boolean */
	PROGRESS_RETRYABLE_YES,
	PROGRESS_RETRYABLE_NO
} ProgressRetryable;

/* One parsed line. */
typedef struct ProgressEvent
{
	ProgressKind kind;
	unsigned	present;		/* bit (1 << counter) per counter the event carries */
	int64_t		counters[PROGRESS_NCOUNTERS];	/* 0..PROGRESS_COUNTER_MAX; 0 when absent */
	const char *message;		/* error, rate_limited: its "message" if a string, else NULL */
	const cJSON *record;		/* error: its "record" if a string or number, else NULL */
	ProgressRetryable retryable;	/* error: its "retryable" */
	bool		has_retry_after;	/* rate_limited: "retry_after" was a number >= 0 */
	double		retry_after;	/* seconds, 0..PROGRESS_RETRY_AFTER_MAX; 0 when absent */
	cJSON	   *json;			/* the object (NULL for PROGRESS_TEXT); owned by the event */
} ProgressEvent;

extern void progress_parse(const char *line, size_t len, ProgressEvent *event);
extern void progress_event_free(ProgressEvent *event);
extern const char *progress_counter_name(ProgressCounter counter);

#endif							/* CRM_DASHBOARD_LAUNCHER_PROGRESS_H */
