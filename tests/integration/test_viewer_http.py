"""The link viewer over HTTP: the real server (`sealpost linkserver` through
tests/helpers/viewer_harness), a real SQLite store, real Argon2id unlocks.

Covers SPEC "Viewer (linkserver)": the form on GET (no view counted), wrong
passwords (reveal nothing, count, tarpit, destruction), the message with its
attachment, security headers on every response, 410 after expiry / revoke /
max views, exactly one winner of concurrent burn-after-reading unlocks (threads
and two processes), the outbox on its own listener behind its token, the
upload API and its client, and a store that never holds plaintext, passwords
or link secrets.
"""
from __future__ import annotations

import base64
import itertools
import os
import re
import threading
import time

import pytest

from viewer import (Viewer, assert_security_headers, download_caps, non_loopback_ipv4,
                    rich_message, simple_message)

_src = itertools.count(10)


def src() -> str:
    """A fresh loopback source address: requests not about the tarpit are not slowed."""
    n = next(_src)
    return f"127.1.{n // 250}.{n % 250 + 1}"


@pytest.fixture
def viewer(tmp_path):
    v = Viewer(tmp_path / "viewer")
    yield v
    v.stop()


def test_get_shows_form_and_counts_no_view(viewer):
    [link] = viewer.mklink(simple_message(), ["pw one"])
    viewer.start()
    for _ in range(3):
        r = viewer.get(link.path)
        assert r.status == 200
        assert '<form method="post" action="%s"' % link.path in r.text
        assert 'type="password"' in r.text and 'name="password"' in r.text
        assert "<script" not in r.text
        assert "secret plan" not in r.text
    assert viewer.request("HEAD", link.path).status == 200
    row = viewer.link_row(link.id)
    assert row["views"] == 0 and row["failed"] == 0


def test_wrong_password_reveals_nothing_and_counts(viewer):
    [link] = viewer.mklink(simple_message(), ["right password"], max_failed=10)
    viewer.start()
    wrong = viewer.post(link.path, {"password": "wrong password"}, source=src())
    forged_path = link.with_secret_flipped()
    # The right password with a forged link secret: indistinguishable.
    forged = viewer.post(forged_path, {"password": "right password"}, source=src())
    assert wrong.status == forged.status == 403
    assert wrong.text == forged.text.replace(forged_path, link.path)
    for r in (wrong, forged):
        assert "does not open" in r.text
        for secret in ("secret plan", "Confidential", "alice@example.org"):
            assert secret not in r.text
    # Both ran the KDF: neither answer is a fast shortcut.
    assert forged.elapsed > 0.4 * wrong.elapsed
    assert viewer.link_row(link.id)["failed"] == 2
    assert viewer.link_row(link.id)["views"] == 0
    # An empty password is not an attempt.
    r = viewer.post(link.path, {"password": ""}, source=src())
    assert r.status == 200 and "enter the password" in r.text
    assert viewer.link_row(link.id)["failed"] == 2


def test_right_password_shows_message_and_attachment(viewer):
    attachment = os.urandom(150_000) + b"\x00\xff" * 10
    [link] = viewer.mklink(rich_message(attachment), ["correct horse battery"])
    viewer.start()
    r = viewer.post(link.path, {"password": "correct horse battery"}, source=src())
    assert r.status == 200, r.text[:500]
    page = r.text
    assert "Quarterly résumé" in page                      # RFC 2047 subject
    assert "Jörg Müller" in page and "joerg@example.org" in page   # ISO-8859-1 From
    assert "bob@example.net" in page
    assert "Éloïse" in page                                # base64 encoded word in Cc
    assert "14 Nov 2023" in page
    assert "Grüße aus Köln &lt;b&gt;not bold&lt;/b&gt;" in page   # QP, Latin-1, escaped
    # The HTML part only inside a sandboxed iframe, as escaped srcdoc.
    m = re.search(r'<iframe sandbox="" [^>]*srcdoc="([^"]*)"', page)
    assert m, "no sandboxed iframe"
    assert "Hello from the HTML part" in m.group(1)
    assert "<img" not in page.replace(m.group(1), "")
    assert "img-src data:" in r.header("content-security-policy")
    assert "script-src" not in r.header("content-security-policy")
    assert "résumé final.bin" in page
    [(cap, part)] = download_caps(page)
    d = viewer.post(link.path, {"dl": cap, "part": part}, source=src())
    assert d.status == 200
    assert d.body == attachment
    assert d.header("content-type") == "application/octet-stream"
    cd = d.header("content-disposition")
    assert cd.startswith("attachment;") and "filename*=UTF-8''r%C3%A9sum%C3%A9%20final.bin" in cd
    assert_security_headers(d, "download")
    # The capability is bound to its link and cannot be guessed.
    [other] = viewer.mklink(simple_message(), ["x"])
    assert viewer.post(other.path, {"dl": cap, "part": part}, source=src()).status == 410
    assert viewer.post(link.path, {"dl": "0" * 64, "part": part}, source=src()).status == 410
    assert viewer.post(link.path, {"dl": cap, "part": "7"}, source=src()).status == 410
    assert viewer.link_row(link.id)["views"] == 1


