"""Drive the link viewer for tests: make link records, run the viewer, talk HTTP.

    v = Viewer(tmp_path)                  # config in tmp_path, store in tmp_path/store
    links = v.mklink(eml_bytes, passwords=["pw1"], ttl=3600, max_views=0, max_failed=10)
    v.start()                             # `sealpost linkserver` via tests/helpers/viewer_harness
    r = v.get(links[0].path)              # Response(status, headers, body)
    r = v.post(links[0].path, {"password": "pw1"}, source="127.0.0.3")
    r = v.outbox_get()                    # the outbox, at the URL `sealpost outbox` prints
    v.stop()                              # SIGTERM; fails on sanitizer reports / bad exit

The harness binary is $SP_VIEWER_HARNESS (meson sets it), else build/tests/viewer_harness.
Each request can come from its own loopback source address (127.0.0.0/8), so the
per-client wrong-password backoff does not slow tests that are not about it.
"""
from __future__ import annotations

from waits import WAIT

import base64
import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from ports import free_port  # noqa: F401  (re-exported)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "vectors"))
import link_v2 as lv  # noqa: E402  (the independent v2 implementation)
import vectors  # noqa: E402  (the independent SPLNKMSG stream)
DEFAULT_HARNESS = REPO / "build" / "tests" / "viewer_harness"

SANITIZER_PATTERNS = [
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "ERROR: UndefinedBehaviorSanitizer",
]

# Every response must carry these (docs/viewer.md, "What a request does").
REQUIRED_HEADERS = {
    "cache-control": lambda v: "no-store" in v,
    "referrer-policy": lambda v: v == "no-referrer",
    "content-security-policy": lambda v: "default-src 'none'" in v and "frame-ancestors 'none'" in v,
    "x-content-type-options": lambda v: v == "nosniff",
    "x-frame-options": lambda v: v == "DENY",
}


def harness() -> Path:
    p = Path(os.environ.get("SP_VIEWER_HARNESS", str(DEFAULT_HARNESS)))
    if not p.exists():
        raise AssertionError(f"viewer harness not built: {p} (ninja -C build tests/viewer_harness)")
    return p




