"""Keyring faults and internationalised domains (issue 13, items 1 and 11).

Item 1: an unusable keyring is an error (451 4.7.0 at RCPT, 451 at DATA when
it breaks in between), never "no key".  Every test here runs with
`[policy] no_key = plain`, where reading a fault as "no key" sends a
recipient whose key is certified the message in clear with a 250; the
upstream's received messages are checked to hold nothing.  The faults are
made for real on a copy of a real GnuPG keyring: the directory removed,
pubring.kbx emptied or cut in the middle of a key, trustdb.gpg removed,
emptied, cut short or replaced by a new one gpg made (no ultimately trusted
key: every validity "unknown").  The same keyring, healthy, sends the
certified recipient OpenPGP and an unknown recipient the plain form, as
configured.  The [sodium] recipients file: deleted, malformed or not a file
while sealpost runs is a 451 too.

Item 11: a user ID `zoë@exämple.net` gets OpenPGP when curl sends RCPT
TO:<zoë@xn--exmple-cua.net> (curl converts the domain itself), and a user ID
under the A-label gets it for a Unicode RCPT (SMTPUTF8); the same for sodium
entries; `sealpost check --rcpt` agrees; an invalid IDN is refused with a
reason.  Every OpenPGP copy is decrypted with the recipient's own key and
compared with what the client sent; every sodium copy is opened.
"""
from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import clients
from clients import RawClient, assert_reply
from gpgkeys import GpgHome, Identity, kill_all_agents, make_identity
from sodiumkeys import SodiumKey, write_recipients

CRLF = b"\r\n"
ALICE = "alice@example.com"             # the sender; sealpost's keyring is her home
BOB = "bob@example.net"                 # certified: validity full
NOKEY = "nokey@example.org"             # no key anywhere: plain, as configured
ZOE_U = "zoë@exämple.net"               # user ID and sodium entry in Unicode
ZOE_A = "zoë@xn--exmple-cua.net"        # what curl puts in RCPT TO for ZOE_U
YANN_U = "yann@exämple.net"
YANN_A = "yann@xn--exmple-cua.net"      # user ID and sodium entry as an A-label
CAROL = "carol@example.org"             # sodium only


# =====================================================================================
# Keys, once per module
# =====================================================================================

@dataclass
class World:
    alice: Identity
    bob: Identity
    zoe: Identity
    yann: Identity
    template: GpgHome        # alice's home: bob, fillers, zoë and yann imported and certified
    bob_blob_end: int        # offset in pubring.kbx just past bob's key


def keybox_blobs(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each blob of a keybox (4-byte big-endian length first)."""
    out, off = [], 0
    while off < len(data):
        n = int.from_bytes(data[off:off + 4], "big")
        assert n >= 5 and off + n <= len(data), f"not a keybox at {off}"
        out.append((off, n))
        off += n
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    base = tmp_path_factory.mktemp("kr")
    alice = make_identity(base, "alice", "Alice", ALICE, primary_usage="sign")
    sp = alice.home
    bob = make_identity(base, "bob", "Bob", BOB)
    # bob first, then keys after him: a keybox cut after bob's key still
    # lets gpg find bob, which is what made the cut keyring look healthy.
    fillers = [make_identity(base, f"f{i}", f"Filler {i}", f"filler{i}@example.net") for i in range(4)]
    zoe = make_identity(base, "zoe", "Zoë", ZOE_U)
    yann = make_identity(base, "yann", "Yann", YANN_A)
    for who in [bob] + fillers + [zoe, yann]:
        sp.import_keys(who.home.export(who.fpr))
        sp.lsign(who.fpr, alice.fpr)
    for who in (bob, zoe, yann):
        assert sp.key(who.fpr)["validity"] == "f", sp.key(who.fpr)
    sp.kill_agent()
    kbx = (sp.path / "pubring.kbx").read_bytes()
    # The keybox holds the fingerprints in binary; bob's blob is the one with his.
    [bob_blob] = [(off, n) for off, n in keybox_blobs(kbx) if bytes.fromhex(bob.fpr) in kbx[off:off + n]]
    bob_blob_end = bob_blob[0] + bob_blob[1]
    assert bob_blob_end < len(kbx) // 2, "bob's key must come early in the keybox"
    yield World(alice, bob, zoe, yann, sp, bob_blob_end)
    kill_all_agents()


@pytest.fixture
def sphome(world, tmp_path) -> GpgHome:
    h = world.template.copy_to(tmp_path / "g")
    yield h
    h.kill_agent()


def pgp_extra(home: Path, **more) -> dict:
    extra = {"pgp": {"gnupg_home": str(home), "trust": "keyring", "encrypt_to_self": "yes",
                     "hide_subject": "yes", "sign": "no"},
             "policy": {"no_key": "plain"}}
    for k, v in more.items():
        extra.setdefault(k, {}).update(v)
    return extra


# =====================================================================================
# The faults, made for real
# =====================================================================================

def cut_in_half(world: World, home: Path) -> None:
    """pubring.kbx cut in the middle of a key that comes after bob's."""
    p = home / "pubring.kbx"
    data = p.read_bytes()
    cut = len(data) // 2
    starts = {off for off, _ in keybox_blobs(data)}
    if cut in starts:
        cut += 1                        # in the middle of a key, not between two
    assert cut > world.bob_blob_end, "bob's key must survive the cut"
    p.write_bytes(data[:cut])


def fresh_trustdb(home: Path, scratch: Path) -> None:
    """trustdb.gpg replaced by the one gpg makes in a new home: no key is
    ultimately trusted any more (what gpg leaves after trustdb.gpg was lost)."""
    fresh = GpgHome(scratch / "fresh-trustdb")
    fresh.run("--list-keys", check=False)
    fresh.kill_agent()
    shutil.copyfile(fresh.path / "trustdb.gpg", home / "trustdb.gpg")


def half_trustdb(home: Path) -> None:
    p = home / "trustdb.gpg"
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])


