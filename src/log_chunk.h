/*
 * log_chunk.h
 *		Cutting a run's output into the chunks of the log store
 *		(crm_dashboard.sync_log_chunk): whole lines where it can, never
 *		more than LOG_CHUNK_MAX bytes, never inside a UTF-8 character.
 *
 * Plain C only (no PostgreSQL headers): the launcher cuts the new tail of a
 * running log with it, crm_dashboard.log_split cuts a whole log (the update
 * that moves old logs into the store), and the fuzz target checks both.
 */
#ifndef CRM_DASHBOARD_LOG_CHUNK_H
#define CRM_DASHBOARD_LOG_CHUNK_H

#include <stddef.h>

/*
 * Largest chunk.  Small enough that a chunk's text search vector keeps
 * every word's position (tsvector positions stop at 16,383) and that a
 * search splits few lines per matching chunk; large enough that a chatty
 * command writes a few rows per flush, not thousands.
 */
#define LOG_CHUNK_MAX (32 * 1024)

extern size_t log_chunk_cut(const char *data, size_t len, size_t max);
extern size_t log_count_lines(const char *data, size_t len);

#endif							/* CRM_DASHBOARD_LOG_CHUNK_H */
