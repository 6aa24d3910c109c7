#!/usr/bin/env bash
# Benchmark of the bundled HTTP server, each figure beside a baseline from
# the same run (bench/http_bench.py says what it measures):
#   GET /api/crm_sources with wrk          vs  pgbench -M prepared of the same SQL
#   its p99 while 8 slow requests run      vs  its p99 with nothing else running
#   client disconnect -> query gone        vs  pg_cancel_backend() -> query gone
#   CSV export of a model (export_rows)    vs  COPY (...) TO STDOUT of the same rows
#   5,000 idle event streams: memory, CPU, and a run change reaching them all
#                                          vs  LISTEN/NOTIFY to one client
# Sizes: BENCH_CONNECTIONS, BENCH_STREAMS, BENCH_IDLE_SECONDS, BENCH_SLOW_ROWS.
# Usage: bench/http.sh [seconds per load test, default 10]
# Needs wrk (apt-get install -y wrk) and the extension installed (scripts/install-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
exec /usr/bin/python3 bench/http_bench.py "${1:-10}"