FAULTS = {
    "missing_dir": lambda w, h, t: shutil.rmtree(h),
    "empty_pubring": lambda w, h, t: (h / "pubring.kbx").write_bytes(b""),
    "truncated_pubring": lambda w, h, t: cut_in_half(w, h),
    "missing_trustdb": lambda w, h, t: (h / "trustdb.gpg").unlink(),
    "empty_trustdb": lambda w, h, t: (h / "trustdb.gpg").write_bytes(b""),
    "truncated_trustdb": lambda w, h, t: half_trustdb(h),
    "trustdb_without_anchor": lambda w, h, t: fresh_trustdb(h, t),
}

# What the 451 says for each.
FAULT_REASON = {
    "missing_dir": "No such file or directory",
    "empty_pubring": "pubring.kbx is empty",
    "truncated_pubring": "pubring.kbx is cut short",
    "missing_trustdb": "trustdb.gpg is missing",
    "empty_trustdb": "trustdb.gpg is empty",
    "truncated_trustdb": "cannot be read in full",
    "trustdb_without_anchor": "no key in it is ultimately trusted",
}


# =====================================================================================
# Messages and copies
# =====================================================================================

def message(to: str) -> bytes:
    secret = uuid.uuid4().hex
    return CRLF.join([
        b"From: Alice <" + ALICE.encode() + b">",
        b"To: <" + to.encode() + b">",
        b"Subject: keyring " + secret.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        ("Grüße, the secret is " + secret).encode(),
        b"last line",
        b"",
    ])


def body_of(msg: bytes) -> bytes:
    return msg.split(b"\r\n\r\n", 1)[1]


def decrypt_copy(raw: bytes, reader: Identity) -> bytes:
    """The entity inside an RFC 3156 copy, decrypted with the reader's own key."""
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/encrypted", raw[:1000]
    armor = m.get_payload()[1].get_payload(decode=True)
    res = reader.home.decrypt(armor)
    assert res.rc == 0 and res.has_status("DECRYPTION_OKAY") is not None, str(res)
    return res.stdout


def assert_openpgp_for(rec, client_msg: bytes, reader: Identity) -> None:
    assert body_of(client_msg) not in rec.content, "the body is in clear in the OpenPGP copy"
    plain = decrypt_copy(rec.content, reader)
    got = body_of(plain)
    if b'hp-legacy-display="1"' in plain.split(b"\r\n\r\n", 1)[0]:
        # RFC 9788 legacy display element (hide_subject): the real Subject
        # line and an empty line before the client's text (docs/formats.md).
        subj = re.search(rb"(?m)^Subject: (.*)\r$", client_msg).group(1)
        assert got.startswith(b"Subject: " + subj + b"\r\n\r\n"), got[:300]
        got = got[len(b"Subject: " + subj + b"\r\n\r\n"):]
    assert got == body_of(client_msg), (got[:300], body_of(client_msg)[:300])


