"""Secure reply (issue #15 item 5, docs/formats.md "Secure reply"): a link
message from a sender with an OpenPGP key goes through the real proxy and
upstream; the recipient unlocks it over real HTTP (the browser's side of link
v2 in Python, test_link_v2.Client), gets a reply token with the message, and
posts a reply that gpg encrypted to the sender's key.  The proxy collects it
from the store and delivers it through the upstream to the sender as RFC 3156
PGP/MIME, threaded under the original; gpg opens it with the sender's secret
key.  Neither the store nor the log ever holds the reply's plaintext, and
everything that is not a reply under a valid token, or is over a limit, is
refused."""
from __future__ import annotations

import email
import email.policy
import base64
import json
import os
import re
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest

from browser import By, EC, WebDriverWait
from test_viewer_v2_page import console_problems
from gpgkeys import GpgHome, short_home
from linkmode import LinkServer, Web, wait_http
from sealpost import free_port
from test_link_v2 import ALICE, DAVE, Client, Proxy, send, start_proxy, v2_links  # noqa: F401
from upstream import Upstream

TOKEN_HEADER = "sealpost-reply-token"


@pytest.fixture
def start_reply_proxy(start_sealpost, tmp_path):
    def start(up: Upstream, extra: dict | None = None, **linkserver) -> Proxy:
        port = free_port()
        base = f"http://127.0.0.1:{port}/s/"
        store = tmp_path / "store" / "links.sqlite"
        ls = {"mode": "embedded", "listen": f"127.0.0.1:{port}", "outbox": "yes",
              "outbox_listen": f"127.0.0.1:{free_port()}"}
        ls.update(linkserver)
        cfg = {"policy": {"no_key": "link"},
               "link": {"store": str(store), "base_url": base, "expiry": "3d",
                        "max_failed_attempts": "3"},
               "linkserver": ls,
               "queue": {"dir": str(tmp_path / "queue")}}
        cfg.update(extra or {})
        sp = start_sealpost(up, extra=cfg, name="reply")
        wait_http("127.0.0.1", port, proc=sp.proc)
        return Proxy(sp, up, base, port, store)
    return start


@pytest.fixture
def alice_gpg(tmp_path):
    home = GpgHome(short_home(tmp_path / "alice-gpg"))
    home.gen_key(f"Alice <{ALICE}>")
    return home


def reply_entity(text: str, attachment: bytes, irt: str, subject: str) -> bytes:
    """What the page builds: protected headers inside, text and attachment."""
    m = EmailMessage()
    m["From"] = DAVE
    m["To"] = ALICE
    m["Subject"] = "Re: " + subject
    m["In-Reply-To"] = irt
    m["References"] = irt
    m.set_content(text)
    m.add_attachment(attachment, maintype="application", subtype="octet-stream",
                     filename="answer.bin")
    return m.as_bytes(policy=email.policy.SMTP)


def post_reply(p: Proxy, link, body: bytes, token: str | None, irt: str = "",
               ctype: str = "application/pgp-encrypted"):
    h = {"Content-Type": ctype, "Sealpost-Reply-From": DAVE, "Sealpost-In-Reply-To": irt}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    r = p.web.request("POST", f"/v2/{link.id_b64}/reply", body=body, headers=h)
    j = json.loads(r.body) if r.header("content-type") == "application/json" else None
    return r, j


def store_bytes(store: Path) -> bytes:
    return b"".join(f.read_bytes() for f in store.parent.iterdir() if f.is_file())


def replies_in_store(store: Path) -> int:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM replies").fetchone()[0]
    finally:
        db.close()


def unlock(p: Proxy, password: str):
    s = send(p, password)
    c = Client(p.web, s.link)
    r, _, plain = c.attempt(password)
    assert r.status == 200 and plain is not None and s.marker.encode() in plain
    token = r.header(TOKEN_HEADER)
    assert token and len(token) == 43, r.headers
    orig = email.message_from_bytes(s.msg, policy=email.policy.default)
    return s, token, orig


