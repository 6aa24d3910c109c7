#!/bin/sh
# Launcher benchmark: start-to-exec latency (100 runs, p50/p95) beside COPY FROM
# PROGRAM, stop-to-gone latency beside a plain kill, and the launcher's memory
# while a command prints 1 GB beside its idle memory.  Needs test/install-dev first.
# BENCH_RUNS and BENCH_OUTPUT_BYTES override the sizes.
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/launcher_bench.py "$@"
