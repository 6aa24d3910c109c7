/*
 * sync_options.h
 *		The options of a sync request (src/sync_options.c).
 */
#ifndef CRM_DASHBOARD_SYNC_OPTIONS_H
#define CRM_DASHBOARD_SYNC_OPTIONS_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* The options, in the order their flags are appended to argv. */
typedef enum SyncOptionId
{
	SYNC_OPTION_FORCE,
	SYNC_OPTION_FULL,
	SYNC_OPTION_SINCE,
	SYNC_OPTION_DRY_RUN,
	SYNC_OPTION_MAX_RECORDS,
	SYNC_OPTION_BATCH_SIZE,
	SYNC_OPTION_DEBUG,
	SYNC_OPTION_TIMEOUT,
	SYNC_OPTION_IGNORE_PAUSE,
	SYNC_OPTION_COUNT
} SyncOptionId;

/* A validated options object: which options were given, with their values. */
typedef struct SyncOptions
{
	bool		given[SYNC_OPTION_COUNT];
	bool		boolean[SYNC_OPTION_COUNT];
	int64		number[SYNC_OPTION_COUNT];
	char	   *text[SYNC_OPTION_COUNT];
} SyncOptions;

extern SyncOptions *sync_options_parse(Jsonb *options);
extern int64 sync_options_number(const SyncOptions *opts, SyncOptionId id);
extern bool sync_options_flag(const SyncOptions *opts, SyncOptionId id);
extern List *sync_options_append_flags(List *argv, const SyncOptions *opts);

#endif							/* CRM_DASHBOARD_SYNC_OPTIONS_H */
