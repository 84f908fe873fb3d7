"""Link mode end to end (docs/viewer.md; docs/configuration.md [link],
[linkserver]; docs/threat-model.md "Someone holding a link"): a real client -> the real sealpost
(`run`, with its embedded viewer, or uploading to a second sealpost in
`linkserver` mode) -> the real aiosmtpd upstream; the recipient's side through
the real viewer over HTTP and in a real headless Chromium.

Keys are real: GnuPG keys for the sender (alice, whose keyring is the proxy's
[pgp] gnupg_home) and an OpenPGP recipient (bob); a sealpost (sodium) key for
carol; dave and erin have no key and get links.  Generated passwords are read
from the delivery report, decrypted with alice's own GnuPG home, or from the
loopback-only outbox page, exactly as a user would.

What is stored is checked independently: the SQLite store is read with
Python's sqlite3, and a stored record is decrypted with PyNaCl following
docs/formats.md, so "what is stored" is compared byte for byte with what the
client sent (minus Bcc and X-Sealpost-*).
"""
from __future__ import annotations

import base64
import email
import email.header
import email.policy
import html as html_lib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pytest

from browser import By, EC, WebDriverWait, wait_download
from clients import Reply, assert_reply
from gpgkeys import GpgHome, Identity, kill_all_agents, make_identity, packet_keyids
from linkmode import (PASSWORD_RE, LinkServer, Notification, Receipt, Tracker, Web,
                      b64_fragments, by_rcpt, files_under, is_notification,
                      is_pgp, link_message, open_record, store_counts, store_record,
                      store_rows, store_set_expiry, token_id_secret, wait_http,
                      without_headers)
from sealpost import Sealpost, free_port, run_cli
from sodiumkeys import SodiumKey, write_recipients
from upstream import Upstream
from waits import WAIT
from viewer import Forwarder, Response, assert_security_headers, download_caps

ALICE = "alice@example.com"        # the sender; her keyring is the proxy's gnupg_home
BOB = "bob@example.net"            # OpenPGP recipient
CAROL = "carol@example.net"        # sodium recipient
DAVE = "dave@example.org"          # link recipient (To)
ERIN = "erin@example.org"          # link recipient (Bcc / Cc)
NOKEY = "nokey@example.com"        # a sender without any key: no report by mail

PRIVATE = ("Bcc", "X-Sealpost-*")


# =====================================================================================
# Keys, once per module
# =====================================================================================

@dataclass
class Keys:
    alice: Identity
    bob: Identity
    sp_home: GpgHome          # the proxy's keyring: alice's home with bob certified
    nokeys: GpgHome           # no keys: lists packets without decrypting
    carol: SodiumKey
    sodium_file: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory, sealpost_bin) -> Keys:
    base = tmp_path_factory.mktemp("lk")
    alice = make_identity(base, "alice", "Alice", ALICE)
    bob = make_identity(base, "bob", "Bob", BOB)
    alice.home.import_keys(bob.home.export(bob.fpr))
    alice.home.lsign(bob.fpr, alice.fpr)
    nokeys = GpgHome(base / "nokeys")
    carol = SodiumKey.make(sealpost_bin, base / "sodium", CAROL)
    sodium_file = write_recipients(base / "sodium-recipients", [carol])
    yield Keys(alice, bob, alice.home, nokeys, carol, sodium_file)
    kill_all_agents([alice.home, bob.home, nokeys])


# =====================================================================================
# A proxy in link mode with its embedded viewer
# =====================================================================================

@dataclass
class LinkProxy:
    sp: Sealpost
    up: Upstream
    base_url: str
    viewer_port: int
    store: Path
    queue: Path
    outbox_port: int = 0

    @property
    def web(self) -> Web:
        return Web("127.0.0.1", self.viewer_port)

    def outbox_url(self) -> str:
        """What `sealpost outbox` prints: the outbox's own listener, its token."""
        r = run_cli(self.sp.binary, ["outbox", "-c", str(self.conf)], self.sp.workdir)
        assert r.rc == 0, str(r)
        url = r.stdout.strip()
        assert url.startswith(f"http://127.0.0.1:{self.outbox_port}/outbox/"), url
        return url

    def outbox(self, **kw) -> Response:
        return Web.outbox(self.outbox_url(), **kw)

    @property
    def conf(self) -> Path:
        return self.sp.config_path

    def send(self, frm: str, rcpts: Sequence[str], msg: bytes) -> list[Reply]:
        with self.sp.client() as c:
            c.ehlo()
            replies = c.transaction(frm, rcpts, msg)
            c.cmd("QUIT")
        return replies

    def send_ok(self, frm: str, rcpts: Sequence[str], msg: bytes, n_copies: int,
                forms: Optional[dict] = None) -> list:
        """Send; 250 for every RCPT (", link" for link recipients when forms says
        so) and the data; wait until the upstream holds n_copies more messages."""
        before = len(self.up.messages)
        replies = self.send(frm, rcpts, msg)
        for rc, r in zip(rcpts, replies[1:1 + len(rcpts)]):
            assert_reply(r, 250, what=f"RCPT {rc}")
            if forms and forms.get(rc) == "link":
                assert r.text.endswith("link"), f"RCPT {rc}: {r}"
            elif forms:
                assert "link" not in r.text, f"RCPT {rc}: {r}"
        assert_reply(replies[-1], 250, "2.0.0", what="end of data")
        got = self.up.wait_for(before + n_copies)
        # The 250 comes after the upstream took every copy: nothing more follows.
        assert len(got) == before + n_copies, self.up.events_summary()
        return got[before:]