def test_reply_delivered_to_sender_as_pgp_mime(start_reply_proxy, alice_gpg, upstream):
    up = upstream
    p = start_reply_proxy(up, reply_min_interval="0")
    s, token, orig = unlock(p, "correct horse battery")
    irt = orig["Message-ID"]
    assert irt
    secret_text = f"reply-plaintext-{os.urandom(6).hex()}"
    attachment = os.urandom(2000) + b"attached-" + secret_text.encode()
    entity = reply_entity(f"Thanks! {secret_text}\n", attachment, irt, orig["Subject"])
    ct = alice_gpg.encrypt(entity, [ALICE])
    before = len(up.messages)
    r, j = post_reply(p, s.link, ct, token, irt=irt)
    assert (r.status, j) == (202, {"status": "stored"}), (r.status, r.body)
    [got] = up.wait_for(before + 1)[before:]
    # Routing is the store's: the sender's own address, nothing else.
    assert got.rcpt_tos == [ALICE] and got.mail_from == ALICE
    m = email.message_from_bytes(got.content, policy=email.policy.default)
    assert m.get_content_type() == "multipart/encrypted"
    assert m.get_param("protocol") == "application/pgp-encrypted"
    def addr(h):
        [a] = m[h].addresses
        return a.addr_spec
    assert (addr("To"), addr("From"), addr("Reply-To")) == (ALICE, DAVE, DAVE)
    assert m["Subject"] == "..."
    assert m["In-Reply-To"] == irt and m["References"] == irt
    assert m["Message-ID"] and m["Message-ID"] != irt and m["Date"]
    ver, data = list(m.iter_parts())
    assert ver.get_content_type() == "application/pgp-encrypted"
    assert ver.get_content().strip() in ("Version: 1", b"Version: 1")
    assert data.get_content_type() == "application/octet-stream"
    armored = data.get_payload(decode=True)
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert secret_text.encode() not in got.content
    plain = alice_gpg.run("--decrypt", input=armored).stdout
    inner = email.message_from_bytes(plain, policy=email.policy.default)
    assert inner["In-Reply-To"] == irt and inner["Subject"] == "Re: " + orig["Subject"]
    body = inner.get_body(("plain",)).get_content()
    assert secret_text in body
    [att] = list(inner.iter_attachments())
    assert att.get_filename() == "answer.bin" and att.get_content() == attachment
    # Delivered: gone from the store; never there in clear, nor in the log.
    p.sp.wait_log(r"reply \d+: removed from the store")
    assert replies_in_store(p.store) == 0
    assert secret_text.encode() not in store_bytes(p.store)
    assert secret_text not in p.log()
    assert token not in p.log()


def test_reply_refused_without_token_or_over_limits(start_reply_proxy, alice_gpg, upstream):
    up = upstream
    p = start_reply_proxy(up, reply_max_count="2", reply_min_interval="1h",
                          reply_max_size="4096")
    s, token, orig = unlock(p, "correct horse battery")
    ct = alice_gpg.encrypt(b"Subject: hi\r\n\r\nshort\r\n", [ALICE])
    # No token, a malformed one, a well-formed unknown one.
    r, _ = post_reply(p, s.link, ct, None)
    assert r.status == 401
    r, _ = post_reply(p, s.link, ct, "x" * 10)
    assert r.status == 401
    r, j = post_reply(p, s.link, ct, "A" * 43)
    assert r.status == 403 and j["error"] == "forbidden"
    # The token is checked before the body is read: an unknown token with an
    # oversized body is 403, not 413.
    r, j = post_reply(p, s.link, os.urandom(8192), "A" * 43)
    assert r.status == 403 and j["error"] == "forbidden"
    r, j = post_reply(p, s.link, os.urandom(8192), None)
    assert r.status == 401
    # Not an encrypted OpenPGP message: plain text, OpenPGP literal data.
    r, j = post_reply(p, s.link, b"Dear Alice, in clear", token)
    assert r.status == 422 and j["error"] == "not-encrypted"
    signed = alice_gpg.run("--store", input=b"clear text, a literal data packet").stdout
    r, j = post_reply(p, s.link, signed, token, ctype="application/octet-stream")
    assert r.status == 422 and j["error"] == "not-encrypted"
    r, _ = post_reply(p, s.link, ct, token, ctype="text/plain")
    assert r.status == 415
    # Too large.
    big = alice_gpg.encrypt(os.urandom(6000), [ALICE])
    r, _ = post_reply(p, s.link, big, token)
    assert r.status == 413
    assert replies_in_store(p.store) == 0
    # One is taken; the next too soon; the rate limit says when.
    r, _ = post_reply(p, s.link, ct, token)
    assert r.status == 202
    r, j = post_reply(p, s.link, ct, token)
    assert r.status == 429 and j["error"] == "wait" and int(r.header("retry-after")) == 3600


