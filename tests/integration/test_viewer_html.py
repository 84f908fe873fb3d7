"""The HTML part of a message in a real browser (issue #13 items 5 and 6):
headless Chromium, the real viewer, hostile and ordinary HTML.

- Resource hints (<link rel=preconnect/dns-prefetch/prefetch/preload>), remote
  images, srcset, background attributes, CSS url(), meta refresh and <base>
  make no connection at all: a raw TCP listener counts accepted connections,
  not just HTTP requests (a preconnect sends none).
- A cid: image of the multipart/related renders (naturalWidth > 0).
- A link opens in a new window, without a Referer and without an opener, and
  the message stays in the original window.
- A format=flowed text part is shown reflowed.

Needs chromium, chromium-driver and python3-selenium (Debian); skipped without.
"""
from __future__ import annotations

import base64
import http.server
import socket
import struct
import threading
import zlib

import pytest

from browser import AVAILABLE, MISSING, By, EC, WebDriverWait
from viewer import Viewer

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=MISSING)

PASSWORD = "correct horse battery"



class ConnCounter:
    """A bare TCP listener: a connection is counted once the kernel has
    completed it, whether or not anything is ever sent on it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def accepted(self) -> int:
        """Connections waiting in the accept queue (drained), without waiting."""
        n = 0
        self.sock.setblocking(False)
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return n
            c.close()
            n += 1

    def close(self):
        self.sock.close()


class Site:
    """An ordinary HTTP server that records each request's path and headers."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.seen = threading.Condition()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with site.seen:
                    site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                    site.seen.notify_all()
                body = b"<!DOCTYPE html><title>landing</title><p id=landing>landed</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, path: str, timeout: float = 30) -> dict:
        with self.seen:
            ok = self.seen.wait_for(lambda: any(p == path for p, _ in self.requests), timeout)
            assert ok, f"{path} never requested: {self.requests}"
            return next(h for p, h in self.requests if p == path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def png(width: int, height: int) -> bytes:
    """A real RGB PNG of the given size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def html_message(html: str, related: list[tuple[str, str, bytes]] = ()) -> bytes:
    """A message whose body is `html`, in a multipart/related with the
    (content-id, content-type, bytes) parts when there are any."""
    head = ("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
            "Subject: HTML test\r\nDate: Tue, 14 Nov 2023 22:13:20 +0100\r\n"
            "MIME-Version: 1.0\r\n")
    html_part = ("Content-Type: text/html; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n" + b64(html.encode()))
    if not related:
        return (head + html_part).encode()
    body = head + 'Content-Type: multipart/related; boundary="rel"; type="text/html"\r\n\r\n'
    body += "--rel\r\n" + html_part
    for cid, ctype, data in related:
        body += (f"--rel\r\nContent-Type: {ctype}\r\nContent-ID: <{cid}>\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n" + b64(data))
    return (body + "--rel--\r\n").encode()


def open_message(browser, viewer: Viewer, eml: bytes) -> None:
    """Unlock the message and wait until the page and the frame have loaded."""
    [link] = viewer.mklink(eml, [PASSWORD])
    browser.get(link.url)
    browser.find_element(By.ID, "pw").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"),
                                                                      "HTML test"))
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return document.readyState") == "complete")


def in_frame(browser):
    frame = browser.find_element(By.TAG_NAME, "iframe")
    browser.switch_to.frame(frame)
    return frame


def test_hostile_html_opens_no_connection(tmp_path, browser):
    hole, site = ConnCounter(), Site()
    v = Viewer(tmp_path / "viewer")
    u = f"http://127.0.0.1:{hole.port}"
    html = (f'<html><head><base href="{u}/base/">'
            f'<meta http-equiv="refresh" content="0;url={u}/refresh">'
            f'<link rel="preconnect" href="{u}/">'
            f'<link rel="dns-prefetch" href="{u}/">'
            f'<link rel="prefetch" href="{u}/prefetch">'
            f'<link rel="preload" as="image" href="{u}/preload.png">'
            f'<link rel="stylesheet" href="{u}/s.css">'
            f'<style>@import url({u}/i.css); p {{ background: url({u}/bg.png) }}</style></head>'
            f'<body background="{u}/body.png">'
            f'<link rel="preconnect" href="{u}">'
            f'<p>before</p><img src="{u}/x.png" srcset="{u}/2x.png 2x" alt="remote">'
            f'<table background="{u}/t.png"><tr><td background="{u}/td.png">cell</td></tr></table>'
            f'<div style="background-image:url({u}/div.png)">styled</div>'
            f'<svg><image href="{u}/svg.png"/></svg>'
            f'<video poster="{u}/poster.png"></video>'
            f'<img src="relative.png">'
            f'<p id="done">end of the message</p></body></html>')
    try:
        v.start()
        open_message(browser, v, html_message(html))
        in_frame(browser)
        assert browser.find_element(By.ID, "done").text == "end of the message"
        WebDriverWait(browser, 30).until(
            lambda b: b.execute_script("return document.readyState") == "complete")
        browser.switch_to.default_content()
        # A barrier: a later navigation that must reach a server.  Connections
        # the message page started (preconnects are issued while parsing, long
        # before its load event) are in the listener's queue by then.
        browser.get(f"http://127.0.0.1:{site.port}/barrier")
        site.wait_for("/barrier")
        assert hole.accepted() == 0, "the message made a connection to the remote host"
    finally:
        hole.close()
        site.stop()
        v.stop()


def test_cid_image_renders_and_link_opens_in_new_window(tmp_path, browser):
    site = Site()
    v = Viewer(tmp_path / "viewer")
    html = (f'<p>Our logo: <img id="logo" src="cid:logo.1@example.org" alt="logo"></p>'
            f'<p>An svg: <img id="svg" src="cid:svg.1@example.org" alt="svg"></p>'
            f'<p><a id="go" href="http://127.0.0.1:{site.port}/landing">the site</a></p>')
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40"/></svg>'
    eml = html_message(html, [("logo.1@example.org", "image/png", png(7, 5)),
                              ("svg.1@example.org", "image/svg+xml", svg)])
    try:
        v.start()
        open_message(browser, v, eml)
        main = browser.current_window_handle
        frame = browser.find_element(By.TAG_NAME, "iframe")
        assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
        browser.switch_to.frame(frame)
        logo = browser.find_element(By.ID, "logo")
        WebDriverWait(browser, 30).until(lambda b: logo.get_property("complete"))
        assert logo.get_property("naturalWidth") == 7
        assert logo.get_property("naturalHeight") == 5
        assert logo.get_attribute("src").startswith("data:image/png;base64,")
        # The SVG part is not inlined: no src, so it shows its alt text.
        assert browser.find_element(By.ID, "svg").get_attribute("src") in (None, "")

        browser.find_element(By.ID, "go").click()
        WebDriverWait(browser, 30).until(lambda b: len(b.window_handles) == 2)
        headers = site.wait_for("/landing")
        assert "referer" not in headers, headers
        [new] = [h for h in browser.window_handles if h != main]
        browser.switch_to.window(new)
        WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.ID, "landing")))
        assert browser.execute_script("return window.opener") is None
        # The message is still shown where it was.
        browser.switch_to.window(main)
        assert "HTML test" in browser.find_element(By.TAG_NAME, "h1").text
        browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
        assert browser.find_element(By.ID, "go").text == "the site"
    finally:
        site.stop()
        v.stop()


def test_format_flowed_is_reflowed(tmp_path, browser):
    v = Viewer(tmp_path / "viewer")
    body = ("Dear Bob, this paragraph was wrapped by the \r\n"
            "sender's client at 30 characters, and it should \r\n"
            "read as one line.\r\n"
            "\r\n"
            "> Quoted text that was \r\n"
            "> wrapped as well.\r\n"
            "\r\n"
            " From the stuffed line.\r\n"
            "-- \r\n"
            "Alice\r\n")
    eml = ("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
           "Subject: HTML test flowed\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n" + body).encode()
    try:
        v.start()
        open_message(browser, v, eml)
        text = browser.find_element(By.CSS_SELECTOR, "pre.body").get_property("textContent")
        assert text == ("Dear Bob, this paragraph was wrapped by the sender's client at 30 "
                        "characters, and it should read as one line.\n"
                        "\n"
                        "> Quoted text that was wrapped as well.\n"
                        "\n"
                        "From the stuffed line.\n"
                        "-- \n"
                        "Alice\n"), repr(text)
    finally:
        v.stop()