def assert_nothing_upstream(up) -> None:
    # sealpost relays before it answers the final dot; no DATA was accepted (or
    # it was answered 451), so whatever it would have sent is already there.
    assert up.messages == [], "the upstream received: " + up.events_summary()


def rcpt(c: RawClient, addr: str):
    return c.cmd(f"RCPT TO:<{addr}>")


# =====================================================================================
# Item 1: keyring faults
# =====================================================================================

def test_healthy_keyring_certified_gets_openpgp_unknown_gets_plain(world, sphome, start_sealpost, upstream):
    sp = start_sealpost(upstream, extra=pgp_extra(sphome.path))
    msg = message(BOB)
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [BOB, NOKEY], msg)
    assert_reply(replies[1], 250, "2.1.5", what="RCPT bob")
    assert "openpgp" in replies[1].text, str(replies[1])
    assert_reply(replies[2], 250, "2.1.5", what="RCPT nokey")
    assert "plain" in replies[2].text, str(replies[2])
    assert_reply(replies[-1], 250, what="final dot")
    got = upstream.wait_for(2)
    by = {tuple(r.rcpt_tos): r for r in got}
    assert set(by) == {(BOB,), (NOKEY,)}, list(by)
    assert by[(NOKEY,)].content == msg
    assert_openpgp_for(by[(BOB,)], msg, world.bob)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_keyring_fault_is_451_at_rcpt_never_plain(fault, world, sphome, start_sealpost, upstream, tmp_path):
    sp = start_sealpost(upstream, extra=pgp_extra(sphome.path))
    with sp.client() as c:
        c.ehlo()
        # Healthy first: the key is found (and its answer cached) ...
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = rcpt(c, BOB)
        assert_reply(r, 250, "2.1.5", what="RCPT bob, healthy keyring")
        assert "openpgp" in r.text
        assert_reply(c.cmd("RSET"), 250)
        # ... then the keyring breaks under the running proxy.
        FAULTS[fault](world, sphome.path, tmp_path)
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = rcpt(c, BOB)
        assert_reply(r, 451, "4.7.0", what=f"RCPT bob, {fault}")
        assert FAULT_REASON[fault] in r.text, str(r)
        # Nothing was accepted, so there is nothing to send.
        d = c.cmd("DATA")
        assert d.code in (503, 554), str(d)
        c.cmd("QUIT")
    assert_nothing_upstream(upstream)


def test_keyring_fault_between_rcpt_and_data_is_451_at_data(world, sphome, start_sealpost, upstream, tmp_path):
    sp = start_sealpost(upstream, extra=pgp_extra(sphome.path))
    msg = message(BOB)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = rcpt(c, BOB)
        assert_reply(r, 250, "2.1.5")
        assert "openpgp" in r.text
        cut_in_half(world, sphome.path)
        assert_reply(c.cmd("DATA"), 354)
        c.send(clients.dot_stuff(msg) + b".\r\n")
        final = c.reply(timeout=60)
        assert final.code == 451 and final.enhanced.startswith("4."), str(final)
        assert "cut short" in final.text, str(final)
        c.cmd("QUIT")
    assert_nothing_upstream(upstream)


@pytest.mark.parametrize("fault", ["missing_dir", "empty_pubring", "truncated_pubring", "missing_trustdb",
                                   "truncated_trustdb"])
def test_check_reports_keyring_fault(fault, world, sphome, cli, upstream, write_file, tmp_path):
    from test_cli import config_text
    text = config_text(upstream, tmp_path, pgp={"gnupg_home": str(sphome.path), "trust": "keyring"},
                       policy={"no_key": "plain"})
    f = write_file("sealpost.conf", text)
    r = cli("check", "-c", f, "--rcpt", BOB, timeout=60)
    assert r.rc == 0, str(r)
    assert f"keyring     {sphome.path}: 8 key(s)" in r.stdout, r.stdout
    assert f"rcpt        {BOB}: openpgp key {world.bob.fpr}" in r.stdout, r.stdout
    FAULTS[fault](world, sphome.path, tmp_path)
    r = cli("check", "-c", f, "--rcpt", BOB, timeout=60)
    assert r.rc == 1, str(r)
    assert f"keyring     {sphome.path}: FAILED: " in r.stdout and FAULT_REASON[fault] in r.stdout, r.stdout
    assert f"rcpt        {BOB}: FAILED: " in r.stdout, r.stdout
    assert "plain" not in r.stdout, r.stdout
    r = cli("check", "-c", f, "--json", timeout=60)
    assert r.rc == 1, str(r)
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["keyring"]["status"] == "error", doc["keyring"]
    assert FAULT_REASON[fault] in doc["keyring"]["note"], doc["keyring"]


