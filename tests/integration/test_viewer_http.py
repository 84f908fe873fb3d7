"""The link viewer over HTTP: the real server (`sealpost linkserver` through
tests/helpers/viewer_harness), a real SQLite store, real Argon2id unlocks.

Covers docs/viewer.md, "What a request does": the form on GET (no view counted), wrong
passwords (reveal nothing, count, tarpit, destruction), the message with its
attachment, security headers on every response, 410 after expiry / revoke /
max views, exactly one winner of concurrent burn-after-reading unlocks (threads
and two processes), the outbox on its own listener behind its token, the
upload API and its client, and a store that never holds plaintext, passwords
or link secrets.
"""
from __future__ import annotations

import base64
import http.client
import itertools
import os
import re
import threading
import time

import pytest

from linkmode import store_set_expiry
from waits import WAIT
from viewer import (Viewer, assert_security_headers, download_caps, non_loopback_ipv4,
                    rich_message, simple_message)
from linkmode import store_set_expiry


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
    m = re.search(r'<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" [^>]*srcdoc="([^"]*)"',
                  page)
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
    [link] = viewer.mklink(simple_message(), ["pw"], ttl=3600)
    viewer.start()
    assert viewer.get(link.path).status == 200
    # The hour passes: the viewer compares the stored expiry with its clock, so
    # moving the expiry into the past is that hour, without depending on how
    # fast a loaded machine gets from mklink to the first request.
    store_set_expiry(viewer.store, [link.id], int(time.time()) - 1)
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


TOO_MANY = "Too many wrong passwords from your network"


def held(viewer, client: str) -> list[int]:
    """The holds the viewer logged for a client's attempts, in ms, in order."""
    return [int(m) for m in re.findall(r"attempt from %s held (\d+) ms" % re.escape(client),
                                       viewer.log())]


def test_right_password_after_wrong_ones_is_never_refused(viewer):
    """Issue 13 item 7, as observed: right -> 200, wrong -> 429, right -> 429.
    Every attempt that comes on its own is tried; a wrong one is 403 with the
    hold the next one will get; the right one opens and forgives."""
    [link] = viewer.mklink(rich_message(b"attached bytes"), ["pw"], max_failed=10)
    viewer.start()
    me = "127.0.0.77"
    r = viewer.post(link.path, {"password": "pw"}, source=me)
    assert r.status == 200 and "secret plan" in r.text
    # Wrong ones: 403 (never 429), and Retry-After says how long the next
    # attempt from this client will be held: 1, 2, 4 s.
    for want in (1, 2, 4):
        r = viewer.post(link.path, {"password": "bad"}, source=me)
        assert r.status == 403, (r.status, r.text[:300])
        assert "does not open" in r.text and TOO_MANY not in r.text
        assert int(r.header("retry-after")) == want
    # The right password after three wrong ones: held (the server cannot tell it
    # is right before trying), then opened. Not 429.
    r = viewer.post(link.path, {"password": "pw"}, source=me)
    assert r.status == 200, (r.status, r.text[:300])
    assert "secret plan" in r.text and TOO_MANY not in r.text
    # Held: the 2nd and 3rd wrong ones and the right one, each at most its delay.
    holds = held(viewer, me)
    assert len(holds) == 3 and all(0 < h <= d for h, d in zip(holds, (1000, 2000, 4000))), holds
    row = viewer.link_row(link.id)
    assert row["failed"] == 3 and row["views"] == 2
    # The success cleared this client's count: the next wrong one starts at 1 s again,
    # and the one after it is not held.
    r = viewer.post(link.path, {"password": "bad"}, source=me)
    assert r.status == 403 and int(r.header("retry-after")) == 1
    assert len(held(viewer, me)) == 3
    r = viewer.post(link.path, {"password": "pw"}, source=me)
    assert r.status == 200
    assert viewer.link_row(link.id)["failed"] == 4   # the per-link count is not forgiven


def test_fresh_link_is_never_told_too_many_wrong_passwords(viewer):
    """Failures elsewhere never refuse a lone attempt, and "too many wrong
    passwords from your network" is said only to a client that failed before
    and sends several attempts at once."""
    [x] = viewer.mklink(simple_message(), ["x-pw"], max_failed=20)
    [y, z] = viewer.mklink(simple_message("Another plan."), ["y-pw", "z-pw"], max_failed=20)
    viewer.start()
    guesser, other = "127.0.0.80", "127.0.0.81"
    for _ in range(3):
        r = viewer.post(x.path, {"password": "guess"}, source=guesser)
        assert r.status == 403 and TOO_MANY not in r.text
    # Someone else, on a link never tried: no word about anyone's failures.
    r = viewer.post(y.path, {"password": "typo"}, source=other)
    assert r.status == 403 and TOO_MANY not in r.text and int(r.header("retry-after")) == 1
    r = viewer.post(y.path, {"password": "y-pw"}, source=other)
    assert r.status == 200 and "Another plan" in r.text
    # The guesser itself, on a link it never tried, with the right password:
    # held for its failures (up to 4 s now), never refused.
    r = viewer.post(z.path, {"password": "z-pw"}, source=guesser)
    assert r.status == 200 and "Another plan" in r.text and TOO_MANY not in r.text
    assert 0 < held(viewer, guesser)[-1] <= 4000
    # Success on z forgives nothing on x: still 3 failures, 4 s apart.  Several
    # attempts at once from it queue 4 s apart; the one whose turn is further
    # away than the longest hold (8 s) is refused, with the reason.
    results = _race([lambda: viewer.post(x.path, {"password": "guess"}, source=guesser)
                     for _ in range(3)])
    statuses = sorted(r.status for r in results)
    assert 403 in statuses and 429 in statuses, statuses
    for r in results:
        if r.status == 429:
            assert TOO_MANY in r.text and int(r.header("retry-after")) > 8
    assert viewer.link_row(x.id)["failed"] == 3 + statuses.count(403)