def test_reply_count_limit(start_reply_proxy, alice_gpg, upstream):
    up = upstream
    p = start_reply_proxy(up, reply_max_count="2", reply_min_interval="0")
    s, token, _ = unlock(p, "correct horse battery")
    ct = alice_gpg.encrypt(b"Subject: hi\r\n\r\nshort\r\n", [ALICE])
    before = len(up.messages)
    assert post_reply(p, s.link, ct, token)[0].status == 202
    assert post_reply(p, s.link, ct, token)[0].status == 202
    r, j = post_reply(p, s.link, ct, token)
    assert r.status == 429 and j["error"] == "too-many"
    got = up.wait_for(before + 2)[before:]
    assert sorted(g.rcpt_tos[0] for g in got) == [ALICE, ALICE]
    # The token answers only on its own link's path.
    s2 = send(p, "another one here")
    r, j = post_reply(p, s2.link, ct, token)
    assert r.status == 403



def wait_reply(up: Upstream, irt: str):
    """The first mail upstream that answers irt (others, like the sender's
    delivery report, may come before it)."""
    n = 1
    while True:
        for rec in up.wait_for(n):
            m = email.message_from_bytes(rec.content, policy=email.policy.default)
            if m["In-Reply-To"] == irt:
                return rec, m
        n = len(up.messages) + 1


def test_reply_from_the_page_in_chromium(start_reply_proxy, upstream, browser, tmp_path):
    """The recipient unlocks in Chromium, types a reply, attaches a file and
    clicks "Send reply"; the sender's gpg opens what the upstream received."""
    home = GpgHome(short_home(tmp_path / "alice-keyring"))
    home.gen_key(f"Alice <{ALICE}>", primary_usage="sign")
    try:
        p = start_reply_proxy(upstream, extra={"pgp": {"gnupg_home": str(home.path),
                                                       "trust": "keyring"}},
                              reply_min_interval="0")
        pw = "correct horse " + os.urandom(3).hex()
        s = send(p, pw)
        orig = email.message_from_bytes(s.msg, policy=email.policy.default)
        irt = orig["Message-ID"]

        browser.get(s.link.url)
        wait = WebDriverWait(browser, 60)
        wait.until(EC.visibility_of_element_located((By.ID, "pw")))
        browser.find_element(By.ID, "pw").send_keys(pw + "\n")
        wait.until(EC.visibility_of_element_located((By.ID, "reply-card")))
        assert browser.find_element(By.CSS_SELECTOR, "label[for=reply-text]").text == "Your reply"
        assert "in total" in browser.find_element(By.ID, "reply-limit").text
        secret_text = f"browser-reply-{os.urandom(6).hex()} Grüße"
        browser.find_element(By.ID, "reply-text").send_keys(secret_text)
        att = os.urandom(3000) + b"attached"
        f = tmp_path / "upload" / "answer.bin"
        f.parent.mkdir()
        f.write_bytes(att)
        browser.find_element(By.ID, "reply-files").send_keys(str(f))
        send_button = browser.find_element(By.ID, "reply-send")
        assert send_button.text == "Send reply"
        send_button.click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "reply-status"), "was sent"))
        assert not browser.find_element(By.ID, "reply-error").is_displayed()

        rec, m = wait_reply(upstream, irt)
        assert rec.rcpt_tos == [ALICE] and rec.mail_from == ALICE
        assert m.get_content_type() == "multipart/encrypted" and m["Subject"] == "..."
        [reply_to] = m["Reply-To"].addresses
        assert reply_to.addr_spec == DAVE and m["References"] == irt
        assert secret_text.encode() not in rec.content
        armored = list(m.iter_parts())[1].get_payload(decode=True)
        plain = home.run("--decrypt", input=armored).stdout
        inner = email.message_from_bytes(plain, policy=email.policy.default)
        assert inner["Subject"] == "Re: " + orig["Subject"]
        assert inner["In-Reply-To"] == irt and inner["References"] == irt
        [ifrom] = inner["From"].addresses
        [ito] = inner["To"].addresses
        assert (ifrom.addr_spec, ito.addr_spec) == (DAVE, ALICE)
        assert inner.get_body(("plain",)).get_content().rstrip() == secret_text
        [a] = list(inner.iter_attachments())
        assert a.get_filename() == "answer.bin" and a.get_content() == att
        p.sp.wait_log(r"reply \d+: removed from the store")
        assert replies_in_store(p.store) == 0
        assert secret_text.encode() not in store_bytes(p.store)
        assert secret_text not in p.log()
        assert console_problems(browser) == []
    finally:
        home.kill_agent()