@pytest.fixture
def start_link(start_sealpost, tmp_path, keys):
    counter = [0]

    def start(up: Upstream, link: Optional[dict] = None, linkserver: Optional[dict] = None,
              extra: Optional[dict] = None, start: bool = True,
              viewer_port: Optional[int] = None) -> LinkProxy:
        name = f"lp{counter[0]}"
        counter[0] += 1
        vport = viewer_port or free_port()
        oport = free_port()
        base = f"http://127.0.0.1:{vport}/s/"
        store = tmp_path / f"{name}-store" / "links.sqlite"
        queue = tmp_path / f"{name}-queue"
        cfg = {
            "policy": {"no_key": "link"},
            "link": {"store": str(store), "base_url": base, "expiry": "3d",
                     "max_failed_attempts": "5"},
            "linkserver": {"mode": "embedded", "listen": f"127.0.0.1:{vport}", "outbox": "yes",
                           "outbox_listen": f"127.0.0.1:{oport}"},
            "pgp": {"gnupg_home": str(keys.sp_home.path), "trust": "keyring"},
            "sodium": {"recipients": str(keys.sodium_file)},
            "queue": {"dir": str(queue)},
        }
        cfg["link"].update(link or {})
        cfg["linkserver"].update(linkserver or {})
        for s, kv in (extra or {}).items():
            cfg.setdefault(s, {}).update(kv)
        sp = start_sealpost(up, extra=cfg, name=name, start=False)
        lp = LinkProxy(sp, up, cfg["link"]["base_url"], vport, Path(cfg["link"]["store"]), queue,
                       oport)
        if start:
            sp.start()
            if cfg["linkserver"].get("mode", "embedded") == "embedded":
                wait_http("127.0.0.1", vport, proc=sp.proc)
        return lp

    return start


C_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
C_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December")

def unique(what: str) -> str:
    return f"{what}-{os.urandom(6).hex()}"


@dataclass
class Sent:
    """One message sent through the proxy, and the secrets it was made of."""
    msg: bytes
    subject: str
    body: str
    att_name: str
    att: bytes
    copies: list
    notes: dict          # addr -> Notification
    receipt: Optional[Receipt]


def send_link_message(lp: LinkProxy, keys: Keys, to: Sequence[str], bcc: Sequence[str] = (),
                      cc: Sequence[str] = (), frm_addr: str = ALICE,
                      frm_name: str = "Alice", extra_headers: Sequence[str] = (),
                      n_copies: Optional[int] = None, html: Optional[str] = None,
                      att_size: int = 20_000) -> Sent:
    subject = unique("Quarterly-figures")
    body = f"The launch code is {unique('secret-body')}.\nGrüße, Alice"
    att_name = unique("plans") + ".pdf"
    att = os.urandom(att_size)
    msg = link_message(subject, body, frm=f'"{frm_name}" <{frm_addr}>', to=to, cc=cc, bcc=bcc,
                       attachment=(att_name, att), extra_headers=extra_headers, html=html)
    rcpts = list(to) + list(cc) + list(bcc)
    if n_copies is None:
        n_copies = len(rcpts) + (1 if frm_addr == ALICE else 0)
    copies = lp.send_ok(frm_addr, rcpts, msg, n_copies,
                        forms={a: ("link" if a in (DAVE, ERIN) else "key") for a in rcpts})
    notes, receipt = {}, None
    for rec in copies:
        if rec.rcpt_tos == [frm_addr] and is_pgp(rec):
            receipt = Receipt.decrypt(rec, keys.alice.home)
        elif is_notification(rec):
            assert len(rec.rcpt_tos) == 1, f"a notification for several recipients: {rec.rcpt_tos}"
            notes[rec.rcpt_tos[0].lower()] = Notification.parse(rec, lp.base_url)
    return Sent(msg, subject, body, att_name, att, copies, notes, receipt)


def assert_gone(web: Web, url: str, password: Optional[str] = None, what: str = "") -> None:
    r = web.get(url)
    assert r.status == 410, f"{what}: GET {url}: {r.status}"
    assert "not available" in r.text
    if password is not None:
        r = web.post(url, {"password": password})
        assert r.status == 410, f"{what}: POST {url}: {r.status}"


def assert_opens(web: Web, url: str, password: str, sent: Sent) -> str:
    r = web.post(url, {"password": password})
    assert r.status == 200, f"POST {url}: {r.status} {r.text[:400]}"
    assert sent.subject in r.text and "The launch code is" in r.text, r.text[:2000]
    assert_security_headers(r, "message page")
    return r.text


# =====================================================================================
# 1. The notification
# =====================================================================================

