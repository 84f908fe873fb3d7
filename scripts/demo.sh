#!/bin/bash
# demo.sh [--once] - install, build and run sealpost end to end on this machine.
#
# Starts a stand-in for your provider (a real SMTP server with STARTTLS and
# AUTH on 127.0.0.1:2525), makes the keys a small demo needs (an OpenPGP key
# for the sender alice@example.com and for bob@example.org, a sodium key for
# carol@example.net; dave@example.com has none), starts sealpost on
# 127.0.0.1:2587 with the embedded link viewer on 127.0.0.1:8025 (and its
# outbox page on 127.0.0.1:8026, behind a token: `sealpost outbox`), sends one
# message with an attachment to all three, and shows what the provider got
# and how each recipient opens it.  Then it keeps running so you can point a
# mail client at it, until Ctrl-C (or exits at once with --once).
# --screenshots also photographs the viewer with headless Chromium into
# docs/img/ (the pictures in docs/clients.md) and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ONCE=no
SHOTS=
for a in "$@"; do
	case "$a" in
	--once) ONCE=yes ;;
	--screenshots) SHOTS=${SEALPOST_SCREENSHOT_DIR:-$ROOT/docs/img}; ONCE=yes ;;
	*) echo "usage: $0 [--once] [--screenshots]" >&2; exit 2 ;;
	esac
done

if [ -n "$SHOTS" ]; then scripts/deps.sh test; else scripts/deps.sh run; fi
[ -d viewer/node_modules ] || npm ci --prefix viewer --ignore-scripts --no-audit --no-fund   # docs/hacking.md
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
SP=$ROOT/build/cli/sealpost

W=${SEALPOST_DEMO_DIR:-$ROOT/build/demo}
rm -rf "$W"
mkdir -p "$W"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	GNUPGHOME=$W/gnupg gpgconf --kill all 2>/dev/null || true
	GNUPGHOME=$W/bob gpgconf --kill all 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

say "a stand-in provider: SMTP with STARTTLS + AUTH on 127.0.0.1:2525"
/usr/bin/python3 scripts/demo_upstream.py "$W/provider" 2525 >"$W/provider.log" 2>&1 &
PIDS+=($!)
wait_port 2525

say "keys: OpenPGP for alice (sender) and bob, sodium for carol, none for dave"
export GNUPGHOME=$W/gnupg
mkdir -m 700 "$GNUPGHOME" "$W/bob"
gpg_new() { gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-gen-key "$1" default default 1y 2>/dev/null; }
gpg_new 'Alice <alice@example.com>'
GNUPGHOME=$W/bob gpg_new 'Bob <bob@example.org>'
GNUPGHOME=$W/bob gpg --export bob@example.org | gpg --batch --quiet --import >/dev/null 2>&1
BOB=$(gpg --with-colons --list-keys bob@example.org | awk -F: '/^fpr/{print $10; exit}')
gpg --batch --quiet --yes --quick-lsign-key "$BOB" >/dev/null 2>&1
"$SP" keygen -o "$W/carol.key" | sed 's/^/carol@example.net /' >"$W/sodium-recipients"
echo "bob@example.org:   OpenPGP $BOB"
echo "carol@example.net: $(cut -d' ' -f2 "$W/sodium-recipients")"

cat >"$W/sealpost.conf" <<CONF
[proxy]
listen = 127.0.0.1:2587
[upstream]
host = localhost
port = 2525
tls = starttls
ca_file = $W/provider/pki/ca.pem
username = demo@example.com
password_file = $W/provider/upstream.pass
[pgp]
gnupg_home = $GNUPGHOME
[sodium]
recipients = $W/sodium-recipients
[link]
base_url = http://127.0.0.1:8025/s/
store = $W/state/links.sqlite
[linkserver]
listen = 127.0.0.1:8025
outbox_listen = 127.0.0.1:8026
[queue]
dir = $W/state/queue
[discovery]
; The demo's recipients live at example.com/org/net, which publish no Web
; Key Directory: asking the internet for them would only cost the timeout.
wkd = no
CONF

say "sealpost check"
SEALPOST_STATE_DIR=$W/state "$SP" check -c "$W/sealpost.conf" --rcpt bob@example.org carol@example.net dave@example.com || true

