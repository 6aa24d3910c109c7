/*
 * launcher_output.c
 *		What a command prints: a fixed-size ring of its output (the run's log),
 *		and JSON-lines progress events parsed from stdout.
 *
 * Memory per run is the ring (log_limit bytes), one partial line of at most
 * LAUNCHER_LINE_MAX bytes and a few kept error events, whatever the command
 * prints.
 */
#include "postgres.h"

#include <errno.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "launcher.h"

/* Bytes per read(2); reads per stream per call bound the time spent on one chatty run. */
#define READ_CHUNK 65536
#define READS_PER_CALL 16

static char read_buffer[READ_CHUNK];

/* Allocate an empty ring of cap bytes. */
void
output_ring_init(OutputRing *ring, Size cap)
{
	ring->buf = palloc(cap);
	ring->cap = cap;
	ring->start = 0;
	ring->len = 0;
	ring->total = 0;
}

/* Append bytes, overwriting the oldest when full. */
void
output_ring_append(OutputRing *ring, const char *data, Size len)
{
	ring->total += len;
	if (len >= ring->cap)
	{
		memcpy(ring->buf, data + len - ring->cap, ring->cap);
		ring->start = 0;
		ring->len = ring->cap;
		return;
	}
	for (Size done = 0; done < len;)
	{
		Size		end = (ring->start + ring->len) % ring->cap;
		Size		n = Min(len - done, ring->cap - end);

		memcpy(ring->buf + end, data + done, n);
		done += n;
		ring->len += n;
		if (ring->len > ring->cap)
		{
			ring->start = (ring->start + ring->len - ring->cap) % ring->cap;
			ring->len = ring->cap;
		}
	}
}

/*
 * Replace in place what a text column cannot hold (NUL, invalid UTF-8) with
 * '?', so that no output, however broken, makes the run's UPDATE fail.
 */
static void
sanitize_in_place(char *data, Size len)
{
	Size		i = 0;

	while (i < len)
	{
		int			l = pg_utf_mblen((const unsigned char *) data + i);

		if (data[i] != '\0' && i + l <= len &&
			pg_utf8_islegal((const unsigned char *) data + i, l))
			i += l;
		else
			data[i++] = '?';
	}
}

/* A sanitized, NUL-terminated copy of len bytes (see sanitize_in_place). */
char *
text_sanitize(const char *data, Size len)
{
	char	   *out = palloc(len + 1);

	memcpy(out, data, len);
	sanitize_in_place(out, len);
	out[len] = '\0';
	return out;
}

/* Copy n kept bytes starting at logical offset from into dst. */
static void
ring_copy(const OutputRing *ring, Size from, Size n, char *dst)
{
	Size		pos = (ring->start + from) % ring->cap;
	Size		first = Min(n, ring->cap - pos);

	memcpy(dst, ring->buf + pos, first);
	memcpy(dst + first, ring->buf, n - first);
}

/*
 * The kept output as text (one allocation), starting at a line boundary
 * with a note when earlier bytes were dropped.
 */
char *
output_ring_text(const OutputRing *ring)
{
	char		header[100] = "";
	Size		skip = 0;
	Size		hlen;
	Size		n;
	char	   *out;

	if (ring->total > ring->len)
	{
		Size		first = Min(ring->len, ring->cap - ring->start);
		char	   *nl = memchr(ring->buf + ring->start, '\n', first);

		if (nl)
			skip = nl - (ring->buf + ring->start) + 1;
		else if ((nl = memchr(ring->buf, '\n', ring->len - first)) != NULL)
			skip = first + (nl - ring->buf) + 1;
		snprintf(header, sizeof(header), "[... " UINT64_FORMAT " bytes of earlier output dropped ...]\n",
				 ring->total - ring->len + skip);
	}
	hlen = strlen(header);
	n = ring->len - skip;
	out = palloc(hlen + n + 1);
	memcpy(out, header, hlen);
	ring_copy(ring, skip, n, out + hlen);
	sanitize_in_place(out + hlen, n);
	out[hlen + n] = '\0';
	return out;
}

/* Set up the two streams of a freshly spawned run (in the run's context). */
void
run_streams_init(Run *run, int out_fd, int err_fd)
{
	run->out.fd = out_fd;
	run->out.is_stdout = true;
	run->out.line = MemoryContextAlloc(run->cxt, LAUNCHER_LINE_MAX);
	run->out.line_len = 0;
	run->out.line_overlong = false;
	run->err.fd = err_fd;
	run->err.is_stdout = false;
	run->err.line = NULL;
	run->err.line_len = 0;
	run->err.line_overlong = false;
}

