/*
 * schedules_cron.h
 *		Checking cron expressions before they reach pg_cron, in plain C with
 *		no PostgreSQL headers so that the checker can be fuzzed on its own.
 */
#ifndef SCHEDULES_CRON_H
#define SCHEDULES_CRON_H

#include <stdbool.h>
#include <stddef.h>

/* Longest expression accepted, in bytes. */
#define CRON_MAX_LENGTH 256

/*
 * Whether expr is a schedule pg_cron 1.4 runs as written: "@hourly" and the
 * other macros, or five fields (minute hour day-of-month month day-of-week)
 * of *, numbers, names, ranges, lists and steps.  Anything pg_cron would
 * ignore or misread (extra fields, a range running backwards, a step
 * without a range) is refused.  On false, why holds a phrase (lower case,
 * no final period) naming the offending part.
 */
extern bool cron_check(const char *expr, char *why, size_t whylen);

#endif							/* SCHEDULES_CRON_H */
