"""Mail clients the tests drive: real swaks and curl, Python smtplib, and a raw
socket client for hostile input (exact bytes out, strictly parsed replies in).

Replies are `Reply(code, enhanced, lines)`; `reply.is_(550, "5.5.2")` and
`assert_reply(reply, 550, "5.5.2")` compare code and RFC 3463 enhanced code.
"""
from __future__ import annotations

import re
import select
import smtplib
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence
from waits import WAIT

DEFAULT_TIMEOUT = WAIT

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


@dataclass
class Reply:
    code: int
    lines: list[str]       # text after "NNN-" / "NNN "

    @property
    def enhanced(self) -> Optional[str]:
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return ".".join(m.groups()) if m else None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def is_(self, code: int, enhanced: Optional[str] = None) -> bool:
        return self.code == code and (enhanced is None or self.enhanced == enhanced)

    def keywords(self) -> dict[str, str]:
        """EHLO keywords -> parameters (first line, the greeting name, skipped)."""
        out = {}
        for line in self.lines[1:]:
            kw, _, params = line.partition(" ")
            out[kw.upper()] = params
        return out

    def __str__(self) -> str:
        return " | ".join(f"{self.code} {l}" for l in self.lines)


def assert_reply(reply: Reply, code: int, enhanced: Optional[str] = None, what: str = "") -> None:
    assert reply is not None, f"{what}: no reply"
    assert reply.is_(code, enhanced), (
        f"{what}: expected {code} {enhanced or ''}, got: {reply}")


class ConnectionClosed(Exception):
    pass


class RawClient:
    """A byte-exact SMTP client.  Nothing is added or normalised."""

    def __init__(self, host: str, port: int, implicit_tls: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, read_greeting: bool = True):
        self.host, self.port = host, port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.transcript: list[tuple[str, bytes]] = []
        self.greeting: Optional[Reply] = None
        if implicit_tls:
            self._wrap_tls()
        if read_greeting:
            self.greeting = self.reply()

    # -- low level -----------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.transcript.append((">", data))
        self.sock.sendall(data)

    def _fill(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, ssl.SSLError) as e:
            raise ConnectionClosed(f"connection reset: {e}") from e
        if not chunk:
            raise ConnectionClosed("connection closed by peer")
        self.transcript.append(("<", chunk))
        self.buf += chunk
        return True

    def _line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                raise TimeoutError(f"no complete reply line within {timeout}s; have {self.buf!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout: Optional[float] = None) -> Reply:
        """Read one (possibly multi-line) reply, strictly."""
        timeout = self.timeout if timeout is None else timeout
        lines = []
        code = None
        while True:
            raw = self._line(timeout)
            assert len(raw) <= 512, f"reply line over 512 octets: {raw[:80]!r}..."
            m = re.match(rb"^([2-5]\d\d)([ -])(.*)$", raw, re.S)
            if not m:
                # RFC 5321 4.2: "NNN" alone is allowed as a last line.
                m = re.match(rb"^([2-5]\d\d)$", raw)
                assert m, f"malformed reply line {raw!r}"
                sep, text = b" ", b""
            else:
                sep, text = m.group(2), m.group(3)
            c = int(m.group(1))
            assert code is None or c == code, f"reply code changed mid-reply: {raw!r}"
            code = c
            lines.append(text.decode("utf-8", "replace"))
            if sep == b" ":
                return Reply(code, lines)
            assert len(lines) < 100, "reply with more than 100 lines"

    def cmd(self, line: str | bytes, timeout: Optional[float] = None) -> Reply:
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def pending(self, wait: float = 0.0) -> bytes:
        """Whatever the server sent that no reply() consumed (optionally waiting)."""
        deadline = time.monotonic() + wait
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    # one non-blocking look
                    self._fill(0.01)
                    break
                if not self._fill(left):
                    break
        except ConnectionClosed:
            pass
        return self.buf

    def wait_closed(self, timeout: float = WAIT) -> bytes:
        """Wait for the server to close; returns the unread bytes received meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server did not close the connection within {timeout}s "
                                     f"(unread: {self.buf[-300:]!r})")
            try:
                self._fill(left)
            except ConnectionClosed:
                data, self.buf = self.buf, b""
                return data

    def is_closed(self, wait: float = 0.2) -> bool:
        try:
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                return False
            self.sock.settimeout(0.5)
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ssl.SSLError):
            return True

    def _wrap_tls(self) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # sealpost's client-side cert is self-signed
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)

    def starttls(self, expect: tuple[int, str] = (220, "2.0.0")) -> Reply:
        r = self.cmd("STARTTLS")
        assert_reply(r, *expect, what="STARTTLS")
        assert self.buf == b"", f"data after the STARTTLS reply, before TLS: {self.buf!r}"
        self._wrap_tls()
        return r

    @property
    def tls_version(self) -> Optional[str]:
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- conveniences ---------------------------------------------------------------
    def ehlo(self, name: str = "client.test") -> Reply:
        r = self.cmd(f"EHLO {name}")
        assert_reply(r, 250, what="EHLO")
        return r

    def auth_plain(self, user: str, password: str) -> Reply:
        import base64
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return self.cmd(f"AUTH PLAIN {token}")

    def auth_login(self, user: str, password: str) -> Reply:
        import base64
        r = self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if r.code != 334:
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def transaction(self, mail_from: str, rcpts: Sequence[str], data: bytes,
                    mail_params: str = "") -> list[Reply]:
        """MAIL, RCPT..., DATA, data (dot-stuffed here) and the final dot.
        Stops at the first reply that is not 2xx/354; returns all replies."""
        out = []
        r = self.cmd(f"MAIL FROM:<{mail_from}>" + (f" {mail_params}" if mail_params else ""))
        out.append(r)
        if r.code != 250:
            return out
        ok = 0
        for rc in rcpts:
            r = self.cmd(f"RCPT TO:<{rc}>")
            out.append(r)
            ok += r.code == 250
        if not ok:
            return out
        r = self.cmd("DATA")
        out.append(r)
        if r.code != 354:
            return out
        self.send(dot_stuff(data) + b".\r\n")
        out.append(self.reply(timeout=max(self.timeout, 30)))
        return out


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency for a CRLF message that ends in CRLF."""
    assert data.endswith(b"\r\n"), "message must end in CRLF"
    lines = data.split(b"\r\n")[:-1]
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def final_reply(replies: list[Reply]) -> Reply:
    return replies[-1]


# -- real clients --------------------------------------------------------------------

@dataclass
class ToolResult:
    rc: int
    stdout: str
    stderr: str
    argv: list[str]

    def __str__(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.rc}\n--- stdout\n{self.stdout[-4000:]}"
                f"\n--- stderr\n{self.stderr[-4000:]}")


