#!/usr/bin/env bash
# Benchmark of the bundled HTTP server, each figure beside a baseline from
# the same run:
#   GET /api/crm_sources with wrk        vs  pgbench running the same query
#   CSV export of a model (export_rows)  vs  COPY (...) TO STDOUT of the same rows
#   run change -> SSE client latency     vs  LISTEN/NOTIFY client latency
# Usage: bench/http.sh [seconds per load test, default 10]
# Needs wrk (apt-get install -y wrk) and the extension installed (test/install-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
exec /usr/bin/python3 bench/http_bench.py "${1:-10}"
