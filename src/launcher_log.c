/*
 * launcher_log.c
 *		Writing a running log into the log store (crm_dashboard.sync_log_chunk,
 *		src/logs.sql): only what the command printed since the last write,
 *		as new chunks, so that a flush costs what is new, not the whole log.
 *
 * The output ring (launcher_output.c) keeps the newest log_limit bytes; the
 * store keeps at most as much: chunks that reach before the newest
 * log_limit bytes are deleted, by primary key, as the log grows.  A chunk
 * is never rewritten.  Runs inside the launcher's batch transaction with
 * SPI connected.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "launcher.h"
#include "log_chunk.h"

/* Run a statement with parameters; anything but the expected result is an error. */
static void
log_exec(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "crm_dashboard launcher: statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
}

/* Note that a chunk beginning at first_byte is kept (in the run's memory). */
static void
note_chunk(Run *run, uint64 first_byte)
{
	if (run->log_starts == NULL)
	{
		run->log_starts_cap = 64;
		run->log_starts = MemoryContextAlloc(run->cxt, sizeof(uint64) * run->log_starts_cap);
	}
	else if (run->log_kept == run->log_starts_cap)
	{
		run->log_starts_cap *= 2;
		run->log_starts = repalloc(run->log_starts, sizeof(uint64) * run->log_starts_cap);
	}
	run->log_starts[run->log_kept++] = first_byte;
}

/*
 * Insert text[0..len), which begins at byte offset first_byte and line
 * first_line of the output, as chunks numbered after run->log_seq.
 */
static void
insert_chunks(Run *run, const char *text, Size len, uint64 first_byte, uint64 first_line)
{
	int			cap = (int) (len / (LOG_CHUNK_MAX / 2)) + 2;
	Datum	   *seqs = palloc(sizeof(Datum) * cap);
	Datum	   *lines = palloc(sizeof(Datum) * cap);
	Datum	   *bytes = palloc(sizeof(Datum) * cap);
	Datum	   *bodies = palloc(sizeof(Datum) * cap);
	Oid			types[5] = {INT8OID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
	Datum		values[5];
	int			n = 0;
	Size		done = 0;

	while (done < len)
	{
		/* a chunk ends inside a line only when one line is longer than a chunk */
		Size		cut = log_chunk_cut(text + done, len - done, LOG_CHUNK_MAX);

		if (n == cap)
		{
			cap *= 2;
			seqs = repalloc(seqs, sizeof(Datum) * cap);
			lines = repalloc(lines, sizeof(Datum) * cap);
			bytes = repalloc(bytes, sizeof(Datum) * cap);
			bodies = repalloc(bodies, sizeof(Datum) * cap);
		}
		seqs[n] = Int32GetDatum(run->log_seq + n + 1);
		lines[n] = Int64GetDatum((int64) first_line);
		bytes[n] = Int64GetDatum((int64) (first_byte + done));
		bodies[n] = PointerGetDatum(cstring_to_text_with_len(text + done, cut));
		note_chunk(run, first_byte + done);
		first_line += log_count_lines(text + done, cut);
		done += cut;
		n++;
	}
	values[0] = Int64GetDatum(run->id);
	values[1] = PointerGetDatum(construct_array(seqs, n, INT4OID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(lines, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(bytes, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[4] = PointerGetDatum(construct_array(bodies, n, TEXTOID, -1, false, TYPALIGN_INT));
	log_exec("INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body) "
			 "SELECT $1, c.seq, c.first_line, c.first_byte, c.body "
			 "FROM unnest($2, $3, $4, $5) AS c(seq, first_line, first_byte, body)",
			 5, types, values, SPI_OK_INSERT);
	run->log_seq += n;
}

/*
 * Delete the chunks that begin before the newest log_limit bytes of the
 * output, so that the store keeps of a run at most what the ring keeps.
 * Their numbers are known here, so this is a range of the primary key.
 */
static void
trim_chunks(Run *run)
{
	uint64		limit_from = run->log.total > run->log.cap ? run->log.total - run->log.cap : 0;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	int			drop = 0;

	while (drop < run->log_kept && run->log_starts[drop] < limit_from)
		drop++;
	if (drop == 0)
		return;
	memmove(run->log_starts, run->log_starts + drop, sizeof(uint64) * (run->log_kept - drop));
	run->log_kept -= drop;
	values[0] = Int64GetDatum(run->id);
	values[1] = Int32GetDatum(run->log_seq - run->log_kept + 1);
	log_exec("DELETE FROM crm_dashboard.sync_log_chunk WHERE run_id = $1 AND seq < $2",
			 2, types, values, SPI_OK_DELETE);
}

/*
 * Write what the run printed since the last write (what is still kept of
 * it: more than log_limit bytes between two writes lose their oldest).
 */
void
runs_write_log(Run *run)
{
	OutputRing *ring = &run->log;
	uint64		kept_from = ring->total - ring->len;
	uint64		from = Max(run->log_written, kept_from);
	Size		n = (Size) (ring->total - from);
	char	   *raw;
	char	   *text;

	if (n == 0)
		return;
	raw = palloc(n);
	output_ring_copy(ring, from, n, raw);
	/* what a text column cannot hold (NUL, invalid UTF-8) becomes '?' */
	text = text_sanitize(raw, n);
	insert_chunks(run, text, n, from, ring->lines - log_count_lines(raw, n) + 1);
	run->log_written = ring->total;
	trim_chunks(run);
	pfree(raw);
	pfree(text);
}
