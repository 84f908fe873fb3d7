#!/bin/bash
# test.sh - install what the tests need, build, and run every test:
# unit tests and the integration suite, in a normal build and again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/deps.sh test
# The viewer's browser code: the packages viewer/package-lock.json pins, with
# their integrity hashes checked (no install scripts run).  The build embeds
# them (viewer/build.py) and fails without them.
npm ci --prefix viewer --ignore-scripts --no-audit --no-fund

PY=/usr/bin/python3          # Debian's Python: it has aiosmtpd, pytest, selenium
export SEALPOST_TEST_ROOT=$ROOT

setup() {
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
}

run_suite() {
	local dir=$1 label=$2
	echo "== $label: unit tests"
	meson test -C "$dir" --print-errorlogs --suite unit
	echo "== $label: integration tests"
	SEALPOST_BIN="$ROOT/$dir/cli/sealpost" SEALPOST_BUILD_DIR="$ROOT/$dir" \
		SP_VIEWER_HARNESS="$ROOT/$dir/tests/viewer_harness" \
		$PY -m pytest -q -p no:cacheprovider tests/integration
}

setup build
run_suite build "normal build"

# Sanitizers: any report fails the run (the harness also scans sealpost's stderr).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug
run_suite build-asan "ASan+UBSan build"

# SEALPOST_SUITES_ONLY=1: the two suites above and nothing else (what
# scripts/test-under-load.sh repeats).
if [ -n "${SEALPOST_SUITES_ONLY:-}" ]; then
	echo "== suites passed"
	exit 0
fi

# libFuzzer targets (clang, ASan + UBSan): replay every committed crash
# reproducer, then a short run of each target.  docs/fuzzing.md has the long runs.
echo "== fuzzing: reproducers and a short run of each target"
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
scripts/fuzz.sh "${SEALPOST_FUZZ_SECONDS:-20}"

# The benchmark is not part of the test run; a smoke run of its harness is
# (every system and form starts, measures and reports; the figures mean nothing).
echo "== benchmark harness: smoke run"
scripts/deps.sh bench
$PY -m pytest -q -p no:cacheprovider tests/bench/test_bench_smoke.py

echo "== all tests passed"
