#!/usr/bin/env bash
# Browser tests of the web UI: a preloaded cluster with the demo warehouse and
# two users, then Playwright (playwright-core) drives Debian's Chromium through
# node --test.  Run after scripts/install-dev.  Screenshots go to screenshots/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if [ ! -d node_modules/playwright-core ]; then
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
echo "dashboard at $CRM_URL (cluster on port $PGPORT)"

mkdir -p screenshots
node --test --test-concurrency=1 --test-reporter=tap tests/
