#!/bin/sh
# Alerts benchmark: commit-to-webhook latency (p50/p95 over BENCH_RUNS new
# alerts) beside LISTEN latency of the same commits, then the same with a
# second channel on the rule that never answers (the healthy channel's p95
# should stay within 2x).  Needs scripts/install-dev first.
#   bench/alerts.sh        BENCH_RUNS overrides the count (default 100).
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/alerts_bench.py "$@"
