/*
 * launcher_output.c
 *		What a command prints: a fixed-size ring of its output (the run's log),
 *		and JSON-lines progress events parsed from stdout
 *		(launcher_progress.c), with the run's secrets masked
 *		(launcher_mask.c) in everything kept.
 *
 * Both streams are split into lines: a complete line is masked and kept (or,
 * on stdout, parsed as an event), a line longer than LAUNCHER_LINE_MAX is
 * kept in masked pieces.  Memory per run is the ring (log_limit bytes), one
 * partial line per stream of at most LAUNCHER_LINE_MAX bytes plus the
 * longest secret, and a few kept error events, whatever the command prints.
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
#include "log_chunk.h"
#include "launcher_progress.h"

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
	ring->lines = 0;
}

/* Append bytes, overwriting the oldest when full. */
void
output_ring_append(OutputRing *ring, const char *data, Size len)
{
	ring->total += len;
	ring->lines += log_count_lines(data, len);
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
 * Copy n bytes of the output from offset from (counted from the first byte
 * ever appended) into dst; they must still be kept.
 */
void
output_ring_copy(const OutputRing *ring, uint64 from, Size n, char *dst)
{
	uint64		kept_from = ring->total - ring->len;

	Assert(from >= kept_from && from + n <= ring->total);
	ring_copy(ring, (Size) (from - kept_from), n, dst);
}

/* An empty stream: room for one line plus the longest secret (see flush_piece). */
static void
stream_init(Run *run, RunStream *s, int fd, bool is_stdout)
{
	s->fd = fd;
	s->is_stdout = is_stdout;
	s->line_cap = LAUNCHER_LINE_MAX + run->secrets.longest;
	s->line = MemoryContextAlloc(run->cxt, s->line_cap);
	s->line_len = 0;
	s->line_overlong = false;
}

/* Set up the two streams of a freshly spawned run (its secrets already known). */
void
run_streams_init(Run *run, int out_fd, int err_fd)
{
	stream_init(run, &run->out, out_fd, true);
	stream_init(run, &run->err, err_fd, false);
}

/* Keep the newest LAUNCHER_STDERR_TAIL bytes of stderr, for the error message. */
static void
tail_append(Run *run, const char *data, Size len)
{
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

/* Keep already masked text of a stream: in the log, and for stderr in its tail. */
static void
keep_text(Run *run, const RunStream *s, const char *data, Size len)
{
	output_ring_append(&run->log, data, len);
	if (!s->is_stdout)
		tail_append(run, data, len);
	run->log_dirty = true;
}

/* Mask a complete line in place and keep it, with its newline. */
static void
keep_line(Run *run, const RunStream *s, char *line, Size len)
{
	keep_text(run, s, line, secrets_mask(&run->secrets, line, len));
	keep_text(run, s, "\n", 1);
}

/* Take the counters an event carries. */
static void
apply_counts(Run *run, const ProgressEvent *ev)
{
	int64	   *targets[PROGRESS_NCOUNTERS] = {
		[PROGRESS_PROCESSED] = &run->processed,
		[PROGRESS_CREATED] = &run->created,
		[PROGRESS_UPDATED] = &run->updated,
		[PROGRESS_FAILED] = &run->failed,
		[PROGRESS_TOTAL] = &run->total,
	};

	for (int c = 0; c < PROGRESS_NCOUNTERS; c++)
		if (ev->present & (1u << c))
			*targets[c] = ev->counters[c];
	if (ev->present)
		run->dirty = true;
}

/*
 * Keep an error event (the last LAUNCHER_KEPT_ERRORS) and count it; its
 * strings are masked.  "retryable": false marks the run's failure permanent.
 */
static void
apply_error(Run *run, const ProgressEvent *ev)
{
	cJSON	   *kept = cJSON_CreateObject();
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	const char *msg = ev->message ? ev->message : "(no message)";
	char	   *json;
	StringInfoData line;

	cJSON_AddStringToObject(kept, "message", msg);
	if (cJSON_IsString(ev->record))
		cJSON_AddStringToObject(kept, "record", ev->record->valuestring);
	else if (cJSON_IsNumber(ev->record))
		cJSON_AddNumberToObject(kept, "record", ev->record->valuedouble);
	json = cJSON_PrintUnformatted(kept);
	cJSON_Delete(kept);

	run->error_count++;
	if (ev->retryable == PROGRESS_RETRYABLE_NO)
		run->permanent = true;
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

/*
 * The command waits for the CRM's rate limit: it is not stalled until the
 * wait ends, its row says until when, and exiting 75 (EX_TEMPFAIL) now
 * means "retry when the wait ends" (launcher_runs.c).  Without a
 * retry_after it is only noted in the log.
 */
static void
apply_rate_limited(Run *run, const ProgressEvent *ev)
{
	const char *msg = ev->message ? ev->message : "(no message)";
	StringInfoData line;

	initStringInfo(&line);
	if (ev->has_retry_after)
	{
		run->rate_limited = true;
		run->rate_wait_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   (int64) (ev->retry_after * 1000));
		run->dirty = true;
		appendStringInfo(&line, "rate limited for %.0f s: %s\n", ev->retry_after, msg);
	}
	else
		appendStringInfo(&line, "rate limited: %s\n", msg);
	if (run->rate_message)
		pfree(run->rate_message);
	run->rate_message = MemoryContextStrdup(run->cxt, text_sanitize(msg, strlen(msg)));
	output_ring_append(&run->log, line.data, line.len);
	pfree(line.data);
	run->log_dirty = true;
}

/* Remember a summary event, masked (its JSON lands in performance_metrics). */
static void
apply_summary(Run *run, const ProgressEvent *ev)
{
	char	   *json = cJSON_PrintUnformatted(ev->json);

	apply_counts(run, ev);
	if (run->summary)
		pfree(run->summary);
	run->summary = MemoryContextStrdup(run->cxt, text_sanitize(json, strlen(json)));
	free(json);
}

/*
 * An event this version does not know is log text, as written, unless a
 * secret was found in its decoded strings (it may have been written with
 * JSON escapes): then its masked JSON is kept instead.
 */
static void
keep_unknown_event(Run *run, const RunStream *s, const ProgressEvent *ev, bool masked,
				   char *line, Size len)
{
	char	   *json;

	if (!masked)
	{
		keep_line(run, s, line, len);
		return;
	}
	json = cJSON_PrintUnformatted(ev->json);
	keep_line(run, s, json, strlen(json));
	free(json);
}

/*
 * One complete stdout line of at most LAUNCHER_LINE_MAX bytes: a progress
 * event, or log text.  The counters are taken before the event's strings
 * are masked, so that a counter that happens to equal a secret still counts.
 */
static void
handle_stdout_line(Run *run, RunStream *s, char *line, Size len)
{
	ProgressEvent ev;
	bool		masked;

	progress_parse(line, len, &ev);
	masked = secrets_mask_json(&run->secrets, ev.json);
	switch (ev.kind)
	{
		case PROGRESS_PROGRESS:
			apply_counts(run, &ev);
			break;
		case PROGRESS_ERROR:
			apply_error(run, &ev);
			break;
		case PROGRESS_SUMMARY:
			apply_summary(run, &ev);
			break;
		case PROGRESS_RATE_LIMITED:
			apply_rate_limited(run, &ev);
			break;
		case PROGRESS_HEARTBEAT:
			/* reading it was the point: the stall clock moved */
			break;
		case PROGRESS_UNKNOWN:
			keep_unknown_event(run, s, &ev, masked, line, len);
			break;
		case PROGRESS_TEXT:
			keep_line(run, s, line, len);
			break;
	}
	progress_event_free(&ev);
}

/*
 * The pending line outgrew its buffer: it is log text, kept in pieces.
 * Keep all of it, masked, but for a tail as long as the longest secret but
 * one, which stays pending: a secret cut by this boundary has its start in
 * that tail and is masked with the rest of it in the next piece.
 */
static void
flush_piece(Run *run, RunStream *s)
{
	Size		len = secrets_mask(&run->secrets, s->line, s->line_len);
	Size		carry = Min(len, run->secrets.longest > 0 ? run->secrets.longest - 1 : 0);

	keep_text(run, s, s->line, len - carry);
	memmove(s->line, s->line + len - carry, carry);
	s->line_len = carry;
	s->line_overlong = true;
}

/* Append data without a newline to the pending line. */
static void
line_append(Run *run, RunStream *s, const char *data, Size len)
{
	while (len > 0)
	{
		Size		n = Min(len, s->line_cap - s->line_len);

		memcpy(s->line + s->line_len, data, n);
		s->line_len += n;
		data += n;
		len -= n;
		if (s->line_len == s->line_cap)
			flush_piece(run, s);
	}
}

/* The pending line is complete: an event or text (stdout), text (stderr). */
static void
line_end(Run *run, RunStream *s)
{
	if (s->line_overlong || s->line_len > LAUNCHER_LINE_MAX)
		keep_line(run, s, s->line, s->line_len);
	else if (s->is_stdout)
		handle_stdout_line(run, s, s->line, s->line_len);
	else
		keep_line(run, s, s->line, s->line_len);
	s->line_len = 0;
	s->line_overlong = false;
}

/*
 * Split a stream's data into lines, carrying the incomplete last one.
 * Output is masked per complete line, so that a secret written in two
 * parts is still found.
 */
static void
consume(Run *run, RunStream *s, const char *data, Size len)
{
	while (len > 0)
	{
		const char *nl = memchr(data, '\n', len);
		Size		seg = nl ? (Size) (nl - data) : len;

		line_append(run, s, data, seg);
		if (!nl)
			break;
		line_end(run, s);
		data += seg + 1;
		len -= seg + 1;
	}
}

/* The last line of a stream that ended without a newline. */
static void
finish_stream(Run *run, RunStream *s)
{
	if (s->line_len > 0 || s->line_overlong)
		line_end(run, s);
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
			/* EOF (or an error we cannot recover from): the last line counts */
			finish_stream(run, s);
			close(s->fd);
			s->fd = -1;
			return false;
		}
		run->peak_read = Max(run->peak_read, (uint64) n);
		run->last_output_at = GetCurrentTimestamp();
		consume(run, s, read_buffer, n);
	}
	return true;
}

/*
 * Close whatever pipe is still open.  A last line without newline still
 * counts even though EOF was not seen: a process that left the command's
 * group may have held the pipe open after the command exited.
 */
void
run_close_streams(Run *run)
{
	if (run->out.fd >= 0)
	{
		finish_stream(run, &run->out);
		close(run->out.fd);
	}
	if (run->err.fd >= 0)
	{
		finish_stream(run, &run->err);
		close(run->err.fd);
	}
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
