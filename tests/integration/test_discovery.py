"""Key discovery (issue 16): recipients' OpenPGP keys from the Web Key
Directory of their domain, against real HTTPS servers started here.

One threaded HTTPS server (python http.server + ssl, a certificate from a CA
made here for every host name below) serves the WKD layouts; sealpost reaches
it through `[discovery] connect_to` (libcurl CONNECT_TO: the certificate is
still checked for the WKD host name) and trusts its CA through `ca_file`.
Every request is recorded (host, path), so a test can tell which method
answered and count lookups.

    openpgpkey.adv.test   advanced method, domain adv.test
    dir.test              direct method (openpgpkey.dir.test: connection refused)
    openpgpkey.xn--bcher-kva.test   advanced, for the Unicode domain bücher.test
    openpgpkey.slow.test, slow.test a TCP listener that never answers (timeout)

Each recipient's key is made with real gpg; a PGP/MIME copy is decrypted with
the recipient's own secret key.  A refused key means the next form: here
[policy] no_key = reject, so the RCPT is refused (550) with the reason and
nothing reaches the upstream.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clients import assert_reply
from gpgkeys import GpgHome, Identity, kill_all_agents, make_identity, packet_keyids
from pki import _CA
from sealpost import run_cli
from test_pgp import ALICE, parse_rfc3156, send, text_message

PAST = "20200101T000000"
ZB32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
MAX_KEY_BYTES = 256 * 1024          # SP_DISCOVERY_MAX_KEY_BYTES

ADV = "adv.test"
DIR = "dir.test"
UNI_U = "bücher.test"
UNI_A = "xn--bcher-kva.test"
SLOW = "slow.test"
NOWKD = "nowkd.test"                 # no WKD at all: only the keyserver knows its keys
VKS = "keys.test"


def wkd_hash(local: str) -> str:
    """z-base-32(SHA-1(ASCII-lowercased local part)), as the draft says."""
    low = "".join(c.lower() if "A" <= c <= "Z" else c for c in local)
    digest = hashlib.sha1(low.encode("utf-8")).digest()
    bits = int.from_bytes(digest, "big")
    return "".join(ZB32[(bits >> (160 - 5 * (i + 1))) & 31] for i in range(32))


def test_wkd_hash_matches_the_drafts_example():
    # The reference implementation here must agree with the draft before the
    # server below is built on it.
    assert wkd_hash("Joe.Doe") == "iy9q119eutrkn8s1mk4r39qejnbu3n5q"


# =====================================================================================
# The WKD server
# =====================================================================================

@dataclass
class Wkd:
    port: int
    # (host, path-without-query) -> body bytes
    files: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)   # (host, path with query)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_advanced(self, domain_a: str, local: str, body: bytes) -> None:
        self.files[(f"openpgpkey.{domain_a}", f"/.well-known/openpgpkey/{domain_a}/hu/{wkd_hash(local)}")] = body

    def put_direct(self, domain_a: str, local: str, body: bytes) -> None:
        self.files[(domain_a, f"/.well-known/openpgpkey/hu/{wkd_hash(local)}")] = body

    def count(self, local: str) -> int:
        h = wkd_hash(local)
        with self.lock:
            return sum(1 for _, p in self.requests if f"/hu/{h}" in p)


def _handler(wkd: Wkd):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            host = (self.headers.get("Host") or "").split(":")[0]
            with wkd.lock:
                wkd.requests.append((host, self.path))
            body = wkd.files.get((host, self.path.split("?")[0]))
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    return H


@dataclass
class World:
    base: Path
    alice: Identity
    keys: dict            # name -> Identity (with secret key in its home)
    bodies: dict          # name -> bytes served
    ca: Path
    wkd: Wkd
    refused_port: int
    silent_port: int
    nokeys: GpgHome


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("disc")
    alice = make_identity(base, "alice", "Alice", ALICE)
    keys = {
        "zed": make_identity(base, "zed", "Zed", f"zed@{ADV}"),
        "yan": make_identity(base, "yan", "Yan", f"yan@{DIR}"),
        "uni": make_identity(base, "uni", "Uni", f"uni@{UNI_U}"),
        "arm": make_identity(base, "arm", "Arm", f"arm@{ADV}"),
        "other": make_identity(base, "other", "Other", f"other@{ADV}"),
        "vic": make_identity(base, "vic", "Vic", f"vic@{NOWKD}"),
    }
    bad = GpgHome(base / "bad")
    exp = bad.gen_key(f"Expired <expired@{ADV}>", expire="1d", faked_time=PAST)
    rev = bad.gen_key(f"Revoked <revoked@{ADV}>")
    bad.revoke_with(bad.revocation_cert(rev))

    def binary(home: GpgHome, fpr: str) -> bytes:
        return home.run("--export", fpr).stdout

    bodies = {
        "zed": binary(keys["zed"].home, keys["zed"].fpr),
        "yan": binary(keys["yan"].home, keys["yan"].fpr),
        "uni": binary(keys["uni"].home, keys["uni"].fpr),
        "arm": keys["arm"].home.export(keys["arm"].fpr),            # ASCII armor: a deviation
        "mismatch": binary(keys["other"].home, keys["other"].fpr),  # uid other@, served for mismatch@
        "expired": binary(bad, exp),
        "revoked": binary(bad, rev),
        "big": binary(keys["zed"].home, keys["zed"].fpr) + os.urandom(MAX_KEY_BYTES),
    }
    assert bodies["arm"].startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert bad.key(exp)["validity"] == "e" and bad.key(rev)["validity"] == "r"

    # TLS: one certificate for every WKD host name, from a CA of our own.
    pkidir = base / "pki"
    pkidir.mkdir()
    ca = _CA(pkidir, "wkd-ca", "sealpost WKD test CA")
    hosts = [f"openpgpkey.{ADV}", ADV, f"openpgpkey.{DIR}", DIR, f"openpgpkey.{UNI_A}", UNI_A,
             f"openpgpkey.{SLOW}", SLOW, f"openpgpkey.{NOWKD}", NOWKD, VKS]
    cert = ca.issue(pkidir, "wkd", hosts, ["127.0.0.1"])

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    wkd = Wkd(httpd.server_address[1])
    httpd.RequestHandlerClass = _handler(wkd)
    httpd.daemon_threads = True
    httpd.socket = cert.server_context().wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()

    wkd.put_advanced(ADV, "zed", bodies["zed"])
    wkd.put_direct(DIR, "yan", bodies["yan"])
    wkd.put_advanced(UNI_A, "uni", bodies["uni"])
    wkd.put_advanced(ADV, "arm", bodies["arm"])
    wkd.put_advanced(ADV, "mismatch", bodies["mismatch"])
    wkd.put_advanced(ADV, "expired", bodies["expired"])
    wkd.put_advanced(ADV, "revoked", bodies["revoked"])
    wkd.put_advanced(ADV, "big", bodies["big"])
    wkd.files[(VKS, f"/vks/v1/by-email/vic%40{NOWKD}")] = binary(keys["vic"].home, keys["vic"].fpr)

    # A port where nothing listens (connection refused): the advanced host of
    # dir.test does not exist.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    refused_port = s.getsockname()[1]
    s.close()
    # A listener that never accepts: TCP connects (the backlog), TLS never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent_port = silent.getsockname()[1]

    w = World(base, alice, keys, bodies, ca.cert_path, wkd, refused_port, silent_port, GpgHome(base / "nokeys"))
    yield w
    httpd.shutdown()
    silent.close()
    kill_all_agents()


def disc_config(world: World, home: GpgHome, **disc) -> dict:
    p = world.wkd.port
    connect_to = ";".join([
        f"openpgpkey.{ADV}:443:127.0.0.1:{p}",
        f"{ADV}:443:127.0.0.1:{p}",
        f"openpgpkey.{DIR}:443:127.0.0.1:{world.refused_port}",
        f"{DIR}:443:127.0.0.1:{p}",
        f"openpgpkey.{UNI_A}:443:127.0.0.1:{p}",
        f"{UNI_A}:443:127.0.0.1:{p}",
        f"openpgpkey.{SLOW}:443:127.0.0.1:{world.silent_port}",
        f"{SLOW}:443:127.0.0.1:{world.silent_port}",
        f"openpgpkey.{NOWKD}:443:127.0.0.1:{p}",
        f"{NOWKD}:443:127.0.0.1:{p}",
        f"{VKS}:443:127.0.0.1:{p}",
    ])
    d = {"wkd": "yes", "timeout": "2s", "ca_file": str(world.ca), "connect_to": connect_to}
    d.update({k: str(v) for k, v in disc.items()})
    return {
        "pgp": {"gnupg_home": str(home.path), "trust": "keyring", "encrypt_to_self": "yes"},
        "policy": {"no_key": "reject"},
        "discovery": d,
    }


@pytest.fixture
def sphome(world, tmp_path) -> GpgHome:
    """sealpost's keyring (the user's): alice only, no recipient's key."""
    h = world.alice.home.copy_to(tmp_path / "g")
    yield h
    h.kill_agent()


