#!/usr/bin/env bash
# Fuzz crm_dashboard's parsers of hostile input with libFuzzer (clang-14,
# Debian package libclang-rt-14-dev).  Usage: test/fuzz/run.sh [seconds]
# (per target, default 20).  Exits non-zero when a crash, leak or broken
# invariant is found; the reproducer is left in $FUZZ_BUILD_DIR/artifacts
# (default /tmp/crm_dashboard_fuzz).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
out=${FUZZ_BUILD_DIR:-/tmp/crm_dashboard_fuzz}
src=../../src
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src")
mkdir -p "$out/artifacts"

# fuzz_target NAME SOURCES...: build fuzz_NAME.c with the sources, run it.
fuzz_target() {
	local name=$1
	shift
	mkdir -p "$out/corpus_$name"
	clang-14 "${flags[@]}" -o "$out/fuzz_$name" "fuzz_$name.c" "$@"
	# New inputs go to a scratch corpus; the seeds in corpus_NAME stay small.
	"$out/fuzz_$name" -max_total_time="$seconds" -max_len=4096 -timeout=5 \
		-artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 \
		"$out/corpus_$name" "corpus_$name" 2>&1 | tail -n 15
	echo "fuzz $name: ${seconds}s without a crash"
}

fuzz_target query_parse "$src/http_query_parse.c"
fuzz_target cron "$src/schedules_cron.c"
fuzz_target cursor "$src/paging_cursor_codec.c" "$src/util_base64url.c" -lcjson
fuzz_target progress "$src/launcher_progress.c" "$src/launcher_mask.c" -lcjson
fuzz_target history "$src/log_chunk.c" "$src/fingerprint.c"