def test_per_link_cap_holds_for_one_client_and_for_many_at_once(viewer):
    [link] = viewer.mklink(simple_message(), ["pw"], max_failed=3)
    [other] = viewer.mklink(simple_message(), ["pw"], max_failed=3)
    viewer.start()
    me = "127.0.0.90"
    # One client, one at a time: held, tried, counted; the third destroys.
    assert viewer.post(link.path, {"password": "bad1"}, source=me).status == 403
    assert viewer.post(link.path, {"password": "bad2"}, source=me).status == 403
    r = viewer.post(link.path, {"password": "bad3"}, source=me)
    assert r.status == 410 and "destroyed" in r.text
    assert viewer.post(link.path, {"password": "pw"}, source=me).status == 410
    assert viewer.link_row(link.id) is None
    # Eight wrong guesses at once from eight fresh addresses: attempts under way
    # count against what the link has left, so exactly three are tried.
    results = _race([lambda s=src(): viewer.post(other.path, {"password": "bad"}, source=s)
                     for _ in range(8)])
    tried = [r for r in results if r.status == 403 or (r.status == 410 and "destroyed" in r.text)]
    assert len(tried) == 3, sorted((r.status, "destroyed" in r.text) for r in results)
    for r in results:
        assert r.status in (403, 410, 429)
        if r.status == 429:
            assert "under way" in r.text and TOO_MANY not in r.text
    assert viewer.link_row(other.id) is None
    assert viewer.log().count(f"link {other.id}: wrong password") + \
        viewer.log().count(f"link {other.id} destroyed") == 3


def test_trusted_proxies(tmp_path):
    """[linkserver] trusted_proxies: X-Forwarded-For names the client only when
    the peer is a trusted proxy, read from the right."""
    v = Viewer(tmp_path / "v", trusted_proxies="127.0.0.2")
    [link] = v.mklink(simple_message(), ["pw"], max_failed=50)
    v.start()
    try:
        def wrong(source, xff=None):
            hdrs = {"X-Forwarded-For": xff} if xff else {}
            r = v.post(link.path, {"password": "bad"}, source=source, headers=hdrs)
            assert r.status == 403, (r.status, r.text[:200])
            return int(r.header("retry-after"))

        # Through the trusted proxy: one count per forwarded client.
        assert wrong("127.0.0.2", "203.0.113.50") == 1
        assert wrong("127.0.0.2", "203.0.113.50") == 2
        assert wrong("127.0.0.2", "203.0.113.51") == 1
        # What a client writes to the left of the proxy's entry is not believed.
        assert wrong("127.0.0.2", "198.51.100.1, 203.0.113.50") == 4
        # Two header lines (a proxy that adds its own after the client's): both count.
        c = http.client.HTTPConnection("127.0.0.1", v.port, timeout=60,
                                       source_address=("127.0.0.2", 0))
        try:
            c.putrequest("POST", link.path)
            c.putheader("Content-Type", "application/x-www-form-urlencoded")
            c.putheader("Content-Length", "12")
            c.putheader("X-Forwarded-For", "198.51.100.2")
            c.putheader("X-Forwarded-For", "203.0.113.51")
            c.endheaders(b"password=bad")
            resp = c.getresponse()
            resp.read()
            assert resp.status == 403 and resp.getheader("retry-after") == "2"
        finally:
            c.close()
        # From a peer that is not trusted (another loopback address, even): the
        # header is ignored, and changing it changes nothing.
        assert wrong("127.0.0.3", "203.0.113.60") == 1
        assert wrong("127.0.0.3", "203.0.113.61") == 2
        assert wrong("127.0.0.3") == 4
        assert held(v, "203.0.113.50") and held(v, "127.0.0.3")
        assert not held(v, "198.51.100.1") and not held(v, "203.0.113.60")
        assert not held(v, "127.0.0.2")
    finally:
        v.stop()


# ---- download capabilities end with their link (issue 13 item 8) ----

def sealpost_cli(viewer, *args: str):
    """The real `sealpost` binary when the harness knows it, else the same code
    through the viewer harness."""
    binary = os.environ.get("SEALPOST_BIN")
    if not binary:
        return viewer.cli(*args)
    import subprocess
    return subprocess.run([binary, *args], capture_output=True, text=True, env=viewer.env(),
                          timeout=60)