def start(start_sealpost, upstream, world, sphome, **disc):
    return start_sealpost(upstream, extra=disc_config(world, sphome, **disc))


def deliver_and_decrypt(sp, upstream, world: World, who: Identity, rcpt: str | None = None) -> bytes:
    """Send alice -> rcpt (default who.addr); the copy must be PGP/MIME that who
    decrypts with their own secret key, encrypted to who and alice only."""
    rcpt = rcpt or who.addr
    msg = text_message(to=rcpt)
    replies = send(sp, [rcpt], msg.data)
    assert_reply(replies[1], 250, "2.1.5", what=f"RCPT {rcpt}")
    assert "openpgp" in replies[1].text, str(replies[1])
    assert_reply(replies[-1], 250, "2.0.0", what="delivery")
    got = upstream.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [rcpt], upstream.events_summary()
    raw = got[0].content
    for s in msg.secrets:
        assert s not in raw, f"{s!r} in clear upstream"
    _, armor = parse_rfc3156(raw)
    packets = world.nokeys.list_packets(armor)
    assert packet_keyids(packets) == {k.upper() for k in who.enc_keyids + world.alice.enc_keyids}, packets
    res = who.home.decrypt(armor)
    assert res.rc == 0 and res.has_status("DECRYPTION_OKAY") is not None, str(res)
    for s in msg.secrets[1:]:
        assert s in res.stdout, f"{s!r} not in what {who.addr} decrypted"
    return raw


