"""Link v2 end to end (docs/formats.md "Link envelope (v2)", docs/viewer.md
"Link v2"): a real client sends through SMTP to the real sealpost (`run`, with
its embedded viewer) and the real aiosmtpd upstream; the notification's link
is opened over real HTTP by the browser's side of the protocol written in
Python (tests/vectors/link_v2.py: an implementation independent of the C code),
and the released blob is decrypted with PyNaCl following docs/formats.md.

What the viewer sees is only what a browser sends it: the link id in the path,
a blinded element, an attempt id and a proof.  The password, the link secret
(the URL fragment) and the plaintext stay here, and the store and the log are
searched for them."""
from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import sqlite3
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from nacl import bindings as nb

from gpgkeys import GpgHome
from linkmode import Web, link_message, store_counts, store_rows, wait_http
from sealpost import free_port
from test_view_doc import read_view_doc
from upstream import Upstream

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
import link_v2 as lv  # noqa: E402
import vectors  # noqa: E402  (the SPLNKMSG stream)

PRIVATE = ("Bcc", "X-Sealpost-*")
ALICE = "alice@example.com"
DAVE = "dave@example.org"
B64 = r"[A-Za-z0-9_-]"


def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@pytest.fixture(autouse=True)
def v2_links(monkeypatch):
    """The proxy makes v2 links (the harness defaults to v1 for the v1 tests)."""
    monkeypatch.setenv("SEALPOST_TEST_LINK_V1", "0")


@dataclass
class Proxy:
    sp: object
    up: Upstream
    base_url: str
    port: int
    store: Path

    @property
    def web(self) -> Web:
        return Web("127.0.0.1", self.port)

    def log(self) -> str:
        return self.sp.log()


@pytest.fixture
def start_proxy(start_sealpost, tmp_path):
    n = [0]

    def start(up: Upstream, max_failed: int = 3, remote: Optional[tuple] = None,
              base_port: Optional[int] = None, extra: Optional[dict] = None,
              viewer_port: Optional[int] = None) -> Proxy:
        """remote: (viewer port, upload token file) of a `sealpost linkserver`;
        base_port: the port the links name (a proxy in front of the viewer);
        extra: more configuration sections; viewer_port: the viewer's port."""
        name = f"v2p{n[0]}"
        n[0] += 1
        port = remote[0] if remote else viewer_port or free_port()
        base = f"http://127.0.0.1:{base_port or port}/s/"
        store = tmp_path / f"{name}-store" / "links.sqlite"
        cfg = {
            "policy": {"no_key": "link"},
            "link": {"store": str(store), "base_url": base, "expiry": "3d",
                     "max_failed_attempts": str(max_failed)},
            "linkserver": {"mode": "embedded", "listen": f"127.0.0.1:{port}", "outbox": "yes",
                           "outbox_listen": f"127.0.0.1:{free_port()}"},
            "queue": {"dir": str(tmp_path / f"{name}-queue")},
        }
        if remote:
            cfg["linkserver"] = {"mode": "off"}
            cfg["link"].update(upload_url=f"http://127.0.0.1:{port}/api/v1/links",
                               upload_token_file=str(remote[1]))
        for k, v in (extra or {}).items():
            cfg.setdefault(k, {}).update(v)
        sp = start_sealpost(up, extra=cfg, name=name)
        if not remote:
            wait_http("127.0.0.1", port, proc=sp.proc)
        return Proxy(sp, up, base, port, store)

    return start


@dataclass
class Link:
    url: str
    id_b64: str
    secret_b64: str

    @property
    def link_id(self) -> bytes:
        return b64d(self.id_b64)

    @property
    def secret(self) -> bytes:
        return b64d(self.secret_b64)

    @property
    def hex_id(self) -> str:
        return self.link_id.hex()


@dataclass
class Sent:
    msg: bytes
    marker: str
    password: str
    link: Link
    notification: bytes


