/*
 * schedules_cron.h
 *		Checking cron expressions before they reach pg_cron, and when they
 *		fire next, in plain C with no PostgreSQL headers so that both can be
 *		fuzzed on their own.
 */
#ifndef SCHEDULES_CRON_H
#define SCHEDULES_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* How far ahead cron_next looks for a fire time, in days (four years and a day). */
#define CRON_HORIZON_DAYS 1462

/*
 * The first time after "after" (seconds since 1970-01-01 00:00 UTC) at which
 * an expression cron_check accepts fires, in UTC as pg_cron reads it: a whole
 * minute, strictly later.  The day matches as in Vixie cron: when both
 * day-of-month and day-of-week are restricted (neither starts with *), either
 * one will do.  Returns false for an expression cron_check refuses, for
 * @reboot, and when nothing fires within CRON_HORIZON_DAYS (say, February 30).
 */
extern bool cron_next(const char *expr, int64_t after, int64_t *next);

#endif							/* SCHEDULES_CRON_H */
