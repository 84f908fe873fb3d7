"""OpenPGP recipients (issue 3): real GnuPG keys made here, the real sealpost,
the real aiosmtpd upstream, and `gpg --decrypt` with each recipient's own
GNUPGHOME.

Keys are made once per module (gpgkeys.py); each test works on a copy of the
sender's keyring (alice: secret key, ultimately trusted; recipients imported
and certified with --quick-lsign-key), so a test that revokes or deletes a key
never disturbs another.  Every copy the upstream gets is parsed as RFC 3156,
its packets listed with a keyring holding no secret key (exactly which key IDs
it is encrypted to, and MDC/AEAD), decrypted by each recipient, and the
decrypted entity compared with what the client sent, byte for byte.

SP_PGP_DUMP=DIR keeps every checked upstream copy there (DIR/<random>.eml) for
a look by hand.
"""
from __future__ import annotations

import base64
import email
import email.header
import email.policy
import html
import quopri
import hashlib
import os
import subprocess
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pytest

import clients
import messages
from clients import RawClient, assert_reply
from gpgkeys import (GpgHome, Identity, integrity_protected, kill_all_agents, make_identity,
                     packet_keyids)

CRLF = b"\r\n"
ALICE = "alice@example.com"        # the sender (sealpost's keyring holds her secret key)
BOB = "bob@example.net"
CAROL = "carol@example.net"
DAVE = "dave@example.org"          # the Bcc recipient

PAST = "20200101T000000"           # --faked-system-time for keys that expired long ago


# =====================================================================================
# Keys, once per module
# =====================================================================================

@dataclass
class World:
    base: Path
    alice: Identity
    bob: Identity
    carol: Identity
    dave: Identity
    frank: Identity          # uid "Frank <Frank@Example.NET>": case-insensitive match
    gina: Identity           # bare uid "gina@example.net"
    decoys: list             # keys whose uids contain bob@example.net / erin@example.net, never exactly
    bad: dict                # addr -> (fpr, reason regex)
    uncert: Identity         # imported, not certified
    template: GpgHome        # sealpost's keyring (alice's home): copied per test
    nokeys: GpgHome          # no keys at all: lists packets without decrypting


def _pub(i: Identity) -> bytes:
    return i.home.export(i.fpr)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    base = tmp_path_factory.mktemp("pgp")
    t0 = time.monotonic()
    # The sender: a signing primary (sign = yes) plus an encryption subkey.
    alice = make_identity(base, "alice", "Alice", ALICE, primary_usage="sign")
    sp = alice.home                      # sealpost's keyring template
    bob = make_identity(base, "bob", "Bob", BOB)
    carol = make_identity(base, "carol", "Carol", CAROL)
    dave = make_identity(base, "dave", "Dave", DAVE)
    frank = make_identity(base, "frank", "Frank", "Frank@Example.NET")
    gina_home = GpgHome(base / "gina")
    gina_fpr = gina_home.gen_key("gina@example.net")
    gina = Identity("", "gina@example.net", gina_home, gina_fpr, gina_home.enc_keyids(gina_fpr))
    # Decoys, made after bob's key (newer: a loose matcher would prefer them).
    dec_home = GpgHome(base / "decoys")
    decoy_uids = [
        "Xbob <xbob@example.net>",                    # bob@example.net is a substring
        "Bob Evil <bob@example.net.evil>",            # so is this
        '"bob@example.net" <evil1@example.com>',      # the address only in the name
        "Evil (bob@example.net) <evil2@example.com>",  # ... only in the comment
        "Verin <verin@example.net>",                   # erin@example.net is a substring
        "Erin Evil <erin@example.net.evil>",
        '"erin@example.net" <evil3@example.com>',
        "Evil (erin@example.net) <evil4@example.com>",
        "Malice <malice@example.com>",                 # alice@example.com is a substring
    ]
    decoys = []
    for u in decoy_uids:
        f = dec_home.gen_key(u)
        decoys.append(Identity(u, u, dec_home, f, dec_home.enc_keyids(f)))
    uncert = make_identity(base, "uncert", "Uncert", "uncert@example.net")

    # The keys no one may use.  Each is certified by alice first (where gpg lets
    # us), so the refusal is for the stated reason, not for validity.
    bad_home = GpgHome(base / "bad")
    bad = {}
    exp = bad_home.gen_key("Expired <expired@example.net>", expire="1d", faked_time=PAST)
    subexp = bad_home.gen_key("Subexp <subexp@example.net>", expire="never", faked_time=PAST,
                              subkey_expire="1d")
    rev = bad_home.gen_key("Revoked <revoked@example.net>")
    dis = bad_home.gen_key("Disabled <disabled@example.net>")
    signonly = bad_home.gen_key("Signonly <signonly@example.net>", encr=False, primary_usage="sign")
    olduid = bad_home.gen_key("Old <old@example.net>")
    bad_home.run("--passphrase", "", "--quick-add-uid", olduid, "New <new@example.net>")
    bad_home.revoke_uid(olduid, "Old <old@example.net>")

    for who in (bob, carol, dave, frank, gina, uncert):
        sp.import_keys(_pub(who))
    sp.import_keys(dec_home.run("--armor", "--export").stdout)
    sp.import_keys(bad_home.run("--armor", "--export").stdout)
    for who in (bob, carol, dave, frank, gina):
        sp.lsign(who.fpr, alice.fpr)
    for d in decoys:
        sp.lsign(d.fpr, alice.fpr)
    for f in (subexp, rev, dis, signonly, olduid):
        sp.lsign(f, alice.fpr)
    sp.revoke_with(bad_home.revocation_cert(rev))
    sp.disable(dis)

    bad = {
        "expired@example.net": (exp, r"key expired"),
        "subexp@example.net": (subexp, r"encryption subkey expired"),
        "revoked@example.net": (rev, r"key revoked"),
        "disabled@example.net": (dis, r"key disabled"),
        "signonly@example.net": (signonly, r"no encryption-capable subkey"),
    }
    # Sanity: GnuPG itself sees them as we meant.
    assert sp.key(exp)["validity"] == "e", sp.key(exp)
    assert any(s["validity"] == "e" for s in sp.key(subexp)["subkeys"]), sp.key(subexp)
    assert sp.key(rev)["validity"] == "r", sp.key(rev)
    assert "D" in sp.key(dis)["caps"], sp.key(dis)
    assert "e" not in sp.key(signonly)["caps"].lower(), sp.key(signonly)
    assert sp.key(bob.fpr)["validity"] == "f", sp.key(bob.fpr)
    assert sp.key(uncert.fpr)["validity"] in ("-", "q", "o"), sp.key(uncert.fpr)

    # Each recipient can check alice's signatures.
    for who in (bob, carol, dave):
        who.home.import_keys(_pub(alice))

    nokeys = GpgHome(base / "nokeys")
    w = World(base, alice, bob, carol, dave, frank, gina, decoys, bad, uncert, sp, nokeys)
    w.setup_seconds = time.monotonic() - t0
    yield w
    kill_all_agents()