def test_default_keyring_absent_means_no_keys(cli, upstream, write_file, tmp_path):
    """Only the fallback ~/.gnupg (no gnupg_home, no GNUPGHOME) may be absent."""
    from test_cli import config_text
    text = config_text(upstream, tmp_path, policy={"no_key": "plain"})
    r = cli("check", "-c", write_file("sealpost.conf", text), "--rcpt", NOKEY, timeout=60)
    assert r.rc == 0, str(r)
    assert "keyring     none (" in r.stdout, r.stdout
    assert f"rcpt        {NOKEY}: plain" in r.stdout, r.stdout


# -- the sodium recipients file ------------------------------------------------------

def _sodium_missing(p: Path) -> None:
    p.unlink()


def _sodium_malformed(p: Path) -> None:
    p.write_text(p.read_text() + "this is not an address line\n")


def _sodium_not_a_file(p: Path) -> None:
    p.unlink()
    p.mkdir()


SODIUM_FAULTS = {"missing": _sodium_missing, "malformed": _sodium_malformed, "not_a_file": _sodium_not_a_file}


@pytest.mark.parametrize("fault", list(SODIUM_FAULTS))
def test_sodium_recipients_fault_is_451(fault, start_sealpost, upstream, sealpost_bin, tmp_path):
    key = SodiumKey.make(sealpost_bin, tmp_path / "keys", CAROL)
    rf = write_recipients(tmp_path / "sodium-recipients", [key])
    empty = tmp_path / "empty-gnupg"
    empty.mkdir(mode=0o700)
    sp = start_sealpost(upstream, extra=pgp_extra(empty, sodium={"recipients": str(rf)}))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = rcpt(c, CAROL)
        assert_reply(r, 250, "2.1.5")
        assert "sodium" in r.text, str(r)
        c.cmd("QUIT")
    SODIUM_FAULTS[fault](rf)
    with sp.client() as c:                       # the file is read once per session
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = rcpt(c, CAROL)
        assert_reply(r, 451, "4.7.0", what=f"RCPT carol, recipients file {fault}")
        assert str(rf) in r.text, str(r)
        d = c.cmd("DATA")
        assert d.code in (503, 554), str(d)
        c.cmd("QUIT")
    assert_nothing_upstream(upstream)


def test_check_reports_sodium_fault(cli, upstream, write_file, tmp_path, sealpost_bin):
    from test_cli import config_text
    key = SodiumKey.make(sealpost_bin, tmp_path / "keys", CAROL)
    rf = write_recipients(tmp_path / "sodium-recipients", [key])
    _sodium_malformed(rf)
    text = config_text(upstream, tmp_path, sodium={"recipients": str(rf)}, policy={"no_key": "plain"})
    r = cli("check", "-c", write_file("sealpost.conf", text), "--rcpt", CAROL, timeout=60)
    assert r.rc == 1, str(r)
    assert f"sodium      FAILED: {rf}:2:" in r.stdout, r.stdout
    assert f"rcpt        {CAROL}: FAILED: " in r.stdout and "plain" not in r.stdout, r.stdout


# =====================================================================================
# Item 11: internationalised domains
# =====================================================================================

def test_idn_unicode_uid_gets_openpgp_for_punycode_rcpt_from_curl(world, sphome, start_sealpost, upstream,
                                                                   tmp_path):
    sp = start_sealpost(upstream, extra=pgp_extra(sphome.path))
    msg = message(ZOE_U)
    # curl converts the domain to its A-label itself (and asks for SMTPUTF8
    # for the non-ASCII local part): RCPT TO:<zoë@xn--exmple-cua.net>.
    r = clients.curl(sp.port, ALICE, [ZOE_U], msg, tmp_path)
    assert r.rc == 0, str(r)
    [rec] = upstream.wait_for(1)
    assert rec.rcpt_tos == [ZOE_A], rec.rcpt_tos
    assert_openpgp_for(rec, msg, world.zoe)


