#!/bin/sh
# deps.sh [build|run|test|bench] - install the Debian 12 packages sealpost needs.
# Everything comes from Debian; nothing is downloaded from anywhere else
# (the viewer's npm packages come from `npm ci --prefix viewer`, pinned by
# viewer/package-lock.json: scripts/test.sh runs it).
set -eu

# nodejs (and npm, below): the viewer's browser code (viewer/, `npm ci --prefix
# viewer`, docs/hacking.md); Debian 12's node 18 and npm 9 are enough.
BUILD="meson ninja-build pkg-config gcc libc6-dev libssl-dev libglib2.0-dev libgmime-3.0-dev
       libsodium-dev libgpgme-dev libmicrohttpd-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev libidn2-dev libxml2-dev libjson-glib-dev scdoc
       nodejs"
RUN="gnupg ca-certificates"
# The demo's local upstream and clients.
DEMO="python3 python3-aiosmtpd python3-cryptography swaks curl openssl"
# Tests: real upstream (aiosmtpd), real clients, real keys, a real browser,
# sanitizers and fuzzers (clang's libFuzzer and runtimes), a real PostgreSQL
# server for the link store on several nodes.
TEST="$DEMO python3-pytest python3-nacl msmtp mutt s-nail chromium chromium-driver python3-selenium socat
      clang libclang-rt-14-dev llvm valgrind man-db systemd postgresql"
BENCH="$TEST postfix nginx wrk hyperfine linux-perf strace"

case "${1:-build}" in
build) PKGS="$BUILD $RUN" ;;
run) PKGS="$BUILD $RUN $DEMO" ;;
test) PKGS="$BUILD $RUN $TEST" ;;
bench) PKGS="$BUILD $RUN $BENCH" ;;
*) echo "usage: $0 [build|run|test|bench]" >&2; exit 2 ;;
esac

# Debian's npm, unless an npm is there already (a nodejs built elsewhere,
# e.g. NodeSource's, ships its own and conflicts with Debian's package).
if ! command -v npm >/dev/null 2>&1; then
	PKGS="$PKGS npm"
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi

# Only touch apt when something is missing: repeat runs stay fast.
missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $PKGS 2>/dev/null | awk '$1 != "ii" {print $2}')
for p in $PKGS; do
	dpkg-query -W -f='${db:Status-Abbrev}' "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$(echo $missing)" ]; then
	echo "deps: installing:" $missing
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# postfix asks questions on install; answer them for a loopback-only setup.
	echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
	$SUDO apt-get install -y -qq $missing >/dev/null
fi
