#!/bin/bash
# test-under-load.sh [RUNS] - run the unit and integration suites, normal and
# ASan+UBSan, RUNS times (default 3) while a libFuzzer target keeps one core
# busy: the suite must pass on a loaded machine, as CI's two shared cores are.
# Prints one line per run and exits non-zero if any run failed; each run's
# output is kept in $LOAD_LOG_DIR (default build-load-logs/).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
LOGS=${LOAD_LOG_DIR:-build-load-logs}
FUZZ_DIR=build-fuzz-load
mkdir -p "$LOGS"

scripts/deps.sh test
if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
	CC=clang meson setup "$FUZZ_DIR" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		--buildtype=debugoptimized >/dev/null
fi
ninja -C "$FUZZ_DIR" tests/fuzz/fuzz_mime_compose >/dev/null

# The load: one fuzzing process (one core) on a scratch corpus, for as long as
# the runs take; stopped on exit whatever happens.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-load.XXXXXX")
cp tests/fuzz/corpus/mime_compose/* "$scratch/"
ASAN_OPTIONS=detect_leaks=0 "$FUZZ_DIR/tests/fuzz/fuzz_mime_compose" -max_total_time=86400 \
	-close_fd_mask=3 -rss_limit_mb=2048 "$scratch" >/dev/null 2>&1 &
load=$!
trap 'kill $load 2>/dev/null; wait $load 2>/dev/null || true; rm -rf "$scratch"' EXIT

failed=0
for i in $(seq 1 "$RUNS"); do
	start=$(date +%s)
	if SEALPOST_SUITES_ONLY=1 scripts/test.sh >"$LOGS/run-$i.log" 2>&1; then
		result=passed
	else
		result=FAILED
		failed=$((failed + 1))
	fi
	kill -0 $load 2>/dev/null || { echo "the load process ended early" >&2; exit 1; }
	echo "load run $i of $RUNS: $result in $(( $(date +%s) - start )) s" \
		"($(grep -E '^[0-9]+ (passed|failed)' "$LOGS/run-$i.log" | tr '\n' ' '))"
done
echo "$((RUNS - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