def test_idn_alabel_uid_gets_openpgp_for_unicode_rcpt(world, sphome, start_sealpost, upstream):
    sp = start_sealpost(upstream, extra=pgp_extra(sphome.path))
    msg = message(YANN_U)
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [YANN_U], msg, mail_params="SMTPUTF8")
    assert_reply(replies[1], 250, "2.1.5", what="RCPT yann (Unicode domain)")
    assert "openpgp" in replies[1].text, str(replies[1])
    assert_reply(replies[-1], 250, what="final dot")
    [rec] = upstream.wait_for(1)
    assert rec.rcpt_tos == [YANN_U], rec.rcpt_tos
    assert_openpgp_for(rec, msg, world.yann)


def test_idn_sodium_entries_match_either_spelling(start_sealpost, upstream, sealpost_bin, tmp_path):
    zoe = SodiumKey.make(sealpost_bin, tmp_path / "keys", ZOE_U)      # entry in Unicode
    yann = SodiumKey.make(sealpost_bin, tmp_path / "keys", YANN_A)    # entry as an A-label
    rf = write_recipients(tmp_path / "sodium-recipients", [zoe, yann])
    empty = tmp_path / "empty-gnupg"
    empty.mkdir(mode=0o700)
    sp = start_sealpost(upstream, extra=pgp_extra(empty, sodium={"recipients": str(rf)}))
    m1 = message(ZOE_U)
    r = clients.curl(sp.port, ALICE, [ZOE_U], m1, tmp_path)            # RCPT TO:<zoë@xn--...>
    assert r.rc == 0, str(r)
    [rec1] = upstream.wait_for(1)
    assert rec1.rcpt_tos == [ZOE_A], rec1.rcpt_tos
    assert body_of(m1) not in rec1.content
    assert zoe.open(sealpost_bin, rec1.content, tmp_path / "o1") == m1
    m2 = message(YANN_U)
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [YANN_U], m2, mail_params="SMTPUTF8")
    assert "sodium" in replies[1].text, str(replies[1])
    assert_reply(replies[-1], 250)
    rec2 = upstream.wait_for(2)[1]
    assert rec2.rcpt_tos == [YANN_U]
    assert body_of(m2) not in rec2.content
    assert yann.open(sealpost_bin, rec2.content, tmp_path / "o2") == m2


def test_idn_both_spellings_in_recipients_file_are_one_address(cli, upstream, write_file, tmp_path,
                                                              sealpost_bin):
    from test_cli import config_text
    a = SodiumKey.make(sealpost_bin, tmp_path / "k1", ZOE_U)
    b = SodiumKey.make(sealpost_bin, tmp_path / "k2", ZOE_A)
    rf = write_recipients(tmp_path / "sodium-recipients", [a, b])
    text = config_text(upstream, tmp_path, sodium={"recipients": str(rf)})
    r = cli("check", "-c", write_file("sealpost.conf", text), timeout=60)
    assert r.rc == 1 and f"{rf}:2: " in r.stdout and "listed twice (first on line 1)" in r.stdout, str(r)


def test_invalid_idn_is_refused_with_a_reason(world, sphome, start_sealpost, upstream):
    sp = start_sealpost(upstream, extra=pgp_extra(sphome.path))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = rcpt(c, "bob@xn--zz.net")
        assert_reply(r, 550, "5.7.1")
        assert "not a valid internationalised domain name" in r.text, str(r)
        c.cmd("QUIT")
    assert_nothing_upstream(upstream)


def test_check_rcpt_matches_either_spelling(world, sphome, cli, upstream, write_file, tmp_path):
    from test_cli import config_text
    text = config_text(upstream, tmp_path, pgp={"gnupg_home": str(sphome.path), "trust": "keyring"},
                       policy={"no_key": "reject"})
    r = cli("check", "-c", write_file("sealpost.conf", text), "--json", "--rcpt", ZOE_A, YANN_U,
            "bob@xn--zz.net", timeout=60)
    doc = json.loads(r.stdout)
    by = {x["address"]: x for x in doc["recipients"]}
    assert by[ZOE_A]["form"] == "openpgp" and by[ZOE_A]["key"]["fingerprint"] == world.zoe.fpr, by[ZOE_A]
    assert by[YANN_U]["form"] == "openpgp" and by[YANN_U]["key"]["fingerprint"] == world.yann.fpr, by[YANN_U]
    bad = by["bob@xn--zz.net"]
    assert bad["status"] == "refused" and "internationalised domain" in bad["reason"], bad