def refused(sp, upstream, rcpt: str, reason: str) -> str:
    with sp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{ALICE}>")
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("QUIT")
    assert_reply(r, 550, "5.7.1", what=f"RCPT {rcpt}")
    assert re.search(reason, r.text), f"{rcpt}: expected /{reason}/ in: {r}"
    assert upstream.messages == [], upstream.events_summary()
    return r.text


# =====================================================================================
# Finding keys
# =====================================================================================

def test_wkd_advanced_key_encrypts(world, sphome, start_sealpost, upstream):
    """A recipient whose key is only in WKD (advanced method) gets PGP/MIME
    that their own secret key decrypts; the log names the source."""
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, world.keys["zed"])
    sp.wait_log(rf"discovery: <zed@{ADV}>: key {world.keys['zed'].fpr} from WKD \(advanced\) "
                rf"https://openpgpkey\.{re.escape(ADV)}/\.well-known/openpgpkey/{re.escape(ADV)}/hu/"
                rf"{wkd_hash('zed')}\?l=zed")
    # The user's keyring was not touched: the key went to sealpost's own.
    assert sphome.keys(world.keys["zed"].fpr) == []
    own = GpgHome(Path(sp.workdir) / "state" / "discovery" / "gnupg", create=False)
    assert [k["fpr"] for k in own.keys(world.keys["zed"].fpr)] == [world.keys["zed"].fpr]


def test_wkd_direct_when_advanced_absent(world, sphome, start_sealpost, upstream):
    """openpgpkey.dir.test refuses connections: the direct method answers."""
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, world.keys["yan"])
    assert (DIR, f"/.well-known/openpgpkey/hu/{wkd_hash('yan')}?l=yan") in world.wkd.requests
    sp.wait_log(rf"discovery: <yan@{DIR}>: key {world.keys['yan'].fpr} from WKD \(direct\)")


