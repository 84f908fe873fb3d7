"""The view document (docs/formats.md "View document (v2)"), checked by an
independent reader: this file's read_view_doc() follows the format as
documented, with Python's struct and json modules, and the messages' own
contents come from Python's email package.  The C writer and reader are
crypto/view_doc.c, driven by the test-only tests/view_doc_dump:

  view_doc_dump render EML OUT    the document of a message, as the proxy writes it
  view_doc_dump rewrite DOC OUT   a document read strictly and written again
"""
from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import hashlib
import json
import os
import struct
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from messages import rich
from sealpost import sealpost_binary

MAGIC = b"SPVIEWD1"
STRINGS = ("from", "to", "cc", "date", "subject", "message_id", "text", "html", "sender_key")
MEMBERS = {"v", "html_refused", "attachments", "truncated", *STRINGS}

# A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")


def dump_tool() -> Path:
    build = Path(os.environ.get("SEALPOST_BUILD_DIR") or sealpost_binary().parent.parent)
    tool = build / "tests" / "view_doc_dump"
    assert tool.exists(), f"{tool} is not built (ninja -C {build})"
    return tool


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a member appears twice")
    return dict(pairs)


def read_view_doc(doc: bytes) -> tuple[dict, list[bytes]]:
    """The documented format, read strictly: magic, u32 big-endian header
    length, a UTF-8 JSON object with exactly the version-1 members, then the
    attachments' bytes, whose sizes add up to exactly the rest."""
    if len(doc) < 12 or doc[:8] != MAGIC:
        raise ValueError("no magic")
    (hlen,) = struct.unpack(">I", doc[8:12])
    if 12 + hlen > len(doc):
        raise ValueError("header past the end")
    header = json.loads(doc[12:12 + hlen].decode("utf-8", errors="strict"),
                        object_pairs_hook=no_duplicates)
    if not isinstance(header, dict) or set(header) != MEMBERS or header["v"] != 1:
        raise ValueError(f"not a version 1 header: {sorted(header)}")
    for k in STRINGS:
        if header[k] is not None and not isinstance(header[k], str):
            raise ValueError(f"{k} is not a string")
    if not isinstance(header["html_refused"], bool) or not isinstance(header["truncated"], bool):
        raise ValueError("a flag is not a boolean")
    body = doc[12 + hlen:]
    parts, off = [], 0
    for a in header["attachments"]:
        if set(a) != {"name", "type", "size"} or not a["name"] or not isinstance(a["size"], int):
            raise ValueError(f"bad attachment {a}")
        if a["size"] < 0 or off + a["size"] > len(body):
            raise ValueError("attachment past the end")
        parts.append(body[off:off + a["size"]])
        off += a["size"]
    if off != len(body):
        raise ValueError("bytes after the attachments")
    return header, parts


