#!/usr/bin/env bash
# Tests of the bundled HTTP server with real client libraries from npm,
# unchanged: @supabase/postgrest-js for views and functions, the eventsource
# package for /api/events.  A preloaded cluster with fixtures and users
# (cluster.py), then node --test on tests/.  Run after scripts/install-dev.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

# Install the pinned libraries from package-lock.json when they are missing
# or the lock file changed since they were installed.
if [ ! -d node_modules/@supabase/postgrest-js ] || [ ! -d node_modules/eventsource ] ||
	[ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi

env_file=$(mktemp)
cleanup() {
	/usr/bin/python3 "$here/cluster.py" stop || true
	rm -f "$env_file"
}
trap cleanup EXIT
/usr/bin/python3 "$here/cluster.py" start >"$env_file"
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
echo "API at $CRM_URL/api (cluster on port $PGPORT)"

node --test --test-concurrency=1 --test-reporter=tap tests/
