"""`sealpost check --viewer [URL]` (SPEC: "whether a viewer serves exactly this
build's page and scripts"; docs/viewer.md "Checking a viewer").

A real sealpost with its embedded viewer serves the page and scripts; check
fetches them over real HTTP and compares their SHA-256 with the hashes compiled
into the same binary.  The hashes check prints are compared with the SHA-256
of the bytes this test fetches itself, and a small real HTTP proxy in front of
the viewer changes one byte of app.js and hides another script, so each
verdict is shown to come from the bytes served, not from the table alone."""
from __future__ import annotations

import hashlib
import http.server
import re
import threading
import urllib.error
import urllib.request

import pytest

from linkmode import wait_http
from sealpost import free_port
from test_cli import config_text

DUMMY_ID = "AAAAAAAAAAAAAAAAAAAAAA"
LINE = re.compile(r"^(\S+)\s+(match|DIFFERS|missing):?\s*(.*)$")


def start_viewer(start_sealpost, upstream, tmp_path, tls=None):
    """A running sealpost whose embedded viewer serves v2 pages (over TLS
    with tls = a pki.Cert); returns (config path, links' base URL, port)."""
    port = free_port()
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}/s/"
    cfg = {
        "policy": {"no_key": "link"},
        "link": {"store": str(tmp_path / "store" / "links.sqlite"), "base_url": base, "expiry": "3d"},
        "linkserver": {"mode": "embedded", "listen": f"127.0.0.1:{port}"},
        "queue": {"dir": str(tmp_path / "queue")},
    }
    if tls:
        cfg["linkserver"].update(tls_cert=str(tls.cert_path), tls_key=str(tls.key_path))
    sp = start_sealpost(upstream, extra=cfg, name="viewer")
    wait_http("127.0.0.1", port, proc=sp.proc)
    return sp.config_path, base, port


@pytest.fixture
def viewer(start_sealpost, upstream, tmp_path, monkeypatch):
    monkeypatch.setenv("SEALPOST_TEST_LINK_V1", "0")
    return start_viewer(start_sealpost, upstream, tmp_path)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def verdicts(out: str) -> dict:
    """{asset name: (verdict, rest of the line)} from check's output."""
    res = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m and not line.startswith(("viewer ", "check ")):
            res[m.group(1)] = (m.group(2), m.group(3))
    return res


class AlteringProxy:
    """Forwards GETs to the viewer; flips one byte of /static/app.js and
    answers 404 for /static/linkv2.js."""

    def __init__(self, upstream_port: int):
        up = upstream_port

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/static/linkv2.js":
                    self.send_error(404)
                    return
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{up}{self.path}", timeout=30) as r:
                        status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    status, body, ctype = e.code, e.read(), "text/plain"
                if self.path == "/static/app.js":
                    body = body[:100] + bytes([body[100] ^ 0x01]) + body[101:]
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_viewer_serving_this_build_matches(cli, viewer):
    conf, base, port = viewer
    r = cli("check", "-c", str(conf), "--viewer", timeout=120)   # URL from [link] base_url
    assert r.rc == 0, str(r)
    v = verdicts(r.stdout)
    assert {"page.html", "app.js", "linkv2.js", "page.css"} <= set(v), r.stdout
    for name, (verdict, rest) in v.items():
        assert verdict == "match", r.stdout
        url = base + DUMMY_ID if name == "page.html" else f"http://127.0.0.1:{port}/static/{name}"
        assert rest == hashlib.sha256(get(url)).hexdigest(), (name, r.stdout)
    assert r.stdout.rstrip().splitlines()[-1].startswith("check ok"), r.stdout

    # The same, the URL given on the command line (no config needed).
    r2 = cli("check", "--viewer", base, timeout=120)
    assert r2.rc == 0 and verdicts(r2.stdout) == v, str(r2)


def test_one_altered_byte_and_a_missing_script_are_named(cli, viewer):
    conf, base, port = viewer
    real = {n: rest for n, (_, rest) in verdicts(cli("check", "--viewer", base, timeout=120).stdout).items()}
    proxy = AlteringProxy(port)
    try:
        r = cli("check", "--viewer", f"http://127.0.0.1:{proxy.port}/s/", timeout=120)
        altered = hashlib.sha256(get(f"http://127.0.0.1:{proxy.port}/static/app.js")).hexdigest()
    finally:
        proxy.close()
    assert r.rc == 1, str(r)
    v = verdicts(r.stdout)
    assert v["app.js"] == ("DIFFERS", f"expected {real['app.js']}, served {altered}"), r.stdout
    assert altered != real["app.js"]
    assert v["linkv2.js"][0] == "missing" and "HTTP 404" in v["linkv2.js"][1], r.stdout
    assert real["linkv2.js"] in v["linkv2.js"][1], r.stdout
    others = {n for n in v if n not in ("app.js", "linkv2.js")}
    assert others and all(v[n] == ("match", real[n]) for n in others), r.stdout
    assert "check FAILED: 2 of" in r.stdout, r.stdout


def test_tls_is_verified_against_the_system_store_or_ca_file(cli, start_sealpost, upstream, tmp_path,
                                                           pki, monkeypatch):
    monkeypatch.setenv("SEALPOST_TEST_LINK_V1", "0")
    conf, base, port = start_viewer(start_sealpost, upstream, tmp_path, tls=pki.server)
    assert base.startswith("https://")
    # A private CA the system store does not know: refused, nothing compared.
    r = cli("check", "-c", str(conf), "--viewer", timeout=120)
    assert r.rc == 1, str(r)
    assert "FAILED: cannot fetch https://" in r.stdout and "certificate" in r.stdout.lower(), r.stdout
    assert not verdicts(r.stdout), r.stdout
    # The wrong CA given: still refused.
    r = cli("check", "-c", str(conf), "--viewer", "--ca-file", str(pki.untrusted_ca_path), timeout=120)
    assert r.rc == 1 and not verdicts(r.stdout), str(r)
    # Its CA given: every file compared, and all match.
    r = cli("check", "-c", str(conf), "--viewer", "--ca-file", str(pki.ca_path), timeout=120)
    assert r.rc == 0, str(r)
    v = verdicts(r.stdout)
    assert "app.js" in v and all(x[0] == "match" for x in v.values()), r.stdout


def test_unreachable_viewer_fails_clearly(cli):
    port = free_port()   # nothing listens there
    r = cli("check", "--viewer", f"http://127.0.0.1:{port}/s/", timeout=120)
    assert r.rc == 1, str(r)
    assert f"FAILED: cannot fetch http://127.0.0.1:{port}/s/{DUMMY_ID}" in r.stdout, r.stdout
    assert "check FAILED: the viewer is unreachable" in r.stdout, r.stdout
    assert not verdicts(r.stdout), r.stdout


def test_usage_errors(cli, upstream, write_file, tmp_path):
    # No URL and no [link] base_url: a config error, exit 2.
    f = write_file("sealpost.conf", config_text(upstream, tmp_path))
    r = cli("check", "-c", str(f), "--viewer", timeout=60)
    assert r.rc == 2 and "no [link] base_url" in r.stderr, str(r)
    r = cli("check", "--viewer", "ftp://example.org/s/", timeout=60)
    assert r.rc == 2 and "not an http(s) URL" in r.stderr, str(r)
    r = cli("check", "--viewer", "http://a.example/s/", "http://b.example/s/", timeout=60)
    assert r.rc == 2, str(r)
    # --ca-file belongs to --viewer.
    r = cli("check", "-c", str(f), "--ca-file", str(f), timeout=60)
    assert r.rc == 2, str(r)