@pytest.mark.parametrize("password_source", ["generated", "header"])
def test_notification_carries_link_and_nothing_else(start_link, upstream, keys, password_source):
    lp = start_link(upstream)
    evil_name = "Al <script>alert(1)</script> & Co"
    own_pw = "Correct horse 'battery' staple " + os.urandom(4).hex()
    hint = "our first cat, lower case"
    extra = []
    if password_source == "header":
        extra = [f"X-Sealpost-Password: {own_pw}", f"X-Sealpost-Hint: {hint}",
                 "X-Sealpost-Expiry: 2d", "X-Sealpost-Max-Views: 3"]
    sent = send_link_message(lp, keys, to=[DAVE], bcc=[ERIN], frm_name=evil_name,
                             extra_headers=extra)
    assert set(sent.notes) == {DAVE, ERIN}, [c.rcpt_tos for c in sent.copies]
    assert sent.receipt is not None
    rows = store_rows(lp.store)
    passwords = [sent.receipt.entries[a].password for a in (DAVE, ERIN)]
    if password_source == "header":
        assert passwords == [own_pw + " (yours)"] * 2 or passwords == [own_pw] * 2, passwords
        passwords = [own_pw]
    else:
        assert all(PASSWORD_RE.match(p) for p in passwords), passwords
        assert passwords[0] != passwords[1]
    att_frags = b64_fragments(sent.att)
    tokens = {a: n.token for a, n in sent.notes.items()}

    for addr, n in sent.notes.items():
        other = ERIN if addr == DAVE else DAVE
        assert n.rec.rcpt_tos == [addr] and n.rec.mail_from == ALICE
        # The link: base_url + a 43-character token whose id is a live link in the store.
        assert n.url.startswith(lp.base_url) and len(n.token) == 43
        assert n.link_id in rows, f"{addr}: link id {n.link_id} not in the store"
        row = rows[n.link_id]
        # Subject from the template; threading headers kept; no Bcc, no X-Sealpost-*.
        subj = str(n.msg["Subject"])
        assert subj.startswith("Encrypted message from") and ALICE in subj, subj
        assert n.msg["In-Reply-To"] == "<thread-root@client.test>"
        assert n.msg["References"] == "<thread-root@client.test>"
        assert n.msg["Bcc"] is None
        # The expiry as the store has it (sealpost formats it in local time).
        expected_days = 2 if password_source == "header" else 3
        assert row["expires"] - row["created"] == expected_days * 86400
        # sealpost prints the day unpadded ("Wednesday 2 December") with the C
        # locale's names, in its (and our) local time zone: build the expected
        # text from the fields, independent of strftime padding and our locale.
        lt = time.localtime(row["expires"])
        when = (f"{C_DAYS[lt.tm_wday]} {lt.tm_mday} {C_MONTHS[lt.tm_mon - 1]} "
                f"{lt.tm_year}, {lt.tm_hour:02d}:{lt.tm_min:02d} {lt.tm_zone}")
        assert when in n.text, f"expiry {when!r} not in the text part:\n{n.text}"
        assert when in n.html, f"expiry {when!r} not in the HTML part"
        if password_source == "header":
            assert row["max_views"] == 3 and "3 times" in n.text
            assert hint in n.text and hint in n.html
        # Nothing of the message, no password, no private header, no other link.
        decoded = (n.text + n.html).encode()
        for blob, label in ((n.raw, "raw"), (decoded, "decoded")):
            low = blob.lower()
            for needle, what in [(sent.subject.encode(), "subject"),
                                 (b"launch code", "body"), (b"secret-body", "body"),
                                 (sent.att_name.encode(), "attachment name"),
                                 (sent.att_name.split(".")[0].encode(), "attachment name"),
                                 *[(f, "attachment content") for f in att_frags],
                                 *[(p.encode(), "password") for p in passwords],
                                 (b"x-sealpost", "X-Sealpost header"),
                                 *([(ERIN.encode(), "the Bcc recipient")] if addr == DAVE else []),
                                 (tokens[other].encode(), "the other recipient's link")]:
                assert needle.lower() not in low, f"{addr}: {what} in the notification ({label})"
        # The HTML part escapes the sender's name: no markup from the client.
        assert "<script" not in n.html.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in n.html, n.html
    # The link opens (with the right password): it is a real link, not just a string.
    assert_opens(lp.web, sent.notes[DAVE].url,
                 own_pw if password_source == "header" else sent.receipt.entries[DAVE].password, sent)


# =====================================================================================
# 2. Round trip: receipt password -> viewer -> message and attachment
# =====================================================================================

def test_round_trip_generated_password(start_link, upstream, keys):
    lp = start_link(upstream)
    sent = send_link_message(lp, keys, to=[DAVE], att_size=150_000)
    n = sent.notes[DAVE]
    pw = sent.receipt.entries[DAVE].password
    assert sent.receipt.entries[DAVE].url == n.url
    web = lp.web
    # GET: the password form; never a view (link scanners burn nothing).
    for _ in range(2):
        r = web.get(n.url)
        assert r.status == 200 and 'name="password"' in r.text and sent.subject not in r.text
        assert_security_headers(r, "form")
    assert store_rows(lp.store)[n.link_id]["views"] == 0
    # A wrong password reveals nothing and counts.
    r = web.post(n.url, {"password": pw[:-1] + ("a" if pw[-1] != "a" else "e")})
    assert r.status == 403 and "does not open" in r.text
    for secret in (sent.subject, "launch code", sent.att_name):
        assert secret not in r.text
    row = store_rows(lp.store)[n.link_id]
    assert row["failed"] == 1 and row["views"] == 0
    assert row["max_failed"] == 5 and row["max_views"] == 0      # from [link]
    # The right one: subject, sender, body, attachment.
    page = assert_opens(web, n.url, pw, sent)
    assert ALICE in page and DAVE in page and sent.att_name in page
    assert "Grüße, Alice" in page
    [(cap, part)] = download_caps(page)
    d = web.post(n.url, {"dl": cap, "part": part})
    assert d.status == 200 and d.body == sent.att, (d.status, len(d.body), len(sent.att))
    assert d.header("content-disposition").startswith("attachment;")
    assert sent.att_name in d.header("content-disposition")
    assert store_rows(lp.store)[n.link_id]["views"] == 1
    # What the store holds is the client's message minus Bcc and X-Sealpost-*,
    # byte for byte (decrypted independently, following docs/formats.md).
    wrapped, ct = store_record(lp.store, n.link_id)
    assert open_record(wrapped, ct, n.token, pw) == without_headers(sent.msg, PRIVATE)


@pytest.mark.parametrize("hint", ["Zoë's café — ünïcödé <b>&",      # beyond Latin-1
                                  "Zoë's café, ünïcödé <b>&"])      # all in Latin-1
def test_notification_charset_is_utf8_in_both_parts(start_link, upstream, keys, hint):
    """Issue #13 item 10: a non-ASCII hint made GMime pick iso-8859-1 for the
    parts (when every character fits Latin-1) while the HTML says
    <meta charset="utf-8">: mojibake.  Both parts must declare UTF-8, hold
    UTF-8, and agree with the document's meta."""
    lp = start_link(upstream)
    enc = email.header.Header(hint, "utf-8").encode()       # as a client sends it
    sent = send_link_message(lp, keys, to=[DAVE], extra_headers=[f"X-Sealpost-Hint: {enc}"])
    n = sent.notes[DAVE]
    msg = email.message_from_bytes(n.raw, policy=email.policy.default)
    text_part, html_part = list(msg.iter_parts())
    for part in (text_part, html_part):
        assert part.get_content_charset() == "utf-8", part["Content-Type"]
        # The bytes on the wire are UTF-8 (decoding them as UTF-8 gives the hint).
        raw = part.get_payload(decode=True)
        assert raw.decode("utf-8")
    text = text_part.get_payload(decode=True).decode("utf-8")
    html = html_part.get_payload(decode=True).decode("utf-8")
    assert f"Password hint: {hint}" in text
    # HTML-escaped once, correctly, and the document's own charset agrees.
    assert "ünïcödé &lt;b&gt;&amp;" in html and "<b>&" not in html, html
    assert f"Password hint: {hint}" in html_lib.unescape(html)
    metas = re.findall(r'<meta\s+charset="([^"]+)"', html, re.I)
    assert metas == ["utf-8"], metas
    # And the parsed notification (what a mail client shows) has it right.
    assert hint in n.text
    assert html_lib.unescape(n.html).count(hint) == 1