def send(p: Proxy, password: str, extra=(), hint: str = "our usual one") -> Sent:
    marker = f"secret-body-{os.urandom(6).hex()}"
    msg = link_message(f"Figures {os.urandom(3).hex()}", f"The launch code is {marker}.\nGrüße",
                       frm=f'"Alice" <{ALICE}>', to=[DAVE],
                       attachment=("plans.bin", os.urandom(3000) + marker.encode()),
                       extra_headers=[f"X-Sealpost-Password: {password}",
                                      f"X-Sealpost-Hint: {hint}", *extra])
    before = len(p.up.messages)
    with p.sp.client() as c:
        c.ehlo()
        replies = c.transaction(ALICE, [DAVE], msg)
        c.cmd("QUIT")
    assert replies[-1].code == 250, replies
    got = p.up.wait_for(before + 1)
    [note] = [r for r in got[before:] if r.rcpt_tos == [DAVE]]
    m = email.message_from_bytes(note.content, policy=email.policy.default)
    text = "".join(part.get_content() for part in m.walk()
                   if part.get_content_type() in ("text/plain", "text/html"))
    rx = re.compile(re.escape(p.base_url) + f"({B64}{{22}})#({B64}{{22}})(?!{B64})")
    urls = {mm.group(0) for mm in rx.finditer(text)}
    assert len(urls) == 1, f"expected one v2 link in the notification: {text}"
    url = urls.pop()
    mm = rx.fullmatch(url)
    # No 43-character v1 token anywhere any more.
    assert not re.search(re.escape(p.base_url) + f"{B64}{{43}}(?!{B64})", text)
    return Sent(msg, marker, password, Link(url, mm.group(1), mm.group(2)), note.content)


# ---- the browser's side, in Python -------------------------------------------------------


def get_json(web: Web, path: str, **kw):
    r = web.get(path, **kw)
    return r, (json.loads(r.body) if r.header("content-type") == "application/json" else None)


def post_json(web: Web, path: str, obj, raw: Optional[bytes] = None, **kw):
    body = raw if raw is not None else json.dumps(obj).encode()
    r = web.request("POST", path, body=body, headers={"Content-Type": "application/json"}, **kw)
    return r, (json.loads(r.body) if r.header("content-type") == "application/json" else None)


class Client:
    """One recipient's browser: params once, Argon2id once per password."""

    def __init__(self, web: Web, link: Link):
        self.web, self.link = web, link
        r, j = get_json(web, f"/v2/{link.id_b64}/params")
        assert r.status == 200, (r.status, r.body[:300])
        self.params = b64d(j["params"])
        self.sender, self.hint = j["sender"], j["hint"]
        assert len(self.params) == 33 and self.params[:9] == b"SPLNKKEY\x02"
        self._x = {}

    def _input(self, password: str) -> bytes:
        if password not in self._x:
            ops = int.from_bytes(self.params[9:13], "big")
            mem = int.from_bytes(self.params[13:17], "big")
            pw = lv.argon2id(password.encode(), self.params[17:33], ops, mem)
            self._x[password] = lv.L_INPUT + self.link.link_id + pw
        return self._x[password]

    def evaluate(self, password: str, source: Optional[str] = None):
        """(response, attempt state or None)."""
        x = self._input(password)
        r_blind = lv.scalar(int.from_bytes(os.urandom(64), "little") % (lv.L - 1) + 1)
        blinded = lv.blind(x, r_blind)
        resp, j = post_json(self.web, f"/v2/{self.link.id_b64}/evaluate",
                            {"blinded": lv.b64url(blinded)}, source=source)
        if resp.status != 200:
            return resp, None
        evaluated, attempt = b64d(j["evaluated"]), b64d(j["attempt"])
        assert len(evaluated) == 32 and len(attempt) == 16
        y = lv.finalize(x, r_blind, evaluated)
        _, kwk, auth_seed = lv.derive(y, self.link.link_id, self.link.secret)
        _, sk = nb.crypto_sign_seed_keypair(auth_seed)
        proof = nb.crypto_sign(lv.L_UNLOCK + self.link.link_id + attempt, sk)[:64]
        return resp, {"attempt": attempt, "proof": proof, "kwk": kwk}

    def unlock(self, st: dict, source: Optional[str] = None):
        return post_json(self.web, f"/v2/{self.link.id_b64}/unlock",
                         {"attempt": lv.b64url(st["attempt"]), "proof": lv.b64url(st["proof"])},
                         source=source)

    def open(self, st: dict, body: bytes) -> bytes:
        """The released sealed key and blob, opened as docs/formats.md says."""
        sealed, blob = body[:72], body[72:]
        nonce, wrapped = sealed[:24], sealed[24:]
        key = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
            wrapped, self.params + nonce + self.link.link_id, nonce, st["kwk"])
        return open_blob(key, blob)

    def attempt(self, password: str):
        """evaluate + unlock: (unlock response, json, plaintext or None)."""
        r, st = self.evaluate(password)
        assert r.status == 200, (r.status, r.body[:300])
        r2, j = self.unlock(st)
        return r2, j, (self.open(st, r2.body) if r2.status == 200 else None)


