"""Helpers for test_link.py: link mode through the real proxy.

    msg = link_message(subject=..., body=..., attachment=(name, bytes), to=[...], bcc=[...])
    n = Notification.parse(received, base_url)      # one upstream copy for a link recipient
    n.url, n.token, n.link_id, n.text, n.html
    r = Receipt.decrypt(received, alice_home)       # the sender's delivery report
    r.entries["dave@example.org"].password / .url / .revoke_id / .form / .key
    web = Web("127.0.0.1", port)                    # HTTP to a viewer, fresh loopback source per call
    web.get(url_or_path), web.post(url_or_path, {"password": ...})
    ls = LinkServer(binary, workdir, config)        # `sealpost linkserver -c FILE` (a remote viewer)
    Tracker()                                       # an HTTP server that only counts requests

Everything here talks to real processes on loopback only.  Responses are
`viewer.Response` (status, lower-cased headers, body).
"""
from __future__ import annotations

from ports import free_port
from waits import WAIT

import base64
import email
import hashlib
import email.policy
import http.client
import http.server
import itertools
import re
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from gpgkeys import GpgHome
from sealpost import Sealpost, base_env
from upstream import Received
from viewer import Response

CRLF = "\r\n"
TOKEN_CHARS = r"[A-Za-z0-9_-]"
PASSWORD_RE = re.compile(r"^[a-z]{5}(?:-[a-z]{5}){3}$")     # e.g. bakit-monel-sutar-figon

# -- messages -------------------------------------------------------------------------------


