#!/usr/bin/env bash
# Fuzz the URL/filter parser with libFuzzer (clang-14, Debian package
# libclang-rt-14-dev).  Usage: fuzz/run.sh [seconds]  (default 20).
# Exits non-zero when a crash, leak or broken invariant is found; the
# reproducer is left in $FUZZ_BUILD_DIR/artifacts (default /tmp/crm_dashboard_fuzz).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
out=${FUZZ_BUILD_DIR:-/tmp/crm_dashboard_fuzz}
mkdir -p "$out/artifacts"
work_corpus="$out/corpus"
mkdir -p "$work_corpus"
clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$out/fuzz_query_parse" fuzz_query_parse.c ../src/http_query_parse.c
# New inputs go to a scratch corpus; the seeds in fuzz/corpus stay small.
"$out/fuzz_query_parse" -max_total_time="$seconds" -max_len=4096 -timeout=5 \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$work_corpus" corpus 2>&1 | tail -n 15
echo "fuzz: ${seconds}s without a crash"