def test_round_trip_sender_password_and_hint(start_link, upstream, keys):
    lp = start_link(upstream)
    pw = "tell Dave by phone: " + os.urandom(3).hex() + " & 'quotes' + more"
    hint = "the usual one, with the date"
    sent = send_link_message(lp, keys, to=[DAVE], cc=[ERIN],
                             extra_headers=[f"X-Sealpost-Password: {pw}",
                                            f"X-Sealpost-Hint: {hint}"])
    web = lp.web
    for addr in (DAVE, ERIN):
        n = sent.notes[addr]
        assert hint in n.text and hint in n.html, f"{addr}: hint not in the notification"
        assert pw not in n.raw.decode("utf-8", "replace")
        assert sent.receipt.entries[addr].hint == hint
        assert sent.receipt.entries[addr].password == pw + " (yours)"
    # The sender's password opens each recipient's link; a near miss does not.
    n = sent.notes[DAVE]
    r = web.post(n.url, {"password": pw[:-1]})
    assert r.status == 403 and sent.subject not in r.text
    assert_opens(web, n.url, pw, sent)
    assert_opens(web, sent.notes[ERIN].url, pw, sent)
    # Stored without the X-Sealpost-* headers (the password among them).
    wrapped, ct = store_record(lp.store, n.link_id)
    stored = open_record(wrapped, ct, n.token, pw)
    assert b"x-sealpost" not in stored.lower()
    assert stored == without_headers(sent.msg, PRIVATE)


@pytest.mark.parametrize("encoding", ["rfc2047", "8bit"])
def test_sender_password_non_ascii(start_link, upstream, keys, encoding):
    """A password with non-ASCII letters, as mail clients put it in a header:
    RFC 2047 encoded words (what most clients write for any non-ASCII header)
    or raw UTF-8.  The recipient types the letters, not the encoding."""
    lp = start_link(upstream)
    pw = "Grüße an Jörg " + os.urandom(2).hex()
    value = ("=?utf-8?b?" + base64.b64encode(pw.encode()).decode() + "?="
             if encoding == "rfc2047" else pw)
    sent = send_link_message(lp, keys, to=[DAVE], extra_headers=[f"X-Sealpost-Password: {value}"])
    entry = sent.receipt.entries[DAVE]
    assert entry.password == pw + " (yours)", f"the report shows the password as {entry.password!r}"
    assert_opens(lp.web, sent.notes[DAVE].url, pw, sent)


# =====================================================================================
# 3. Store and queue: no plaintext, no password, no link secret
# =====================================================================================

def test_store_and_queue_hold_no_plaintext_password_or_link_secret(start_link, upstream, keys):
    lp = start_link(upstream)
    upstream.stop()                      # everything is queued
    sent_by_hdr_pw = "hunter2-" + os.urandom(6).hex()
    subject = unique("Board-minutes")
    body = "The merger closes on " + unique("secret-date")
    att_name = unique("term-sheet") + ".xlsx"
    att = os.urandom(30_000)
    results = []
    for headers in ([], [f"X-Sealpost-Password: {sent_by_hdr_pw}"]):
        msg = link_message(subject, body, frm=f"Alice <{ALICE}>", to=[DAVE, BOB], bcc=[ERIN],
                           attachment=(att_name, att), extra_headers=headers)
        replies = lp.send(ALICE, [DAVE, BOB, ERIN], msg)
        assert_reply(replies[-1], 250, what="queued")
        results.append(msg)
    assert upstream.messages == []
    # Passwords and links, from the outbox (the report is queued, encrypted).
    page = lp.outbox().text
    urls = sorted(set(re.findall(re.escape(lp.base_url) + r"[A-Za-z0-9_-]{43}", page)))
    pws = sorted(set(re.findall(r"password: <code>([^<]+)</code>", page)))
    assert len(urls) == 4, urls
    assert sent_by_hdr_pw in pws and len([p for p in pws if PASSWORD_RE.match(p)]) == 2, pws
    tokens = [u.rsplit("/", 1)[1] for u in urls]
    secrets = [token_id_secret(t)[1] for t in tokens]

    plain = [subject.encode(), body.encode(), b"merger closes", att_name.encode(),
             att_name.split(".")[0].encode(), *b64_fragments(att, 5), att[:32], att[-32:]]
    forbidden = [(p, "plaintext") for p in plain] + [(p.encode(), "password") for p in pws] + [
        (b"x-sealpost", "X-Sealpost header")]

    def scan(path: Path, data: bytes, allowed_tokens: Sequence[str] = ()) -> None:
        low = data.lower()
        for needle, what in forbidden:
            assert needle.lower() not in low, f"{what} {needle[:40]!r} in {path}"
        for t, s in zip(tokens, secrets):
            if t in allowed_tokens:
                continue
            assert t.encode() not in data, f"link token in {path}"
            assert s not in data and s.hex().encode() not in low, f"link secret in {path}"
            assert base64.b64encode(s).rstrip(b"=") not in data, f"link secret in {path}"

    # The store: every file (database, -wal, -shm), nothing at all.
    store_files = files_under(lp.store.parent)
    assert lp.store in store_files
    assert store_counts(lp.store) == (4, 2)
    assert lp.store.stat().st_mode & 0o777 == 0o600
    assert lp.store.parent.stat().st_mode & 0o777 == 0o700
    for f in store_files:
        scan(f, f.read_bytes())
    # The queue: no plaintext or password anywhere.  A link token may be in one
    # place only: the queued notification to its own recipient (it is what the
    # provider will carry), never in an envelope file or anybody else's copy.
    qfiles = files_under(lp.queue)
    envs = {f.name: f.read_text() for f in qfiles if f.parent.name == "env"}
    msgs = {f.name: f for f in qfiles if f.parent.name == "msg"}
    assert len(envs) == len(msgs) == 2 * 4, sorted(envs)   # pgp, 2 notifications, receipt; x2
    seen_tokens = []
    for f in qfiles:
        data = f.read_bytes()
        allowed: list[str] = []
        if f.parent.name == "msg":
            env = envs[f.name]
            rcpts = re.findall(r"^rcpt <([^>]+)>$", env, re.M)
            if "form link" in env:
                assert len(rcpts) == 1 and rcpts[0] in (DAVE, ERIN), env
                allowed = [t for t in tokens if t.encode() in data]
                assert len(allowed) == 1, f"{f}: {len(allowed)} links in one notification"
                seen_tokens += allowed
        scan(f, data, allowed)
    assert sorted(seen_tokens) == sorted(tokens)
    # ... and the log never has them either.
    log = lp.sp.log().encode()
    scan(lp.sp.stderr_path, log)