def test_punycode_rcpt_finds_the_unicode_addresss_key(world, sphome, start_sealpost, upstream):
    """RCPT in A-labels; the key's user ID says uni@bücher.test."""
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, world.keys["uni"], rcpt=f"uni@{UNI_A}")
    assert any(h == f"openpgpkey.{UNI_A}" for h, _ in world.wkd.requests)


def test_armored_key_accepted_as_a_logged_deviation(world, sphome, start_sealpost, upstream):
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, world.keys["arm"])
    sp.wait_log(r"serves an ASCII-armored key where WKD/VKS require binary; accepted as a deviation")


# =====================================================================================
# Refusing keys: the recipient gets the next form
# =====================================================================================

@pytest.mark.parametrize("local,reason", [
    ("mismatch", r"no user ID with exactly this address"),
    ("expired", r"key expired"),
    ("revoked", r"key revoked"),
    ("big", r"larger than 262144 bytes: refused"),
])
def test_unusable_discovered_key_gives_next_form(world, sphome, start_sealpost, upstream, local, reason):
    sp = start(start_sealpost, upstream, world, sphome)
    refused(sp, upstream, f"{local}@{ADV}", reason)


def test_timeout_falls_to_next_form(world, sphome, start_sealpost, upstream):
    """A WKD host that accepts TCP and never answers: the lookup ends within
    [discovery] timeout and the recipient gets the next form."""
    sp = start(start_sealpost, upstream, world, sphome, timeout="2s")
    refused(sp, upstream, f"nobody@{SLOW}", r"timed out|[Tt]imeout")
    sp.wait_log(rf"discovery: <nobody@{SLOW}>: no usable key: .*(timed out|[Tt]imeout)")


def test_broken_own_keyring_is_451_not_next_form(world, sphome, start_sealpost, upstream):
    """A key discovered once, then sealpost's own keyring damaged: 451, never
    a weaker form."""
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, world.keys["zed"])
    kbx = Path(sp.workdir) / "state" / "discovery" / "gnupg" / "pubring.kbx"
    data = kbx.read_bytes()
    kbx.write_bytes(data[: len(data) - 40])      # cut short inside the key's blob
    with sp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{ALICE}>")
        r = c.cmd(f"RCPT TO:<zed@{ADV}>")
        c.cmd("QUIT")
    assert r.code == 451, str(r)
    assert "discovered-keys keyring" in r.text, str(r)
    assert len(upstream.messages) == 1


def test_wkd_off_makes_no_request(world, sphome, start_sealpost, upstream):
    sp = start(start_sealpost, upstream, world, sphome, wkd="no")
    before = world.wkd.count("zed")
    refused(sp, upstream, f"zed@{ADV}", r"no OpenPGP key")
    assert world.wkd.count("zed") == before


# =====================================================================================
# Caches
# =====================================================================================

def test_positive_cache_second_send_no_lookup(world, sphome, start_sealpost, upstream):
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, world.keys["zed"])
    n = world.wkd.count("zed")
    assert n >= 1
    msg = text_message(to=f"zed@{ADV}")
    replies = send(sp, [f"zed@{ADV}"], msg.data)
    assert_reply(replies[-1], 250, "2.0.0", what="second delivery")
    assert world.wkd.count("zed") == n, "the second send asked the WKD server again"


def test_negative_cache_stops_a_second_lookup(world, sphome, start_sealpost, upstream):
    sp = start(start_sealpost, upstream, world, sphome)
    refused(sp, upstream, f"nokey@{ADV}", r"HTTP 404")
    n = world.wkd.count("nokey")
    assert n == 2, world.wkd.requests          # advanced, then direct
    refused(sp, upstream, f"nokey@{ADV}", r"no discovered key \(looked up ")
    assert world.wkd.count("nokey") == n


# =====================================================================================
# Provenance: `keys`, `check --rcpt`, the delivery report
# =====================================================================================

