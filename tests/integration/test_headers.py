"""What leaves in clear (issue #13, items 2 and 3), through the real proxy,
the real aiosmtpd upstream, real gpg keys, `sealpost open` and the link store
read independently (PyNaCl):

- the outer header section of every encrypted form (OpenPGP copy, sodium
  copy, link notification, delivery report) is an allow-list: Thread-Topic,
  Comments, Keywords, Resent-*, unknown fields and the Subject never appear
  in the raw bytes the provider gets, while From/To/Cc/Date/Message-ID/
  In-Reply-To/References/Reply-To do; decrypting gives every one of them
  back (the OpenPGP protected header block, the sealed message, the stored
  link message);
- a hidden Subject comes back for legacy clients as an RFC 9788 Legacy
  Display Element;
- "already encrypted" means really encrypted: an armor block that is not an
  encrypted OpenPGP message, or a multipart/encrypted around something else,
  is encrypted like any message (decrypted here and compared); a real gpg
  message is relayed byte for byte.

The proxy, keys and link helpers are test_link.py's (OpenPGP bob, sodium
carol, link dave, sender alice with a key for the delivery report).
"""
from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import uuid

import pytest

from linkmode import (Notification, Receipt, is_notification, is_pgp, open_record, store_record,
                      without_headers)
from test_link import ALICE, BOB, CAROL, DAVE, keys, start_link  # noqa: F401 (fixtures)

CRLF = b"\r\n"


def mark(what: str) -> str:
    return f"{what}{os.urandom(5).hex()}"


def split(raw: bytes) -> tuple[bytes, bytes]:
    i = raw.find(b"\r\n\r\n")
    assert i >= 0, raw[:300]
    return raw[:i + 2], raw[i + 4:]


def field_names(head: bytes) -> list[str]:
    return [l.split(b":", 1)[0].decode().lower() for l in head.split(CRLF)
            if l and l[:1] not in (b" ", b"\t")]


# The outer allow-list (docs/formats.md "Outer header fields") plus the new
# outer entity's own structure.
ALLOWED = {"from", "sender", "to", "cc", "reply-to", "date", "message-id", "in-reply-to", "references",
           "autocrypt", "auto-submitted", "subject", "mime-version", "content-type",
           "content-transfer-encoding"}


class Marked:
    """A client message whose non-routing fields each carry a unique marker."""

    def __init__(self, to: list[str], cc: list[str]):
        self.subject = mark("subj-")
        self.body = mark("body-")
        self.hidden = {
            "Thread-Topic": mark("topic-"),
            "Comments": mark("comment-"),
            "Keywords": mark("kw-"),
            "Resent-From": f"{mark('resent-')}@example.org",
            "X-Unknown-Foo": mark("unknown-"),
            "User-Agent": mark("agent-"),
            "List-Id": f"<{mark('list-')}.example.org>",
        }
        self.mid = f"<{uuid.uuid4().hex}@client.test>"
        self.visible = {
            "From": "Alice <alice@example.com>",
            "To": ", ".join(to),
            "Cc": ", ".join(cc),
            "Date": "Mon, 03 Jun 2024 10:00:00 +0000",
            "Message-ID": self.mid,
            "In-Reply-To": "<thread-root@client.test>",
            "References": "<thread-root@client.test>",
            "Reply-To": "Alice Other <alice.other@example.com>",
        }
        lines = [f"{k}: {v}" for k, v in self.visible.items() if v]
        lines.insert(3, f"Subject: {self.subject}")
        lines += [f"{k}: {v}" for k, v in self.hidden.items()]
        lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                  "Content-Transfer-Encoding: 8bit", "", f"The text: {self.body}", "Grüße"]
        self.data = ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def secrets(self) -> list[bytes]:
        return [self.subject.encode(), self.body.encode()] + [v.encode() for v in self.hidden.values()]

    def assert_all_fields(self, head: bytes, what: str) -> None:
        """Every field the client wrote is in this (decrypted) header block."""
        for k, v in [("Subject", self.subject), *self.hidden.items(), *self.visible.items()]:
            if v:
                assert f"{k}: {v}".encode() in head, f"{what}: {k} missing inside:\n{head.decode(errors='replace')}"