def remote_viewer_unlocked(start_proxy, upstream, sealpost_bin, tmp_path, request):
    """A remote viewer ([link] upload_url) and a proxy sending to it; a link
    sent and unlocked over HTTP: (proxy, the viewer's store, its Web, the
    sent message, the reply token, the original Message-ID)."""
    token = tmp_path / "upload.token"
    token.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    token.chmod(0o600)
    vport = free_port()
    rstore = tmp_path / "remote" / "links.sqlite"
    ls = LinkServer(sealpost_bin, tmp_path / "remote-viewer", {
        "link": {"store": str(rstore), "base_url": f"http://127.0.0.1:{vport}/s/",
                 "upload_token_file": str(token)},
        "linkserver": {"listen": f"127.0.0.1:{vport}", "outbox": "no",
                       "reply_min_interval": "0"},
    }, listen=("127.0.0.1", vport))
    request.node._sealposts.append(ls)
    ls.start()
    p = start_proxy(upstream, remote=(vport, token))
    s = send(p, "remote pw")
    web = Web("127.0.0.1", vport)
    c = Client(web, s.link)
    r, _, plain = c.attempt("remote pw")
    assert r.status == 200
    reply_token = r.header(TOKEN_HEADER)
    assert reply_token
    irt = email.message_from_bytes(s.msg, policy=email.policy.default)["Message-ID"]
    return p, rstore, web, s, reply_token, irt


def test_remote_viewer_reply_collected_over_the_api(start_proxy, upstream, sealpost_bin,
                                                    tmp_path, request, alice_gpg):
    """[link] upload_url: the reply waits on the remote viewer; the proxy
    fetches it with the upload token (GET /api/v1/replies), delivers it and
    deletes it there (DELETE /api/v1/replies/<id>).  Without the token the
    API answers 401 and gives nothing."""
    p, rstore, web, s, reply_token, irt = remote_viewer_unlocked(
        start_proxy, upstream, sealpost_bin, tmp_path, request)
    secret_text = f"remote-reply-{os.urandom(6).hex()}"
    ct = alice_gpg.encrypt(f"Subject: Re\r\n\r\n{secret_text}\r\n".encode(), [ALICE])
    # The collection API wants the upload token.
    assert web.request("GET", "/api/v1/replies").status == 401
    assert web.request("GET", "/api/v1/replies",
                       headers={"Authorization": f"Bearer {reply_token}"}).status == 401
    h = {"Content-Type": "application/pgp-encrypted", "Authorization": f"Bearer {reply_token}",
         "Sealpost-Reply-From": DAVE, "Sealpost-In-Reply-To": irt}
    r = web.request("POST", f"/v2/{s.link.id_b64}/reply", body=ct, headers=h)
    assert r.status == 202, r.body
    rec, m = wait_reply(upstream, irt)
    assert rec.rcpt_tos == [ALICE] and m.get_content_type() == "multipart/encrypted"
    armored = list(m.iter_parts())[1].get_payload(decode=True)
    out = alice_gpg.run("--decrypt", input=armored).stdout
    assert secret_text.encode() in out
    p.sp.wait_log(r"reply \d+: removed from the viewer")
    assert replies_in_store(rstore) == 0
    assert secret_text.encode() not in store_bytes(rstore)