# =====================================================================================
# 4. Per-message headers: max views, expiry, bad values
# =====================================================================================

def test_max_views_header_burns_after_reading(start_link, upstream, keys):
    lp = start_link(upstream)
    sent = send_link_message(lp, keys, to=[DAVE], extra_headers=["X-Sealpost-Max-Views: 1"])
    n = sent.notes[DAVE]
    pw = sent.receipt.entries[DAVE].password
    assert store_rows(lp.store)[n.link_id]["max_views"] == 1
    assert "only once" in n.text
    assert lp.web.get(n.url).status == 200            # the form is not a view
    page = assert_opens(lp.web, n.url, pw, sent)
    assert "last allowed view" in page
    assert_gone(lp.web, n.url, pw, "after the one allowed view")
    assert store_counts(lp.store) == (0, 0)


def test_expiry_header_and_gone_after_expiry(start_link, upstream, keys):
    lp = start_link(upstream)
    sent = send_link_message(lp, keys, to=[DAVE], cc=[ERIN],
                             extra_headers=["X-Sealpost-Expiry: 1m"])
    rows = store_rows(lp.store)
    ids = [sent.notes[a].link_id for a in (DAVE, ERIN)]
    for lid in ids:
        assert rows[lid]["expires"] - rows[lid]["created"] == 60, rows[lid]
    assert sent.receipt.entries[DAVE].expires is not None
    web = lp.web
    assert web.get(sent.notes[DAVE].url).status == 200
    # The minute passes: the viewer compares the stored expiry with its clock,
    # so moving the stored expiry into the past is that minute, without waiting.
    store_set_expiry(lp.store, ids, int(time.time()) - 1)
    assert_gone(web, sent.notes[DAVE].url, sent.receipt.entries[DAVE].password, "expired")
    assert_gone(web, sent.notes[ERIN].url, sent.receipt.entries[ERIN].password, "expired")
    deadline = time.monotonic() + WAIT
    while store_counts(lp.store) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store_counts(lp.store) == (0, 0), "expired data is not deleted"


BAD_HEADERS = [
    "X-Sealpost-Expiry: soon",
    "X-Sealpost-Expiry: 30s",           # under 1m
    "X-Sealpost-Expiry: 400d",          # over 366d
    "X-Sealpost-Expiry: -3d",
    "X-Sealpost-Max-Views: many",
    "X-Sealpost-Max-Views: -1",
    "X-Sealpost-Password:",             # empty
    "X-Sealpost-Password: " + "x" * 1100,
]


def test_bad_per_message_headers_refused_and_nothing_sent(start_link, upstream, keys):
    lp = start_link(upstream)
    with lp.sp.client() as c:
        c.ehlo()
        for h in BAD_HEADERS:
            msg = link_message(unique("s"), "body", frm=f"Alice <{ALICE}>", to=[DAVE, BOB],
                               extra_headers=[h] if len(h) < 900 else
                               [h[:20], " " + h[20:500], " " + h[500:]])
            replies = c.transaction(ALICE, [DAVE, BOB], msg)
            assert_reply(replies[-1], 554, "5.6.0", what=h[:40])
            name = h.split(":")[0]
            assert name in replies[-1].text, f"{h[:40]}: the reply does not name {name}: {replies[-1]}"
            c.cmd("RSET")
        # A good message on the same session: it is the only thing that arrives.
        good = link_message(unique("good"), "body", frm=f"Alice <{ALICE}>", to=[DAVE, BOB],
                            extra_headers=["X-Sealpost-Expiry: 3d"])
        replies = c.transaction(ALICE, [DAVE, BOB], good)
        assert_reply(replies[-1], 250, "2.0.0")
    got = upstream.wait_for(3)        # bob's copy, dave's notification, alice's report
    assert len(got) == 3, upstream.events_summary()
    assert store_counts(lp.store) == (1, 1)
    assert all(f.parent.name == "tmp" or f.name == ".lock" for f in files_under(lp.queue))


@pytest.mark.upstream(script=dict(data_replies=["554 5.7.1 refused by policy"] * 2))
def test_links_deleted_when_upstream_refuses_the_message(start_link, upstream, keys):
    lp = start_link(upstream)
    msg = link_message(unique("refused"), "body", frm=f"Alice <{ALICE}>", to=[DAVE])
    replies = lp.send(ALICE, [DAVE], msg)
    assert replies[-1].code == 554, replies[-1]
    assert upstream.messages == []
    # The links were stored before the upstream was asked; now they are gone again.
    assert store_counts(lp.store) == (0, 0)
    assert DAVE not in lp.outbox().text


# =====================================================================================
# 5. The delivery report
# =====================================================================================

