/*
 * fuzz_progress.c
 *		libFuzzer target for the JSON-lines progress parser
 *		(src/launcher_progress.c), which reads every line a sync command
 *		prints on stdout, and for the masking of secrets in what it yields
 *		(src/launcher_mask.c).
 *
 * Input: an optional secret, then a newline, then the line ("line" alone
 * when there is no newline).  The line is handed over in a buffer of its
 * exact size without a NUL, as the launcher does, so that AddressSanitizer
 * sees any read past its end.
 *
 * Invariants: no crash, leak or out-of-bounds access; the event's kind is a
 * known one and only a JSON object is an event; counters are present only
 * for events that carry them and never negative or out of range; a message
 * only for errors and rate limits, NUL-terminated and no longer than the
 * line; a record and a retryable verdict only for errors; a retry_after
 * only for rate limits, within 0..PROGRESS_RETRY_AFTER_MAX (never NaN).  After masking: the same invariants, no secret left in
 * any key or string of the event nor in the masked line, the masked line
 * never longer, masking again changes nothing, and the event still prints
 * as JSON that parses.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher_mask.h"
#include "launcher_progress.h"

/* Longest secret taken from an input. */
#define FUZZ_SECRET_MAX 64

/* Check what progress_parse promises about an event of a line of len bytes. */
static void
check_event(const ProgressEvent *ev, size_t len)
{
	unsigned	all = (1u << PROGRESS_NCOUNTERS) - 1;

	assert(ev->kind >= PROGRESS_TEXT && ev->kind <= PROGRESS_KIND_LAST);
	assert((ev->json == NULL) == (ev->kind == PROGRESS_TEXT));
	assert(ev->json == NULL || cJSON_IsObject(ev->json));
	assert((ev->present & ~all) == 0);
	if (ev->kind != PROGRESS_PROGRESS && ev->kind != PROGRESS_SUMMARY)
		assert(ev->present == 0);
	for (int c = 0; c < PROGRESS_NCOUNTERS; c++)
	{
		if (ev->present & (1u << c))
			assert(ev->counters[c] >= 0 && ev->counters[c] <= PROGRESS_COUNTER_MAX);
		else
			assert(ev->counters[c] == 0);
		assert(strcmp(progress_counter_name(c), "?") != 0);
	}
	if (ev->kind != PROGRESS_ERROR && ev->kind != PROGRESS_RATE_LIMITED)
		assert(ev->message == NULL);
	if (ev->kind != PROGRESS_ERROR)
		assert(ev->record == NULL && ev->retryable == PROGRESS_RETRYABLE_UNSAID);
	assert(ev->retryable == PROGRESS_RETRYABLE_UNSAID || ev->retryable == PROGRESS_RETRYABLE_YES ||
		   ev->retryable == PROGRESS_RETRYABLE_NO);
	if (ev->kind != PROGRESS_RATE_LIMITED)
		assert(!ev->has_retry_after);
	if (ev->has_retry_after)
		assert(ev->retry_after >= 0 && ev->retry_after <= PROGRESS_RETRY_AFTER_MAX);
	else
		assert(ev->retry_after == 0);
	if (ev->message)
		assert(strlen(ev->message) <= len);
	if (ev->record)
		assert((cJSON_IsString(ev->record) && ev->record->valuestring) || cJSON_IsNumber(ev->record));
}

/* No key or string of a JSON value holds the secret. */
static void
check_masked_tree(const cJSON *item, const char *secret, size_t slen)
{
	for (; item; item = item->next)
	{
		if (item->string)
			assert(memmem(item->string, strlen(item->string), secret, slen) == NULL);
		if (cJSON_IsString(item) && item->valuestring)
			assert(memmem(item->valuestring, strlen(item->valuestring), secret, slen) == NULL);
		check_masked_tree(item->child, secret, slen);
	}
}

/* The event still prints, and what it prints is JSON. */
static void
check_prints(const ProgressEvent *ev)
{
	char	   *printed;
	cJSON	   *again;

	if (ev->json == NULL)
		return;
	printed = cJSON_PrintUnformatted(ev->json);
	assert(printed != NULL);
	again = cJSON_Parse(printed);
	assert(again != NULL);
	cJSON_Delete(again);
	free(printed);
}

/* Mask the event and the line with one secret; check the results. */
static void
check_masking(ProgressEvent *ev, const char *line, size_t len, const char *secret, size_t slen)
{
	const char *values[1] = {secret};
	size_t		lens[1];
	SecretSet	set = {0, 1, values, lens, 0, false};
	char	   *copy = malloc(len ? len : 1);
	size_t		masked;

	secrets_add(&set, secret, slen);
	secrets_finish(&set);
	if (set.n == 0)
	{
		free(copy);
		return;					/* too short to mask */
	}
	secrets_mask_json(&set, ev->json);
	check_event(ev, len);
	check_masked_tree(ev->json, set.values[0], set.lens[0]);
	check_prints(ev);

	memcpy(copy, line, len);
	masked = secrets_mask(&set, copy, len);
	assert(masked <= len);
	assert(memmem(copy, masked, set.values[0], set.lens[0]) == NULL);
	assert(secrets_mask(&set, copy, masked) == masked);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	const char *secret = (const char *) data;
	size_t		slen = nl ? (size_t) (nl - secret) : 0;
	const char *text = nl ? nl + 1 : (const char *) data;
	size_t		len = size - (size_t) (text - (const char *) data);
	char	   *line = malloc(len ? len : 1);
	ProgressEvent ev;

	if (slen > FUZZ_SECRET_MAX || memchr(secret, '\0', slen) != NULL)
		slen = 0;
	memcpy(line, text, len);
	progress_parse(line, len, &ev);
	check_event(&ev, len);
	check_prints(&ev);
	if (slen > 0)
		check_masking(&ev, line, len, secret, slen);
	progress_event_free(&ev);
	free(line);
	return 0;
}