def test_security_headers_on_every_response(viewer):
    [link] = viewer.mklink(rich_message(b"att"), ["pw"], max_failed=50)
    viewer.start()
    unknown = "/s/" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    ok = viewer.post(link.path, {"password": "pw"}, source=src())
    [(cap, part)] = download_caps(ok.text)
    cases = [
        ("index", viewer.get("/"), 200),
        ("robots", viewer.get("/robots.txt"), 200),
        ("form", viewer.get(link.path), 200),
        ("message", ok, 200),
        ("download", viewer.post(link.path, {"dl": cap, "part": part}, source=src()), 200),
        ("wrong password", viewer.post(link.path, {"password": "no"}, source=src()), 403),
        ("unknown link", viewer.get(unknown), 410),
        ("malformed link", viewer.get("/s/short"), 410),
        ("post unknown link", viewer.post(unknown, {"password": "pw"}, source=src()), 410),
        ("stale download", viewer.post(link.path, {"dl": "ab" * 32, "part": "0"}, source=src()), 410),
        ("not found", viewer.get("/nothing-here"), 404),
        ("method", viewer.request("PUT", link.path, body=b"x"), 405),
        ("outbox", viewer.outbox_get(), 200),
        ("outbox forbidden", viewer.outbox_get(headers={"X-Forwarded-For": "1.2.3.4"}), 403),
        ("revoke without token", viewer.outbox_post({"link": link.id}), 403),
        ("outbox without token", viewer.outbox_get("/outbox"), 404),
        ("no outbox on the viewer", viewer.get("/outbox"), 404),
        ("odd target", viewer.get("/outbox%00"), 400),
        ("api off", viewer.request("POST", "/api/v1/links", body=b"x"), 404),
        ("form too large", viewer.post(link.path, {"password": "x" * 9000}, source=src()), 413),
        ("not a form", viewer.request("POST", link.path, body=b"password=x",
                                      headers={"Content-Type": "text/plain"}), 415),
    ]
    for what, r, status in cases:
        assert r.status == status, f"{what}: {r.status} {r.text[:300]}"
        assert_security_headers(r, what)
    assert cases[11][1].header("allow") == "GET, HEAD"


def test_gone_after_expiry(viewer):
    [link] = viewer.mklink(simple_message(), ["pw"], ttl=2)
    viewer.start()
    assert viewer.get(link.path).status == 200
    time.sleep(2.2)
    r = viewer.get(link.path)
    assert r.status == 410 and "not available" in r.text
    assert viewer.rows() == (0, 0)          # deleted, not just hidden
    assert viewer.post(link.path, {"password": "pw"}, source=src()).status == 410


def test_gone_after_revoke(viewer):
    links = viewer.mklink(simple_message(), ["a", "b", "c"])
    viewer.start()
    # One link only, by URL.
    r = viewer.cli("revoke", "-c", str(viewer.conf), "--link-only", links[0].url)
    assert r.returncode == 0, r.stderr
    assert viewer.get(links[0].path).status == 410
    assert viewer.get(links[1].path).status == 200
    assert viewer.rows() == (2, 1)
    # The whole message, by id.
    r = viewer.cli("revoke", "-c", str(viewer.conf), links[1].id)
    assert r.returncode == 0, r.stderr
    assert viewer.get(links[1].path).status == 410
    assert viewer.get(links[2].path).status == 410
    assert viewer.rows() == (0, 0)
    r = viewer.cli("revoke", "-c", str(viewer.conf), links[1].id)
    assert r.returncode == 1 and "no link" in r.stderr
    assert viewer.cli("revoke", "-c", str(viewer.conf), "nonsense").returncode == 2