def test_receipt_encrypted_to_sender_lists_every_form(start_link, upstream, keys):
    lp = start_link(upstream)
    forms = {BOB: "pgp", CAROL: "sodium", DAVE: "link", ERIN: "link"}
    before = len(upstream.messages)
    sent = send_link_message(lp, keys, to=[BOB, CAROL, DAVE], bcc=[ERIN], n_copies=5)
    rcpt_map = by_rcpt(upstream.messages[before:])
    assert set(rcpt_map) == {BOB, CAROL, DAVE, ERIN, ALICE}, rcpt_map.keys()
    r = sent.receipt
    assert r is not None, "no delivery report for a sender with a key"
    # Encrypted to alice's key and nobody else's.
    assert r.rec.rcpt_tos == [ALICE]
    pk = packet_keyids(keys.nokeys.list_packets(Receipt.armored(r.rec)))
    assert pk == {k.upper() for k in keys.alice.enc_keyids}, pk
    assert keys.bob.home.decrypt(Receipt.armored(r.rec)).rc != 0
    # Nothing secret outside the encryption.
    raw = r.rec.content.decode("utf-8", "replace")
    for a in (DAVE, ERIN):
        e = r.entries[a]
        assert e.password not in raw and e.url not in raw
    assert "Subject: ...\r\n" in raw and sent.subject not in raw
    # Every recipient, with its form.
    assert set(r.entries) == set(forms), r.text
    for a, f in forms.items():
        assert r.entries[a].form == f, f"{a}: {r.entries[a].lines}"
    assert r.entries[BOB].key == keys.bob.fpr
    assert r.entries[CAROL].key == keys.carol.public
    # Each link recipient: a link and password of their own, the ones in their notification.
    d, e = r.entries[DAVE], r.entries[ERIN]
    assert d.url != e.url and d.password != e.password
    for a, entry in ((DAVE, d), (ERIN, e)):
        assert entry.url == sent.notes[a].url
        assert PASSWORD_RE.match(entry.password), entry.password
        assert entry.revoke_id == sent.notes[a].link_id
        assert entry.expires, entry.lines
    # Bcc: erin's copy is her own, and nobody else learns about her.
    assert sent.notes[ERIN].rec.rcpt_tos == [ERIN]
    for rec in upstream.messages[before:]:
        if ERIN not in rec.rcpt_tos and rec.rcpt_tos != [ALICE]:
            assert ERIN.encode() not in rec.content, f"copy for {rec.rcpt_tos} names the Bcc"
    # The other copies really are what the report says.
    assert is_pgp(rcpt_map[BOB][0])
    assert keys.carol.open(lp.sp.binary, rcpt_map[CAROL][0].content, lp.sp.workdir / "open")
    # Each password opens its own link only.
    web = lp.web
    r403 = web.post(e.url, {"password": d.password})
    assert r403.status == 403, "dave's password opens erin's link"
    assert_opens(web, e.url, e.password, sent)


def test_sender_without_key_no_receipt_outbox_has_passwords(start_link, upstream, keys):
    lp = start_link(upstream)
    sent = send_link_message(lp, keys, to=[DAVE], frm_addr=NOKEY, frm_name="No Key", n_copies=1)
    assert sent.receipt is None
    assert [c.rcpt_tos for c in sent.copies] == [[DAVE]]
    lp.sp.wait_log(r"no delivery report by mail")
    page = lp.outbox()
    assert page.status == 200
    n = sent.notes[DAVE]
    assert n.url in page.text and DAVE in page.text and NOKEY in page.text
    m = re.search(r"password: <code>([^<]+)</code>", page.text)
    assert m and PASSWORD_RE.match(m.group(1)), page.text
    assert_opens(lp.web, n.url, m.group(1), sent)
    # No mail was sent to the sender at all.
    assert all(NOKEY not in c.rcpt_tos for c in upstream.messages)


# =====================================================================================
# 6. The outbox
# =====================================================================================

def outbox_row(page: str, addr: str) -> str:
    m = re.search(r"<tr><td>" + re.escape(addr) + r"</td>(.*?)</tr>", page, re.S)
    assert m, f"no outbox row for {addr}"
    return m.group(1)


def test_outbox_lists_and_revokes(start_link, upstream, keys):
    lp = start_link(upstream)
    sent = send_link_message(lp, keys, to=[DAVE], cc=[ERIN, BOB])
    web = lp.web
    d, e = sent.receipt.entries[DAVE], sent.receipt.entries[ERIN]
    assert_opens(web, d.url, d.password, sent)        # one view for dave
    url = lp.outbox_url()                             # `sealpost outbox`
    token = url.rsplit("/", 1)[1]
    assert token not in lp.sp.log()
    r = Web.outbox(url)
    assert r.status == 200 and r.header("cache-control") == "no-store"
    page = r.text
    assert sent.subject in page and ALICE in page
    for entry, views in ((d, "1"), (e, "0")):
        row = outbox_row(page, entry.addr)
        assert entry.url in row and f"password: <code>{entry.password}</code>" in row, row
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        assert cells[0].startswith("link"), cells
        assert cells[2] == views, f"{entry.addr}: views {cells[2]!r}, expected {views}"
    assert keys.bob.fpr in outbox_row(page, BOB)          # the form and key for the others
    # Not on the viewer's port, and not from elsewhere (through a proxy header).
    assert web.get("/outbox", source="127.0.0.1").status == 404
    assert web.get(f"/outbox/{token}", source="127.0.0.1").status == 404
    assert Web.outbox(url, headers={"X-Forwarded-For": "203.0.113.9"}).status == 403
    # A real forwarder (socat, as ssh -R would be) on the viewer's port: nothing;
    # on the outbox's port: nothing without the token.
    with Forwarder(lp.viewer_port) as fw:
        fwd = Web("127.0.0.1", fw.port)
        assert fwd.get(d.url).status == 200
        for path in ("/outbox", "/outbox/", f"/outbox/{token}", "/outbox%00", "//outbox"):
            r = fwd.get(path, headers={"Host": f"127.0.0.1:{lp.viewer_port}"})
            assert r.status in (400, 404) and d.password not in r.text, path
    with Forwarder(lp.outbox_port) as fw:
        fwd = Web("127.0.0.1", fw.port)
        for path in ("/outbox", "/outbox/", "/outbox/" + "0" * 64, "/"):
            r = fwd.get(path, headers={"Host": f"127.0.0.1:{lp.outbox_port}"})
            assert r.status == 404 and d.password not in r.text, path
    # Revoke dave's link with the page's own button (the token in the form).
    form_token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    assert form_token == token
    obx = Web("127.0.0.1", lp.outbox_port)
    origin = {"Origin": f"http://127.0.0.1:{lp.outbox_port}"}
    assert obx.post("/outbox/revoke", {"link": d.revoke_id, "scope": "link"}, source="127.0.0.1",
                    headers=origin).status == 403          # no token: refused
    assert web.get(d.url).status == 200
    r = obx.post("/outbox/revoke", {"token": token, "link": d.revoke_id, "scope": "link"},
                 source="127.0.0.1", headers=origin)
    assert r.status == 303, (r.status, r.text[:300])
    assert r.header("location") == f"/outbox/{token}?done=revoked"
    assert_gone(web, d.url, d.password, "revoked from the outbox")
    assert web.get(e.url).status == 200                   # erin's link is separate
    assert "gone" in outbox_row(lp.outbox().text, DAVE)
    # The whole message.
    r = obx.post("/outbox/revoke", {"token": token, "link": e.revoke_id, "scope": "message"},
                 source="127.0.0.1", headers=origin)
    assert r.status == 303
    assert_gone(web, e.url, e.password, "message revoked from the outbox")
    assert store_counts(lp.store) == (0, 0)