@pytest.fixture
def sphome(world, tmp_path) -> GpgHome:
    """This test's copy of sealpost's keyring."""
    h = world.template.copy_to(tmp_path / "g")
    yield h
    h.kill_agent()


def pgp_config(home: GpgHome, no_key: str = "reject", **pgp) -> dict:
    cfg = {"gnupg_home": str(home.path), "trust": "keyring", "hide_subject": "yes",
           "encrypt_to_self": "yes", "sign": "no"}
    cfg.update({k: str(v) for k, v in pgp.items()})
    return {"pgp": cfg, "policy": {"no_key": no_key}}


def start_pgp(start_sealpost, upstream, home: GpgHome, **pgp):
    return start_sealpost(upstream, extra=pgp_config(home, **pgp))


SENTINEL_RCPT = "sentinel@example.org"     # has no key: with no_key = plain it gets the message as is


def plain_sentinel(c: RawClient, up, already: int = 0) -> None:
    """On the same session, after a refused transaction: one message to a keyless
    address (no_key = plain).  Sessions are handled in order and sealpost answers
    only after relaying, so once this arrived, anything the refused transaction
    had sent would already be there: the upstream must hold `already` + it."""
    c.cmd("RSET")
    msg = text_message(to=SENTINEL_RCPT).data
    replies = c.transaction(ALICE, [SENTINEL_RCPT], msg)
    assert_reply(replies[1], 250, "2.1.5", what="sentinel RCPT")
    assert "plain" in replies[1].text, str(replies[1])
    assert_reply(replies[-1], 250, "2.0.0", what="sentinel delivery")
    got = up.wait_for(already + 1)
    assert len(got) == already + 1 and got[-1].content == msg and got[-1].rcpt_tos == [SENTINEL_RCPT], (
        "the upstream received something besides the expected messages: " + up.events_summary())


# =====================================================================================
# Messages
# =====================================================================================

def _lines(*ls: bytes) -> bytes:
    return b"".join(l + CRLF for l in ls)


def _b64_lines(blob: bytes) -> list[bytes]:
    return base64.encodebytes(blob).replace(b"\n", CRLF).rstrip(CRLF).split(CRLF)


@dataclass
class Msg:
    data: bytes
    secrets: list[bytes]          # must appear nowhere in what the upstream gets
    attachments: dict             # filename -> decoded bytes


def tok() -> str:
    return os.urandom(6).hex()


def nested_message(frm=ALICE, to=(BOB,), cc=(), bcc=(), extra=()) -> Msg:
    """multipart/mixed { multipart/alternative { text/plain 8bit UTF-8 with the
    transparency traps, text/html quoted-printable }, a base64 PDF-ish
    attachment, a base64 text attachment }."""
    s_subj, s_text, s_html, s_att, s_att2 = (f"{n}{tok()}" for n in ("subj", "text", "html", "att", "note"))
    outer_b = b"=_outer_" + uuid.uuid4().hex.encode()
    alt_b = b"=_alt_" + uuid.uuid4().hex.encode()
    blob = hashlib.shake_256(s_att.encode()).digest(20000)
    note = ("Notiz: Geheimnis " + s_att2 + " — ünïcödé\n").encode("utf-8") * 30
    long_line = b"L" * 997 + b"!"                      # 998 octets + CRLF
    text = [
        ("Grüße aus Köln — " + s_text + " ✓ 日本語").encode("utf-8"),
        b"",
        b"From the desk of Alice (a line mbox would mangle)",
        b">From already quoted",
        b".",
        b".leading dot",
        b"trailing spaces   ",
        b"tab\there",
        long_line,
        b"",
    ]
    html = [
        b"<html><body><p>Gr=C3=BC=C3=9Fe, " + s_html.encode() + b" =E2=9C=93</p>",
        b"<p>" + b"w" * 70 + b"=",
        b"w" * 40 + b"</p></body></html>",
    ]
    to_h = b", ".join(f"<{a}>".encode() for a in to)
    hdrs = [
        b"From: Alice <" + frm.encode() + b">",
        b"To: " + to_h,
    ]
    if cc:
        hdrs.append(b"Cc: " + b", ".join(f"<{a}>".encode() for a in cc))
    if bcc:
        hdrs.append(b"Bcc: " + b", ".join(f"<{a}>".encode() for a in bcc))
    hdrs += [
        b"Subject: =?utf-8?q?Quartalsplan_f=C3=BCr?= " + s_subj.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"In-Reply-To: <parent-" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"References: <root@client.test>",
        b" <parent@client.test>",
        b"X-Mailer: sealpost-integration-tests",
        *extra,
        b"MIME-Version: 1.0",
        b"Content-Type: multipart/mixed;",
        b' boundary="' + outer_b + b'"',
    ]
    msg = _lines(
        *hdrs,
        b"",
        b"This is a multi-part message in MIME format.",
        b"--" + outer_b,
        b'Content-Type: multipart/alternative; boundary="' + alt_b + b'"',
        b"",
        b"--" + alt_b,
        b"Content-Type: text/plain; charset=utf-8; format=flowed",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        *text,
        b"--" + alt_b,
        b"Content-Type: text/html; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        *html,
        b"",
        b"--" + alt_b + b"--",
        b"",
        b"--" + outer_b,
        b'Content-Type: application/pdf; name="plan-' + s_att.encode() + b'.pdf"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="plan-' + s_att.encode() + b'.pdf"',
        b"",
        *_b64_lines(blob),
        b"",
        b"--" + outer_b,
        b'Content-Type: text/plain; charset=utf-8; name="notes-' + s_att2.encode() + b'.txt"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="notes-' + s_att2.encode() + b'.txt"',
        b"",
        *_b64_lines(note),
        b"",
        b"--" + outer_b + b"--",
        b"",
    )
    secrets = [s.encode() for s in (s_subj, s_text, s_html, s_att, s_att2)]
    secrets += ["Grüße aus Köln".encode(), b"From the desk of Alice", b"plan-", b"notes-"]
    # A line from the middle of the base64 attachment: the attachment is not in clear either.
    secrets.append(_b64_lines(blob)[5])
    return Msg(msg, secrets, {f"plan-{s_att}.pdf": blob, f"notes-{s_att2}.txt": note})


def text_message(frm=ALICE, to=BOB, subject_secret: Optional[str] = None, extra=()) -> Msg:
    """A single text/plain 8-bit UTF-8 part with the transparency traps."""
    s_subj = subject_secret or f"subj{tok()}"
    s_body = f"body{tok()}"
    body = [
        ("Liebe Grüße, " + s_body + " — naïve café ✓").encode("utf-8"),
        b"From here on, a line mbox would mangle",
        b"From ",
        b".",
        b"..",
        b"x" * 998,
        b"trailing   ",
        b"",
        b"last line",
    ]
    msg = _lines(
        b"From: Alice <" + frm.encode() + b">",
        b"To: Bob <" + to.encode() + b">",
        b"Subject: Secret " + s_subj.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"Reply-To: Alice Other <alice.other@example.com>",
        *extra,
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        *body,
    )
    return Msg(msg, [s_subj.encode(), s_body.encode(), "Liebe Grüße".encode(), b"From here on"], {})