def open_blob(key: bytes, ct: bytes) -> bytes:
    """The SPLNKMSG stream (docs/formats.md, "Message blob"), with PyNaCl."""
    assert ct[:9] == b"SPLNKMSG\x01", ct[:9]
    state = nb.crypto_secretstream_xchacha20poly1305_state()
    nb.crypto_secretstream_xchacha20poly1305_init_pull(state, ct[9:33], key)
    out, pos, final = [], 33, False
    chunk = 65536 + 17
    while pos < len(ct):
        c = ct[pos:pos + chunk]
        m, tag = nb.crypto_secretstream_xchacha20poly1305_pull(state, c, ct[:9] if pos == 33 else None)
        pos += len(c)
        out.append(m)
        if tag == nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL:
            final = True
            break
    assert final and pos == len(ct)
    return b"".join(out)


def assert_view(plain: bytes, s: Sent, sender_key: Optional[str] = None) -> dict:
    """plain is the view document (docs/formats.md "View document (v2)") of
    the message sent, as Python's email package reads that message: the
    subject, the text, the attachment's decoded bytes; never the MIME itself.
    Returns the header."""
    header, parts = read_view_doc(plain)
    m = email.message_from_bytes(s.msg, policy=email.policy.default)
    assert header["subject"] == m["Subject"]
    assert header["from"] == f"Alice <{ALICE}>"
    assert s.marker in header["text"]
    att = [p for p in m.walk() if p.get_filename()]
    assert [a["name"] for a in header["attachments"]] == [a.get_filename() for a in att]
    assert parts == [a.get_content() for a in att]
    assert header["sender_key"] == sender_key
    assert b"X-Sealpost-Password" not in plain and s.password.encode() not in plain
    return header


def row(p: Proxy, link: Link) -> Optional[dict]:
    return store_rows(p.store).get(link.hex_id)


def pending(p: Proxy, link: Link) -> int:
    db = sqlite3.connect(f"file:{p.store}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM pending WHERE link_id = ?",
                          (link.hex_id,)).fetchone()[0]
    finally:
        db.close()


def assert_headers(r) -> None:
    assert r.header("cache-control") == "no-store"
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("referrer-policy") == "no-referrer"
    assert "default-src 'none'" in r.header("content-security-policy")


# ---- tests ---------------------------------------------------------------------------------


def test_right_password_opens_and_looking_counts_nothing(start_proxy, upstream):
    p = start_proxy(upstream)
    s = send(p, "correct horse battery", hint="the café one")
    c = Client(p.web, s.link)
    assert c.sender == f"Alice <{ALICE}>" and c.hint == "the café one"
    # Looking (params, HEAD) never counts.
    for _ in range(3):
        r, _ = get_json(p.web, f"/v2/{s.link.id_b64}/params")
        assert r.status == 200
        assert_headers(r)
    assert p.web.request("HEAD", f"/v2/{s.link.id_b64}/params").status == 200
    assert row(p, s.link)["failed"] == 0 and row(p, s.link)["views"] == 0
    # The store holds the v2 record: 169 bytes, version 2, its params as served.
    db = sqlite3.connect(f"file:{p.store}?mode=ro", uri=True)
    [(rec,)] = db.execute("SELECT wrapped FROM links WHERE id = ?", (s.link.hex_id,)).fetchall()
    db.close()
    assert len(rec) == 169 and rec[:33] == c.params
    r, st = c.evaluate("correct horse battery")
    assert r.status == 200
    assert_headers(r)
    # Counted while pending.
    assert pending(p, s.link) == 1
    r2, _ = c.unlock(st)
    assert r2.status == 200, r2.body[:300]
    assert r2.header("content-type") == "application/octet-stream"
    assert_headers(r2)
    assert_view(c.open(st, r2.body), s)
    assert row(p, s.link)["failed"] == 0 and row(p, s.link)["views"] == 1
    assert pending(p, s.link) == 0