# =====================================================================================
# 7. Fail closed
# =====================================================================================

@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_unusable_store_refuses_to_start(start_link, upstream, tmp_path, where):
    if where == "proc":
        store = Path(f"/proc/{os.getpid()}/nonexistent-sealpost/links.sqlite")
    else:
        blocker = tmp_path / "blocker"
        blocker.write_text("a regular file where the store's directory should be\n")
        store = blocker / "links.sqlite"          # ENOTDIR, even for root
    lp = start_link(upstream, link={"store": str(store)}, start=False)
    p = subprocess.run([str(lp.sp.binary), "run", "-c", str(lp.conf)], capture_output=True,
                       env=_env(lp), timeout=30, stdin=subprocess.DEVNULL)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode != 0, f"sealpost ran with an unusable store: {err[-2000:]}"
    # One line that says which thing failed (the link store) and where.
    last = [l for l in err.splitlines() if "error" in l.lower()]
    assert last, err[-2000:]
    assert str(store.parent) in last[-1], last[-1]
    assert "link store" in last[-1].lower() or "[link] store" in last[-1], (
        f"the error does not say it is the link store: {last[-1]}")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", lp.sp.port), timeout=1).close()
    assert upstream.messages == []


def _env(lp: LinkProxy) -> dict:
    from sealpost import base_env
    return base_env(lp.sp.workdir)


class StoreFrozen:
    """Make the store unwritable even for root while sealpost has it open:
    chattr +i (ext4 and friends) on the database, its WAL and the directory -
    never on -shm, which SQLite writes through mmap.  Where the file system has
    no immutable flag, hold SQLite's exclusive lock from another connection
    instead (sealpost then fails after its busy timeout)."""

    def __init__(self, store: Path):
        self.store = store
        self.paths = [p for p in (store, Path(str(store) + "-wal"), store.parent) if p.exists()]
        self.mode = None
        self.db = None

    def __enter__(self):
        chattr = shutil.which("chattr")
        if chattr and subprocess.run([chattr, "+i", *map(str, self.paths)],
                                     capture_output=True).returncode == 0:
            self.mode = "immutable"
            try:
                (self.store.parent / "probe").write_bytes(b"x")
            except PermissionError:
                pass
            else:
                self.__exit__()
                raise AssertionError("chattr +i did not stop a write")
        else:
            import sqlite3
            self.db = sqlite3.connect(str(self.store), isolation_level=None, timeout=10)
            self.db.execute("BEGIN EXCLUSIVE")
            self.mode = "locked"
        return self

    def __exit__(self, *exc):
        if self.mode == "immutable":
            subprocess.run([shutil.which("chattr"), "-i", *map(str, self.paths)], check=True)
        elif self.db is not None:
            self.db.execute("ROLLBACK")
            self.db.close()


def test_store_failing_at_runtime_fails_closed(start_link, upstream, keys):
    lp = start_link(upstream)
    assert lp.store.exists()
    msg = link_message(unique("frozen"), "never sent", frm=f"Alice <{ALICE}>", to=[BOB, DAVE])
    with StoreFrozen(lp.store):
        replies = lp.send(ALICE, [BOB, DAVE], msg)
    assert_reply(replies[-1], 451, "4.3.0", what="store unwritable")
    assert "link store failed" in replies[-1].text, replies[-1]
    # Nothing for anybody: not bob's OpenPGP copy, not the report; nothing queued.
    assert upstream.messages == [], upstream.events_summary()
    assert [f for f in files_under(lp.queue) if f.parent.name in ("env", "msg")] == []
    # The store works again: the same message now goes out, and only it.
    sent = lp.send_ok(ALICE, [BOB, DAVE], msg, 3)
    assert len(upstream.messages) == 3 and len(sent) == 3
    assert store_counts(lp.store) == (1, 1)


def make_token(path: Path) -> Path:
    path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def start_remote_viewer(binary: Path, tmp_path: Path, request, token: Path) -> tuple:
    """A second sealpost, `linkserver` only, accepting uploads with `token`."""
    vport = free_port()
    base = f"http://127.0.0.1:{vport}/s/"
    store = tmp_path / "remote" / "links.sqlite"
    ls = LinkServer(binary, tmp_path / "remote-viewer", {
        "link": {"store": str(store), "base_url": base, "upload_token_file": str(token)},
        "linkserver": {"listen": f"127.0.0.1:{vport}", "outbox": "no"},
        "log": {"level": "debug"},
    }, listen=("127.0.0.1", vport))
    request.node._sealposts.append(ls)        # stopped and sanitizer-checked at teardown
    ls.start()
    return vport, base, store