/* Read a non-negative count field of an event; false when absent or not a number. */
static bool
event_count(cJSON *event, const char *field, int64 *target)
{
	cJSON	   *item = cJSON_GetObjectItemCaseSensitive(event, field);

	if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > (double) PG_INT64_MAX / 2)
		return false;
	*target = (int64) item->valuedouble;
	return true;
}

/* Take the counters of a progress or summary event. */
static void
apply_counts(Run *run, cJSON *event)
{
	bool		any = false;

	any |= event_count(event, "processed", &run->processed);
	any |= event_count(event, "created", &run->created);
	any |= event_count(event, "updated", &run->updated);
	any |= event_count(event, "failed", &run->failed);
	any |= event_count(event, "total", &run->total);
	if (any)
		run->dirty = true;
}

/* Keep an error event (the last LAUNCHER_KEPT_ERRORS) and count it. */
static void
apply_error(Run *run, cJSON *event)
{
	cJSON	   *message = cJSON_GetObjectItemCaseSensitive(event, "message");
	cJSON	   *record = cJSON_GetObjectItemCaseSensitive(event, "record");
	cJSON	   *kept = cJSON_CreateObject();
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	char	   *msg = cJSON_IsString(message) ? message->valuestring : "(no message)";
	char	   *json;
	StringInfoData line;

	cJSON_AddStringToObject(kept, "message", msg);
	if (cJSON_IsString(record))
		cJSON_AddStringToObject(kept, "record", record->valuestring);
	else if (cJSON_IsNumber(record))
		cJSON_AddNumberToObject(kept, "record", record->valuedouble);
	json = cJSON_PrintUnformatted(kept);
	cJSON_Delete(kept);

	run->error_count++;
	if (list_length(run->errors) >= LAUNCHER_KEPT_ERRORS)
	{
		pfree(linitial(run->errors));
		run->errors = list_delete_first(run->errors);
	}
	run->errors = lappend(run->errors, text_sanitize(json, strlen(json)));
	free(json);
	if (run->last_error)
		pfree(run->last_error);
	run->last_error = text_sanitize(msg, strlen(msg));
	MemoryContextSwitchTo(old);

	initStringInfo(&line);
	appendStringInfo(&line, "error: %s\n", msg);
	output_ring_append(&run->log, line.data, line.len);
	pfree(line.data);
	run->log_dirty = true;
	run->dirty = true;
}

/* Remember a summary event (its JSON lands in performance_metrics). */
static void
apply_summary(Run *run, cJSON *event)
{
	char	   *json = cJSON_PrintUnformatted(event);

	apply_counts(run, event);
	if (run->summary)
		pfree(run->summary);
	run->summary = MemoryContextStrdup(run->cxt, text_sanitize(json, strlen(json)));
	free(json);
}

/* One complete stdout line: a progress event, or log text. */
static void
handle_stdout_line(Run *run, const char *line, Size len, bool overlong)
{
	cJSON	   *event = NULL;
	cJSON	   *kind;

	if (!overlong && len > 0 && line[0] == '{')
		event = cJSON_ParseWithLength(line, len);
	kind = event ? cJSON_GetObjectItemCaseSensitive(event, "event") : NULL;
	if (cJSON_IsString(kind) && strcmp(kind->valuestring, "progress") == 0)
		apply_counts(run, event);
	else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "error") == 0)
		apply_error(run, event);
	else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "summary") == 0)
		apply_summary(run, event);
	else
	{
		/* plain text, malformed JSON, or an event we do not know: log text */
		output_ring_append(&run->log, line, len);
		output_ring_append(&run->log, "\n", 1);
		run->log_dirty = true;
	}
	if (event)
		cJSON_Delete(event);
}

/* Split stdout data into lines, carrying the incomplete last one. */
static void
consume_stdout(Run *run, RunStream *s, const char *data, Size len)
{
	while (len > 0)
	{
		const char *nl = memchr(data, '\n', len);
		Size		seg = nl ? (Size) (nl - data) : len;

		if (s->line_len == 0 && !s->line_overlong && nl)
			handle_stdout_line(run, data, seg, seg > LAUNCHER_LINE_MAX);
		else
		{
			if (s->line_overlong || s->line_len + seg > LAUNCHER_LINE_MAX)
			{
				/* too long to parse: it is log text, pass it straight through */
				if (!s->line_overlong)
					output_ring_append(&run->log, s->line, s->line_len);
				output_ring_append(&run->log, data, seg);
				s->line_overlong = true;
				s->line_len = 0;
				run->log_dirty = true;
			}
			else
			{
				memcpy(s->line + s->line_len, data, seg);
				s->line_len += seg;
			}
			if (nl)
			{
				if (s->line_overlong)
					output_ring_append(&run->log, "\n", 1);
				else
					handle_stdout_line(run, s->line, s->line_len, false);
				s->line_len = 0;
				s->line_overlong = false;
			}
		}
		if (!nl)
			break;
		data += seg + 1;
		len -= seg + 1;
	}
}