def test_gone_after_max_views(viewer):
    [link] = viewer.mklink(simple_message(), ["pw"], max_views=2)
    viewer.start()
    r1 = viewer.post(link.path, {"password": "pw"}, source=src())
    assert r1.status == 200 and "View 1 of 2" in r1.text
    r2 = viewer.post(link.path, {"password": "pw"}, source=src())
    assert r2.status == 200 and "last allowed view" in r2.text
    assert viewer.rows() == (0, 0)          # burned at the last view, in the same transaction
    assert viewer.post(link.path, {"password": "pw"}, source=src()).status == 410
    assert viewer.get(link.path).status == 410


def test_destroyed_after_max_failed_attempts(viewer):
    [link, sibling] = viewer.mklink(simple_message(), ["pw", "pw2"], max_failed=3)
    viewer.start()
    for i in range(2):
        assert viewer.post(link.path, {"password": f"bad{i}"}, source=src()).status == 403
    r = viewer.post(link.path, {"password": "bad-last"}, source=src())
    assert r.status == 410 and "destroyed" in r.text
    assert viewer.post(link.path, {"password": "pw"}, source=src()).status == 410
    assert viewer.link_row(link.id) is None
    assert viewer.rows() == (1, 1)          # the other recipient's link keeps the message
    for i in range(3):
        viewer.post(sibling.path, {"password": f"bad{i}"}, source=src())
    assert viewer.rows() == (0, 0)          # last link destroyed: message destroyed


