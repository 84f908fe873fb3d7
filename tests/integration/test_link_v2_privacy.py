"""Link v2 keeps its promise on the wire (issue #15): what passes between the
recipient's browser and the viewer, what the viewer stores and what sealpost
logs hold none of the password, the link secret or the message.

A recording TCP proxy (written here: it forwards both ways and keeps every
byte) sits between headless Chromium and the real viewer; the link's
base_url names the proxy, so the page, its scripts and every unlock request
pass through it.  The message is sent with smtplib through the real proxy to
the real upstream; the recipient unlocks it in the browser, then the recording,
the store's files (SQLite database and WAL) and the log are searched.  As a
check that the search can fail, the recording must hold the page's request
and the unlock's response (and the browser must show the message).
"""
from __future__ import annotations

import base64
import os
import socket
import threading
from pathlib import Path


from browser import By
from sealpost import free_port
# The v2 proxy fixture and its sender's side; the rich message and its unlock.
from test_link_v2 import start_proxy, v2_links  # noqa: F401
from test_viewer_v2_browser import send_rich, unlock_rich

# Each forwarded read: the proxy's buffer, not a limit on what it records.
CHUNK = 65536


class RecordingProxy:
    """127.0.0.1:port -> 127.0.0.1:target, every byte both ways appended to
    `path` (and kept in memory for the search)."""

    def __init__(self, target: int, path: Path):
        self.target, self.path = target, path
        self.lock = threading.Lock()
        self.up = bytearray()      # browser -> viewer
        self.down = bytearray()    # viewer -> browser
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []
        self.closed = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [c, s]
            for a, b, buf in ((c, s, self.up), (s, c, self.down)):
                t = threading.Thread(target=self._pump, args=(a, b, buf), daemon=True)
                t.start()
                with self.lock:
                    self.threads.append(t)

    def _pump(self, a: socket.socket, b: socket.socket, buf: bytearray) -> None:
        while True:
            try:
                d = a.recv(CHUNK)
            except OSError:
                d = b""
            if not d:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                buf += d
                with open(self.path, "ab") as f:
                    f.write(d)
            try:
                b.sendall(d)
            except OSError:
                return

    def close(self) -> None:
        self.ls.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass

    def recorded(self) -> bytes:
        with self.lock:
            return bytes(self.up) + bytes(self.down)



def test_wire_store_and_log_hold_no_password_secret_or_message(start_proxy, upstream,  # noqa: F811
                                                               browser, tmp_path):
    viewer_port = free_port()
    rec = RecordingProxy(viewer_port, tmp_path / "wire.rec")
    try:
        p = start_proxy(upstream, base_port=rec.port, viewer_port=viewer_port)
        pw = "unguessable-" + base64.b32encode(os.urandom(10)).decode()
        r = send_rich(p, pw)
        assert f"127.0.0.1:{rec.port}/s/" in r.link.url
        unlock_rich(browser, r)
        # The browser did decrypt the message (through the proxy).
        assert r.subject == browser.find_element(By.ID, "subject").text
        browser.get("about:blank")
    finally:
        rec.close()
    wire = rec.recorded()

    # Sanity: the recording holds the page, its script, the unlock exchange.
    assert f"GET /s/{r.link.id_b64} HTTP/1.1".encode() in rec.up
    assert b"GET /static/app.js" in rec.up
    assert f"POST /v2/{r.link.id_b64}/unlock HTTP/1.1".encode() in rec.up
    assert b"HTTP/1.1 200" in rec.down and b"application/octet-stream" in rec.down
    assert b"SPLNKMSG" in rec.down, "the sealed message blob went by"

    secret = base64.urlsafe_b64decode(r.link.secret_b64 + "==")
    needles = {
        "password": pw.encode(),
        "link secret": secret,
        "link secret (b64url)": r.link.secret_b64.encode(),
        "text body": r.text_marker.encode(),
        "HTML body": r.html_marker.encode(),
        "subject": r.subject.encode(),
        "attachment": r.attachment[:64],
        "attachment (tail)": r.attachment[-32:],
        "attachment (base64)": base64.b64encode(r.attachment[:48]),
    }
    store_files = [f for f in p.store.parent.iterdir() if f.is_file()]
    assert p.store in store_files
    print("store files searched:", sorted(f.name for f in store_files), "wire bytes:", len(wire))
    places = {"the wire": wire, "the recording file": (tmp_path / "wire.rec").read_bytes(),
              "the log": p.log().encode()}
    places.update({str(f): f.read_bytes() for f in store_files})
    for where, data in places.items():
        assert data, where
        for what, n in needles.items():
            assert n not in data, f"{what} found in {where}"
