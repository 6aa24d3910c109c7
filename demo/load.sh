#!/usr/bin/env bash
# Load the demo warehouse into an existing database: schema "ingestion" with
# tables for all ten CRMs, their data, a realistic sync history, and (when the
# command registry exists) the CRM sync simulator registered for every CRM.
#
# Usage: demo/load.sh DBNAME      (connection from PGHOST / PGPORT / PGUSER)
# The simulator registered as every CRM's command is $CRM_SYNC_SIMULATOR,
# else demo/crm_sync_simulator beside this script (make -C demo builds it).
# Idempotent: the schema is dropped and recreated, the history replaced.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DBNAME" >&2
	exit 2
fi
db=$1
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(pg_config --bindir)
simulator=${CRM_SYNC_SIMULATOR:-$here/crm_sync_simulator}

run_psql() {
	"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}

start=$(date +%s%N)
# Scripts print nothing but errors: notices and query results are noise here.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
run_psql -c 'CREATE EXTENSION IF NOT EXISTS crm_dashboard'
run_psql -o /dev/null -f "$here/schema.sql"
run_psql -o /dev/null -f "$here/data.sql"
run_psql -o /dev/null -f "$here/history.sql"

has_registry=$(run_psql -At -c "SELECT to_regclass('crm_dashboard.sync_command') IS NOT NULL")
if [ "$has_registry" = t ]; then
	[ -x "$simulator" ] || echo "warning: $simulator is not an executable; build it with make -C demo" >&2
	run_psql -o /dev/null -v simulator="$simulator" -f "$here/commands.sql"
else
	echo "note: crm_dashboard.sync_command does not exist; sync commands not registered" >&2
fi

elapsed_ms=$((($(date +%s%N) - start) / 1000000))
summary=$(run_psql -At -c "
	SELECT format('%s tables, %s rows, %s sync runs',
	              count(*), sum(c.reltuples::bigint),
	              (SELECT count(*) FROM crm_dashboard.sync_history))
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'ingestion' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
	  AND c.relname NOT IN ('django_migrations', 'auth_user')")
printf 'demo loaded into %s in %d.%03d s: %s\n' "$db" $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "$summary"