def test_remote_reply_is_not_queued_again_when_its_delete_fails(start_proxy, upstream,
                                                                 sealpost_bin, tmp_path,
                                                                 request, alice_gpg):
    """The remote viewer cannot delete a collected reply (its store refuses
    deletes, a trigger): the proxy queued it once, and on the next looks only
    asks again to delete it.  Once the viewer can, the reply is removed; the
    sender got exactly one mail for it."""
    p, rstore, web, s, reply_token, irt = remote_viewer_unlocked(
        start_proxy, upstream, sealpost_bin, tmp_path, request)
    db = sqlite3.connect(rstore, timeout=10)
    with db:
        db.execute("CREATE TRIGGER test_no_delete BEFORE DELETE ON replies "
                   "BEGIN SELECT RAISE(ABORT, 'deletes refused by the test'); END")
    ct = alice_gpg.encrypt(f"Subject: Re\r\n\r\nonce-{os.urandom(4).hex()}\r\n".encode(), [ALICE])
    h = {"Content-Type": "application/pgp-encrypted", "Authorization": f"Bearer {reply_token}",
         "Sealpost-Reply-From": DAVE, "Sealpost-In-Reply-To": irt}
    r = web.request("POST", f"/v2/{s.link.id_b64}/reply", body=ct, headers=h)
    assert r.status == 202, r.body
    wait_reply(upstream, irt)
    # Two failed deletes: the second look found the same reply on the viewer.
    rx = r"reply (\d+): cannot delete it on the viewer"
    # The second failure is a failed look: logged once, the next in 30 s.
    p.sp.wait_log(rx + r"(?s:.*)" + rx + r"[^\n]*next look in 30 s", timeout=60)
    with db:
        db.execute("DROP TRIGGER test_no_delete")
    db.close()
    p.sp.wait_log(r"reply \d+: removed from the viewer", timeout=60)
    assert replies_in_store(rstore) == 0
    assert len(re.findall(r"reply \d+ \(link [^)]*\): queued as", p.sp.log())) == 1
    answers = [rec for rec in upstream.messages
               if email.message_from_bytes(rec.content, policy=email.policy.default)["In-Reply-To"] == irt]
    assert len(answers) == 1


def test_embedded_reply_is_not_queued_again_when_its_delete_fails(start_reply_proxy, alice_gpg,
                                                                  upstream):
    """The same with the embedded viewer: the proxy's own store refuses the
    delete; the reply is queued once, removed once the store lets it."""
    p = start_reply_proxy(upstream, reply_min_interval="0")
    s, token, orig = unlock(p, "correct horse battery")
    irt = orig["Message-ID"]
    db = sqlite3.connect(p.store, timeout=10)
    with db:
        db.execute("CREATE TRIGGER test_no_delete BEFORE DELETE ON replies "
                   "BEGIN SELECT RAISE(ABORT, 'deletes refused by the test'); END")
    ct = alice_gpg.encrypt(f"Subject: Re\r\n\r\nonce-{os.urandom(4).hex()}\r\n".encode(), [ALICE])
    r, _ = post_reply(p, s.link, ct, token, irt=irt)
    assert r.status == 202, r.body
    wait_reply(upstream, irt)
    rx = r"reply \d+: [^\n]*deletes refused by the test"
    p.sp.wait_log(rx + r"(?s:.*)" + rx, timeout=60)
    with db:
        db.execute("DROP TRIGGER test_no_delete")
    db.close()
    p.sp.wait_log(r"reply \d+: removed from the store", timeout=60)
    assert replies_in_store(p.store) == 0
    assert len(re.findall(r"reply \d+ \(link [^)]*\): queued as", p.sp.log())) == 1
    answers = [rec for rec in upstream.messages
               if email.message_from_bytes(rec.content, policy=email.policy.default)["In-Reply-To"] == irt]
    assert len(answers) == 1
