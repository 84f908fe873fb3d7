#!/bin/bash
# fuzz.sh [SECONDS] - build the libFuzzer targets and fuzz each for SECONDS
# (default 60).  See docs/fuzzing.md.
#
#   1. builds $FUZZ_BUILD_DIR (default build-fuzz): clang, -Dfuzz=true,
#      ASan + UBSan, unless it is already configured;
#   2. replays every reproducer in tests/fuzz/crashes/ (a fixed bug stays fixed);
#   3. runs each target for SECONDS on a scratch copy of its seed corpus
#      (the committed corpus is never written), with -rss_limit_mb=2048,
#      -timeout=10 and -seed=$FUZZ_SEED (default 1: the same inputs in the
#      same order on every run, so a failure in CI is one anybody can replay;
#      FUZZ_SEED=0 lets libFuzzer pick a random seed, for exploring).
# Exits non-zero on any crash, sanitizer report, leak, timeout or failed
# property; the failing input is kept in $FUZZ_BUILD_DIR/fuzz-artifacts/.
#
# FUZZ_TARGETS="smtp_parse config" limits the run to those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-60}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
# An absolute FUZZ_BUILD_DIR is used as it is; a relative one is below the repo.
case $BUILD in
/*) BUILD_ABS=$BUILD ;;
*) BUILD_ABS=$ROOT/$BUILD ;;
esac
ALL="smtp_session smtp_parse smtp_reply config mime_compose pgp_packets sodium_open link_envelope web_request html_sanitize view_doc"
TARGETS=${FUZZ_TARGETS:-$ALL}
SEED=${FUZZ_SEED:-1}

[ -d viewer/node_modules ] || npm ci --prefix viewer --ignore-scripts --no-audit --no-fund   # docs/hacking.md
if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		--buildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD" $(for t in $TARGETS; do echo "tests/fuzz/fuzz_$t"; done)

# UBSan findings are fatal like ASan's; leaks are reported (tests/lsan.supp
# lists the libraries' one-time allocations).
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
ARTIFACTS="$BUILD_ABS/fuzz-artifacts"
mkdir -p "$ARTIFACTS"
failed=()

for t in $TARGETS; do
	bin="$BUILD_ABS/tests/fuzz/fuzz_$t"
	work="$SCRATCH/$t"
	mkdir -p "$work/corpus"
	cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
	# Targets that log at debug level (to run that code too): keep it off the
	# terminal; libFuzzer and the sanitizers still report on their own stream.
	# web_request: libmicrohttpd frees a connection in its own thread after the
	# client saw the reply, so libFuzzer's per-input leak check would report
	# it at random; LeakSanitizer still checks the whole process at exit.
	quiet=()
	case $t in
	smtp_session) quiet=(-close_fd_mask=2) ;;
	web_request) quiet=(-close_fd_mask=2 -detect_leaks=0) ;;
	esac

	repros=(tests/fuzz/crashes/"$t"-*)
	if [ -e "${repros[0]}" ]; then
		echo "== $t: replaying ${#repros[@]} reproducer(s) from tests/fuzz/crashes/"
		if ! (cd "$work" && "$bin" "${quiet[@]}" -runs=1 "${repros[@]/#/$ROOT/}") >"$work/replay.log" 2>&1; then
			echo "FAILED: $t crashes on a committed reproducer:"
			grep -aE "^(SUMMARY|Running:)|FUZZ CHECK|runtime error" "$work/replay.log" | tail -n 6 || true
			failed+=("$t (reproducer)")
			continue
		fi
	fi

	echo "== $t: fuzzing for ${SECS}s (seed $SEED)"
	if (cd "$work" && "$bin" "${quiet[@]}" -seed="$SEED" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus") >"$work/fuzz.log" 2>&1; then
		grep -aE "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec" \
			"$work/fuzz.log" | tr '\n' ' ' | sed 's/stat:://g'
		echo
	else
		echo "FAILED: $t"
		grep -aE "ERROR|SUMMARY|FUZZ CHECK|runtime error|Test unit written" "$work/fuzz.log" | tail -n 12 || true
		cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$ARTIFACTS/" 2>/dev/null || true
		cp "$work/fuzz.log" "$ARTIFACTS/$t.log"
		failed+=("$t")
	fi
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "== fuzzing FAILED: ${failed[*]} (inputs and logs in $ARTIFACTS)"
	exit 1
fi
echo "== fuzzing: every target ran clean for ${SECS}s"