def test_wrong_passwords_count_and_destroy_the_link(start_proxy, upstream):
    p = start_proxy(upstream, max_failed=3)
    s = send(p, "the right one")
    c = Client(p.web, s.link)
    # Wrong, then right: the right one is not refused for the wrong one.
    r, j, plain = c.attempt("wrong one")
    assert r.status == 403 and j["error"] == "wrong-password" and plain is None
    assert r.header("retry-after") is not None
    assert row(p, s.link)["failed"] == 1
    r, j, plain = c.attempt("the right one")
    assert r.status == 200
    assert_view(plain, s)
    assert row(p, s.link)["failed"] == 1
    # Two more wrong ones reach max_failed_attempts = 3: destroyed.
    r, j, _ = c.attempt("wrong two")
    assert r.status == 403 and row(p, s.link)["failed"] == 2
    r, j, _ = c.attempt("wrong three")
    assert r.status == 410 and j["error"] == "destroyed"
    assert row(p, s.link) is None and store_counts(p.store) == (0, 0)
    # Gone for everything afterwards, the right password too.
    assert get_json(p.web, f"/v2/{s.link.id_b64}/params")[0].status == 410
    r, _ = c.evaluate("the right one")
    assert r.status == 410
    assert "destroyed after 3 wrong passwords" in p.log()


def test_every_attempt_left_pending_refuses_more(start_proxy, upstream):
    """Attempts count from Evaluate on: with max_failed pending, a further
    evaluation is refused (429) and nothing is answered for it."""
    p = start_proxy(upstream, max_failed=2)
    s = send(p, "pw")
    c = Client(p.web, s.link)
    r1, st1 = c.evaluate("guess one")
    r2, st2 = c.evaluate("guess two")
    assert r1.status == r2.status == 200
    r3, _ = c.evaluate("guess three")
    assert r3.status == 429 and r3.header("retry-after")
    assert pending(p, s.link) == 2
    assert c.unlock(st1)[0].status == 403
    # The last attempt is wrong: failed reaches the cap with nothing pending.
    r, j = c.unlock(st2)
    assert r.status == 410 and j["error"] == "destroyed"
    assert store_counts(p.store) == (0, 0)


def test_bad_requests_count_nothing(start_proxy, upstream):
    p = start_proxy(upstream)
    s = send(p, "pw")
    c = Client(p.web, s.link)
    path = f"/v2/{s.link.id_b64}/evaluate"
    el = lv.blind(lv.L_INPUT + bytes(48), lv.scalar(5))
    bad = [
        {"blinded": lv.b64url(bytes(32))},                          # the identity
        {"blinded": lv.b64url(el[:31] + bytes([el[31] | 0x80]))},   # top bit set
        {"blinded": lv.b64url(el[:31])},                            # short
        {"blinded": lv.b64url(el) + "="},                           # padding
        {"blinded": lv.b64url(el), "x": "y"},                       # another member
        {"blinded": 5},
        [lv.b64url(el)],
    ]
    for obj in bad:
        r, j = post_json(p.web, path, obj)
        assert r.status == 400 and j["error"] == "bad-request", obj
    for raw in (b"", b"{", b'{"blinded": "' + b"A" * 2000 + b'"}'):
        r, _ = post_json(p.web, path, None, raw=raw)
        assert r.status in (400, 413), raw[:20]
    r, _ = post_json(p.web, f"/v2/{s.link.id_b64}/unlock", {"attempt": "AAAA", "proof": "AAAA"})
    assert r.status == 400
    # Only JSON: a cross-site form cannot post here without a preflight.
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
        r = p.web.request("POST", path, body=json.dumps({"blinded": lv.b64url(el)}).encode(),
                          headers={"Content-Type": ctype} if ctype else {})
        assert r.status == 415, ctype
    assert row(p, s.link)["failed"] == 0 and pending(p, s.link) == 0
    # Unknown links and malformed ids: 410 / 404, nothing else.
    other = lv.b64url(os.urandom(16))
    assert get_json(p.web, f"/v2/{other}/params")[0].status == 410
    assert post_json(p.web, f"/v2/{other}/evaluate", {"blinded": lv.b64url(el)})[0].status == 410
    assert p.web.get(f"/v2/{s.link.id_b64}x/params").status == 404
    assert p.web.get(f"/v2/{s.link.id_b64}/nothing").status == 404


