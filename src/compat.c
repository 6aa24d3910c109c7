/*
 * compat.c
 *		The C symbol names of crm_dashboard 1.0.0, kept as aliases.
 *
 * 1.0.0 named its SQL-callable functions four ways; 1.0.1 names every one
 * crm_dashboard_<sqlname>.  A database still at 1.0.0 (between installing
 * the new library and ALTER EXTENSION crm_dashboard UPDATE), a dump being
 * restored, or pg_upgrade recreating 1.0.0's functions, still refers to the
 * old names: without them its functions could not even be created.  Each
 * alias only forwards to the function of today, so it has today's checks.
 * Nothing refers to these names once the database is updated.
 */
#include "postgres.h"

#include "fmgr.h"

#define CRM_COMPAT_ALIAS(old_name, new_name) \
	extern PGDLLEXPORT Datum new_name(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(old_name); \
	Datum old_name(PG_FUNCTION_ARGS) { return new_name(fcinfo); }

CRM_COMPAT_ALIAS(crm_sources, crm_dashboard_crm_sources)
CRM_COMPAT_ALIAS(crm_models, crm_dashboard_crm_models)
CRM_COMPAT_ALIAS(crm_model_columns, crm_dashboard_model_columns)
CRM_COMPAT_ALIAS(crm_model_detail, crm_dashboard_model_detail)
CRM_COMPAT_ALIAS(model_rows, crm_dashboard_model_rows)
CRM_COMPAT_ALIAS(export_rows, crm_dashboard_export_rows)
CRM_COMPAT_ALIAS(count_rows, crm_dashboard_count_rows)
CRM_COMPAT_ALIAS(crm_start_sync, crm_dashboard_start_sync)
CRM_COMPAT_ALIAS(crm_command_preview, crm_dashboard_command_preview)
CRM_COMPAT_ALIAS(crm_wake_launcher, crm_dashboard_wake_launcher)
CRM_COMPAT_ALIAS(announce_sync_change, crm_dashboard_announce_sync_change)
CRM_COMPAT_ALIAS(announce_recent, crm_dashboard_recent_announcements)