def cli_at(sp, *args):
    return run_cli(sp.binary, list(args), sp.workdir)


def test_keys_list_and_check_name_the_source(world, sphome, start_sealpost, upstream):
    sp = start(start_sealpost, upstream, world, sphome)
    zed = world.keys["zed"]
    deliver_and_decrypt(sp, upstream, world, zed)
    r = cli_at(sp, "keys", "-c", sp.config_path, "list")
    assert r.rc == 0, str(r)
    line = [l for l in r.stdout.splitlines() if l.startswith(f"zed@{ADV} ")]
    assert len(line) == 1, str(r)
    assert re.search(rf"^zed@{re.escape(ADV)}  ok  {zed.fpr}  wkd-advanced https://openpgpkey\.{re.escape(ADV)}/"
                     rf"\S+  since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line[0]), line[0]
    r = cli_at(sp, "check", "-c", sp.config_path, "--rcpt", f"zed@{ADV}")
    assert re.search(rf"rcpt +zed@{re.escape(ADV)}: openpgp {zed.fpr} discovered: WKD \(advanced\) "
                     rf"https://openpgpkey\.{re.escape(ADV)}/\S+, since ", r.stdout), str(r)


def test_check_rcpt_discovers_and_names_the_source(world, sphome, start_sealpost, upstream):
    """`check --rcpt` for an address nobody sent to yet looks it up itself."""
    sp = start_sealpost(upstream, extra=disc_config(world, sphome), start=False)
    r = cli_at(sp, "check", "-c", sp.config_path, "--rcpt", f"yan@{DIR}", f"expired@{ADV}")
    assert re.search(rf"rcpt +yan@{re.escape(DIR)}: openpgp {world.keys['yan'].fpr} discovered: WKD \(direct\) "
                     rf"https://{re.escape(DIR)}/\.well-known/openpgpkey/hu/{wkd_hash('yan')}\?l=yan, since ",
                     r.stdout), str(r)
    assert re.search(rf"expired@{re.escape(ADV)}: REFUSED: .*key expired", r.stdout), str(r)
    assert re.search(r"(?m)^discovery +WKD$", r.stdout), str(r)
    # --json: the same, machine-readable (the lookup is cached now).
    r = cli_at(sp, "check", "-c", sp.config_path, "--json", "--rcpt", f"yan@{DIR}")
    doc = json.loads(r.stdout)
    assert doc["discovery"]["status"] == "ok", doc
    (rec,) = doc["recipients"]
    assert rec["form"] == "openpgp" and rec["detail"] == world.keys["yan"].fpr, rec
    assert rec["source"].startswith(f"WKD (direct) https://{DIR}/.well-known/openpgpkey/hu/"), rec


def test_delivery_report_names_the_source(world, sphome, start_sealpost, upstream, tmp_path):
    """With a link recipient, alice's delivery report (encrypted to her) says
    where zed's key came from."""
    cfg = disc_config(world, sphome)
    cfg["policy"]["no_key"] = "link"
    cfg["link"] = {"base_url": "https://mail.example.org/s/", "store": str(tmp_path / "links.sqlite")}
    sp = start_sealpost(upstream, extra=cfg)
    msg = text_message(to=f"zed@{ADV}")
    replies = send(sp, [f"zed@{ADV}", f"nolink@{ADV}"], msg.data)
    assert "openpgp" in replies[1].text and "link" in replies[2].text, replies
    assert_reply(replies[-1], 250, "2.0.0", what="delivery")
    got = upstream.wait_for(3)
    rep = [m for m in got if m.rcpt_tos == [ALICE]]
    assert len(rep) == 1, upstream.events_summary()
    _, armor = parse_rfc3156(rep[0].content)
    res = world.alice.home.decrypt(armor)
    assert res.rc == 0, str(res)
    text = res.stdout.decode("utf-8", "replace")
    assert re.search(rf"<zed@{re.escape(ADV)}>\r?\n    note: key discovered: WKD \(advanced\) "
                     rf"https://openpgpkey\.{re.escape(ADV)}/\S+, since ", text), text
    assert re.search(rf"OpenPGP, key {world.keys['zed'].fpr}", text), text


# =====================================================================================
# Key changes
# =====================================================================================

@pytest.fixture
def changer(world, tmp_path):
    """change@adv.test: first served with key A, then with key B."""
    a = make_identity(tmp_path, "chga", "Change", f"change@{ADV}")
    b = make_identity(tmp_path, "chgb", "Change", f"change@{ADV}")
    world.wkd.put_advanced(ADV, "change", a.home.run("--export", a.fpr).stdout)
    yield a, b
    world.wkd.files.pop((f"openpgpkey.{ADV}", f"/.well-known/openpgpkey/{ADV}/hu/{wkd_hash('change')}"), None)
    a.home.kill_agent()
    b.home.kill_agent()


def test_key_change_default_falls_to_next_form_and_warns(world, sphome, start_sealpost, upstream, changer):
    a, b = changer
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, a)
    upstream.messages.clear()
    world.wkd.put_advanced(ADV, "change", b.home.run("--export", b.fpr).stdout)
    # The cache would keep A for [discovery] ttl: ask now, as the background refresh would.
    r = cli_at(sp, "keys", "-c", sp.config_path, "refresh", a.addr)
    assert r.rc == 1 and "the discovered key changed" in r.stdout, str(r)
    assert f"KEY CHANGED: {a.addr}" not in r.stdout    # the log line went to stderr
    assert re.search(rf"KEY CHANGED: .* now serves {b.fpr}, not {a.fpr}", r.stderr), str(r)
    text = refused(sp, upstream, a.addr, rf"the discovered key changed \({b.fpr}, was {a.fpr}\)")
    assert "keys forget" in text
    sp.wait_log(rf"<{re.escape(a.addr)}>: KEY CHANGED: WKD \(advanced\) now serves {b.fpr}, was {a.fpr}")
    r = cli_at(sp, "keys", "-c", sp.config_path, "list")
    assert re.search(rf"^{re.escape(a.addr)}  changed  {a.fpr} .* NOW SERVES {b.fpr}", r.stdout, re.M), str(r)
    r = cli_at(sp, "check", "-c", sp.config_path, "--rcpt", a.addr)
    assert r.rc == 1 and "the discovered key changed" in r.stdout, str(r)
    # The user accepts the new key by forgetting the old one.
    r = cli_at(sp, "keys", "-c", sp.config_path, "forget", a.addr)
    assert r.rc == 0 and "forgotten" in r.stdout, str(r)
    deliver_and_decrypt(sp, upstream, world, b)