def _run(argv: list[str], timeout: float = 60) -> ToolResult:
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return ToolResult(p.returncode, p.stdout.decode("utf-8", "replace"),
                      p.stderr.decode("utf-8", "replace"), argv)


def _msg_file(msg: bytes, tmpdir: Path, name: str) -> Path:
    f = Path(tmpdir) / name
    n = 0
    while f.exists():
        n += 1
        f = Path(tmpdir) / f"{name}.{n}"
    f.write_bytes(msg)
    return f


def swaks(port: int, mail_from: str, rcpts: Iterable[str], msg: bytes, tmpdir: Path,
          host: str = "127.0.0.1", tls: str = "none", user: Optional[str] = None,
          password: Optional[str] = None, auth: str = "PLAIN",
          extra: Sequence[str] = ()) -> ToolResult:
    """Send `msg` (CRLF, ending in CRLF) with swaks; tls: none | starttls | implicit.

    swaks always appends CRLF before the final dot (even after a trailing CRLF),
    so the file it reads holds the message without its last CRLF: what arrives
    is then exactly `msg`."""
    assert msg.endswith(b"\r\n")
    data_file = _msg_file(msg[:-2], tmpdir, "swaks.eml")
    argv = ["swaks", "--server", host, "--port", str(port), "--from", mail_from,
            "--to", ",".join(rcpts), "--helo", "swaks.client.test",
            "--data", f"@{data_file}", "--timeout", "30", "--hide-informational"]
    if tls == "starttls":
        argv += ["--tls"]
    elif tls == "implicit":
        argv += ["--tlsc"]
    if user is not None:
        argv += ["--auth", auth, "--auth-user", user, "--auth-password", password or ""]
    argv += list(extra)
    return _run(argv)


def curl(port: int, mail_from: str, rcpts: Iterable[str], msg: bytes, tmpdir: Path,
         host: str = "127.0.0.1", tls: str = "none", user: Optional[str] = None,
         password: Optional[str] = None, login_options: Optional[str] = None,
         extra: Sequence[str] = ()) -> ToolResult:
    """Send `msg` with curl --upload-file (curl dot-stuffs; a CRLF-terminated
    message is sent as is).  tls: none | starttls (smtp:// + --ssl-reqd) |
    implicit (smtps://)."""
    assert msg.endswith(b"\r\n")
    data_file = _msg_file(msg, tmpdir, "curl.eml")
    scheme = "smtps" if tls == "implicit" else "smtp"
    argv = ["curl", "--silent", "--show-error", "--max-time", "60",
            "--url", f"{scheme}://{host}:{port}/curl.client.test",
            "--mail-from", mail_from, "--upload-file", str(data_file)]
    for r in rcpts:
        argv += ["--mail-rcpt", r]
    if tls in ("starttls", "implicit"):
        argv += ["--insecure"]          # sealpost's generated client-side cert is self-signed
    if tls == "starttls":
        argv += ["--ssl-reqd"]
    if user is not None:
        argv += ["--user", f"{user}:{password}"]
    if login_options:
        argv += ["--login-options", login_options]
    argv += list(extra)
    return _run(argv)


def smtplib_send(port: int, mail_from: str, rcpts: Sequence[str], msg: bytes,
                 host: str = "127.0.0.1", tls: str = "none", user: Optional[str] = None,
                 password: Optional[str] = None, mail_options: Sequence[str] = (),
                 timeout: float = 30) -> tuple[int, bytes]:
    """Send with smtplib (which dot-stuffs); returns the reply to the final dot.
    Raises smtplib errors on any refusal."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE       # sealpost's client-side cert is self-signed
    if tls == "implicit":
        s = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ctx,
                             local_hostname="smtplib.client.test")
    else:
        s = smtplib.SMTP(host, port, timeout=timeout, local_hostname="smtplib.client.test")
    try:
        s.ehlo()
        if tls == "starttls":
            s.starttls(context=ctx)
            s.ehlo()
        if user is not None:
            s.login(user, password)
        code, resp = s.mail(mail_from, list(mail_options))
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, mail_from)
        for r in rcpts:
            code, resp = s.rcpt(r)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({r: (code, resp)})
        code, resp = s.data(msg)
        if code != 250:
            raise smtplib.SMTPDataError(code, resp)
        return code, resp
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def wait_port(host: str, port: int, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
