#!/bin/bash
# bench.sh [--quick | --smoke] [--out FILE] [bench.py options...]
#
# sealpost's benchmark, side by side with Postfix, GnuPG and nginx (issue 7):
# installs what it needs, builds a release build in build-bench/, compiles the
# helpers in tests/bench/, starts everything on 127.0.0.1, runs, stops it all,
# prints the tables and writes docs/benchmarks.md (and
# build-bench/bench/results.json).
#
#   scripts/bench.sh           the whole run, about 10 minutes
#   scripts/bench.sh --quick   a 2-minute subset
#   scripts/bench.sh --smoke   seconds; checks the harness (writes
#                              build-bench/bench/smoke.md, not docs/)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PROFILE=full
ARGS=()
OUT_GIVEN=no
JSON_GIVEN=no
for a in "$@"; do
	case "$a" in
	--quick) PROFILE=quick ;;
	--smoke) PROFILE=smoke ;;
	--out|--out=*) OUT_GIVEN=yes; ARGS+=("$a") ;;
	--json|--json=*) JSON_GIVEN=yes; ARGS+=("$a") ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) ARGS+=("$a") ;;
	esac
done

scripts/deps.sh bench
[ -d viewer/node_modules ] || npm ci --prefix viewer --ignore-scripts --no-audit --no-fund   # docs/hacking.md

B=$ROOT/build-bench
if [ -f "$B/build.ninja" ]; then
	meson setup --reconfigure "$B" --buildtype=release >/dev/null
else
	meson setup "$B" --buildtype=release >/dev/null
fi
ninja -C "$B" >/dev/null

# The two helpers are not part of sealpost: plain cc against the libraries.
T=$B/bench
mkdir -p "$T"
cc -O2 -Wall -Wextra -pthread -o "$T/crypto_floor" tests/bench/crypto_floor.c $(pkg-config --cflags --libs libsodium)
cc -O2 -Wall -Wextra -pthread -o "$T/tls_sink" tests/bench/tls_sink.c $(pkg-config --cflags --libs openssl)

# 1,000 idle connections need more than the usual 1,024 descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# A smoke run never overwrites the real results.
if [ "$PROFILE" = smoke ]; then
	[ "$OUT_GIVEN" = yes ] || ARGS+=(--out "$T/smoke.md")
	[ "$JSON_GIVEN" = yes ] || ARGS+=(--json "$T/smoke.json")
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: run as root (the Postfix instance and smtp-sink need it; VmHWM resets need it)" >&2
	exit 2
fi
exec /usr/bin/python3 tests/bench/bench.py --profile "$PROFILE" ${ARGS[@]+"${ARGS[@]}"}