# =====================================================================================
# Looking at what the upstream got
# =====================================================================================

def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header block incl. its last CRLF, body) at the first empty line."""
    i = raw.find(b"\r\n\r\n")
    assert i >= 0, f"no end of header section in {raw[:300]!r}"
    return raw[:i + 2], raw[i + 4:]


def header_fields(block: bytes) -> list[bytes]:
    """Each field's exact bytes (continuation lines included, with CRLF)."""
    out: list[bytes] = []
    for line in block.split(CRLF)[:-1]:
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += line + CRLF
        else:
            out.append(line + CRLF)
    return out


def fname(field: bytes) -> str:
    return field.split(b":", 1)[0].decode("ascii", "replace").strip().lower()


def fvalue(field: bytes) -> str:
    v = field.split(b":", 1)[1]
    return re.sub(rb"\r\n(?=[ \t])", b"", v).strip().decode("utf-8", "replace")


# The outer header allow-list (docs/formats.md "Outer header fields"): every
# other field the client wrote travels only inside the encryption.
OUTER_ALLOWED = ("from", "sender", "to", "cc", "reply-to", "date", "message-id", "in-reply-to",
                 "references", "autocrypt", "auto-submitted", "subject")


def expected_outer_fields(client: bytes, hide_subject: bool) -> list[bytes]:
    head, _ = split_message(client)
    out = []
    subject_done = False
    for f in header_fields(head):
        n = fname(f)
        if n not in OUTER_ALLOWED:
            continue
        if n == "subject" and hide_subject:
            if subject_done:
                continue
            subject_done = True
            f = f.split(b":", 1)[0] + b": ...\r\n"
        out.append(f)
    return out


@dataclass
class PgpCopy:
    raw: bytes
    outer: email.message.Message
    armor: bytes
    packets: str
    plaintext: bytes          # the decrypted entity
    decrypt_status: list      # per home, the [GNUPG:] lines


def parse_rfc3156(raw: bytes) -> tuple[email.message.Message, bytes]:
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/encrypted", f"not multipart/encrypted:\n{raw[:2000]!r}"
    assert m.get_param("protocol") == "application/pgp-encrypted", m.get("Content-Type")
    assert m.get_all("MIME-Version") == ["1.0"], m.get_all("MIME-Version")
    parts = m.get_payload()
    assert isinstance(parts, list) and len(parts) == 2, f"RFC 3156 wants 2 parts, got {parts!r}"
    v, c = parts
    assert v.get_content_type() == "application/pgp-encrypted", v.get("Content-Type")
    vbody = v.get_payload(decode=True)
    assert re.search(rb"(?m)^Version: 1\r?$", vbody), vbody
    assert c.get_content_type() == "application/octet-stream", c.get("Content-Type")
    armor = c.get_payload(decode=True)
    assert armor.lstrip().startswith(b"-----BEGIN PGP MESSAGE-----"), armor[:200]
    assert armor.rstrip().endswith(b"-----END PGP MESSAGE-----"), armor[-200:]
    return m, armor


def check_autocrypt(world: World, field: bytes) -> None:
    """Autocrypt Level 1: addr= the sender, keydata= the sender's public key
    (and no secret material)."""
    value = re.sub(rb"\r?\n[ \t]", b"", field.split(b":", 1)[1]).decode().strip()
    attrs = dict(a.strip().split("=", 1) for a in value.split(";"))
    assert attrs["addr"] == world.alice.addr, value
    key = base64.b64decode(attrs["keydata"])
    res = subprocess.run(["gpg", "--batch", "--with-colons", "--import-options", "show-only",
                          "--import"], input=key, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, GNUPGHOME=str(world.nokeys.path)))
    out = res.stdout.decode()
    assert f":{world.alice.fpr}:" in out, out
    assert "\nsec:" not in out and not out.startswith("sec:"), "secret key in Autocrypt keydata"


def check_pgp_copy(world: World, rec, client: Msg, readers: Sequence[Identity],
                   keyids: set, hide_subject: bool = True, nonreaders: Sequence[Identity] = (),
                   reader_homes: Sequence[GpgHome] = ()) -> PgpCopy:
    """Everything the issue's "Done when" says about one upstream copy."""
    raw = rec.content
    if os.environ.get("SP_PGP_DUMP"):
        Path(os.environ["SP_PGP_DUMP"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["SP_PGP_DUMP"]) / f"{uuid.uuid4().hex[:8]}.eml").write_bytes(raw)
    outer, armor = parse_rfc3156(raw)
    # Outer header section: the client's fields except Bcc/X-Sealpost-*/MIME-Version/
    # Content-*, byte for byte and in order, Subject "..." when hidden; then ours.
    ohead, _ = split_message(raw)
    ofields = header_fields(ohead)
    want = expected_outer_fields(client.data, hide_subject)
    assert ofields[:len(want)] == want, (
        "outer header section differs from the client's (minus Bcc, X-Sealpost-*, Content-*):\n"
        f"got:  {ofields!r}\nwant: {want!r} + MIME-Version, Content-Type")
    rest = sorted(fname(f) for f in ofields[len(want):])
    assert rest == ["autocrypt", "content-type", "mime-version"], f"extra outer fields: {ofields[len(want):]!r}"
    check_autocrypt(world, [f for f in ofields[len(want):] if fname(f) == "autocrypt"][0])
    assert not re.search(rb"(?im)^bcc:", raw), "a Bcc header left sealpost"
    assert not re.search(rb"(?im)^x-sealpost-", raw), "an X-Sealpost-* header left sealpost"
    # Nothing of the body, the subject or the attachment names in clear.
    for s in client.secrets:
        assert s not in raw, f"{s!r} appears in clear in what the upstream received"
    # Packets: integrity protected, encrypted to exactly these key IDs.
    packets = world.nokeys.list_packets(armor)
    assert integrity_protected(packets), f"not MDC/AEAD protected:\n{packets}"
    assert packet_keyids(packets) == {k.upper() for k in keyids}, (
        f"encrypted to {sorted(packet_keyids(packets))}, expected {sorted(keyids)}:\n{packets}")
    # Each reader decrypts the same entity.
    plain = None
    statuses = []
    for home in [r.home for r in readers] + list(reader_homes):
        res = home.decrypt(armor)
        assert res.rc == 0 and res.has_status("DECRYPTION_OKAY") is not None, f"{home}: {res}"
        assert res.has_status("GOODMDC") is not None or "AEAD" in packets, f"{home}: no GOODMDC: {res}"
        assert res.has_status("DECRYPTION_FAILED") is None, str(res)
        if plain is None:
            plain = res.stdout
        assert res.stdout == plain, f"{home} decrypted something else"
        statuses.append(res.status)
    for who in nonreaders:
        res = who.home.decrypt(armor)
        assert res.rc != 0 and res.has_status("DECRYPTION_OKAY") is None, (
            f"{who.addr} could decrypt a copy not meant for them")
    check_entity(plain, client, hide_subject)
    return PgpCopy(raw, outer, armor, packets, plain, statuses)