def _race(requests):
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(i):
        barrier.wait()
        results[i] = requests[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_burn_after_reading_one_winner(viewer):
    viewer.start()
    for _ in range(3):
        [link] = viewer.mklink(simple_message(), ["pw"], max_views=1)
        reqs = [lambda s=src(): viewer.post(link.path, {"password": "pw"}, source=s)
                for _ in range(6)]
        results = _race(reqs)
        statuses = sorted(r.status for r in results)
        assert statuses == [200] + [410] * 5, statuses
        winner = [r for r in results if r.status == 200][0]
        assert "secret plan" in winner.text
        for r in results:
            if r.status == 410:
                assert "secret plan" not in r.text
        assert viewer.rows() == (0, 0)


def test_burn_after_reading_two_processes(viewer, tmp_path):
    """Two viewers (two processes, two SQLite connections) on one store."""
    other = Viewer(tmp_path / "viewer2")
    other.store = viewer.store
    other.write_config()
    viewer.start()
    other.start()
    try:
        for _ in range(3):
            [link] = viewer.mklink(simple_message(), ["pw"], max_views=1)
            results = _race([
                lambda s=src(): viewer.post(link.path, {"password": "pw"}, source=s),
                lambda s=src(): other.post(link.path, {"password": "pw"}, source=s),
            ])
            assert sorted(r.status for r in results) == [200, 410]
    finally:
        other.stop()


def test_wrong_passwords_are_slowed_per_client(viewer):
    [link] = viewer.mklink(simple_message(), ["pw"], max_failed=20)
    viewer.start()
    me = "127.0.0.77"
    assert viewer.post(link.path, {"password": "bad"}, source=me).status == 403
    r = viewer.post(link.path, {"password": "bad"}, source=me)      # held ~1 s
    assert r.status == 403 and r.elapsed >= 0.8
    r = viewer.post(link.path, {"password": "bad"}, source=me)      # held ~2 s
    assert r.status == 403 and r.elapsed >= 1.7
    r = viewer.post(link.path, {"password": "pw"}, source=me)       # 4 s away: refused now
    assert r.status == 429 and int(r.header("retry-after")) >= 3
    assert "Too many wrong passwords" in r.text
    assert viewer.link_row(link.id)["failed"] == 3    # a refused attempt is not counted
    # Someone else is not slowed by it.
    r = viewer.post(link.path, {"password": "pw"}, source="127.0.0.78")
    assert r.status == 200 and r.elapsed < 5


def test_outbox_own_listener_and_token(tmp_path):
    lan = non_loopback_ipv4()
    v = Viewer(tmp_path / "v")
    v.listen = f"0.0.0.0:{v.port}"
    v.write_config()
    [link] = v.mklink(simple_message(), ["tell-bob-by-phone"])
    v.outbox_entries = [f"alice@example.org|Plans|bob@example.net|link|{link.id}|{link.url}|"
                        "tell-bob-by-phone"]
    v.start()
    try:
        url = v.outbox_url()                      # what `sealpost outbox` prints
        token = url.rsplit("/", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{64}", token)
        assert token not in v.log()               # never in a log line
        state = tmp_path / "v" / "state" / "sealpost" / "outbox.token"
        assert state.read_text().strip() == token and (state.stat().st_mode & 0o777) == 0o600
        r = v.outbox_get()
        assert r.status == 200
        assert "bob@example.net" in r.text and "tell-bob-by-phone" in r.text and link.url in r.text
        assert r.header("cache-control") == "no-store"
        # The public viewer does not serve it, in any spelling.
        for path in ("/outbox", "/outbox/", f"/outbox/{token}", "/OUTBOX", "/outbox/revoke"):
            r = v.get(path)
            assert r.status == 404 and "tell-bob-by-phone" not in r.text, path
        # Without the token, or with a wrong one, there is nothing there.
        for path in ("/outbox", "/outbox/", "/outbox/" + "0" * 64, "/outbox/" + token[:-1],
                     "/outbox/" + token.upper(), "/", "/s/"):
            r = v.outbox_get(path)
            assert r.status == 404 and "tell-bob-by-phone" not in r.text, path
        # Through a reverse proxy, by a rebound DNS name: no, even with the token.
        for hdrs in ({"X-Forwarded-For": "203.0.113.5"}, {"Forwarded": "for=203.0.113.5"},
                     {"X-Real-IP": "203.0.113.5"}, {"Host": "attacker.example"},
                     {"Host": f"127.0.0.1.nip.io:{v.outbox_port}"}):
            r = v.outbox_get(headers=hdrs)
            assert r.status == 403, hdrs
            assert "tell-bob-by-phone" not in r.text
        # Another loopback address is still this machine.
        assert v.outbox_get(source="127.0.0.2", headers={"Host": f"localhost:{v.outbox_port}"}
                            ).status == 200
        if lan:
            # The outbox listens on loopback only, whatever the viewer listens on.
            with pytest.raises(OSError):
                v.outbox_get(host=lan, source=lan, timeout=5)
            assert v.get(link.path, host=lan, source=lan).status == 200
        # Revoke: the token in the form, and not from another site.
        page = v.outbox_get().text
        assert re.search(r'name="token" value="([0-9a-f]+)"', page).group(1) == token
        assert v.outbox_post({"token": "0" * 64, "link": link.id}).status == 403
        assert v.outbox_post({"link": link.id}).status == 403
        assert v.post("/outbox/revoke", {"token": token, "link": link.id}).status == 404
        bad_origin = v.outbox_post({"token": token, "link": link.id},
                                   headers={"Origin": "https://attacker.example"})
        assert bad_origin.status == 403
        cross = v.outbox_post({"token": token, "link": link.id},
                              headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status == 403
        assert v.get(link.path).status == 200
        r = v.outbox_post({"token": token, "link": link.id, "scope": "message"},
                          headers={"Origin": f"http://127.0.0.1:{v.outbox_port}",
                                   "Sec-Fetch-Site": "same-origin"})
        assert r.status == 303 and r.header("location") == f"/outbox/{token}?done=revoked"
        assert v.get(link.path).status == 410
        assert "gone" in v.outbox_get(r.header("location")).text
        assert token not in v.log()
    finally:
        v.stop()
    # The token stays: the same URL after a restart.
    v.start()
    try:
        assert v.outbox_url() == url
    finally:
        v.stop()


def test_outbox_off(tmp_path):
    v = Viewer(tmp_path / "v", outbox=False)
    v.start()
    try:
        assert v.get("/outbox").status == 404
        with pytest.raises(OSError):             # no outbox listener at all
            v.outbox_get("/outbox/" + "0" * 64, timeout=5)
        r = v.cli("outbox", "-c", str(v.conf))
        assert r.returncode == 1 and "the outbox is off" in r.stderr and r.stdout == ""
    finally:
        v.stop()


def test_upload_api_and_client(tmp_path):
    token = base64.urlsafe_b64encode(os.urandom(32)).decode()
    v = Viewer(tmp_path / "v", upload_token=token)
    v.start()
    try:
        api = f"http://127.0.0.1:{v.port}/api/v1/links"
        good = tmp_path / "good.token"
        good.write_text(token + "\n")
        bad = tmp_path / "bad.token"
        bad.write_text("x" * 43 + "\n")
        r = v.upload(api, good, simple_message(), ["pw1", "pw2"], max_views=1)
        assert r.returncode == 0, r.stderr
        links = [ln.split() for ln in r.stdout.splitlines()]
        assert len(links) == 2 and v.rows() == (2, 1)
        path = "/s/" + links[0][2].rsplit("/", 1)[1]
        assert v.post(path, {"password": "pw1"}, source=src()).status == 200
        # The client fails closed on a wrong token, and stores nothing.
        r = v.upload(api, bad, simple_message(), ["pw"])
        assert r.returncode != 0 and "401" in r.stderr
        assert v.rows() == (1, 1)
        # Plain http to a non-loopback host is refused by the client itself.
        r = v.upload("http://viewer.example/api/v1/links", good, simple_message(), ["pw"])
        assert r.returncode != 0 and "https" in r.stderr
        auth = {"Authorization": f"Bearer {token}"}
        assert v.request("POST", "/api/v1/links", body=b"garbage", headers=auth).status == 400
        assert v.request("POST", "/api/v1/links", body=b"x",
                         headers={"Authorization": "Bearer " + token[:-1] + "A"}).status == 401
        big = v.request("POST", "/api/v1/links", headers={**auth, "Content-Length": str(10**11)},
                        body=None)
        assert big.status == 413
        # Revoke through the API.
        lid = links[1][1]
        assert v.request("DELETE", f"/api/v1/links/{lid}").status == 401
        assert v.request("DELETE", f"/api/v1/links/{lid}", headers=auth).status == 200
        assert v.request("DELETE", f"/api/v1/links/{lid}", headers=auth).status == 404
        assert v.rows() == (0, 0)
        # ... and with `sealpost revoke` on a proxy configured for this viewer.
        r = v.upload(api, good, simple_message(), ["pw"])
        lid = r.stdout.split()[1]
        proxy_conf = tmp_path / "proxy.conf"
        proxy_conf.write_text(f"[link]\nbase_url = {v.base_url}\nupload_url = {api}\n"
                              f"upload_token_file = {good}\n")
        rr = v.cli("revoke", "-c", str(proxy_conf), lid)
        assert rr.returncode == 0, rr.stderr
        assert v.rows() == (0, 0)
    finally:
        v.stop()


def test_store_holds_no_plaintext_password_or_secret(viewer):
    body = "The secret plan is under the old oak tree"
    [a, b] = viewer.mklink(simple_message(body), ["hunter2-long-password", "other-password-xyz"])
    raw = b"".join(p.read_bytes() for p in viewer.store.parent.iterdir() if p.is_file())
    for needle in (body, "Confidential subject", "alice@example.org", "hunter2-long-password",
                   "other-password-xyz", a.token, b.token):
        assert needle.encode() not in raw, needle
    for link in (a, b):
        secret = base64.urlsafe_b64decode(link.token + "=")[16:]
        assert secret not in raw
    assert oct(viewer.store.stat().st_mode & 0o777) == "0o600"
    assert oct(viewer.store.parent.stat().st_mode & 0o777) == "0o700"


def test_sweeper_deletes_expired_without_a_request(viewer):
    viewer.mklink(simple_message(), ["pw"], ttl=1)
    [live] = viewer.mklink(simple_message(), ["pw"], ttl=3600)
    assert viewer.rows() == (2, 2)
    time.sleep(1.2)
    viewer.start()                         # the sweeper runs once at start, then every 60 s
    deadline = time.monotonic() + 10
    while viewer.rows() != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert viewer.rows() == (1, 1)
    assert viewer.link_row(live.id) is not None
    assert "swept 1 expired link(s) and 1 message(s)" in viewer.log()


def test_port_in_use_is_a_clear_error(viewer):
    import socket as _s
    with _s.socket() as s:
        s.setsockopt(_s.SOL_SOCKET, _s.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", viewer.port))
        s.listen(1)
        r = viewer.cli("serve", "--", "-c", str(viewer.conf))
    assert r.returncode == 1
    assert f"[linkserver] listen 127.0.0.1:{viewer.port}: cannot bind" in r.stderr