def non_loopback_ipv4() -> str | None:
    """An address of this machine that is not loopback, or None."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/", out):
        if not m.group(1).startswith("127."):
            return m.group(1)
    return None


@dataclass
class Link:
    id: str
    url: str
    password: str

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    @property
    def token(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def with_secret_flipped(self) -> str:
        """The same link id with a different link secret (a forged link)."""
        raw = bytearray(base64.urlsafe_b64decode(self.token + "="))
        raw[-1] ^= 0x01
        tok = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
        return self.path[: -len(self.token)] + tok


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def assert_security_headers(r: Response, what: str = "") -> None:
    for name, ok in REQUIRED_HEADERS.items():
        v = r.header(name)
        assert v is not None, f"{what}: {r.status} response lacks {name}"
        assert ok(v), f"{what}: {r.status} response has {name}: {v}"


@dataclass
class Viewer:
    workdir: Path
    host: str = "127.0.0.1"
    listen: str | None = None          # default host:port
    outbox: bool = True
    upload_token: str | None = None
    trusted_proxies: str | None = None  # [linkserver] trusted_proxies; None: the default
    outbox_entries: list = field(default_factory=list)
    port: int = 0
    outbox_port: int = 0                # [linkserver] outbox_listen, a port of its own
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store = self.workdir / "store" / "links.sqlite"
        self.port = free_port()
        self.outbox_port = free_port()
        self.base_url = f"http://{self.host}:{self.port}/s/"
        self.conf = self.workdir / "viewer.conf"
        self.stderr_path = self.workdir / "viewer.stderr"
        self.write_config()

    def env(self) -> dict:
        e = dict(os.environ)
        # The state directory (the outbox token) in the workdir, root or not.
        e.update(HOME=str(self.workdir), XDG_CONFIG_HOME=str(self.workdir / "xdg"),
                 XDG_STATE_HOME=str(self.workdir / "state"),
                 SEALPOST_STATE_DIR=str(self.workdir / "state" / "sealpost"))
        return e

    def write_config(self, extra: str = "") -> None:
        token_line = ""
        if self.upload_token is not None:
            tf = self.workdir / "upload.token"
            tf.write_text(self.upload_token + "\n")
            tf.chmod(0o600)
            token_line = f"upload_token_file = {tf}\n"
        listen = self.listen or f"{self.host}:{self.port}"
        self.conf.write_text(
            "[link]\n"
            f"store = {self.store}\n"
            f"base_url = {self.base_url}\n"
            f"{token_line}"
            "[linkserver]\n"
            f"listen = {listen}\n"
            f"outbox = {'yes' if self.outbox else 'no'}\n"
            + (f"trusted_proxies = {self.trusted_proxies}\n" if self.trusted_proxies is not None
               else "") +
            f"outbox_listen = 127.0.0.1:{self.outbox_port}\n"
            "[log]\n"
            "level = debug\n" + extra)

    # -- records ---------------------------------------------------------
    def mklink(self, eml: bytes, passwords: list[str], ttl: int = 3600, max_views: int = 0,
               max_failed: int = 10) -> list[Link]:
        eml_path = self.workdir / f"msg-{time.monotonic_ns()}.eml"
        eml_path.write_bytes(eml)
        r = subprocess.run([str(harness()), "mklink", str(self.store), str(eml_path), str(ttl),
                            str(max_views), str(max_failed), self.base_url, *passwords],
                           capture_output=True, text=True, env=self.env(), timeout=120)
        eml_path.unlink()
        check_sanitizers(r.stderr, "mklink")
        assert r.returncode == 0, r.stderr
        return parse_links(r.stdout)

    def upload(self, url: str, token_file: Path, eml: bytes, passwords: list[str], ttl=3600,
               max_views=0, max_failed=10) -> subprocess.CompletedProcess:
        eml_path = self.workdir / f"up-{time.monotonic_ns()}.eml"
        eml_path.write_bytes(eml)
        r = subprocess.run([str(harness()), "upload", url, str(token_file), str(eml_path), str(ttl),
                            str(max_views), str(max_failed), self.base_url, *passwords],
                           capture_output=True, text=True, env=self.env(), timeout=120)
        check_sanitizers(r.stderr, "upload")
        return r

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([str(harness()), *args], capture_output=True, text=True,
                           env=self.env(), timeout=60)
        check_sanitizers(r.stderr, " ".join(args))
        return r

    def outbox_url(self) -> str:
        """What `sealpost outbox` prints: the outbox's address with its token."""
        r = self.cli("outbox", "-c", str(self.conf))
        assert r.returncode == 0, r.stderr
        url = r.stdout.strip()
        assert url.startswith(f"http://127.0.0.1:{self.outbox_port}/outbox/"), url
        return url

    def outbox_path(self) -> str:
        return urllib.parse.urlsplit(self.outbox_url()).path

    def outbox_get(self, path: str | None = None, **kw) -> Response:
        """GET on the outbox listener (its page by default)."""
        kw.setdefault("port", self.outbox_port)
        return self.get(path or self.outbox_path(), **kw)

    def outbox_post(self, fields: dict, path: str = "/outbox/revoke", **kw) -> Response:
        kw.setdefault("port", self.outbox_port)
        return self.post(path, fields, **kw)

    def rows(self) -> tuple[int, int]:
        """(links, messages) in the store, read with an independent SQLite."""
        db = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True)
        try:
            return (db.execute("SELECT count(*) FROM links").fetchone()[0],
                    db.execute("SELECT count(*) FROM messages").fetchone()[0])
        finally:
            db.close()

    def link_row(self, link_id: str) -> dict | None:
        db = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("SELECT * FROM links WHERE id = ?", (link_id,)).fetchone()
            return dict(row) if row else None
        finally:
            db.close()

    # -- process ---------------------------------------------------------
    def start(self) -> "Viewer":
        args = [str(harness()), "serve"]
        for e in self.outbox_entries:
            args += ["--outbox", e]
        args += ["--", "-c", str(self.conf)]
        self.stderr_f = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr_f,
                                     env=self.env())
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if "viewer: listening on" in self.log():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"viewer exited {self.proc.returncode}: {self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"viewer did not start: {self.log()}")

    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("viewer did not stop on SIGTERM")
        rc = self.proc.returncode
        self.proc = None
        self.stderr_f.close()
        check_sanitizers(self.log(), "viewer")
        assert rc == 0, f"viewer exit status {rc}: {self.log()[-2000:]}"

    # -- HTTP ------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                source: str = "127.0.0.1", host: str | None = None, port: int | None = None,
                timeout: float = 60) -> Response:
        c = http.client.HTTPConnection(host or self.host, port or self.port, timeout=timeout,
                                       source_address=(source, 0))
        t0 = time.monotonic()
        try:
            c.request(method, path, body=body, headers=headers or {})
            resp = c.getresponse()
            data = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return Response(resp.status, hdrs, data, time.monotonic() - t0)
        finally:
            c.close()

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, fields: dict, **kw) -> Response:
        body = urllib.parse.urlencode(fields).encode()   # spaces as '+', like browsers
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers.update(kw.pop("headers", {}))
        return self.request("POST", path, body=body, headers=headers, **kw)


