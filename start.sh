#!/usr/bin/env bash
# Run crm_dashboard on this machine: install what it needs, build and install
# the extension, start a local PostgreSQL cluster (in .demo/, owned by the
# postgres user) with the extension preloaded and the demo CRM warehouse
# loaded, serve the web UI, and print where to open it.
#
# Idempotent: a second run rebuilds, restarts the cluster and keeps its data.
#   --reset        recreate the demo database from scratch
#   PGPORT=N       PostgreSQL port (default 54320)
#   HTTP_PORT=N    web UI / API port (default 8787)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# Installing packages and the extension needs root: become it with sudo when
# there is one (a bare root machine has none, and needs none).
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "start.sh: run it as root (there is no sudo here)" >&2; exit 1; }
	exec sudo -E "$0" "$@"
fi
PGPORT=${PGPORT:-54320}
HTTP_PORT=${HTTP_PORT:-8787}
DB=crm
STATE=$ROOT/.demo
# The cluster lives in the project directory, unless postgres cannot reach it
# (a checkout under /root, say): then beside the other PostgreSQL data.
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$ROOT/demo/load.sh" 2>/dev/null; then
	STATE=/var/lib/postgresql/crm_dashboard-demo
	echo "note: postgres cannot read $ROOT; the demo cluster lives in $STATE"
fi
DATA=$STATE/data
reset=false
[ "${1:-}" = "--reset" ] && reset=true

as_postgres() { runuser -u postgres -- "$@"; }
step() { printf '\n==> %s\n' "$*"; }

step "Installing packages (Debian)"
scripts/install-deps

step "Building and installing the extension and the demo's sync simulator"
make -s
make -s install
make -s -C demo
BINDIR=$(pg_config --bindir)

step "Preparing the cluster in $DATA"
mkdir -p "$STATE"
chown postgres:postgres "$STATE"
if [ ! -f "$DATA/PG_VERSION" ]; then
	as_postgres "$BINDIR/initdb" -D "$DATA" -U postgres -A peer --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	secret=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)
	as_postgres tee -a "$DATA/postgresql.conf" >/dev/null <<-EOF
		# crm_dashboard demo
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$STATE'
		shared_preload_libraries = 'crm_dashboard,pg_cron'
		cron.database_name = '$DB'
		crm_dashboard.database_name = '$DB'
		crm_dashboard.http_listen = '127.0.0.1'
		crm_dashboard.jwt_secret = '$secret'
	EOF
	as_postgres chmod 600 "$DATA/postgresql.conf"
fi
# The ports may change between runs; the last setting in the file wins.
as_postgres sed -i '/^port = \|^crm_dashboard.http_port = /d' "$DATA/postgresql.conf"
printf 'port = %s\ncrm_dashboard.http_port = %s\n' "$PGPORT" "$HTTP_PORT" | as_postgres tee -a "$DATA/postgresql.conf" >/dev/null

step "Starting PostgreSQL on port $PGPORT"
if as_postgres "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
	as_postgres "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
fi
as_postgres "$BINDIR/pg_ctl" -D "$DATA" -l "$STATE/server.log" -w -t 60 start >/dev/null
export PGHOST=$STATE PGPORT PGUSER=postgres
psql_as() { as_postgres env PGHOST="$PGHOST" PGPORT="$PGPORT" "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# The demo database is rebuilt when asked, or when the extension's install
# script or the demo changed since it was built (same version, new objects).
stamp=$(cat "$(pg_config --sharedir)/extension/crm_dashboard--"*.sql demo/*.sql demo/load.sh demo/crm_sync_simulator.c | md5sum | cut -d' ' -f1)
if [ "$(cat "$STATE/demo.stamp" 2>/dev/null)" != "$stamp" ]; then reset=true; fi
if $reset; then psql_as -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; fi
if [ -z "$(psql_as -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
	step "Creating database $DB with the demo CRM warehouse (about ten seconds)"
	psql_as -d postgres -c "CREATE DATABASE $DB"
	psql_as -d "$DB" -c "CREATE EXTENSION crm_dashboard; CREATE EXTENSION pg_cron;"
	# The demo files (and the simulator the launcher runs) are read by the
	# postgres user: give it its own copy.
	rm -rf "$STATE/demo" && cp -r demo "$STATE/demo"
	chown -R postgres "$STATE/demo"
	as_postgres env PGHOST="$PGHOST" PGPORT="$PGPORT" PGDATABASE="$DB" "$STATE/demo/load.sh" "$DB"
	echo "$stamp" >"$STATE/demo.stamp"
fi

step "Creating dashboard users"
admin_pw=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 16)
viewer_pw=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 16)
psql_as -d "$DB" -o /dev/null -v admin_pw="$admin_pw" -v viewer_pw="$viewer_pw" <<'EOF'
-- new passwords on every run; the users themselves are kept
SELECT CASE WHEN EXISTS (SELECT FROM crm_dashboard.dashboard_user WHERE username = 'admin')
            THEN crm_api.set_password('admin', :'admin_pw')::text
            ELSE crm_api.create_user('admin', :'admin_pw', 'crm_dashboard_admin')::text END;
SELECT CASE WHEN EXISTS (SELECT FROM crm_dashboard.dashboard_user WHERE username = 'viewer')
            THEN crm_api.set_password('viewer', :'viewer_pw')::text
            ELSE crm_api.create_user('viewer', :'viewer_pw', 'crm_dashboard_viewer')::text END;
EOF
umask 077
printf 'admin %s\nviewer %s\n' "$admin_pw" "$viewer_pw" >"$STATE/credentials"

# Something to watch live at first sight: every HubSpot model, one after another
# (the simulator takes a minute or two).  Skipped if one is already running.
live_run=$(psql_as -d "$DB" -Atc "SELECT crm_api.start_sync('hubspot', 'all')" 2>/dev/null || true)
live_line=""
[ -n "$live_run" ] && live_line="  Live now:  a sync of all HubSpot models (run $live_run) is running; watch it in the UI or with LISTEN

"

# Hints in the form that works for whoever ran this: through sudo, or as root.
if [ -n "${SUDO_USER:-}" ]; then as_pg_hint="sudo -u postgres"; else as_pg_hint="runuser -u postgres --"; fi

url="http://127.0.0.1:$HTTP_PORT/"
for _ in $(seq 1 50); do curl -fs -o /dev/null "$url" && break; sleep 0.2; done
curl -fs -o /dev/null "$url" || echo "warning: the web UI does not answer yet at $url; see $STATE/server.log"

cat <<EOF

crm_dashboard is running.

  Web UI:    $url
             log in as  admin / $admin_pw   (operator and administrator)
                   or   viewer / $viewer_pw  (read only)
             (also kept in $STATE/credentials)

${live_line}  psql:      $as_pg_hint psql -h $STATE -p $PGPORT -d $DB

  Try:       SELECT * FROM crm_api.crm_sources;
             SELECT model, estimated_rows, last_status, health FROM crm_api.crm_models WHERE crm = 'hubspot';
             SELECT crm_api.model_rows('hubspot', 'contact', per_page => 5, search => 'smith', sort => 'lastname');
             SELECT crm_api.start_sync('hubspot', 'contact', '{"full": true}');   -- then: LISTEN crm_dashboard_sync;

  Stop:      $as_pg_hint $BINDIR/pg_ctl -D $DATA stop
EOF