@pytest.mark.parametrize("failure", ["viewer-down", "wrong-token"])
def test_upload_failure_fails_closed(start_link, sealpost_bin, upstream, keys, tmp_path, request,
                                     failure):
    token = make_token(tmp_path / "upload.token")
    remote_store = None
    if failure == "viewer-down":
        vport = free_port()                       # nothing listens there
    else:
        other = make_token(tmp_path / "viewer.token")
        vport, _, remote_store = start_remote_viewer(sealpost_bin, tmp_path, request, other)
    lp = start_link(upstream, linkserver={"mode": "off"},
                    link={"base_url": f"http://127.0.0.1:{vport}/s/",
                          "upload_url": f"http://127.0.0.1:{vport}/api/v1/links",
                          "upload_token_file": str(token)})
    msg = link_message(unique("upload"), "never sent", frm=f"Alice <{ALICE}>", to=[BOB, DAVE])
    replies = lp.send(ALICE, [BOB, DAVE], msg)
    assert_reply(replies[-1], 451, "4.3.0", what=failure)
    assert "link upload failed" in replies[-1].text, replies[-1]
    # Nothing for anybody, not even bob's OpenPGP copy; nothing queued, nothing stored.
    assert upstream.messages == [], upstream.events_summary()
    assert [f for f in files_under(lp.queue) if f.parent.name in ("env", "msg")] == []
    if remote_store is not None:
        assert store_counts(remote_store) == (0, 0)
    log = lp.sp.log()
    assert token.read_text().strip() not in log, "the upload token is in the log"


def test_remote_viewer_end_to_end(start_link, sealpost_bin, upstream, keys, tmp_path, request):
    token = make_token(tmp_path / "upload.token")
    vport, base, remote_store = start_remote_viewer(sealpost_bin, tmp_path, request, token)
    lp = start_link(upstream, linkserver={"mode": "off"},
                    link={"base_url": base, "upload_url": f"http://127.0.0.1:{vport}/api/v1/links",
                          "upload_token_file": str(token)})
    sent = send_link_message(lp, keys, to=[DAVE, BOB])
    n = sent.notes[DAVE]
    assert n.url.startswith(base)
    assert n.link_id in store_rows(remote_store), "the link is not on the remote viewer"
    remote = Web("127.0.0.1", vport)
    assert remote.get(n.url).status == 200
    page = assert_opens(remote, n.url, sent.receipt.entries[DAVE].password, sent)
    [(cap, part)] = download_caps(page)
    assert remote.post(n.url, {"dl": cap, "part": part}).body == sent.att
    # The remote copy is the client's message minus Bcc / X-Sealpost-*.
    wrapped, ct = store_record(remote_store, n.link_id)
    assert open_record(wrapped, ct, n.token, sent.receipt.entries[DAVE].password) == \
        without_headers(sent.msg, PRIVATE)
    # `sealpost revoke` on the proxy's config deletes it on the remote viewer.
    r = run_cli(lp.sp.binary, ["revoke", "-c", str(lp.conf), n.link_id], lp.sp.workdir)
    assert r.rc == 0, str(r)
    assert_gone(remote, n.url, sent.receipt.entries[DAVE].password, "revoked remotely")


# =====================================================================================
# 8. sealpost revoke
# =====================================================================================

def test_revoke_cli(start_link, upstream, keys):
    lp = start_link(upstream)
    sent = send_link_message(lp, keys, to=[DAVE], cc=[ERIN])
    d, e = sent.receipt.entries[DAVE], sent.receipt.entries[ERIN]
    web = lp.web
    assert web.get(d.url).status == 200 and web.get(e.url).status == 200
    r = run_cli(lp.sp.binary, ["revoke", "-c", str(lp.conf), d.revoke_id], lp.sp.workdir)
    assert r.rc == 0, str(r)
    # The message behind the link is gone, with every link to it.
    assert_gone(web, d.url, d.password, "revoked")
    assert_gone(web, e.url, e.password, "revoked (same message)")
    assert store_counts(lp.store) == (0, 0)
    r = run_cli(lp.sp.binary, ["revoke", "-c", str(lp.conf), d.revoke_id], lp.sp.workdir)
    assert r.rc == 1, str(r)


# =====================================================================================
# 9. A real browser
# =====================================================================================


def test_browser_through_the_proxy(start_link, upstream, keys, browser):
    tracker = Tracker()
    try:
        lp = start_link(upstream)
        pixel = f"http://127.0.0.1:{tracker.port}/t.gif"
        html = (f'<html><body><p id="hello">Hello from the HTML part</p>'
                f'<img src="{pixel}" width="1" height="1" alt=""></body></html>')
        sent = send_link_message(lp, keys, to=[DAVE], html=html, att_size=48_000)
        n = sent.notes[DAVE]
        pw = sent.receipt.entries[DAVE].password
        browser.get(n.url)
        assert browser.title == "Encrypted message"
        browser.find_element(By.ID, "pw").send_keys(pw)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(
            EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), sent.subject))
        WebDriverWait(browser, 30).until(
            lambda b: b.execute_script("return document.readyState") == "complete")
        assert ALICE in browser.find_element(By.TAG_NAME, "body").text
        frame = browser.find_element(By.TAG_NAME, "iframe")
        assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
        browser.switch_to.frame(frame)
        assert browser.find_element(By.ID, "hello").text == "Hello from the HTML part"
        browser.switch_to.default_content()
        browser.find_element(By.TAG_NAME, "summary").click()
        assert "The launch code is" in browser.find_element(By.CSS_SELECTOR, "pre.body").text
        assert sent.att_name in browser.find_element(By.CSS_SELECTOR, "ul.att").text
        browser.find_element(By.CSS_SELECTOR, "ul.att button").click()
        got = wait_download(browser.downloads, len(sent.att))
        assert got.read_bytes() == sent.att
        assert got.name == sent.att_name
        # The page and its frame have loaded (readyState complete covers the
        # iframe's subresources) and the download is done: a tracking pixel that
        # was going to be fetched has been.  Watch a little longer, failing on
        # the first hit, then prove the tracker was reachable all along.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert tracker.hits == [], f"the tracking image was loaded: {tracker.hits}"
            time.sleep(0.05)
        with urllib.request.urlopen(pixel, timeout=5) as r:
            assert r.status == 200
        assert tracker.hits == ["/t.gif"], tracker.hits
    finally:
        tracker.stop()
