"""The outbox against forwarders, and the viewer against odd and slow requests.

The outbox (links and generated passwords of recent messages) used to be
guarded by "a loopback peer with a loopback Host and no forwarding headers".
Any TCP forwarder (ssh -R, socat, stunnel) satisfies that: the forwarder's
connections come from 127.0.0.1 and the far client picks the Host header.
Here a real socat forwards the viewer's port, the way docs/viewer.md once
suggested for a tunnel, and the outbox must not be reachable through it in
any spelling; a forwarder pointed at the outbox's own listener gets nothing
without the capability token that `sealpost outbox` prints.

Also: two Host headers (400), request targets with odd encodings (400/404),
a whole-request deadline for clients that trickle a request a byte at a time
(libmicrohttpd's timeout is only an inactivity timeout), and the per-client
connection limit.  Everything runs the real viewer (`sealpost linkserver`
through tests/helpers/viewer_harness) on loopback.
"""
from __future__ import annotations

import select
import socket

import pytest

from viewer import Forwarder, Viewer, raw_http, simple_message

PASSWORD = "tell-bob-by-phone"


@pytest.fixture
def outbox_viewer(tmp_path):
    v = Viewer(tmp_path / "v")
    [link] = v.mklink(simple_message(), [PASSWORD])
    v.outbox_entries = [f"alice@example.org|Plans|bob@example.net|link|{link.id}|{link.url}|"
                        f"{PASSWORD}"]
    v.link = link
    v.start()
    yield v
    v.stop()


# Every spelling of the outbox a forwarded client could try on the viewer's port.
VARIANTS = ["/outbox", "/outbox/", "//outbox", "/OUTBOX", "/Outbox", "/outbox%00",
            "/outbox%2f", "/%6Futbox", "/outbox/.", "/s/../outbox", "/./outbox",
            "/outbox?x=1", "/outbox/revoke", "/outbox%00.html", "/outbox;x"]


def test_forwarder_to_the_viewer_never_reaches_the_outbox(outbox_viewer):
    v = outbox_viewer
    token = v.outbox_url().rsplit("/", 1)[1]
    with Forwarder(v.port) as fw:
        # The forwarder works: a link page comes through it.
        assert v.get(v.link.path, port=fw.port).status == 200
        for path in VARIANTS + [f"/outbox/{token}"]:
            # The far client claims to be local: loopback Host, no forwarding headers.
            for host in (f"127.0.0.1:{v.port}", "localhost", f"127.0.0.1:{v.outbox_port}"):
                r = v.get(path, port=fw.port, headers={"Host": host})
                assert r.status in (400, 404), (path, host, r.status)
                assert PASSWORD not in r.text and v.link.url not in r.text, (path, host)
        r = v.post("/outbox/revoke", {"token": token, "link": v.link.id}, port=fw.port)
        assert r.status == 404
    assert v.get(v.link.path).status == 200        # nothing was revoked


def test_forwarder_to_the_outbox_needs_the_token(outbox_viewer):
    v = outbox_viewer
    url = v.outbox_url()                           # `sealpost outbox`
    token = url.rsplit("/", 1)[1]
    with Forwarder(v.outbox_port) as fw:
        host = {"Host": f"127.0.0.1:{v.outbox_port}"}
        for path in ["/", "/outbox", "/outbox/", "/outbox/" + "0" * 64,
                     "/outbox/" + token[:32], "/outbox/" + token + "0",
                     "/outbox/" + token.upper()] + VARIANTS:
            r = v.get(path, port=fw.port, headers=host)
            assert r.status in (400, 403, 404), (path, r.status)
            assert PASSWORD not in r.text and v.link.url not in r.text, path
        r = v.post("/outbox/revoke", {"token": "f" * 64, "link": v.link.id, "scope": "message"},
                   port=fw.port, headers=host)
        assert r.status == 403
        assert v.get(v.link.path).status == 200
        # With the token, it is the page (the token is the secret, not the path).
        r = v.get(url.split(str(v.outbox_port), 1)[1], port=fw.port, headers=host)
        assert r.status == 200 and PASSWORD in r.text and v.link.url in r.text