def unlock_for_download(viewer, link, attachment):
    r = viewer.post(link.path, {"password": link.password}, source=src())
    assert r.status == 200, r.text[:300]
    [(cap, part)] = download_caps(r.text)
    d = viewer.post(link.path, {"dl": cap, "part": part}, source=src())
    assert d.status == 200 and d.body == attachment
    return cap, part


def assert_download_gone(viewer, link, cap, part, attachment):
    d = viewer.post(link.path, {"dl": cap, "part": part}, source=src())
    assert d.status == 410, d.status
    assert attachment not in d.body and attachment[:64] not in d.body
    assert "download is no longer available" in d.text, d.text[:300]
    assert_security_headers(d, "ended download")


def test_download_ends_with_revoke_from_the_cli(viewer):
    attachment = os.urandom(40_000)
    links = viewer.mklink(rich_message(attachment), ["pw-a", "pw-b", "pw-c"])
    viewer.start()
    caps = [unlock_for_download(viewer, ln, attachment) for ln in links]
    # This link only: its download ends, the others' do not.
    r = sealpost_cli(viewer, "revoke", "-c", str(viewer.conf), "--link-only", links[0].id)
    assert r.returncode == 0, r.stderr
    assert_download_gone(viewer, links[0], *caps[0], attachment)
    assert viewer.post(links[1].path, {"dl": caps[1][0], "part": caps[1][1]},
                       source=src()).body == attachment
    # The whole message (what `sealpost revoke LINK-ID` does): every link's downloads end.
    r = sealpost_cli(viewer, "revoke", "-c", str(viewer.conf), links[1].id)
    assert r.returncode == 0, r.stderr
    for ln, (cap, part) in zip(links[1:], caps[1:]):
        assert_download_gone(viewer, ln, cap, part, attachment)
    assert viewer.rows() == (0, 0)
    assert f"link {links[2].id} is gone: its downloads end" in viewer.log()


def test_download_ends_with_expiry(viewer):
    attachment = os.urandom(30_000)
    [link] = viewer.mklink(rich_message(attachment), ["pw"], ttl=3600)
    viewer.start()
    cap, part = unlock_for_download(viewer, link, attachment)
    # The hour passes: the viewer compares the stored expiry with its clock, so
    # moving the stored expiry into the past is that hour, without waiting.
    store_set_expiry(viewer.store, [link.id], int(time.time()) - 1)
    assert_download_gone(viewer, link, cap, part, attachment)
    assert viewer.rows() == (0, 0)


def test_download_ends_with_destruction(viewer):
    attachment = os.urandom(30_000)
    [link] = viewer.mklink(rich_message(attachment), ["pw"], max_failed=2)
    viewer.start()
    cap, part = unlock_for_download(viewer, link, attachment)
    assert viewer.post(link.path, {"password": "bad"}, source=src()).status == 403
    r = viewer.post(link.path, {"password": "bad"}, source=src())
    assert r.status == 410 and "destroyed" in r.text
    assert_download_gone(viewer, link, cap, part, attachment)


def test_download_ends_when_views_are_used_up(viewer):
    """The last view ends the capabilities of the earlier ones; the reader of
    that last view may still save its attachments (the link is gone already)."""
    attachment = os.urandom(30_000)
    [link] = viewer.mklink(rich_message(attachment), ["pw"], max_views=2)
    viewer.start()
    first = unlock_for_download(viewer, link, attachment)
    last = unlock_for_download(viewer, link, attachment)
    assert viewer.rows() == (0, 0)
    assert_download_gone(viewer, link, *first, attachment)
    d = viewer.post(link.path, {"dl": last[0], "part": last[1]}, source=src())
    assert d.status == 200 and d.body == attachment
    # ... and nothing else: a revoke of the (gone) link says so.
    r = sealpost_cli(viewer, "revoke", "-c", str(viewer.conf), link.id)
    assert r.returncode == 1 and "no link" in r.stderr


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
    [old] = viewer.mklink(simple_message(), ["pw"], ttl=3600)
    [live] = viewer.mklink(simple_message(), ["pw"], ttl=3600)
    assert viewer.rows() == (2, 2)
    store_set_expiry(viewer.store, [old.id], int(time.time()) - 1)
    viewer.start()                         # the sweeper runs once at start, then every 60 s
    # The sweeper logs after its transaction has committed: wait for that line
    # (the rows change a moment before it is written), then look at the store.
    deadline = time.monotonic() + WAIT
    while "swept 1 expired link(s) and 1 message(s)" not in viewer.log():
        assert time.monotonic() < deadline, f"no sweep logged: {viewer.log()[-3000:]}"
        time.sleep(0.05)
    assert viewer.rows() == (1, 1)
    assert viewer.link_row(live.id) is not None


def test_port_in_use_is_a_clear_error(viewer):
    import socket as _s
    with _s.socket() as s:
        s.setsockopt(_s.SOL_SOCKET, _s.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", viewer.port))
        s.listen(1)
        r = viewer.cli("serve", "--", "-c", str(viewer.conf))
    assert r.returncode == 1
    assert f"[linkserver] listen 127.0.0.1:{viewer.port}: cannot bind" in r.stderr
