#!/usr/bin/env bash
# Fuzz crm_dashboard's parsers of hostile input with libFuzzer (clang-14,
# Debian package libclang-rt-14-dev).  Usage: test/fuzz/run.sh [runs]
# (inputs per target, default 100000: bounded by count, so a run takes the
# same work on any machine).  Every target runs; each prints one line,
# "fuzz NAME: passed ..." or "fuzz NAME: failed ...", and the script exits
# non-zero when any found a crash, leak or broken invariant.  Reproducers are
# left in $FUZZ_BUILD_DIR/artifacts (default /tmp/crm_dashboard_fuzz); add
# each one to corpus_NAME with the fix, so it stays a test.
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-100000}
failed=0
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
	# The time limit only guards against a hang of the fuzzer itself.
	if "$out/fuzz_$name" -runs="$runs" -max_total_time=600 -max_len=4096 -timeout=5 \
		-artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 \
		"$out/corpus_$name" "corpus_$name" >"$out/$name.log" 2>&1; then
		tail -n 12 "$out/$name.log"
		echo "fuzz $name: passed, $runs inputs without a crash"
	else
		tail -n 30 "$out/$name.log"
		echo "fuzz $name: failed, reproducer in $out/artifacts/$name-*"
		failed=1
	fi
}

fuzz_target query_parse "$src/http_query_parse.c"
fuzz_target cron "$src/schedules_cron.c"
fuzz_target cursor "$src/paging_cursor_codec.c" "$src/util_base64url.c" -lcjson
fuzz_target progress "$src/launcher_progress.c" "$src/launcher_mask.c" -lcjson
fuzz_target history "$src/log_chunk.c" "$src/fingerprint.c"
exit $failed