def test_key_change_accept(world, sphome, start_sealpost, upstream, changer):
    a, b = changer
    sp = start(start_sealpost, upstream, world, sphome, on_key_change="accept")
    deliver_and_decrypt(sp, upstream, world, a)
    upstream.messages.clear()
    world.wkd.put_advanced(ADV, "change", b.home.run("--export", b.fpr).stdout)
    r = cli_at(sp, "keys", "-c", sp.config_path, "refresh", a.addr)
    assert r.rc == 0 and f"key {b.fpr}" in r.stdout and f"KEY CHANGED from {a.fpr} (accepted" in r.stdout, str(r)
    deliver_and_decrypt(sp, upstream, world, b)


# =====================================================================================
# Keyserver (VKS)
# =====================================================================================

def vks_requests(world) -> list:
    with world.wkd.lock:
        return [p for h, p in world.wkd.requests if h == VKS]


def test_keyserver_off_by_default(world, sphome, start_sealpost, upstream):
    sp = start(start_sealpost, upstream, world, sphome)
    before = len(vks_requests(world))
    refused(sp, upstream, f"vic@{NOWKD}", r"HTTP 404")
    assert len(vks_requests(world)) == before, "a keyserver was asked though none is configured"


def test_keyserver_vks_after_wkd(world, sphome, start_sealpost, upstream):
    """WKD has nothing for nowkd.test; the VKS keyserver has vic's key."""
    sp = start(start_sealpost, upstream, world, sphome, keyserver=f"https://{VKS}")
    deliver_and_decrypt(sp, upstream, world, world.keys["vic"])
    assert f"/vks/v1/by-email/vic%40{NOWKD}" in vks_requests(world)
    sp.wait_log(rf"discovery: <vic@{NOWKD}>: key {world.keys['vic'].fpr} from keyserver "
                rf"https://{re.escape(VKS)}/vks/v1/by-email/vic%40{re.escape(NOWKD)}")