/* Stderr is log text; its tail also feeds the message of a failed run. */
static void
consume_stderr(Run *run, const char *data, Size len)
{
	output_ring_append(&run->log, data, len);
	run->log_dirty = true;
	if (len >= LAUNCHER_STDERR_TAIL)
	{
		memcpy(run->stderr_tail, data + len - LAUNCHER_STDERR_TAIL, LAUNCHER_STDERR_TAIL);
		run->stderr_tail_len = LAUNCHER_STDERR_TAIL;
		return;
	}
	if (run->stderr_tail_len + len > LAUNCHER_STDERR_TAIL)
	{
		Size		keep = LAUNCHER_STDERR_TAIL - len;

		memmove(run->stderr_tail, run->stderr_tail + run->stderr_tail_len - keep, keep);
		run->stderr_tail_len = keep;
	}
	memcpy(run->stderr_tail + run->stderr_tail_len, data, len);
	run->stderr_tail_len += len;
}

/*
 * Read what is available on one stream without blocking.  Returns true when
 * more may be waiting (the read budget ran out), false at EAGAIN or EOF
 * (the fd is closed at EOF).
 */
bool
run_read_stream(Run *run, RunStream *s)
{
	for (int i = 0; i < READS_PER_CALL; i++)
	{
		ssize_t		n = read(s->fd, read_buffer, sizeof(read_buffer));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (n <= 0)
		{
			/* EOF (or an error we cannot recover from): flush the last line */
			if (s->is_stdout && (s->line_len > 0 || s->line_overlong))
				consume_stdout(run, s, "\n", 1);
			close(s->fd);
			s->fd = -1;
			return false;
		}
		run->peak_read = Max(run->peak_read, (uint64) n);
		if (s->is_stdout)
			consume_stdout(run, s, read_buffer, n);
		else
			consume_stderr(run, read_buffer, n);
	}
	return true;
}

/*
 * Close whatever pipe is still open.  A last stdout line without newline
 * still counts even though EOF was not seen: a process that left the
 * command's group (setsid) may hold the pipe open after the command exited.
 */
void
run_close_streams(Run *run)
{
	if (run->out.fd >= 0 && (run->out.line_len > 0 || run->out.line_overlong))
		consume_stdout(run, &run->out, "\n", 1);
	if (run->out.fd >= 0)
		close(run->out.fd);
	if (run->err.fd >= 0)
		close(run->err.fd);
	run->out.fd = run->err.fd = -1;
}

/* The last max_lines non-empty lines of stderr (or the last error event), for error_message. */
char *
run_error_lines(const Run *run, int max_lines)
{
	Size		end = run->stderr_tail_len;
	Size		start;
	int			lines = 0;

	while (end > 0 && (run->stderr_tail[end - 1] == '\n' || run->stderr_tail[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0)
	{
		if (run->stderr_tail[start - 1] == '\n' && ++lines >= max_lines)
			break;
		start--;
	}
	if (end > start)
		return text_sanitize(run->stderr_tail + start, end - start);
	return run->last_error ? pstrdup(run->last_error) : NULL;
}

/* performance_metrics of a run as JSON text. */
char *
run_metrics_json(const Run *run, TimestampTz now)
{
	StringInfoData buf;
	double		seconds = (double) (now - run->started_at) / USECS_PER_SEC;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"duration_seconds\": %.3f, \"records_per_second\": %.1f, "
					 "\"output_bytes\": " UINT64_FORMAT ", \"peak_read_bytes\": " UINT64_FORMAT
					 ", \"log_bytes_dropped\": " UINT64_FORMAT ", \"error_count\": " INT64_FORMAT
					 ", \"errors\": [",
					 seconds, seconds > 0 ? run->processed / seconds : 0.0,
					 run->log.total, run->peak_read, run->log.total - run->log.len,
					 run->error_count);
	foreach(lc, run->errors)
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) ? ", " : "", (char *) lfirst(lc));
	appendStringInfoChar(&buf, ']');
	if (run->summary)
		appendStringInfo(&buf, ", \"summary\": %s", run->summary);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}