say "sealpost run: 127.0.0.1:2587, viewer on 127.0.0.1:8025"
SEALPOST_STATE_DIR=$W/state "$SP" run -c "$W/sealpost.conf" 2>"$W/sealpost.log" &
PIDS+=($!)
wait_port 2587
wait_port 8025
wait_port 8026
OUTBOX=$(SEALPOST_STATE_DIR=$W/state "$SP" outbox -c "$W/sealpost.conf")

say "alice sends one message with an attachment to bob, carol and dave"
printf 'Quarterly numbers: revenue 1.2M, do not forward.\n' >"$W/numbers.txt"
swaks --silent 1 --server 127.0.0.1:2587 --from alice@example.com \
	--to bob@example.org,carol@example.net,dave@example.com \
	--header "Subject: Q3 figures (confidential)" \
	--body "Hi all, the figures are attached. The launch is on Tuesday." \
	--attach-type text/plain --attach-name numbers.txt --attach @"$W/numbers.txt"
for _ in $(seq 50); do [ "$(ls "$W/provider/received" | wc -l)" -ge 4 ] && break; sleep 0.1; done

say "what the provider received (no body, no subject, no attachment)"
for f in "$W"/provider/received/*.eml; do
	echo "--- $(basename "$f"): $(head -1 "$f" | sed 's/X-Demo-Envelope: //')"
	grep -m1 '^Subject:' "$f" || true
	grep -m1 -i '^Content-Type:' "$f" || true
	if grep -q 'launch\|Q3 figures\|numbers.txt' "$f"; then echo "!! plaintext visible to the provider"; exit 1; fi
done

pick() { grep -l -- "$1" "$W"/provider/received/*.eml | head -1; }
say "bob opens the OpenPGP copy with GnuPG"
sed -n '/^-----BEGIN PGP MESSAGE/,/^-----END PGP MESSAGE/p' "$(pick "to=bob@example.org")" |
	GNUPGHOME=$W/bob gpg --batch --quiet --decrypt 2>/dev/null | grep -E '^(Subject|From|To):|launch'

say "carol opens the sodium copy with sealpost open"
"$SP" open -k "$W/carol.key" "$(pick application/x-sealpost)" | grep -E '^(Subject|From):|launch'

say "dave got a link; alice's delivery report (encrypted to her key) has the password"
REPORT=$(sed -n '/^-----BEGIN PGP MESSAGE/,/^-----END PGP MESSAGE/p' "$(pick "to=alice@example.com")" |
	gpg --batch --quiet --decrypt 2>/dev/null | tr -d '\r')
echo "$REPORT" | sed -n '/dave@/,/revoke/p'
LINK=$(echo "$REPORT" | awk '/link /{print $2; exit}')
PW=$(echo "$REPORT" | awk '/password /{print $2; exit}')
# The link's secret is in its fragment (#...), which no browser sends: the
# page decrypts in the browser, so dave needs a browser, not curl.
if command -v chromium >/dev/null && command -v chromedriver >/dev/null &&
	/usr/bin/python3 -c 'import selenium' 2>/dev/null; then
	echo "dave opens $LINK in a browser (headless Chromium) with the password:"
	if [ -n "$SHOTS" ]; then
		say "and the viewer is photographed (headless Chromium) into $SHOTS"
		/usr/bin/python3 scripts/screenshots.py "$LINK" "$PW" "$OUTBOX" "$SHOTS" >"$W/viewer.out"
	else
		/usr/bin/python3 scripts/screenshots.py "$LINK" "$PW" >"$W/viewer.out"
	fi
	grep -E "launch|Q3 figures|\.png$" "$W/viewer.out" || { echo "!! the page did not show the message"; exit 1; }
else
	echo "dave opens $LINK in his browser and types the password $PW"
	echo "(scripts/deps.sh test installs chromium, chromium-driver and python3-selenium to show it here)"
fi

say "sealpost is running"
cat <<MSG
  mail client  -> SMTP 127.0.0.1:2587, no authentication (loopback), STARTTLS optional
  outbox       -> $OUTBOX
                  (links and passwords of recent messages; \`sealpost outbox\` prints it)
  provider     -> what left the machine: $W/provider/received/
  logs         -> $W/sealpost.log
MSG
if [ "$ONCE" = yes ]; then
	exit 0
fi
echo "Ctrl-C to stop."
wait "${PIDS[1]}"
