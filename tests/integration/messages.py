"""Test messages, as the exact CRLF bytes a client means to send (before
dot-stuffing).  What the upstream records must equal these bytes."""
from __future__ import annotations

import base64
import hashlib
import os
import uuid

CRLF = b"\r\n"


def _lines(*lines: bytes) -> bytes:
    return b"".join(l + CRLF for l in lines)


def simple(subject: str = "hello", frm: str = "alice@example.com",
           to: str = "bob@example.net", body: bytes = b"Hello Bob.",
           extra_headers: tuple[bytes, ...] = ()) -> bytes:
    mid = f"<{uuid.uuid4().hex}@client.test>".encode()
    return _lines(
        b"From: Alice <" + frm.encode() + b">",
        b"To: Bob <" + to.encode() + b">",
        b"Subject: " + subject.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: " + mid,
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=us-ascii",
        *extra_headers,
        b"",
        *body.split(CRLF),
    )


def rich(frm: str = "alice@example.com", to: str = "bob@example.net",
         token: str | None = None, attachment_size: int = 30000) -> bytes:
    """multipart/mixed: an 8-bit UTF-8 text part with every transparency trap,
    and a base64 binary attachment.

    Traps: a line that is a lone ".", lines starting with "." and "..", a line
    ".\\r\\n"-lookalike in the middle, a "From " line (mbox would mangle it),
    trailing white space, a tab, a line of exactly 998 octets (1000 with CRLF),
    a dot-led line of 998 octets, 8-bit UTF-8 text, and an empty last line.
    """
    token = token or uuid.uuid4().hex
    boundary = b"=_sealpost_test_" + uuid.uuid4().hex.encode()
    blob = hashlib.shake_256(token.encode()).digest(attachment_size)
    b64 = base64.encodebytes(blob).replace(b"\n", CRLF).rstrip(CRLF).split(CRLF)
    long_line = (b"x" * 997) + b"!"                 # 998 octets + CRLF = 1000
    long_dot = b"." + (b"y" * 900)                   # a long dot-led line (the 998-octet
                                                     # dot-led edge has its own test)
    text = [
        "Grüße aus Köln — ünïcödé ✓ 日本語 " + token,
        "",
        ".",
        ".leading dot",
        "..two leading dots",
        "...",
        "From the desk of Alice (a line mbox would mangle)",
        ">From already quoted",
        "trailing spaces   ",
        "tab\there",
        " . a space then a dot",
        "",
    ]
    return _lines(
        b"From: =?utf-8?q?Al=C3=AFce?= <" + frm.encode() + b">",
        b"To: Bob <" + to.encode() + b">",
        b"Subject: rich test " + token.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + token.encode() + b"@client.test>",
        b"MIME-Version: 1.0",
        b"X-Mailer: sealpost-integration-tests",
        b"Content-Type: multipart/mixed;",
        b' boundary="' + boundary + b'"',
        b"",
        b"This is a multi-part message in MIME format.",
        b"",
        b"--" + boundary,
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        *[t.encode("utf-8") for t in text],
        long_line,
        long_dot,
        b".",
        b"",
        b"--" + boundary,
        b"Content-Type: application/octet-stream; name=\"data.bin\"",
        b"Content-Transfer-Encoding: base64",
        b"Content-Disposition: attachment; filename=\"data.bin\"",
        b"",
        *b64,
        b"",
        b"--" + boundary + b"--",
        b"",
    )


def sized(n: int, frm: str = "alice@example.com", to: str = "bob@example.net") -> bytes:
    """A well-formed message of at least n octets (76-char lines)."""
    head = simple(subject=f"sized {n}", frm=frm, to=to, body=b"")
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"
    out = bytearray(head)
    while len(out) < n:
        out += line + CRLF
    return bytes(out)


def unique_token() -> str:
    return "tok" + os.urandom(8).hex()