def test_replayed_proof_is_refused(start_proxy, upstream):
    p = start_proxy(upstream)
    s = send(p, "open sesame")
    c = Client(p.web, s.link)
    r, st = c.evaluate("open sesame")
    assert c.unlock(st)[0].status == 200
    # The same attempt and proof again (what something in front of the viewer
    # would have seen): refused, nothing released, nothing counted.
    r, j = c.unlock(st)
    assert r.status == 403 and j["error"] == "stale-attempt" and len(r.body) < 200
    # A valid proof for one attempt does not fit another attempt.
    _, st2 = c.evaluate("open sesame")
    _, st3 = c.evaluate("open sesame")
    r, j = c.unlock({**st3, "proof": st2["proof"]})
    assert r.status == 403 and j["error"] == "wrong-password"
    assert row(p, s.link)["views"] == 1 and row(p, s.link)["failed"] == 1
    # st3's attempt was used by that refusal: its own proof is refused now.
    assert c.unlock(st3)[1]["error"] == "stale-attempt"
    assert c.unlock(st2)[0].status == 200


def test_two_concurrent_unlocks_of_a_one_view_link_have_one_winner(start_proxy, upstream):
    p = start_proxy(upstream, max_failed=10)
    s = send(p, "burn after reading", extra=["X-Sealpost-Max-Views: 1"])
    c = Client(p.web, s.link)
    states = []
    for _ in range(4):
        r, st = c.evaluate("burn after reading")
        assert r.status == 200
        states.append(st)
    results = [None] * len(states)
    barrier = threading.Barrier(len(states))

    def go(i):
        barrier.wait()
        results[i] = c.unlock(states[i])[0]

    ts = [threading.Thread(target=go, args=(i,)) for i in range(len(states))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(r.status for r in results)
    assert codes == [200, 410, 410, 410], codes
    [win] = [(i, r) for i, r in enumerate(results) if r.status == 200]
    assert_view(c.open(states[win[0]], win[1].body), s)
    assert store_counts(p.store) == (0, 0)


def test_view_document_carries_the_senders_public_key(start_proxy, upstream, tmp_path):
    """A sender with a usable key in the keyring: the view document's
    sender_key is its armored public key (for the secure reply), which gpg
    reads back as that key, public only."""
    home = GpgHome(tmp_path / "gnupg")
    fpr = home.gen_key(f"Alice <{ALICE}>", primary_usage="sign")
    try:
        p = start_proxy(upstream, extra={"pgp": {"gnupg_home": str(home.path), "trust": "keyring"}})
        s = send(p, "keyed pw")
        c = Client(p.web, s.link)
        r, _, plain = c.attempt("keyed pw")
        assert r.status == 200
        key = read_view_doc(plain)[0]["sender_key"]
        assert key and key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----"), key
        assert key.rstrip().endswith("-----END PGP PUBLIC KEY BLOCK-----")
        assert_view(plain, s, sender_key=key)
        other = GpgHome(tmp_path / "reader")
        other.run("--import", input=key.encode())
        assert [k["fpr"] for k in other.keys()] == [fpr]
        assert other.keys(secret=True) == []
        other.kill_agent()
    finally:
        home.kill_agent()


def test_store_and_log_hold_no_password_secret_or_plaintext(start_proxy, upstream):
    p = start_proxy(upstream)
    s = send(p, "hunter2-unguessable-pw")
    c = Client(p.web, s.link)
    c.attempt("wrong-guess-pw-xyz")
    r, _, plain = c.attempt("hunter2-unguessable-pw")
    assert r.status == 200 and plain is not None
    needles = [s.password.encode(), b"wrong-guess-pw-xyz", s.marker.encode(), s.link.secret,
               s.link.secret_b64.encode(), s.link.url.encode()]
    files = [f for f in p.store.parent.iterdir() if f.is_file()]
    assert files
    for f in files:
        data = f.read_bytes()
        for n in needles:
            assert n not in data, f"{n!r} in {f}"
    log = p.log().encode()
    assert b"opened (view 1)" in log
    for n in needles:
        assert n not in log, f"{n!r} in the log"


def test_v1_links_still_open(start_proxy, upstream, monkeypatch):
    """A v1 link (43-character token, the password POSTed) keeps its unlock
    path; its id asked on the v2 routes is gone."""
    monkeypatch.setenv("SEALPOST_TEST_LINK_V1", "1")
    p = start_proxy(upstream)
    msg = link_message("v1 link", "v1 body marker", frm=f'"Alice" <{ALICE}>', to=[DAVE],
                       extra_headers=["X-Sealpost-Password: old style"])
    before = len(p.up.messages)
    with p.sp.client() as cl:
        cl.ehlo()
        assert cl.transaction(ALICE, [DAVE], msg)[-1].code == 250
        cl.cmd("QUIT")
    [note] = [r for r in p.up.wait_for(before + 1)[before:] if r.rcpt_tos == [DAVE]]
    m = re.search(re.escape(p.base_url).encode() + rb"([A-Za-z0-9_-]{43})(?![A-Za-z0-9_#-])",
                  note.content)
    assert m, note.content[:2000]
    token = m.group(1).decode()
    path = urllib.parse.urlsplit(p.base_url).path + token
    r = p.web.post(path, {"password": "old style"})
    assert r.status == 200 and "v1 body marker" in r.text
    id_b64 = lv.b64url(b64d(token)[:16])
    assert get_json(p.web, f"/v2/{id_b64}/params")[0].status in (404, 410)


def test_revoke_takes_the_v2_link(start_proxy, upstream):
    """`sealpost revoke` accepts the link as the recipient got it (id#secret)."""
    from sealpost import run_cli
    p = start_proxy(upstream)
    s = send(p, "pw")
    r = run_cli(p.sp.binary, ["revoke", "-c", str(p.sp.config_path), s.link.url], p.sp.workdir)
    assert r.rc == 0, str(r)
    assert row(p, s.link) is None
    assert get_json(p.web, f"/v2/{s.link.id_b64}/params")[0].status == 410


def test_outbox_and_check_show_the_v2_form(start_proxy, upstream):
    """The sender's outbox lists the link as the recipient got it (id#secret),
    and `sealpost check` names that form."""
    import html as html_lib
    from sealpost import run_cli
    p = start_proxy(upstream)
    s = send(p, "outbox pw")
    r = run_cli(p.sp.binary, ["outbox", "-c", str(p.sp.config_path)], p.sp.workdir)
    assert r.rc == 0, str(r)
    page = Web.outbox(r.stdout.strip())
    assert page.status == 200
    text = html_lib.unescape(page.text)
    assert s.link.url in text and "outbox pw" in text
    assert not re.search(re.escape(p.base_url) + f"{B64}{{43}}(?!{B64})", text)
    r = run_cli(p.sp.binary, ["check", "-c", str(p.sp.config_path), DAVE], p.sp.workdir)
    assert f"link        {p.base_url}<link-id>#<link-secret> (" in r.stdout, str(r)


def test_remote_viewer_gets_the_v2_record_sender_and_hint(start_proxy, upstream, sealpost_bin,
                                                          tmp_path, request):
    """With `[link] upload_url` the record, the sender and the hint travel in
    the upload (link record version 2) and the remote viewer unlocks v2."""
    from linkmode import LinkServer
    token = tmp_path / "upload.token"
    token.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    token.chmod(0o600)
    vport = free_port()
    rstore = tmp_path / "remote" / "links.sqlite"
    ls = LinkServer(sealpost_bin, tmp_path / "remote-viewer", {
        "link": {"store": str(rstore), "base_url": f"http://127.0.0.1:{vport}/s/",
                 "upload_token_file": str(token)},
        "linkserver": {"listen": f"127.0.0.1:{vport}", "outbox": "no"},
        "log": {"level": "debug"},
    }, listen=("127.0.0.1", vport))
    request.node._sealposts.append(ls)
    ls.start()
    p = start_proxy(upstream, remote=(vport, token))
    s = send(p, "remote pw", hint="the remote hint")
    assert s.link.hex_id in store_rows(rstore)
    c = Client(Web("127.0.0.1", vport), s.link)
    assert c.sender == f"Alice <{ALICE}>" and c.hint == "the remote hint"
    r, _, plain = c.attempt("remote pw")
    assert r.status == 200
    assert_view(plain, s)


# ---- several viewer nodes on one PostgreSQL store ------------------------------------------


def upload_v2(node, token: str, plain: bytes, password: str, max_views: int = 0,
              max_failed: int = 10) -> Link:
    """A v2 link made here, in Python (the record by tests/vectors/link_v2.py),
    uploaded to a node through the API as link record version 2."""
    import struct
    import time
    key, link_id, secret = os.urandom(32), os.urandom(16), os.urandom(16)
    k = lv.scalar(int.from_bytes(os.urandom(64), "little") % (lv.L - 1) + 1)
    rec = lv.make_record(key, password.encode(), link_id, secret, 1, 8, os.urandom(16),
                         os.urandom(24), k)["record"]
    ct = vectors.link_seal(key, os.urandom(24), plain)
    sender, hint = b"Alice <alice@example.com>", b""
    body = (b"SPLINKR\x02" + struct.pack(">qIIH", int(time.time()) + 3600, max_views, max_failed, 1)
            + struct.pack(">H", len(sender)) + sender + struct.pack(">H", len(hint)) + hint
            + link_id + struct.pack(">H", len(rec)) + rec + struct.pack(">Q", len(ct)) + ct)
    r = node.request("POST", "/api/v1/links", body=body,
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/vnd.sealpost.link-record.v1"})
    assert r.status == 201, (r.status, r.body[:300])
    return Link(f"{node.base_url}{lv.b64url(link_id)}#{lv.b64url(secret)}", lv.b64url(link_id),
                lv.b64url(secret))


@pytest.fixture(scope="module")
def pg():
    from pgserver import PgServer, pg_bin
    if pg_bin() is None:
        pytest.fail("PostgreSQL server not installed (scripts/deps.sh test installs postgresql)")
    server = PgServer().start()
    yield server
    server.close()


@pytest.fixture
def pg_nodes(tmp_path, pg):
    """Three viewer nodes on one fresh PostgreSQL database."""
    from viewer import Viewer
    db = pg.create_db(f"sp_v2_{os.getpid()}_{os.urandom(3).hex()}")
    token = base64.urlsafe_b64encode(os.urandom(32)).decode()
    vs = []
    for i in range(3):
        v = Viewer(tmp_path / f"node{i}", upload_token=token)
        v.store = db
        v.write_config()
        vs.append(v)
    for v in vs:
        v.start()
    yield vs, token, pg, db
    for v in vs:
        v.stop()


def test_postgresql_nodes_count_attempts_together_and_burn_once(pg_nodes):
    nodes, token, pg, db = pg_nodes
    dbname = db.rsplit("/", 1)[1]
    plain = b"Subject: v2 on nodes\r\n\r\nnode secret " + os.urandom(8).hex().encode() + b"\r\n"
    # Attempts counted on any node add up: max_failed 2, evaluations on three
    # nodes at once: two are answered, the third refused (429).
    link = upload_v2(nodes[0], token, plain, "pw", max_failed=2)
    clients = [Client(Web("127.0.0.1", v.port), link) for v in nodes]
    res = [None] * 3
    barrier = threading.Barrier(3)

    def ev(i):
        barrier.wait()
        res[i] = clients[i].evaluate("wrong")

    ts = [threading.Thread(target=ev, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(r.status for r, _ in res) == [200, 200, 429]
    assert pg.psql(f"SELECT count(*) FROM pending WHERE link_id = '{link.hex_id}'", db=dbname) == "2"
    # Proven wrong on other nodes than evaluated them: the second destroys it.
    done = [st for r, st in res if r.status == 200]
    assert clients[2].unlock(done[0])[0].status == 403
    r, j = clients[1].unlock(done[1])
    assert r.status == 410 and j["error"] == "destroyed"
    assert pg.psql(f"SELECT count(*) FROM links WHERE id = '{link.hex_id}'", db=dbname) == "0"
    # max_views = 1: right proofs on three nodes at once, one winner.
    link = upload_v2(nodes[1], token, plain, "pw", max_views=1)
    clients = [Client(Web("127.0.0.1", v.port), link) for v in nodes]
    states = [c.evaluate("pw")[1] for c in clients]
    out = [None] * 3
    barrier = threading.Barrier(3)

    def un(i):
        barrier.wait()
        out[i] = clients[i].unlock(states[i])[0]

    ts = [threading.Thread(target=un, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(r.status for r in out) == [200, 410, 410]
    [(i, win)] = [(i, r) for i, r in enumerate(out) if r.status == 200]
    assert clients[i].open(states[i], win.body) == plain
    assert pg.psql("SELECT count(*) FROM links", db=dbname) == "0"
