#!/bin/sh
# Launcher benchmark: start-to-exec latency (100 runs, p50/p95) beside COPY FROM
# PROGRAM, stop-to-gone latency beside a plain kill, the launcher's memory
# while a command prints 1 GB beside its idle memory, the claim step's decision
# time per wake-up with 10,000 queued runs over 1,000,000 history rows beside
# the same with 10 queued, and how late retries start against their due time
# beside pg_sleep's own lateness.  Needs scripts/install-dev first.
#   bench/launcher.sh [exec] [stop] [memory] [decide] [retries]   (default: all)
# BENCH_RUNS and BENCH_OUTPUT_BYTES override the sizes.
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/launcher_bench.py "$@"