def link_message(subject: str, body: str, frm: str = "Alice <alice@example.com>",
                 to: Sequence[str] = ("dave@example.org",), cc: Sequence[str] = (),
                 bcc: Sequence[str] = (), attachment: Optional[tuple[str, bytes]] = None,
                 html: Optional[str] = None, extra_headers: Sequence[str] = (),
                 message_id: Optional[str] = None) -> bytes:
    """A client's message as CRLF bytes: text (and optionally HTML) plus an
    optional base64 attachment.  extra_headers: whole header lines
    ("X-Sealpost-Password: ...")."""
    mid = message_id or f"<{uuid.uuid4().hex}@client.test>"
    head = [f"From: {frm}", f"To: {', '.join(to)}"]
    if cc:
        head.append(f"Cc: {', '.join(cc)}")
    if bcc:
        head.append(f"Bcc: {', '.join(bcc)}")
    head += [f"Subject: {subject}", "Date: Mon, 03 Jun 2024 10:00:00 +0000",
             f"Message-ID: {mid}", "In-Reply-To: <thread-root@client.test>",
             "References: <thread-root@client.test>", "MIME-Version: 1.0", *extra_headers]
    text_part = ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
                 "", *body.split("\n")]
    if html is not None:
        alt = "=_alt_" + uuid.uuid4().hex
        html_b64 = base64.encodebytes(html.encode()).decode().replace("\n", CRLF).rstrip(CRLF)
        content = [f'Content-Type: multipart/alternative; boundary="{alt}"', "", f"--{alt}",
                   *text_part, f"--{alt}", "Content-Type: text/html; charset=utf-8",
                   "Content-Transfer-Encoding: base64", "", html_b64, f"--{alt}--"]
    else:
        content = text_part
    if attachment is not None:
        name, data = attachment
        mixed = "=_mixed_" + uuid.uuid4().hex
        att_b64 = base64.encodebytes(data).decode().replace("\n", CRLF).rstrip(CRLF)
        lines = head + [f'Content-Type: multipart/mixed; boundary="{mixed}"', "",
                        "This is a multi-part message in MIME format.", f"--{mixed}", *content,
                        f"--{mixed}", "Content-Type: application/octet-stream",
                        f'Content-Disposition: attachment; filename="{name}"',
                        "Content-Transfer-Encoding: base64", "", att_b64, f"--{mixed}--"]
    else:
        lines = head + content
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def b64_fragments(data: bytes, n: int = 3, size: int = 40) -> list[bytes]:
    """Some runs of the base64 text a client would send for `data` (what would
    show if the attachment leaked in its encoded form)."""
    enc = base64.encodebytes(data).replace(b"\n", b"")
    step = max(1, (len(enc) - size) // n)
    return [enc[i:i + size] for i in range(0, step * n, step)][:n]


# -- tokens ---------------------------------------------------------------------------------


def token_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path.rsplit("/", 1)[1]


def token_id_secret(token: str) -> tuple[str, bytes]:
    """(link id as hex, link secret) of a 43-character link token."""
    raw = base64.urlsafe_b64decode(token + "=")
    assert len(raw) == 32, token
    return raw[:16].hex(), raw[16:]


# -- notifications --------------------------------------------------------------------------


def _part_text(part) -> str:
    return part.get_content()


@dataclass
class Notification:
    rec: Received
    msg: email.message.EmailMessage
    text: str
    html: str
    url: str

    @property
    def raw(self) -> bytes:
        return self.rec.content

    @property
    def token(self) -> str:
        return token_of(self.url)

    @property
    def link_id(self) -> str:
        return token_id_secret(self.token)[0]

    @property
    def secret(self) -> bytes:
        return token_id_secret(self.token)[1]

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    @classmethod
    def parse(cls, rec: Received, base_url: str) -> "Notification":
        msg = email.message_from_bytes(rec.content, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative", (
            f"notification is {msg.get_content_type()}, not multipart/alternative:\n"
            f"{rec.content[:2000]!r}")
        parts = list(msg.iter_parts())
        types = [p.get_content_type() for p in parts]
        assert types == ["text/plain", "text/html"], types
        text, html = _part_text(parts[0]), _part_text(parts[1])
        rx = re.compile(re.escape(base_url) + f"({TOKEN_CHARS}{{43}})(?!{TOKEN_CHARS})")
        in_text = set(m.group(0) for m in rx.finditer(text))
        in_html = set(m.group(0) for m in rx.finditer(html))
        assert len(in_text) == 1, f"expected one link under {base_url} in the text part: {text}"
        assert in_html == in_text, f"the HTML part's link differs: {in_html} vs {in_text}"
        return cls(rec, msg, text, html, in_text.pop())


def is_notification(rec: Received) -> bool:
    head = rec.content.split(b"\r\n\r\n", 1)[0].lower()
    return b"multipart/alternative" in head and b"multipart/encrypted" not in head


def is_pgp(rec: Received) -> bool:
    head = rec.content.split(b"\r\n\r\n", 1)[0].lower()
    return b"multipart/encrypted" in head and b"application/pgp-encrypted" in head


def by_rcpt(recs: Sequence[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for r in recs:
        for a in r.rcpt_tos:
            out.setdefault(a.lower(), []).append(r)
    return out


# -- the delivery report ----------------------------------------------------------------------


@dataclass
class ReceiptEntry:
    addr: str
    lines: list[str] = field(default_factory=list)

    def _field(self, name: str) -> Optional[str]:
        for l in self.lines:
            m = re.match(rf"^\s*{name}\s+(.*?)\s*$", l)
            if m:
                return m.group(1)
        return None

    @property
    def form(self) -> str:
        first = self.lines[0].strip() if self.lines else ""
        if first.startswith("OpenPGP"):
            return "pgp"
        if first.startswith("sodium"):
            return "sodium"
        if first.startswith("link"):
            return "link"
        return first

    @property
    def key(self) -> Optional[str]:
        m = re.search(r"key (\S+)", self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    @property
    def url(self) -> Optional[str]:
        return self._field("link")

    @property
    def password(self) -> Optional[str]:
        return self._field("password")

    @property
    def expires(self) -> Optional[str]:
        return self._field("expires")

    @property
    def hint(self) -> Optional[str]:
        return self._field("hint")

    @property
    def views(self) -> Optional[str]:
        return self._field("views")

    @property
    def revoke_id(self) -> Optional[str]:
        v = self._field("revoke")
        m = re.match(r"^sealpost revoke ([0-9a-f]{32})$", v or "")
        return m.group(1) if m else None


@dataclass
class Receipt:
    rec: Received
    text: str
    entries: dict[str, ReceiptEntry]
    packets: str = ""

    @classmethod
    def decrypt(cls, rec: Received, home: GpgHome) -> "Receipt":
        msg = email.message_from_bytes(rec.content, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/encrypted", msg.get_content_type()
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["application/pgp-encrypted",
                                                         "application/octet-stream"], parts
        armored = parts[1].get_payload(decode=True)
        res = home.decrypt(armored)
        assert res.rc == 0, f"the sender cannot decrypt the delivery report:\n{res}"
        inner = email.message_from_bytes(res.stdout, policy=email.policy.default)
        text = inner.get_content() if not inner.is_multipart() else \
            inner.get_body(("plain",)).get_content()
        entries: dict[str, ReceiptEntry] = {}
        cur = None
        for line in text.splitlines():
            m = re.match(r"^<([^>]+)>\s*$", line)
            if m:
                cur = ReceiptEntry(m.group(1).lower())
                entries[cur.addr] = cur
            elif cur is not None and line.startswith((" ", "\t")) and line.strip():
                cur.lines.append(line)
            elif not line.strip():
                cur = None
        return cls(rec, text, entries)

    @staticmethod
    def armored(rec: Received) -> bytes:
        msg = email.message_from_bytes(rec.content, policy=email.policy.default)
        return list(msg.iter_parts())[1].get_payload(decode=True)


# -- HTTP -----------------------------------------------------------------------------------

_src = itertools.count(1)


def fresh_source() -> str:
    """A loopback source address of its own: the viewer's per-client backoff for
    wrong passwords does not slow requests that are not about it."""
    n = next(_src)
    return f"127.{60 + n // 62500}.{(n // 250) % 250}.{n % 250 + 1}"


class Web:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    @staticmethod
    def _path(url_or_path: str) -> str:
        if url_or_path.startswith("http"):
            u = urllib.parse.urlsplit(url_or_path)
            return u.path + (("?" + u.query) if u.query else "")
        return url_or_path

    def request(self, method: str, url_or_path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None, source: Optional[str] = None,
                timeout: float = 60) -> Response:
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                       source_address=(source or fresh_source(), 0))
        t0 = time.monotonic()
        try:
            c.request(method, self._path(url_or_path), body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                            time.monotonic() - t0)
        finally:
            c.close()

    def get(self, url_or_path: str, **kw) -> Response:
        return self.request("GET", url_or_path, **kw)

    def post(self, url_or_path: str, fields: dict, headers: Optional[dict] = None,
             **kw) -> Response:
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", url_or_path, body=urllib.parse.urlencode(fields).encode(),
                            headers=h, **kw)

    @staticmethod
    def outbox(url: str, **kw) -> Response:
        """The outbox page at `url` (what `sealpost outbox` prints: its own
        loopback listener, a token in the path), from this machine."""
        u = urllib.parse.urlsplit(url)
        kw.setdefault("source", "127.0.0.1")
        return Web(u.hostname, u.port).get(url, **kw)


def wait_http(host: str, port: int, timeout: float = WAIT, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode} before {host}:{port} listened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listening on {host}:{port} after {timeout}s")
            time.sleep(0.02)


# -- the store --------------------------------------------------------------------------------


def store_rows(store: Path) -> dict[str, dict]:
    """Link rows by id, read with an independent SQLite (read only)."""
    if not store.exists():
        return {}
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return {r["id"]: dict(r) for r in db.execute("SELECT * FROM links")}
    finally:
        db.close()


def store_counts(store: Path) -> tuple[int, int]:
    if not store.exists():
        return (0, 0)
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        return (db.execute("SELECT count(*) FROM links").fetchone()[0],
                db.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        db.close()


def store_set_expiry(store: Path, link_ids: Sequence[str], expires: int) -> None:
    """Move links' expiry (what the viewer's clock compares against) - the
    stand-in for waiting until the time has come."""
    db = sqlite3.connect(str(store), timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        for lid in link_ids:
            n = db.execute("UPDATE links SET expires = ? WHERE id = ?", (expires, lid)).rowcount
            assert n == 1, f"no link {lid} in the store"
        db.execute("COMMIT")
    finally:
        db.close()


def store_record(store: Path, link_id: str) -> tuple[bytes, bytes]:
    """(wrapped key blob, message ciphertext) of one link, read independently."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute("SELECT l.wrapped, m.ciphertext FROM links l JOIN messages m "
                         "ON m.id = l.message_id WHERE l.id = ?", (link_id,)).fetchone()
    finally:
        db.close()
    assert row is not None, f"no link {link_id} in {store}"
    return bytes(row[0]), bytes(row[1])


def open_record(wrapped: bytes, ciphertext: bytes, token: str, password: str) -> bytes:
    """Decrypt a stored link message the way docs/formats.md ("Link envelope
    (v1)") describes it, with PyNaCl instead of sealpost's own code: an
    independent reader of what the store really holds."""
    from nacl import bindings as nb
    raw = base64.urlsafe_b64decode(token + "=")
    link_id, secret = raw[:16], raw[16:]
    assert len(wrapped) == 105 and wrapped[:9] == b"SPLNKKEY\x01", wrapped[:9]
    ops, mem_kib = struct.unpack(">II", wrapped[9:17])
    salt, nonce, ct = wrapped[17:33], wrapped[33:57], wrapped[57:]
    pw = nb.crypto_pwhash_alg(32, password.encode("utf-8"), salt, ops, mem_kib * 1024,
                              nb.crypto_pwhash_ALG_ARGON2ID13)
    kek = hashlib.blake2b(b"sealpost link kek v1" + link_id + secret, key=pw,
                          digest_size=32).digest()
    key = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, wrapped[:57] + link_id, nonce, kek)
    assert ciphertext[:9] == b"SPLNKMSG\x01", ciphertext[:9]
    state = nb.crypto_secretstream_xchacha20poly1305_state()
    nb.crypto_secretstream_xchacha20poly1305_init_pull(state, ciphertext[9:33], key)
    out, pos, final = [], 33, False
    chunk = 65536 + 17
    while pos < len(ciphertext):
        c = ciphertext[pos:pos + chunk]
        m, tag = nb.crypto_secretstream_xchacha20poly1305_pull(
            state, c, ciphertext[:9] if pos == 33 else None)
        pos += len(c)
        out.append(m)
        if tag == nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL:
            final = True
            break
    assert final and pos == len(ciphertext), "stream without FINAL chunk, or bytes after it"
    return b"".join(out)


def without_headers(msg: bytes, names: Sequence[str]) -> bytes:
    """msg with every header field whose name is in names (or starts with a
    name ending in '*') removed, folded lines included; the body untouched."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    out, skip = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].decode("ascii", "replace").lower()
        skip = any(name.startswith(n[:-1].lower()) if n.endswith("*") else name == n.lower()
                   for n in names)
        if not skip:
            out.append(line)
    return b"\r\n".join(out) + sep + body


def files_under(d: Path) -> list[Path]:
    return sorted(p for p in Path(d).rglob("*") if p.is_file())


# -- a remote viewer --------------------------------------------------------------------------


class LinkServer(Sealpost):
    """`sealpost linkserver -c FILE`: the viewer alone (no SMTP listener).  Its
    config needs no [proxy] section; `listen` is the viewer's host:port."""

    def __init__(self, binary: Path, workdir: Path, config: dict, listen: tuple[str, int],
                 name: str = "linkserver"):
        cfg = dict(config)
        # Sealpost parses [proxy] listen for its own listeners; the viewer's is used.
        self._viewer = listen
        cfg_for_base = dict(cfg)
        cfg_for_base.setdefault("proxy", {"listen": f"{listen[0]}:{listen[1]}"})
        super().__init__(binary, workdir, cfg_for_base, name=name)
        self.config = config

    def start(self, timeout: float = 15.0) -> "LinkServer":
        self.write_config()
        env = base_env(self.workdir)
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "linkserver", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, env=env,
            cwd=self.workdir, start_new_session=True)
        wait_http(*self._viewer, timeout=timeout, proc=self.proc)
        return self


# -- a tracker --------------------------------------------------------------------------------


class Tracker:
    """An HTTP server that only counts what reaches it."""

    def __init__(self):
        self.hits: list[str] = []
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                tracker.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a")

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