# =====================================================================================
# Background refresh
# =====================================================================================

def test_background_refresh_keeps_a_send_after_the_ttl_free_of_lookups(world, sphome, start_sealpost, upstream):
    """A discovered key past [discovery] ttl is looked up again by sealpost
    itself (at start, then every minute), not by the next RCPT.  A week is
    made to pass by ageing the row's last lookup in the provenance table."""
    import sqlite3
    zed = world.keys["zed"]
    sp = start(start_sealpost, upstream, world, sphome)
    deliver_and_decrypt(sp, upstream, world, zed)
    upstream.messages.clear()
    sp.stop()
    db = Path(sp.workdir) / "state" / "discovery" / "discovery.sqlite"
    with sqlite3.connect(db) as con:
        n = con.execute("UPDATE discovered SET fetched = fetched - 8 * 86400, first_seen = first_seen - 8 * 86400 "
                        "WHERE addr = ?",
                        (f"zed@{ADV}",)).rowcount
        assert n == 1
    before = world.wkd.count("zed")
    sp.start()
    sp.wait_log(rf"discovery: background refresh of <zed@{re.escape(ADV)}>: key {zed.fpr} from WKD \(advanced\)")
    assert world.wkd.count("zed") == before + 1
    deliver_and_decrypt(sp, upstream, world, zed)
    assert world.wkd.count("zed") == before + 1, "the send after the refresh looked the key up again"
    with sqlite3.connect(db) as con:
        (first_seen, fetched) = con.execute("SELECT first_seen, fetched FROM discovered WHERE addr = ?",
                                            (f"zed@{ADV}",)).fetchone()
    assert fetched - first_seen >= 8 * 86400 - 5, "the refresh did not keep 'first seen' (the same key)"


def test_key_change_is_in_the_delivery_report(world, sphome, start_sealpost, upstream, changer, tmp_path):
    """next-form with link mode: the recipient whose key changed gets a link,
    and alice's delivery report says why."""
    a, b = changer
    cfg = disc_config(world, sphome)
    cfg["policy"]["no_key"] = "link"
    cfg["link"] = {"base_url": "https://mail.example.org/s/", "store": str(tmp_path / "links.sqlite")}
    sp = start_sealpost(upstream, extra=cfg)
    deliver_and_decrypt(sp, upstream, world, a)
    upstream.messages.clear()
    world.wkd.put_advanced(ADV, "change", b.home.run("--export", b.fpr).stdout)
    r = cli_at(sp, "keys", "-c", sp.config_path, "refresh", a.addr)
    assert r.rc == 1, str(r)
    msg = text_message(to=a.addr)
    replies = send(sp, [a.addr], msg.data)
    assert_reply(replies[1], 250, "2.1.5", what="RCPT")
    assert "link" in replies[1].text, str(replies[1])
    assert_reply(replies[-1], 250, "2.0.0", what="delivery")
    got = upstream.wait_for(2)
    rep = [m for m in got if m.rcpt_tos == [ALICE]]
    assert len(rep) == 1, upstream.events_summary()
    _, armor = parse_rfc3156(rep[0].content)
    res = world.alice.home.decrypt(armor)
    assert res.rc == 0, str(res)
    text = res.stdout.decode("utf-8", "replace")
    assert re.search(rf"<{re.escape(a.addr)}>\r?\n    note: KEY CHANGED: WKD \(advanced\) now serves {b.fpr}, "
                     rf"was {a.fpr}; not used", text), text
    # Nothing went to the new key: the copy to the recipient is the link notification.
    note = [m for m in got if m.rcpt_tos == [a.addr]]
    assert len(note) == 1 and b"-----BEGIN PGP MESSAGE-----" not in note[0].content