def check_outer(raw: bytes, m: Marked, what: str, routing: bool = True) -> None:
    head, _ = split(raw)
    for s in m.secrets():
        assert s not in raw, f"{what}: {s!r} is in clear in what the provider got"
    extra = set(field_names(head)) - ALLOWED
    assert not extra, f"{what}: fields outside the allow-list: {sorted(extra)}"
    if routing:
        for k, v in m.visible.items():
            if v:
                assert f"{k}: {v}".encode() in head, f"{what}: {k} is not outside:\n{head.decode()}"


def pgp_plain(rec, home) -> bytes:
    msg = email.message_from_bytes(rec.content, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/encrypted", rec.content[:500]
    armor = msg.get_payload()[1].get_payload(decode=True)
    res = home.decrypt(armor)
    assert res.rc == 0 and res.has_status("DECRYPTION_OKAY") is not None, str(res)
    return res.stdout


def test_outer_headers_are_an_allow_list_in_every_form(start_link, upstream, keys, tmp_path, sealpost_bin):
    """One message to an OpenPGP (bob), a sodium (carol) and a link (dave)
    recipient, plus alice's delivery report: no marker of a field outside the
    allow-list (nor the Subject, nor the body) in any raw copy; the routing
    fields outside; every field back inside after decryption."""
    lp = start_link(upstream)
    m = Marked(to=[BOB, CAROL], cc=[DAVE])
    copies = lp.send_ok(ALICE, [BOB, CAROL, DAVE], m.data, 4,
                        forms={BOB: "key", CAROL: "key", DAVE: "link"})
    by = {}
    for rec in copies:
        if rec.rcpt_tos == [ALICE]:
            by["receipt"] = rec
        elif is_notification(rec):
            by["link"] = rec
        elif is_pgp(rec):
            by["pgp"] = rec
        else:
            by["sodium"] = rec
    assert set(by) == {"pgp", "sodium", "link", "receipt"}, [c.rcpt_tos for c in copies]
    check_outer(by["pgp"].content, m, "OpenPGP copy")
    check_outer(by["sodium"].content, m, "sodium copy")
    check_outer(by["link"].content, m, "link notification")
    check_outer(by["receipt"].content, m, "delivery report", routing=False)
    assert re.search(rb"(?m)^Subject: \.\.\.\r$", split(by["pgp"].content)[0])
    assert re.search(rb"(?m)^Subject: \.\.\.\r$", split(by["sodium"].content)[0])

    # OpenPGP: the protected header block has every field, and says what was outside.
    plain = pgp_plain(by["pgp"], keys.bob.home)
    phead, pbody = split(plain)
    m.assert_all_fields(phead, "OpenPGP protected header block")
    ptype = email.message_from_bytes(phead + CRLF, policy=email.policy.compat32)
    assert ptype.get_param("hp") == "cipher" and ptype.get_param("protected-headers") == "v1"
    hp_outer = re.findall(rb"(?m)^HP-Outer: ([^:]+):", phead)
    assert {h.decode().lower() for h in hp_outer} <= ALLOWED, hp_outer
    assert b"HP-Outer: Subject: ..." in phead and b"HP-Outer: Thread-Topic" not in phead
    assert m.body.encode() in pbody
    # sodium: the sealed message is the client's, minus nothing but private fields.
    opened = keys.carol.open(sealpost_bin, by["sodium"].content, tmp_path / "carol")
    assert opened == m.data
    # link: what the store holds opens (with the report's password) to the same.
    n = Notification.parse(by["link"], lp.base_url)
    receipt = Receipt.decrypt(by["receipt"], keys.alice.home)
    wrapped, ct = store_record(lp.store, n.link_id)
    stored = open_record(wrapped, ct, n.token, receipt.entries[DAVE].password)
    assert stored == m.data
    m.assert_all_fields(split(stored)[0], "stored link message")


def test_legacy_display_element(start_link, upstream, keys):
    """hide_subject: a single text/plain body gets the real Subject as an RFC
    9788 Legacy Display Element (hp-legacy-display="1"), the client's body
    byte for byte after it.  hide_subject = no: no element, body unchanged."""
    for hide in ("yes", "no"):
        lp = start_link(upstream, extra={"pgp": {"hide_subject": hide}})
        m = Marked(to=[BOB], cc=[])
        [rec] = lp.send_ok(ALICE, [BOB], m.data, 1)
        head, body = split(m.data)
        phead, pbody = split(pgp_plain(rec, keys.bob.home))
        ptype = email.message_from_bytes(phead + CRLF, policy=email.policy.compat32)
        if hide == "yes":
            assert ptype.get_param("hp-legacy-display") == "1", phead
            el = f"Subject: {m.subject}\r\n\r\n".encode()
            assert pbody == el + body, pbody[:300]
            assert re.search(rb"(?m)^Subject: \.\.\.\r$", split(rec.content)[0])
        else:
            assert ptype.get_param("hp-legacy-display") is None, phead
            assert pbody == body
            assert f"Subject: {m.subject}".encode() in split(rec.content)[0]
        lp.sp.stop()


# =====================================================================================
# "Already encrypted" is judged by the packets
# =====================================================================================

def fake_armor(payload: bytes) -> bytes:
    """A PGP MESSAGE armor block around a literal data packet: it looks like
    ciphertext, and anyone can read it."""
    lit = b"b\x00\x00\x00\x00\x00" + payload
    assert len(lit) < 192
    pkt = bytes([0xCB, len(lit)]) + lit
    b64 = base64.encodebytes(pkt).replace(b"\n", CRLF)
    return b"-----BEGIN PGP MESSAGE-----\r\n\r\n" + b64 + b"-----END PGP MESSAGE-----\r\n"


def inline_message(armor: bytes, subject: str) -> bytes:
    return CRLF.join([
        b"From: Alice <alice@example.com>",
        b"To: " + BOB.encode() + b", " + DAVE.encode(),
        b"Subject: " + subject.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=us-ascii",
        b"",
    ]) + CRLF + armor


def pgp_mime_message(second: bytes, subject: str, preamble: bytes = b"") -> bytes:
    b = b"=_enc_" + uuid.uuid4().hex.encode()
    return CRLF.join([
        b"From: Alice <alice@example.com>",
        b"To: " + BOB.encode() + b", " + DAVE.encode(),
        b"Subject: " + subject.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";',
        b' boundary="' + b + b'"',
        b"",
        preamble,
        b"--" + b,
        b"Content-Type: application/pgp-encrypted",
        b"",
        b"Version: 1",
        b"",
        b"--" + b,
        b'Content-Type: application/octet-stream; name="encrypted.asc"',
        b"",
    ]) + CRLF + second + CRLF.join([b"", b"--" + b + b"--", b""])


def fake_cases(keys) -> list[tuple[str, bytes, bytes]]:
    """(label, message, the secret that must not be in clear)."""
    s1, s2, s3 = mark("literal-"), mark("octet-"), mark("preamble-")
    real = keys.alice.home.encrypt(b"x\r\n", [keys.bob.fpr]).replace(b"\n", CRLF)
    return [
        ("inline armor around a literal packet", inline_message(fake_armor(s1.encode()), "..."),
         s1.encode()),
        ("multipart/encrypted around a literal packet", pgp_mime_message(fake_armor(s2.encode()), "..."),
         s2.encode()),
        ("multipart/encrypted with text before its parts",
         pgp_mime_message(real, "...", preamble=(s3 + " ") .encode() * 40), s3.encode()),
    ]


@pytest.mark.parametrize("case", [0, 1, 2])
def test_fake_encrypted_is_encrypted(start_link, upstream, keys, case):
    """Armor that is not an encrypted OpenPGP message (a literal packet anyone
    can decode) or a real one with text around it: bob gets a real OpenPGP
    copy that decrypts to the client's body byte for byte, dave a link
    notification; the readable text is in neither."""
    label, data, secret = fake_cases(keys)[case]
    lp = start_link(upstream)
    copies = lp.send_ok(ALICE, [BOB, DAVE], data, 3, forms={BOB: "key", DAVE: "link"})
    # The literal packet's own base64 would also give it away.
    b64_secret = base64.b64encode(secret)[4:24]
    pgp = [c for c in copies if c.rcpt_tos == [BOB]]
    link = [c for c in copies if c.rcpt_tos == [DAVE]]
    assert len(pgp) == 1 and len(link) == 1, f"{label}: {[c.rcpt_tos for c in copies]}"
    for rec in pgp + link:
        assert secret not in rec.content and b64_secret not in rec.content, f"{label}: relayed in clear"
    assert is_pgp(pgp[0]) and is_notification(link[0]), label
    _, pbody = split(pgp_plain(pgp[0], keys.bob.home))
    assert pbody == split(data)[1], f"{label}: decrypted body differs"


def test_real_gpg_message_relayed_byte_identical(start_link, upstream, keys):
    """A message gpg really encrypted (inline and RFC 3156) reaches the OpenPGP
    and the link recipient exactly as the client sent it."""
    armor = keys.alice.home.encrypt(b"really secret\r\n", [keys.bob.fpr]).replace(b"\n", CRLF)
    lp = start_link(upstream)
    for data in (inline_message(armor, "inline"), pgp_mime_message(armor, "...",
                 preamble=b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)")):
        # One copy per form (no notification, no report: nothing to add).
        copies = lp.send_ok(ALICE, [BOB, DAVE], data, 2)
        assert sorted(c.rcpt_tos[0] for c in copies) == sorted([BOB, DAVE]), [c.rcpt_tos for c in copies]
        for c in copies:
            assert c.content == without_headers(data, ["Bcc", "X-Sealpost-*"]) == data


@pytest.mark.parametrize("line", [b"a line without a colon {s}", b"Bad Name With Spaces: {s}",
                                  b"\x01Ctl: {s}"])
def test_lines_gmime_skips_do_not_ride_along_outside(start_link, upstream, keys, line):
    """A header line that is not a field (no colon, a name with blanks or a
    control byte) right after an allowed field must not leave in clear with
    it: only that field's own lines go outside."""
    secret = mark("skipped-")
    m = Marked(to=[BOB], cc=[])
    head, body = split(m.data)
    bad = line.replace(b"{s}", secret.encode())
    data = head.replace(b"\r\nDate: ", b"\r\n" + bad + b"\r\nDate: ", 1) + CRLF + body
    assert bad in data
    lp = start_link(upstream)
    [rec] = lp.send_ok(ALICE, [BOB], data, 1)
    assert secret.encode() not in rec.content, "a skipped header line left in clear"
    assert b"Subject: ..." in split(rec.content)[0]


def test_legacy_display_in_alternatives(start_link, upstream, keys):
    """multipart/alternative (a quoted-printable text/plain, an 8bit
    text/html): each alternative gets the decoded, non-ASCII Subject as its
    element and hp-legacy-display="1"; the parts otherwise decode to the
    client's text; the multipart itself is not marked."""
    word = mark("Grüße-")
    alt = b"=_alt_" + uuid.uuid4().hex.encode()
    text = "Liebe Grüße, the text part\r\n".encode()
    html_body = "<p>the HTML part, Grüße</p>".encode()
    data = CRLF.join([
        b"From: Alice <alice@example.com>",
        b"To: " + BOB.encode(),
        b"Subject: =?utf-8?q?" + "".join(f"={b:02X}" for b in word.encode()).encode() + b"?=",
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="' + alt + b'"',
        b"",
        b"--" + alt,
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"Liebe Gr=C3=BC=C3=9Fe, the text part",
        b"--" + alt,
        b"Content-Type: text/html; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        b"<html><head><title>t</title></head><body>" + html_body + b"</body></html>",
        b"--" + alt + b"--",
        b"",
    ])
    lp = start_link(upstream)
    [rec] = lp.send_ok(ALICE, [BOB], data, 1)
    assert word.encode() not in rec.content and b"Gr=C3=BC=C3=9Fe-" not in rec.content
    inner = email.message_from_bytes(pgp_plain(rec, keys.bob.home), policy=email.policy.default)
    assert inner.get_content_type() == "multipart/alternative"
    assert inner.get_param("hp-legacy-display") is None and inner.get_param("hp") == "cipher"
    plain, html_part = inner.get_payload()
    for part in (plain, html_part):
        assert part.get_param("hp-legacy-display") == "1", part["Content-Type"]
    assert plain.get_content().replace("\r\n", "\n") == f"Subject: {word}\n\n" + text.decode().replace("\r\n", "")
    got_html = html_part.get_content().replace("\r\n", "\n")
    want = ('<body><div class="header-protection-legacy-display"><pre>Subject: ' + word +
            '</pre></div>\n' + html_body.decode())
    assert want in got_html, got_html