def test_two_host_headers_are_refused(outbox_viewer):
    v = outbox_viewer
    path = v.outbox_path()
    for port, target in ((v.port, v.link.path), (v.outbox_port, path)):
        one = raw_http(port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Connection: close\r\n\r\n".encode())
        assert one.startswith(b"HTTP/1.1 200 "), one[:100]
        for hosts in (("127.0.0.1", "attacker.example"), ("attacker.example", "127.0.0.1"),
                      ("127.0.0.1", "127.0.0.1")):
            req = (f"GET {target} HTTP/1.1\r\nHost: {hosts[0]}\r\nhost: {hosts[1]}\r\n"
                   "Connection: close\r\n\r\n").encode()
            out = raw_http(port, req)
            assert out.startswith(b"HTTP/1.1 400 "), (port, hosts, out[:100])
            assert PASSWORD.encode() not in out


def test_odd_request_targets(outbox_viewer):
    v = outbox_viewer
    token = v.outbox_url().rsplit("/", 1)[1]
    for path in (f"/outbox/{token}%00", f"/outbox/{token}/", f"//outbox/{token}",
                 f"/outbox//{token}", f"/outbox/./{token}", f"/x/../outbox/{token}",
                 f"/outbox/%{token[:2]}{token[2:]}", f"/outbox/{token}?done=%00",
                 f"/outbox/{token}?done=%zz", f"/outbox\\{token}"):
        r = v.outbox_get(path)
        assert r.status in (400, 404), (path, r.status)
        assert PASSWORD not in r.text, path
    # The link pages are unaffected: their tokens are plain base64url.
    assert v.get(v.link.path).status == 200
    assert v.get(v.link.path + "%00").status == 400
    assert v.outbox_get(f"/outbox/{token}?done=revoked").status == 200


# -- slow clients ---------------------------------------------------------------------------

# Raw sockets that trickle a request line, one byte per second; bounded.
TRICKLERS = 8
TRICKLE_ROUNDS = 90          # 90 s: three times the inactivity timeout, six the deadline


def test_trickling_requests_are_closed_while_others_are_served(outbox_viewer):
    v = outbox_viewer
    request = f"GET {v.link.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {'a' * 200}\r\n".encode()
    socks = []
    for i in range(TRICKLERS):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.9.{i % 3 + 1}", 0))     # from a few addresses, like the report
        s.connect(("127.0.0.1", v.port))
        s.setblocking(False)
        socks.append(s)
    closed: dict[int, bytes] = {}
    served = 0
    try:
        for rnd in range(TRICKLE_ROUNDS):
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.send(request[rnd % len(request):rnd % len(request) + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed[i] = b""
            # Pace the trickle; wake early when the server closes one.
            ready, _, _ = select.select([s for i, s in enumerate(socks) if i not in closed],
                                        [], [], 1.0)
            for s in ready:
                i = socks.index(s)
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                if not data:
                    closed[i] = data
                else:
                    closed[i] = data          # a response to half a request line: wrong
            # A normal request meanwhile is answered at once.
            if rnd % 5 == 0:
                r = v.get(v.link.path, source="127.0.8.1", timeout=20)
                assert r.status == 200
                served += 1
            if len(closed) == TRICKLERS:
                break
        assert len(closed) == TRICKLERS, \
            f"{TRICKLERS - len(closed)} trickling connection(s) still open after {TRICKLE_ROUNDS} s"
        # The server hung up: no response to a request that never arrived.
        assert all(data == b"" for data in closed.values()), closed
        assert served >= 1
        assert v.get(v.link.path).status == 200
    finally:
        for s in socks:
            s.close()


def test_per_client_connection_limit(outbox_viewer):
    v = outbox_viewer
    limit = 32                                  # WEB_PER_IP_CONNECTION_LIMIT
    held = []
    try:
        for _ in range(limit):
            s = socket.socket()
            s.bind(("127.0.7.1", 0))
            s.connect(("127.0.0.1", v.port))
            held.append(s)
        # Accepting is in order: this one is seen after all of the above.
        extra = socket.socket()
        extra.bind(("127.0.7.1", 0))
        extra.settimeout(20)
        extra.connect(("127.0.0.1", v.port))
        try:
            extra.sendall(f"GET {v.link.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = extra.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        finally:
            extra.close()
        assert data == b"", data[:100]          # refused: closed without an answer
        # Another address is not affected.
        assert v.get(v.link.path, source="127.0.7.2").status == 200
    finally:
        for s in held:
            s.close()


def test_outbox_port_in_use_is_a_clear_error(tmp_path):
    v = Viewer(tmp_path / "v")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", v.outbox_port))
        s.listen(1)
        r = v.cli("serve", "--", "-c", str(v.conf))
    assert r.returncode == 1
    assert f"[linkserver] outbox_listen 127.0.0.1:{v.outbox_port}: cannot bind" in r.stderr
    # The public port was given back: nothing listens there any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", v.port), timeout=5).close()