def store_v2_link(store: Path, plain: bytes, password: str, sender: str, hint: str,
                  ops: int = 2, mem_kib: int = 8192, max_failed: int = 5,
                  ttl: int = 3600) -> tuple[str, str]:
    """A v2 link to `plain` written straight into a viewer's SQLite store: the
    record by tests/vectors/link_v2.py and the message blob by
    tests/vectors/vectors.py, both independent of the proxy's C.  Returns
    (link id, link secret), base64url."""
    link_id, secret = os.urandom(16), os.urandom(16)
    key = os.urandom(32)
    k = lv.scalar(int.from_bytes(os.urandom(64), "little") % (lv.L - 1) + 1)
    rec = lv.make_record(key, password.encode(), link_id, secret, ops, mem_kib, os.urandom(16),
                         os.urandom(24), k)["record"]
    now = int(time.time())
    msg_id = os.urandom(16).hex()
    db = sqlite3.connect(store, timeout=30)
    try:
        with db:
            db.execute("INSERT INTO messages (id, created, ciphertext) VALUES (?, ?, ?)",
                       (msg_id, now, vectors.link_seal(key, os.urandom(24), plain)))
            db.execute("INSERT INTO links (id, message_id, wrapped, created, expires, max_views, "
                       "max_failed, sender, hint) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                       (link_id.hex(), msg_id, rec, now, now + ttl, max_failed, sender, hint))
    finally:
        db.close()
    return lv.b64url(link_id), lv.b64url(secret)


class Forwarder:
    """A real TCP forwarder, `socat TCP-LISTEN:PORT,fork,reuseaddr TCP:127.0.0.1:TARGET`:
    what `ssh -R`, stunnel or socat make of a loopback port.  Every connection it
    makes comes from 127.0.0.1, with whatever Host header the far client sent.

        with Forwarder(viewer.port) as fw:
            viewer.get("/outbox", port=fw.port)
    """

    def __init__(self, target: int, host: str = "127.0.0.1"):
        self.target, self.host = target, host
        self.port = free_port(host)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Forwarder":
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind={self.host},fork,reuseaddr",
             f"TCP:127.0.0.1:{self.target}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"socat exited: {self.proc.stderr.read()!r}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("socat does not listen")
                time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)   # socat and its forked children
            self.proc.wait(timeout=10)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()


def raw_http(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 10) -> bytes:
    """Send raw bytes, read the answer until the server closes (or a full
    response with Connection: close)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if sep and m and len(body) >= int(m.group(1)):
                return out


def parse_links(out: str) -> list[Link]:
    links = []
    for line in out.splitlines():
        if line.startswith("LINK "):
            _, lid, url, pw = line.split(" ", 3)
            links.append(Link(lid, url, pw))
    return links


def check_sanitizers(text: str, what: str) -> None:
    found = [p for p in SANITIZER_PATTERNS if p in text]
    if found:
        raise AssertionError(f"{what}: sanitizer report {found}:\n{text[-4000:]}")


def download_caps(page: str) -> list[tuple[str, str]]:
    """(dl, part) of each download form on a message page."""
    return re.findall(r'name="dl" value="([0-9a-f]+)"><input type="hidden" name="part" value="(\d+)"',
                      page)


def rich_message(attachment: bytes, tracker: str = "http://127.0.0.1:9/t.gif") -> bytes:
    """Text + HTML (with remote loads) + a binary attachment; charsets and encodings."""
    att_b64 = base64.encodebytes(attachment).decode().replace("\n", "\r\n")
    html = (f'<html><head><link rel="stylesheet" href="{tracker}?css">'
            f'<script src="{tracker}?js"></script></head>'
            f'<body><p id="hello">Hello from the HTML part</p>'
            f'<img src="{tracker}?img" width="1" height="1">'
            f'<div style="background:url({tracker}?bg)">styled</div>'
            f'<iframe src="{tracker}?frame"></iframe>'
            f'<script>document.title="pwned"</script></body></html>')
    html_b64 = base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")
    return (
        "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\r\n"
        "To: Bob <bob@example.net>\r\n"
        "Cc: =?UTF-8?B?w4lsb8Ovc2U=?= <eloise@example.com>\r\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0100\r\n"
        "Subject: =?UTF-8?Q?Quarterly_r=C3=A9sum=C3=A9?=\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
        "\r\n"
        "--outer\r\n"
        "Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
        "\r\n"
        "--alt\r\n"
        "Content-Type: text/plain; charset=ISO-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "The secret plan: Gr=FC=DFe aus K=F6ln <b>not bold</b>\r\n"
        "--alt\r\n"
        "Content-Type: text/html; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{html_b64}"
        "--alt--\r\n"
        "--outer\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.bin\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{att_b64}"
        "--outer--\r\n").encode()


def simple_message(body: str = "The secret plan is in the garden.") -> bytes:
    return ("From: Alice <alice@example.org>\r\n"
            "To: Bob <bob@example.net>\r\n"
            "Subject: Confidential subject line\r\n"
            "Date: Tue, 14 Nov 2023 22:13:20 +0100\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n"
            f"{body}\r\n").encode()