def check_entity(plain: bytes, client: Msg, hide_subject: bool) -> None:
    """The decrypted entity: client's Content-Type + protected-headers=v1 + hp=cipher,
    the other Content-* fields, the protected fields, HP-Outer, then the client's
    body byte for byte; every attachment byte-identical."""
    chead, cbody = split_message(client.data)
    phead, pbody = split_message(plain)
    cfields, pfields = header_fields(chead), header_fields(phead)
    # Content-Type: the client's type and parameters, plus the two markers.
    ctype = email.message_from_bytes(chead + CRLF, policy=email.policy.compat32)
    ptype = email.message_from_bytes(phead + CRLF, policy=email.policy.compat32)
    if b"hp-legacy-display" in plain:
        pbody = strip_legacy_display(pbody, ptype, ctype, hide_subject, cbody)
    assert pbody == cbody, first_difference(pbody, cbody, "decrypted body")
    assert [fname(f) for f in pfields].count("content-type") == 1, pfields
    assert ptype.get_content_type() == ctype.get_content_type(), (ptype["Content-Type"], ctype["Content-Type"])
    for k, v in ctype.get_params()[1:]:
        assert ptype.get_param(k) == v, f"Content-Type parameter {k}: {ptype.get_param(k)!r} != {v!r}"
    assert ptype.get_param("protected-headers") == "v1", ptype["Content-Type"]
    assert ptype.get_param("hp") == "cipher", ptype["Content-Type"]
    for f in cfields:
        n = fname(f)
        # Every field but MIME-Version, Bcc and X-Sealpost-* (RFC 9788: all
        # non-structural fields), and the client's other Content-* fields.
        if n != "content-type" and n != "mime-version" and n != "bcc" and not n.startswith("x-sealpost-"):
            assert f in pfields, f"client field {f!r} not copied exactly into the protected entity:\n{phead!r}"
        if n == "bcc" or n.startswith("x-sealpost-"):
            assert f not in pfields and not re.search(rb"(?im)^" + f.split(b":")[0] + b":", phead), (
                f"{f!r} inside the encrypted entity")
    # RFC 9788 HP-Outer: what the outer section said, Subject "..." when hidden.
    hp = [fvalue(f) for f in pfields if fname(f) == "hp-outer"]
    subj = [fvalue(f) for f in cfields if fname(f) == "subject"][0]
    if hide_subject:
        assert "Subject: ..." in hp, hp
    else:
        assert f"Subject: {subj}" in hp, hp
    assert any(h.startswith("From: ") for h in hp) and any(h.startswith("Date: ") for h in hp), hp
    # Attachments decoded from the decrypted entity == the client's.
    got = {p.get_filename(): p.get_payload(decode=True)
           for p in email.message_from_bytes(plain, policy=email.policy.compat32).walk()
           if p.get_filename()}
    assert set(got) == set(client.attachments), (sorted(got), sorted(client.attachments))
    for n, blob in client.attachments.items():
        assert got[n] == blob, f"attachment {n} differs after decryption"


def legacy_subject(ctype: email.message.Message) -> str:
    """The client's Subject, decoded, as a Legacy Display Element shows it."""
    return str(email.header.make_header(email.header.decode_header(ctype["Subject"])))


LEGACY_PARAM = b';\r\n hp-legacy-display="1"'


def legacy_insertions(pbody: bytes, cbody: bytes) -> list[bytes]:
    """What the decrypted body has that the client's does not, when it is
    the client's body with pieces inserted (and nothing changed or lost)."""
    i = j = 0
    out = []
    while i < len(cbody):
        if j < len(pbody) and pbody[j] == cbody[i]:
            i += 1
            j += 1
            continue
        # The nearest place the client's bytes go on (a short anchor: the
        # next insertion may follow a few bytes later).
        k = pbody.find(cbody[i:i + 12], j)
        assert k > j, first_difference(pbody, cbody, "decrypted body (not the client's with insertions)")
        out.append((j, k))
        j = k
    if j < len(pbody):
        out.append((j, len(pbody)))
    return out


def placements(pbody: bytes, j: int, k: int):
    """An insertion pbody[j:k] found by a greedy match may sit a few bytes
    off where its first or last bytes equal the client's: every placement
    that removes to the same client bytes."""
    n = k - j
    for r in range(-n, n + 1):
        a, b = j + r, k + r
        if a < 0 or b > len(pbody):
            continue
        if r < 0 and pbody[a:j] != pbody[b:k]:
            continue
        if r > 0 and pbody[j:a] != pbody[k:b]:
            continue
        yield pbody[a:b]


def strip_legacy_display(pbody: bytes, ptype: email.message.Message, ctype: email.message.Message,
                         hide_subject: bool, cbody: bytes) -> bytes:
    """RFC 9788 Legacy Display Elements: only with a hidden Subject, each an
    insertion into the client's body (the element, quoted-printable when its
    part is, and the hp-legacy-display parameter of a nested part); the body
    without them is the client's, byte for byte."""
    assert hide_subject, "a Legacy Display Element although the Subject is not hidden"
    subj = legacy_subject(ctype)
    plain_el = f"Subject: {subj}\n\n".encode()
    html_el = (f'<div class="header-protection-legacy-display"><pre>Subject: {html.escape(subj, quote=False)}'
               '</pre></div>\n').encode()
    elements = 0
    for j, k in legacy_insertions(pbody, cbody):
        for chunk in placements(pbody, j, k):
            if chunk == LEGACY_PARAM:
                break
            dec = quopri.decodestring(chunk) if (b"=\r\n" in chunk or b"=3D" in chunk) else chunk
            if dec.replace(b"\r\n", b"\n") in (plain_el, html_el):
                elements += 1
                break
        else:
            raise AssertionError(f"an insertion that is not a legacy display element: {pbody[j:k]!r}")
    assert elements >= 1, "hp-legacy-display without an element"
    return cbody


def first_difference(got: bytes, want: bytes, what: str = "content") -> str:
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return (f"{what} differs at byte {i}: got {got[max(0, i - 60):i + 60]!r}, "
                    f"want {want[max(0, i - 60):i + 60]!r}")
    return f"{what} length differs: got {len(got)}, want {len(want)} (tail {got[-80:]!r} / {want[-80:]!r})"


def send(sp, rcpts: Sequence[str], data: bytes, mail_from: str = ALICE) -> list:
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(mail_from, rcpts, data)
        c.cmd("QUIT")
    return replies


def keyids(*who: Identity) -> set:
    return {k for w in who for k in w.enc_keyids}


def assert_nothing_upstream(up, what: str) -> None:
    assert up.messages == [], f"{what}: the upstream received something: {up.events_summary()}"


# =====================================================================================
# The copy
# =====================================================================================