def render(tmp_path: Path, eml: bytes) -> tuple[dict, list[bytes], bytes]:
    src, out = tmp_path / "in.eml", tmp_path / "out.spview"
    src.write_bytes(eml)
    p = subprocess.run([str(dump_tool()), "render", str(src), str(out)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    doc = out.read_bytes()
    header, parts = read_view_doc(doc)
    return header, parts, doc


def rewrite(tmp_path: Path, doc: bytes) -> subprocess.CompletedProcess:
    src, out = tmp_path / "in.spview", tmp_path / "again.spview"
    src.write_bytes(doc)
    out.unlink(missing_ok=True)
    p = subprocess.run([str(dump_tool()), "rewrite", str(src), str(out)], capture_output=True, timeout=60)
    p.out = out.read_bytes() if out.exists() else None
    return p


def shown(field) -> str:
    """Python's parsed addresses as the view shows them: `Name <addr>` (the
    name as decoded, unquoted: a display string, not a header)."""
    return ", ".join(f"{a.display_name} <{a.addr_spec}>" if a.display_name else a.addr_spec
                     for a in field.addresses)


def parsed(eml: bytes) -> EmailMessage:
    return email.message_from_bytes(eml, policy=email.policy.default)


def hostile_message() -> bytes:
    m = EmailMessage()
    m["From"] = email.utils.formataddr(("Jürgen \"JJ\" Müller", "juergen@example.org"))
    m["To"] = "Bob <bob@example.net>, carol@example.net"
    m["Cc"] = "dave@example.com"
    m["Subject"] = 'Grüße "q" \\ </script> ✓ 日本語'
    m["Date"] = "Tue, 01 Dec 2026 09:30:00 +0100"
    m["Message-ID"] = "<view.doc.1@example.org>"
    m.set_content('Text with "quotes", a back\\slash, a \x01 control and </script>.\n'
                  'Zweite Zeile: ünïcödé.\n', charset="utf-8", cte="quoted-printable")
    return m.as_bytes(policy=email.policy.SMTP)


def html_message() -> bytes:
    m = EmailMessage()
    m["From"] = "Alice <alice@example.com>"
    m["To"] = "bob@example.net"
    m["Subject"] = "Report with attachments"
    m["Message-ID"] = "<view.doc.2@example.org>"
    m.set_content("The plain version.\n")
    m.add_alternative('<p onclick="x()">The <b>HTML</b> version <img src="cid:logo@example.org" alt="logo">'
                      '<script>alert(1)</script><img src="http://tracker.example/p.gif"></p>\n',
                      subtype="html")
    m.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@example.org>")
    blob = hashlib.shake_256(b"view document").digest(70000) + b"\x00\r\n\x00"
    m.add_attachment(blob, maintype="application", subtype="octet-stream", filename="data.bin")
    m.add_attachment(b"%PDF-1.4 not really\n", maintype="application", subtype="pdf",
                     filename="Résumé 2026.pdf")
    m.add_attachment("notes\r\nline two\r\n".encode(), maintype="text", subtype="plain",
                     filename="notes.txt")
    return m.as_bytes(policy=email.policy.SMTP)


def test_headers_and_text_as_pythons_email_sees_them(tmp_path):
    eml = hostile_message()
    header, parts, _ = render(tmp_path, eml)
    py = parsed(eml)
    assert header["subject"] == str(py["Subject"])
    assert header["from"] == shown(py["From"]) == 'Jürgen "JJ" Müller <juergen@example.org>'
    assert header["to"] == shown(py["To"])
    assert header["cc"] == shown(py["Cc"])
    assert header["message_id"] == str(py["Message-ID"]).strip("<>")
    assert header["date"] == "Tue, 1 Dec 2026 09:30 +0100"
    want = py.get_body(("plain",)).get_content()
    assert header["text"].replace("\r\n", "\n").rstrip("\n") == want.replace("\r\n", "\n").rstrip("\n")
    assert header["html"] is None and header["html_refused"] is False
    assert header["attachments"] == [] and parts == []
    assert header["truncated"] is False and header["sender_key"] is None


def test_subject_and_name_in_several_base64_encoded_words(tmp_path):
    """A long non-ASCII subject or name, which mailers fold into several
    encoded-words: every word is shown, as Python's email shows it.  (GMime
    3.2.13, Debian 12's, stops at the first word's base64 padding,
    jstedfast/gmime#133; crypto/view_render.c works around it.)"""
    eml = (b"From: =?utf-8?b?SsO8cmdlbiA=?=\r\n =?utf-8?b?TcO8bGxlcg==?= <j@example.org>\r\n"
           b"To: bob@example.net\r\n"
           b"Subject: =?utf-8?b?R3LDvMOfZSA=?=\r\n =?utf-8?b?5pel5pys6Kqe?= =?utf-8?b?IOKckw==?=\r\n"
           b"\r\nx\r\n")
    header, _, _ = render(tmp_path, eml)
    py = parsed(eml)
    assert header["subject"] == str(py["Subject"]) == "Grüße 日本語 ✓"
    assert header["from"] == "Jürgen Müller <j@example.org>"
    # (Python's headerregistry keeps the folding white space: compare words.)
    (addr,) = py["From"].addresses
    assert addr.display_name.split() == ["Jürgen", "Müller"] and addr.addr_spec == "j@example.org"
    assert header["to"] == shown(py["To"]) == "bob@example.net"
    # Python's own folding of a long subject, read back whole (but for the
    # trailing space Python writes bare at the end of the field: GMime drops it).
    m = EmailMessage()
    m["From"] = "a@example.org"
    m["Subject"] = "Grüße aus Köln — ein recht langer Betreff mit Umlauten äöü ✓ " * 3
    m.set_content("x\n")
    eml = m.as_bytes(policy=email.policy.SMTP)
    header, _, _ = render(tmp_path, eml)
    assert header["subject"] == str(parsed(eml)["Subject"]).rstrip(" ")


def test_html_cid_and_attachments_as_pythons_email_sees_them(tmp_path):
    eml = html_message()
    header, parts, _ = render(tmp_path, eml)
    py = parsed(eml)
    assert header["subject"] == "Report with attachments"
    assert header["from"] == shown(py["From"]) == "Alice <alice@example.com>"
    assert header["text"].rstrip("\r\n") == "The plain version."
    html = header["html"]
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in html
    for bad in ("script", "onclick", "tracker.example", "cid:"):
        assert bad not in html
    assert "<b>HTML</b>" in html
    # Every attachment Python's email package finds, by name, with its bytes.
    want = [(a.get_filename(), a.get_content_type(), a.get_payload(decode=True))
            for a in py.iter_attachments()]
    assert [n for n, _, _ in want] == ["data.bin", "Résumé 2026.pdf", "notes.txt"]
    got = {a["name"]: (a["type"], p) for a, p in zip(header["attachments"], parts)}
    for name, ctype, data in want:
        assert got[name] == (ctype, data), name
    # The inline image is an attachment too, ahead of them (document order).
    assert header["attachments"][0]["type"] == "image/png" and parts[0] == PNG
    assert [a["size"] for a in header["attachments"]] == [len(p) for p in parts]


def test_rich_message_text_and_binary_attachment(tmp_path):
    eml = rich(token="viewdoc")
    header, parts, _ = render(tmp_path, eml)
    py = parsed(eml)
    assert header["subject"] == str(py["Subject"]) == "rich test viewdoc"
    assert header["from"] == shown(py["From"])
    want = py.get_body(("plain",)).get_content()
    assert header["text"].replace("\r\n", "\n").rstrip("\n") == want.replace("\r\n", "\n").rstrip("\n")
    att = list(py.iter_attachments())
    assert [a["name"] for a in header["attachments"]] == [a.get_filename() for a in att] == ["data.bin"]
    assert parts == [a.get_payload(decode=True) for a in att]


def test_the_example_in_formats_md(tmp_path):
    """docs/formats.md's example, byte by byte, is what the writer makes."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text(encoding="utf-8")
    section = text[text.index("## View document (v2)"):]
    section = section[section.index("### Example"):section.index("\n## ")]
    message = section[section.index("The message\n\n") + 13:section.index("\n\nrenders to")]
    eml = "\r\n".join(line[4:] for line in message.splitlines()).encode() + b"\r\n"
    documented = section[section.index("the 302 bytes\n\n") + 15:section.index("\n\nand `61")].strip().encode()
    _, _, doc = render(tmp_path, eml)
    assert doc == MAGIC + struct.pack(">I", len(documented)) + documented + b"abc"
    assert f"a document of {len(doc)} bytes" in section
    assert f"H = {len(documented)}" in section


def test_c_reader_takes_a_document_written_by_python(tmp_path):
    """The other direction: a document written here from the format's
    description is read by the C reader, and what it writes back reads the same."""
    header = {"v": 1, "from": "Ünïcode <u@example.org>", "to": None, "cc": None, "date": None,
              "subject": 'a "b" \\ \u2028 \x7f', "message_id": "m@example.org",
              "text": "line\nline\t\x01\n", "html": "<p>x</p>", "html_refused": False,
              "attachments": [{"name": "a.bin", "type": "application/octet-stream", "size": 3},
                              {"name": "empty", "type": "text/plain", "size": 0},
                              {"name": "ü.txt", "type": "text/plain", "size": 5}],
              "truncated": True, "sender_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n...\n"}
    # Another member order, spacing and escaping than json-glib's.
    js = json.dumps(dict(reversed(list(header.items()))), indent=1, ensure_ascii=True).encode()
    doc = MAGIC + struct.pack(">I", len(js)) + js + b"\x00\xff\x00" + b"hello"
    p = rewrite(tmp_path, doc)
    assert p.returncode == 0, p.stderr.decode()
    back, parts = read_view_doc(p.out)
    assert back == header
    assert parts == [b"\x00\xff\x00", b"", b"hello"]


@pytest.mark.parametrize("label,mutate", [
    ("truncated", lambda d: d[:-1]),
    ("a byte too many", lambda d: d + b"x"),
    ("magic", lambda d: b"SPVIEWD2" + d[8:]),
    ("header length past the end", lambda d: d[:8] + struct.pack(">I", len(d)) + d[12:]),
    ("header length over the cap", lambda d: d[:8] + b"\xff\xff\xff\xff" + d[12:]),
    ("unknown member", lambda d: _rejson(d, lambda h: {**h, "bcc": None})),
    ("missing member", lambda d: _rejson(d, lambda h: {k: v for k, v in h.items() if k != "date"})),
    ("version 2", lambda d: _rejson(d, lambda h: {**h, "v": 2})),
    ("size as text", lambda d: _rejson(d, lambda h: {**h, "attachments": [
        {**a, "size": str(a["size"])} for a in h["attachments"]]})),
    ("duplicate member", lambda d: _raw(d, b'{"subject":"x",' + _header_bytes(d)[1:])),
    ("not JSON", lambda d: _raw(d, _header_bytes(d)[:-1])),
    ("not UTF-8", lambda d: _raw(d, _header_bytes(d).replace(b'"v":1', b'"v":1,"\xff":0'))),
])
def test_c_reader_refuses_a_bad_document(tmp_path, label, mutate):
    _, _, doc = render(tmp_path, html_message())
    assert rewrite(tmp_path, doc).returncode == 0
    bad = mutate(doc)
    p = rewrite(tmp_path, bad)
    assert p.returncode == 1, label
    assert b"view document:" in p.stderr
    assert p.out is None
    with pytest.raises((ValueError, UnicodeDecodeError)):
        read_view_doc(bad)


def _header_bytes(doc: bytes) -> bytes:
    (hlen,) = struct.unpack(">I", doc[8:12])
    return doc[12:12 + hlen]


def _raw(doc: bytes, header: bytes) -> bytes:
    (hlen,) = struct.unpack(">I", doc[8:12])
    return MAGIC + struct.pack(">I", len(header)) + header + doc[12 + hlen:]


def _rejson(doc: bytes, change) -> bytes:
    return _raw(doc, json.dumps(change(json.loads(_header_bytes(doc)))).encode())
