/*
 * launcher_progress.c
 *		Parse one line of a command's stdout into a progress event (see
 *		launcher_progress.h).
 *
 * Plain C only, no PostgreSQL headers: the fuzz target links this file
 * alone with cJSON.
 */
#include "launcher_progress.h"

#include <string.h>

/* The events this version knows, and whether they carry counters. */
static const struct
{
	const char *name;
	ProgressKind kind;
	bool		counts;
}			event_kinds[] =
{
	{"progress", PROGRESS_PROGRESS, true},
	{"error", PROGRESS_ERROR, false},
	{"summary", PROGRESS_SUMMARY, true},
	{"rate_limited", PROGRESS_RATE_LIMITED, false},
	{"heartbeat", PROGRESS_HEARTBEAT, false},
};

/* Field names of the counters, in ProgressCounter order. */
static const char *const counter_names[PROGRESS_NCOUNTERS] = {
	"processed", "created", "updated", "failed", "total"
};

/* The field name of a counter. */
const char *
progress_counter_name(ProgressCounter counter)
{
	return counter >= 0 && counter < PROGRESS_NCOUNTERS ? counter_names[counter] : "?";
}

/* Whether only JSON whitespace is left in [p, end). */
static bool
only_whitespace(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	return true;
}

/* The line as one JSON object, or NULL (anything else: text, an array, trailing data). */
static cJSON *
parse_object(const char *line, size_t len)
{
	const char *end = NULL;
	cJSON	   *json;

	if (len == 0 || line[0] != '{')
		return NULL;
	json = cJSON_ParseWithLengthOpts(line, len, &end, false);
	if (json == NULL)
		return NULL;
	if (!cJSON_IsObject(json) || end == NULL || end < line || end > line + len ||
		!only_whitespace(end, line + len))
	{
		cJSON_Delete(json);
		return NULL;
	}
	return json;
}

/* Which known event an object is, by its "event" field. */
static ProgressKind
event_kind(const cJSON *json, bool *counts)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(json, "event");

	*counts = false;
	if (!cJSON_IsString(name) || name->valuestring == NULL)
		return PROGRESS_UNKNOWN;
	for (size_t i = 0; i < sizeof(event_kinds) / sizeof(event_kinds[0]); i++)
		if (strcmp(name->valuestring, event_kinds[i].name) == 0)
		{
			*counts = event_kinds[i].counts;
			return event_kinds[i].kind;
		}
	return PROGRESS_UNKNOWN;
}

/* Take the counters that are non-negative numbers within range. */
static void
read_counters(const cJSON *json, ProgressEvent *event)
{
	for (int c = 0; c < PROGRESS_NCOUNTERS; c++)
	{
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, counter_names[c]);

		/*
		 * The comparisons are false for NaN too.  The bound is strict:
		 * (double) PROGRESS_COUNTER_MAX rounds up to 2^62, and a number just
		 * below the maximum may round to it as well, which would convert to
		 * one more than the maximum.
		 */
		if (cJSON_IsNumber(item) && item->valuedouble >= 0 &&
			item->valuedouble < (double) PROGRESS_COUNTER_MAX)
		{
			event->counters[c] = (int64_t) item->valuedouble;
			event->present |= 1u << c;
		}
	}
}

/* Take the "message" of an event when it is a string. */
static void
read_message(const cJSON *json, ProgressEvent *event)
{
	const cJSON *message = cJSON_GetObjectItemCaseSensitive(json, "message");

	if (cJSON_IsString(message) && message->valuestring)
		event->message = message->valuestring;
}

/* Take the message, record and retryable of an error event. */
static void
read_error(const cJSON *json, ProgressEvent *event)
{
	const cJSON *record = cJSON_GetObjectItemCaseSensitive(json, "record");
	const cJSON *retryable = cJSON_GetObjectItemCaseSensitive(json, "retryable");

	read_message(json, event);
	if ((cJSON_IsString(record) && record->valuestring) || cJSON_IsNumber(record))
		event->record = record;
	if (cJSON_IsTrue(retryable))
		event->retryable = PROGRESS_RETRYABLE_YES;
	else if (cJSON_IsFalse(retryable))
		event->retryable = PROGRESS_RETRYABLE_NO;
}

/*
 * Take the message and retry_after of a rate_limited event: seconds, a
 * number of at least 0 (NaN and negative ones are absent), a day at most.
 */
static void
read_rate_limited(const cJSON *json, ProgressEvent *event)
{
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(json, "retry_after");

	read_message(json, event);
	/* the comparison is false for NaN too */
	if (cJSON_IsNumber(after) && after->valuedouble >= 0)
	{
		event->has_retry_after = true;
		event->retry_after = after->valuedouble < PROGRESS_RETRY_AFTER_MAX
			? after->valuedouble : PROGRESS_RETRY_AFTER_MAX;
	}
}

/*
 * Parse one line (without its newline; len bytes, not NUL-terminated).  The
 * caller frees the event with progress_event_free.
 */
void
progress_parse(const char *line, size_t len, ProgressEvent *event)
{
	bool		counts;

	memset(event, 0, sizeof(*event));
	event->kind = PROGRESS_TEXT;
	if ((event->json = parse_object(line, len)) == NULL)
		return;
	event->kind = event_kind(event->json, &counts);
	if (counts)
		read_counters(event->json, event);
	if (event->kind == PROGRESS_ERROR)
		read_error(event->json, event);
	else if (event->kind == PROGRESS_RATE_LIMITED)
		read_rate_limited(event->json, event);
}

/* Free what progress_parse allocated. */
void
progress_event_free(ProgressEvent *event)
{
	if (event->json)
		cJSON_Delete(event->json);
	memset(event, 0, sizeof(*event));
}