def test_rich_message_roundtrip_rfc3156(world, sphome, start_sealpost, upstream):
    """messages.rich() (every transparency trap, an attachment) to one PGP recipient:
    RFC 3156, MDC, encrypted to bob + alice (encrypt_to_self), decrypted by both to
    the client's body byte for byte; RCPT says openpgp; the log names the full fpr."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    token = messages.unique_token()
    data = messages.rich(frm=ALICE, to=BOB, token=token)
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [BOB], data)
    assert_reply(replies[1], 250, "2.1.5", what="RCPT bob")
    assert "openpgp" in replies[1].text.lower(), str(replies[1])
    assert_reply(replies[-1], 250, "2.0.0", what="end of data")
    [rec] = upstream.wait_for(1)
    assert rec.rcpt_tos == [BOB] and rec.mail_from == ALICE
    # The token is in Message-ID (an outer field, by design) and nowhere else.
    msg = Msg(data, [], {"data.bin": hashlib.shake_256(token.encode()).digest(30000)})
    copy = check_pgp_copy(world, rec, msg, [world.bob, world.alice], keyids(world.bob, world.alice))
    outside = re.sub(rb"(?im)^Message-ID:[^\r]*\r\n", b"", rec.content)
    for s in (token.encode(), "Grüße".encode(), b"data.bin", b"rich test", b"From the desk"):
        assert s not in outside, f"{s!r} in clear"
    assert b"Subject: ...\r\n" in split_message(rec.content)[0]
    assert re.search(rb"(?m)^Subject: rich test " + token.encode() + rb"\r$", copy.plaintext)
    assert world.bob.fpr in sp.log(), "the log does not name bob's key by full fingerprint"


def test_nested_alternative_to_and_cc_share_one_copy_swaks(world, sphome, start_sealpost, upstream, tmp_path):
    """swaks sends nested multipart (text+HTML alternative, two attachments) To bob,
    Cc carol: one upstream copy for both, encrypted to bob, carol and alice; all
    three decrypt it; attachments byte-identical; no secret in clear."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    m = nested_message(to=(BOB,), cc=(CAROL,))
    r = clients.swaks(sp.port, ALICE, [BOB, CAROL], m.data, tmp_path)
    assert r.rc == 0, str(r)
    got = upstream.wait_for(1)
    assert len(got) == 1
    [rec] = got
    assert sorted(rec.rcpt_tos) == sorted([BOB, CAROL])
    check_pgp_copy(world, rec, m, [world.bob, world.carol, world.alice],
                   keyids(world.bob, world.carol, world.alice))
    log = sp.log().encode()
    for s in m.secrets:
        assert s not in log, f"{s!r} (body/subject/attachment name) in sealpost's log"


def test_single_part_smtplib_hide_subject_no(world, sphome, start_sealpost, upstream):
    """smtplib, a single text/plain 8-bit UTF-8 part ("From " lines, a 998-octet
    line, lone dots), hide_subject = no: the outer Subject is the client's, the
    body still encrypted and byte-identical."""
    sp = start_pgp(start_sealpost, upstream, sphome, hide_subject="no")
    m = text_message()
    code, resp = clients.smtplib_send(sp.port, ALICE, [BOB], m.data)
    assert code == 250, (code, resp)
    [rec] = upstream.wait_for(1)
    subj_secret = m.secrets[0]
    m.secrets.remove(subj_secret)             # the subject is meant to be outside now
    copy = check_pgp_copy(world, rec, m, [world.bob], keyids(world.bob, world.alice), hide_subject=False)
    assert subj_secret in split_message(rec.content)[0]
    assert b"Reply-To: Alice Other <alice.other@example.com>\r\n" in copy.plaintext


LONG_PARAM = b"x-" + b"a" * 70                       # 72 bytes: GMime 3.2.13 folds it forever


@pytest.mark.parametrize("ctype", [
    # An RFC 2231 parameter whose name leaves no room on a folded line.
    b"text/plain; charset=utf-8;\r\n " + LONG_PARAM + b"*=UTF-8''" + b"%C3%A9" * 20,
    # Folded, a comment, a quoted value, a parameter GMime does not know.
    b"text/plain (the body) ;\r\n\tcharset=\"utf-8\"; format=flowed; x-note=\"a;b\"",
    # The client already marks protected headers: not written twice.
    b'text/plain; charset=utf-8; protected-headers="v1"',
], ids=["rfc2231-long-name", "folded-comment", "client-marked"])
def test_content_type_copied_as_written(world, sphome, start_sealpost, upstream, ctype):
    """The protected entity's Content-Type is the client's field byte for byte,
    the two protected-header markers appended (each at most once): the body was
    written against that field, and re-encoding it is where parsers disagree."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    m = text_message()
    m.data = m.data.replace(b"Content-Type: text/plain; charset=utf-8\r\n", b"Content-Type: " + ctype + b"\r\n")
    assert ctype in m.data
    assert_reply(send(sp, [BOB], m.data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    copy = check_pgp_copy(world, rec, m, [world.bob], keyids(world.bob, world.alice))
    [field] = [f for f in header_fields(split_message(copy.plaintext)[0]) if fname(f) == "content-type"]
    assert field.startswith(b"Content-Type: " + ctype + b";"), field
    params = re.sub(rb"\r\n[ \t]", b" ", field).lower()
    assert params.count(b"protected-headers=") == 1 and params.count(b"hp=") == 1, field


def test_encrypt_to_self_no(world, sphome, start_sealpost, upstream):
    """encrypt_to_self = no: encrypted to bob's key only; alice cannot decrypt."""
    sp = start_pgp(start_sealpost, upstream, sphome, encrypt_to_self="no")
    m = text_message()
    assert_reply(send(sp, [BOB], m.data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    check_pgp_copy(world, rec, m, [world.bob], keyids(world.bob), nonreaders=[world.alice])


def test_bcc_recipient_gets_own_copy(world, sphome, start_sealpost, upstream):
    """To bob, Bcc dave (Bcc header + envelope): two transactions; no Bcc header
    anywhere; bob's copy is not encrypted to dave's key and does not name him;
    dave's copy is his own (dave + alice)."""
    sp = start_pgp(start_sealpost, upstream, sphome, no_key="plain")
    m = nested_message(to=(BOB,), bcc=(DAVE,), extra=(b"X-Sealpost-Hint: not for the provider",))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(ALICE, [BOB, DAVE], m.data)[-1], 250, "2.0.0")
        got = upstream.wait_for(2)
        plain_sentinel(c, upstream, already=2)     # exactly two copies, nothing else
    got = got[:2]
    by = {tuple(r.rcpt_tos): r for r in got}
    assert set(by) == {(BOB,), (DAVE,)}, list(by)
    to_copy = check_pgp_copy(world, by[(BOB,)], m, [world.bob, world.alice],
                             keyids(world.bob, world.alice), nonreaders=[world.dave])
    assert DAVE.encode() not in to_copy.plaintext, "bob's copy names the Bcc recipient"
    check_pgp_copy(world, by[(DAVE,)], m, [world.dave, world.alice],
                   keyids(world.dave, world.alice), nonreaders=[world.bob])
    for r in got:
        assert DAVE.encode() not in split_message(r.content)[0]


# =====================================================================================
# Key selection
# =====================================================================================

def test_exact_address_match_ignores_decoys(world, sphome, start_sealpost, upstream):
    """Newer, certified keys whose user IDs merely contain bob@example.net
    (xbob@, bob@example.net.evil, in the name, in the comment) are never used:
    the copy is encrypted to bob's key (and alice's) only."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    m = text_message()
    assert_reply(send(sp, [BOB], m.data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    check_pgp_copy(world, rec, m, [world.bob], keyids(world.bob, world.alice))
    for d in world.decoys:
        assert d.fpr not in sp.log(), f"decoy {d.name} named in the log"


@pytest.mark.parametrize("addr", ["erin@example.net", "ob@example.net", "bob@example", "example.net",
                                  "nobody@example.net"])
def test_no_key_for_substrings(world, sphome, start_sealpost, upstream, addr):
    """Addresses with only look-alike keys (or substrings of a real key's address)
    have no key: 550 5.7.1 'no OpenPGP key for this address' under no_key = reject."""
    sp = start_pgp(start_sealpost, upstream, sphome, trust="always")
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = c.cmd(f"RCPT TO:<{addr}>")
        if "@" not in addr or addr.endswith("@example"):
            # Not a mailbox sealpost accepts at all, or no key: refused either way.
            assert r.code // 100 == 5, str(r)
            return
        assert_reply(r, 550, "5.7.1", what=f"RCPT {addr}")
        assert f"<{addr}>" in r.text and "no OpenPGP key for this address" in r.text, str(r)
        for d in world.decoys:
            assert d.fpr not in r.text


@pytest.mark.parametrize("addr", ["expired@example.net", "subexp@example.net", "revoked@example.net",
                                  "disabled@example.net", "signonly@example.net"])
def test_unusable_key_refused_at_rcpt(world, sphome, start_sealpost, upstream, addr):
    """Expired / encryption-subkey-expired / revoked / disabled / sign-only keys:
    550 5.7.1 <addr>: OpenPGP key <FPR>: <reason>; nothing is sent."""
    fpr, reason = world.bad[addr]
    sp = start_pgp(start_sealpost, upstream, sphome)
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [addr], text_message(to=addr).data)
        r = replies[1]
        assert_reply(r, 550, "5.7.1", what=f"RCPT {addr}")
        assert f"<{addr}>" in r.text, str(r)
        assert re.search(reason, r.text), f"reply does not say /{reason}/: {r}"
        assert fpr in r.text, f"reply does not name the key {fpr}: {r}"
        assert_reply(c.cmd("DATA"), 554, "5.5.1")
    assert_nothing_upstream(upstream, addr)


def test_revoked_user_id_refused(world, sphome, start_sealpost, upstream):
    """A key whose only user ID with this address is revoked is not used for it."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = c.cmd("RCPT TO:<old@example.net>")
        assert_reply(r, 550, "5.7.1", what="RCPT old@")
        r2 = c.cmd("RCPT TO:<new@example.net>")
        assert_reply(r2, 250, "2.1.5", what="RCPT new@ (same key, valid user ID)")


def test_uncertified_key_trust_keyring_vs_always(world, sphome, start_sealpost, upstream):
    """trust = keyring: a key of unknown validity is refused, naming the validity;
    trust = always: the same key is used."""
    sp = start_pgp(start_sealpost, upstream, sphome, trust="keyring")
    addr = world.uncert.addr
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = c.cmd(f"RCPT TO:<{addr}>")
    assert_reply(r, 550, "5.7.1", what="RCPT uncertified, trust = keyring")
    assert "key not valid in the keyring" in r.text and "validity unknown" in r.text, str(r)
    assert world.uncert.fpr in r.text, str(r)

    sp2 = start_sealpost(upstream, extra=pgp_config(sphome, trust="always"), name="always")
    m = text_message(to=addr)
    replies = send(sp2, [addr], m.data)
    assert_reply(replies[1], 250, "2.1.5", what="RCPT uncertified, trust = always")
    assert_reply(replies[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    check_pgp_copy(world, rec, m, [world.uncert], keyids(world.uncert, world.alice))


@pytest.mark.parametrize("who", ["frank", "gina"])
def test_case_insensitive_and_bare_user_id(world, sphome, start_sealpost, upstream, who):
    """uid 'Frank <Frank@Example.NET>' is used for frank@example.net; a bare
    user ID 'gina@example.net' (no angle brackets) is used for that address."""
    ident = getattr(world, who)
    addr = ident.addr.lower()
    sp = start_pgp(start_sealpost, upstream, sphome)
    m = text_message(to=addr)
    replies = send(sp, [addr], m.data)
    assert_reply(replies[1], 250, "2.1.5", what=f"RCPT {addr}")
    assert_reply(replies[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    check_pgp_copy(world, rec, m, [ident], keyids(ident, world.alice))


# =====================================================================================
# Signed, signing, already encrypted
# =====================================================================================

def signed_message(world: World, to=BOB) -> tuple[Msg, bytes, bytes]:
    """A multipart/signed (RFC 3156) message made with alice's key: (msg, signed bytes, sig)."""
    s_body = f"signed{tok()}"
    inner = _lines(
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"Signed and secret: " + s_body.encode() + b" Gr=C3=BC=C3=9Fe",
        b"From the desk of Alice",
        b"a soft line break =",
        b"continues here",
    )
    sig = world.alice.home.detach_sign(inner, world.alice.fpr).replace(b"\n", CRLF)
    b = b"=_signed_" + uuid.uuid4().hex.encode()
    msg = _lines(
        b"From: Alice <" + ALICE.encode() + b">",
        b"To: Bob <" + to.encode() + b">",
        b"Subject: signed " + s_body.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/signed; micalg=pgp-sha256;',
        b' protocol="application/pgp-signature"; boundary="' + b + b'"',
        b"",
        b"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)",
        b"--" + b,
    ) + inner + _lines(
        b"",
        b"--" + b,
        b'Content-Type: application/pgp-signature; name="signature.asc"',
        b"Content-Description: OpenPGP digital signature",
        b'Content-Disposition: attachment; filename="signature.asc"',
        b"",
    ) + sig + _lines(b"", b"--" + b + b"--", b"")
    return Msg(msg, [s_body.encode(), b"Signed and secret"], {"signature.asc": sig}), inner, sig


def extract_signed(entity: bytes) -> tuple[bytes, bytes]:
    """RFC 3156 5: the first part's exact bytes and the signature, from a
    multipart/signed entity (headers + body)."""
    m = email.message_from_bytes(entity, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/signed", m.get("Content-Type")
    b = m.get_param("boundary").encode()
    _, body = split_message(entity)
    delim = b"--" + b + CRLF
    start = body.index(delim) if body.startswith(delim) else body.index(CRLF + delim) + 2
    start += len(delim)
    end = body.index(CRLF + b"--" + b, start)
    signed = body[start:end]
    sig = m.get_payload()[1].get_payload(decode=True)
    return signed, sig


def test_multipart_signed_still_verifies(world, sphome, start_sealpost, upstream, tmp_path):
    """A client-signed message is encrypted around its signed entity: after
    decryption the signed part is byte-identical and alice's signature verifies."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    m, inner, sig = signed_message(world)
    assert_reply(send(sp, [BOB], m.data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    copy = check_pgp_copy(world, rec, m, [world.bob], keyids(world.bob, world.alice))
    signed, got_sig = extract_signed(copy.plaintext)
    assert signed == inner, first_difference(signed, inner, "signed entity")
    v = world.bob.home.verify_detached(got_sig, signed, tmp_path / "verify")
    assert v.has_status("GOODSIG") is not None, str(v)
    validsig = v.has_status("VALIDSIG")
    assert validsig is not None and validsig[-1] == world.alice.fpr, str(v)


def test_sign_yes_signature_verifies(world, sphome, start_sealpost, upstream):
    """sign = yes: one sign+encrypt operation; bob's gpg --decrypt reports a good
    signature by alice's key."""
    sp = start_pgp(start_sealpost, upstream, sphome, sign="yes")
    m = text_message()
    assert_reply(send(sp, [BOB], m.data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    copy = check_pgp_copy(world, rec, m, [world.bob], keyids(world.bob, world.alice))
    status = copy.decrypt_status[0]
    good = [l for l in status if l.startswith("GOODSIG ")]
    valid = [l.split() for l in status if l.startswith("VALIDSIG ")]
    assert good and world.alice.fpr.endswith(good[0].split()[1]), status
    assert valid and valid[0][-1] == world.alice.fpr, status


def test_sign_yes_without_secret_key(world, sphome, start_sealpost, upstream):
    """sign = yes, alice's secret key gone: 554 5.6.0 naming the missing secret
    key; nothing sent (never silently unsigned)."""
    sphome.delete_secret(world.alice.fpr)
    assert sphome.keys(world.alice.fpr, secret=True) == []
    sp = start_pgp(start_sealpost, upstream, sphome, sign="yes", no_key="plain")
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [BOB], text_message().data)
        assert_reply(replies[1], 250, "2.1.5")
        r = replies[-1]
        assert_reply(r, 554, "5.6.0", what="end of data")
        assert "sign = yes" in r.text and "no usable secret key" in r.text, str(r)
        plain_sentinel(c, upstream)


def test_sign_yes_passphrase_protected_key_fails_closed(world, start_sealpost, upstream, tmp_path):
    """sign = yes with a secret key that has a passphrase (sealpost cannot
    unlock it): a 5xx that names the signing problem, promptly; nothing sent."""
    home = GpgHome(tmp_path / "pp")
    try:
        fpr = home.gen_key(f"Alice <{ALICE}>", primary_usage="sign", passphrase="s3cret")
        home.import_keys(_pub(world.bob))
        sp = start_pgp(start_sealpost, upstream, home, sign="yes", trust="always", no_key="plain")
        with sp.client() as c:
            c.ehlo()
            t0 = time.monotonic()
            replies = c.transaction(ALICE, [BOB], text_message().data)
            assert time.monotonic() - t0 < 20, "took too long"
            assert_reply(replies[1], 250, "2.1.5")
            r = replies[-1]
            assert r.code in (451, 554), f"not a failure: {r}"
            assert (r.code, r.enhanced) in ((451, "4.3.0"), (554, "5.6.0")), str(r)
            # "a missing or unusable secret key is a clear error": say which key and why.
            assert fpr in r.text or "passphrase" in r.text.lower(), (
                f"the reply does not say that signing key {fpr} needs a passphrase: {r}")
            plain_sentinel(c, upstream)
    finally:
        home.kill_agent()


def _strip_private(data: bytes) -> bytes:
    head, body = split_message(data)
    keep = [f for f in header_fields(head) if fname(f) != "bcc" and not fname(f).startswith("x-sealpost-")]
    return b"".join(keep) + CRLF + body


def test_already_encrypted_pgp_mime_relayed_unchanged(world, sphome, start_sealpost, upstream):
    """A multipart/encrypted message from the client arrives exactly as sent,
    minus Bcc and X-Sealpost-*: not encrypted a second time."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    armor = world.alice.home.encrypt(b"Content-Type: text/plain\r\n\r\nalready secret\r\n",
                                     [world.bob.fpr])
    b = b"=_enc_" + uuid.uuid4().hex.encode()
    data = _lines(
        b"From: Alice <" + ALICE.encode() + b">",
        b"To: Bob <" + BOB.encode() + b">",
        b"Bcc: <" + DAVE.encode() + b">",
        b"Subject: ...",
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"X-Sealpost-Hint: private",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";',
        b' boundary="' + b + b'"',
        b"",
        b"--" + b,
        b"Content-Type: application/pgp-encrypted",
        b"",
        b"Version: 1",
        b"",
        b"--" + b,
        b'Content-Type: application/octet-stream; name="encrypted.asc"',
        b"",
    ) + armor.replace(b"\n", CRLF) + _lines(b"", b"--" + b + b"--")
    assert_reply(send(sp, [BOB], data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    assert rec.content == _strip_private(data), first_difference(rec.content, _strip_private(data))
    assert world.bob.home.decrypt(parse_rfc3156(rec.content)[1]).stdout.endswith(b"already secret\r\n")


def test_inline_pgp_relayed_unchanged(world, sphome, start_sealpost, upstream):
    """An inline-PGP (armored body) message arrives exactly as sent."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    armor = world.alice.home.encrypt(b"inline secret\r\n", [world.bob.fpr])
    data = _lines(
        b"From: Alice <" + ALICE.encode() + b">",
        b"To: Bob <" + BOB.encode() + b">",
        b"Subject: inline",
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Content-Type: text/plain; charset=us-ascii",
        b"",
    ) + armor.replace(b"\n", CRLF)
    assert_reply(send(sp, [BOB], data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    assert rec.content == data, first_difference(rec.content, data)


@pytest.mark.parametrize("where", ["before", "after"])
def test_plaintext_around_an_armor_block_is_still_encrypted(world, sphome, start_sealpost, upstream, where):
    """A plain-text body with clear text before (a reply quoting a ciphertext) or
    after (a signature block, a list footer) an armored block is not "already
    encrypted": the clear text must not reach the provider."""
    sp = start_pgp(start_sealpost, upstream, sphome)
    secret = f"cleartext{tok()}"
    armor = world.alice.home.encrypt(b"x\r\n", [world.bob.fpr]).replace(b"\n", CRLF)
    m = text_message()
    head, body = split_message(m.data)
    clear = _lines(b"My secret: " + secret.encode(), b"", b"Call me on 555-0100.")
    data = head + CRLF + (clear + armor if where == "before" else armor + clear)
    assert_reply(send(sp, [BOB], data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    assert secret.encode() not in rec.content, (
        "a plain-text body containing an armored block was relayed in clear")
    parse_rfc3156(rec.content)


# =====================================================================================
# Failing closed
# =====================================================================================

def gpg_wrapper(tmp_path: Path, mode: str) -> Path:
    """A gpg_program that behaves like gpg except on one operation."""
    log = tmp_path / f"gpg-{mode}.log"
    act = {
        "fail": 'echo "gpg: simulated failure" >&2; exit 2',
        "killed": "kill -KILL $$",
        "no-output": "exit 0",
        "list-fail": 'echo "gpg: simulated keyring failure" >&2; exit 2',
        "list-killed": "kill -KILL $$",
    }[mode]
    trigger = "--list-keys|--list-secret-keys" if mode.startswith("list-") else "--encrypt|-e|--sign"
    w = tmp_path / f"gpg-{mode}"
    w.write_text(f"""#!/bin/sh
echo "$*" >> '{log}'
for a in "$@"; do
  case "$a" in
    {trigger}) {act} ;;
  esac
done
exec /usr/bin/gpg "$@"
""")
    w.chmod(0o755)
    return w


@pytest.mark.parametrize("mode", ["fail", "killed", "no-output"])
def test_gpg_failure_during_encryption(world, sphome, start_sealpost, upstream, tmp_path, mode):
    """gpg fails / is killed / exits 0 without output on --encrypt: 451 4.3.0
    Message not sent; nothing reaches the upstream (neither To nor Bcc copy)."""
    w = gpg_wrapper(tmp_path, mode)
    sp = start_pgp(start_sealpost, upstream, sphome, gpg_program=str(w), no_key="plain")
    m = nested_message(to=(BOB,), bcc=(DAVE,))
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [BOB, DAVE], m.data)
        assert_reply(replies[1], 250, "2.1.5", what="RCPT (key listing works)")
        assert "openpgp" in replies[1].text and "openpgp" in replies[2].text, [str(x) for x in replies]
        r = replies[-1]
        assert_reply(r, 451, "4.3.0", what=f"end of data, gpg {mode}")
        assert "Message not sent" in r.text and "gpg" in r.text, str(r)
        log = (tmp_path / f"gpg-{mode}.log").read_text()
        assert "--encrypt" in log, f"the wrapper never saw an encryption: {log}"
        plain_sentinel(c, upstream)


@pytest.mark.parametrize("how", ["gpg-exits-2", "gpg-killed", "corrupt-keyring"])
def test_gpg_failure_at_rcpt_is_not_no_key(world, sphome, start_sealpost, upstream, tmp_path, how):
    """gpg cannot list keys (exits 2 / is killed while listing / the keyring is
    corrupt: gpg says ERROR keylist.getkey): 451 4.7.0 at RCPT -- never taken
    for "no key", so never a downgrade to the next form (no_key = plain here)."""
    gpg = {}
    if how == "corrupt-keyring":
        (sphome.path / "pubring.kbx").write_bytes(b"garbage, not a keybox\n" * 50)
    else:
        gpg = {"gpg_program": str(gpg_wrapper(tmp_path, "list-fail" if how == "gpg-exits-2" else "list-killed"))}
    sp = start_sealpost(upstream, extra={**pgp_config(sphome, **gpg), "policy": {"no_key": "plain"}})
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        r = c.cmd(f"RCPT TO:<{BOB}>")
        assert_reply(r, 451, "4.7.0", what=f"RCPT while gpg fails ({how})")
        assert_reply(c.cmd("DATA"), 554)
    assert_nothing_upstream(upstream, f"gpg failing at RCPT ({how})")


@pytest.mark.parametrize("change", ["revoked", "deleted"])
def test_key_unusable_between_rcpt_and_data(world, sphome, start_sealpost, upstream, change):
    """dave's key (the Bcc copy) is revoked / deleted while the session waits between
    RCPT and DATA: 554 5.6.0 naming dave and why; neither his copy nor bob's leaves."""
    sp = start_pgp(start_sealpost, upstream, sphome, no_key="plain")
    m = nested_message(to=(BOB,), bcc=(DAVE,))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        assert_reply(c.cmd(f"RCPT TO:<{BOB}>"), 250, "2.1.5")
        assert_reply(c.cmd(f"RCPT TO:<{DAVE}>"), 250, "2.1.5")
        if change == "revoked":
            sphome.revoke_with(world.dave.home.revocation_cert(world.dave.fpr))
            assert sphome.key(world.dave.fpr)["validity"] == "r"
        else:
            sphome.delete_public(world.dave.fpr)
            assert sphome.keys(world.dave.fpr) == []
        assert_reply(c.cmd("DATA"), 354)
        c.send(clients.dot_stuff(m.data) + b".\r\n")
        r = c.reply(timeout=30)
        assert_reply(r, 554, "5.6.0", what=f"end of data, key {change}")
        assert f"<{DAVE}>" in r.text and "Message not sent" in r.text, str(r)
        plain_sentinel(c, upstream)      # neither bob's copy nor a plain one for dave left
    want = "revoked" if change == "revoked" else "no OpenPGP key"
    assert want in r.text, f"the reply does not say why ({want!r}): {r}"


# =====================================================================================
# sealpost check --rcpt
# =====================================================================================

def test_check_rcpt_reports_keys(world, sphome, start_sealpost, upstream, cli):
    """`sealpost check --rcpt` prints bob's fingerprint and why expired@ is refused."""
    sp = start_sealpost(upstream, extra=pgp_config(sphome), start=False)
    r = cli("check", "-c", sp.config_path, "--rcpt", BOB, "expired@example.net")
    out = r.stdout + r.stderr
    assert world.bob.fpr in out, str(r)
    assert re.search(r"expired@example.net.*key expired", out), str(r)
    assert r.rc == 1, f"a refused recipient is a problem (exit 1): {r}"


def test_autocrypt_header_written_by_the_client_is_kept(world, sphome, start_sealpost, upstream):
    """Issue 9: a client's own Autocrypt header is kept as written (no second
    one is added); an unencrypted copy is the original message, with no
    Autocrypt header added."""
    sp = start_pgp(start_sealpost, upstream, sphome, no_key="plain")
    own = b"Autocrypt: addr=alice@example.com; prefer-encrypt=mutual; keydata=AAAA"
    m = text_message(extra=(own,))
    assert_reply(send(sp, [BOB], m.data)[-1], 250, "2.0.0")
    [rec] = upstream.wait_for(1)
    head = rec.content.split(b"\r\n\r\n", 1)[0]
    assert head.count(b"Autocrypt:") == 1 and own in head, head
    plain = text_message(to="nokey@example.org")
    assert_reply(send(sp, ["nokey@example.org"], plain.data)[-1], 250, "2.0.0")
    got = upstream.wait_for(2)[1]
    assert got.content == plain.data, "the unencrypted copy is not the client's message"
