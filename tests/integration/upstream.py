"""A real SMTP server (aiosmtpd) that plays the user's provider.

    up = Upstream(pki, mode="starttls")      # or "tls" (465 style) or "plain"
    up.start()
    ... sealpost relays to up.host:up.port, trusting pki.ca_path ...
    [msg] = up.wait_for(1)                   # Received records, polled, no sleeps
    up.stop(); up.start()                    # same port again

Every accepted transaction is recorded as a `Received`: envelope, raw content
bytes (after dot-unstuffing, exactly what the client meant), whether TLS was
active, the TLS version, SNI, EHLO name and the authenticated user.  AUTH
attempts and EHLO names are recorded per connection too, so `sealpost check`
(which sends no mail) can be observed.

A `Script` makes the server misbehave on purpose: a reply for a given recipient,
a queue of replies for MAIL or for the end of DATA (consumed one per
transaction; afterwards the normal 250).
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pki import TestPKI
from waits import WAIT
from ports import free_port  # noqa: F401  (re-exported)

TEST_USER = "relay-user@example.com"
TEST_PASSWORD = "upstream-pw-Zq8#x"




@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]
    rcpt_options: list[list[str]]
    tls: bool
    tls_version: Optional[str]
    sni: Optional[str]
    auth_user: Optional[str]
    ehlo: Optional[str]
    peer: tuple


@dataclass
class Script:
    """Scripted upstream replies.  Lists are consumed in order, one per use."""
    mail_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)   # address (lower) -> reply
    data_replies: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, up: "Upstream"):
        self.up = up

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.up._record("ehlo", hostname)
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self.up._record("ehlo", hostname)
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.up._lock:
            reply = self.up.script.mail_replies.pop(0) if self.up.script.mail_replies else None
        if reply and not reply.startswith("2"):
            return reply
        envelope.mail_from = address      # "<>" for the null reverse-path
        envelope.mail_options.extend(mail_options)
        envelope.rcpt_options_list = []
        return reply or "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.up.script.rcpt_replies.get(address.lower())
        if reply and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        if not hasattr(envelope, "rcpt_options_list"):
            envelope.rcpt_options_list = []
        envelope.rcpt_options_list.append(list(rcpt_options))
        return reply or "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.up._lock:
            reply = self.up.script.data_replies.pop(0) if self.up.script.data_replies else None
        if reply and not reply.startswith("2"):
            self.up._record("rejected", reply)
            return reply
        sslobj = server.transport.get_extra_info("ssl_object") if server.transport else None
        auth = session.auth_data
        auth_user = None
        if isinstance(auth, LoginPassword):
            auth_user = auth.login.decode("utf-8", "replace")
        rec = Received(
            # aiosmtpd keeps the null reverse-path as "<>"; record it as "".
            mail_from="" if envelope.mail_from == "<>" else envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            content=bytes(envelope.original_content),
            mail_options=list(envelope.mail_options),
            rcpt_options=list(getattr(envelope, "rcpt_options_list", [])),
            tls=sslobj is not None,
            tls_version=sslobj.version() if sslobj is not None else None,
            sni=getattr(sslobj, "_sealpost_sni", None) if sslobj is not None else None,
            auth_user=auth_user if session.authenticated else None,
            ehlo=session.host_name,
            peer=session.peer,
        )
        self.up._add_message(rec)
        return reply or "250 2.0.0 OK queued"


class Upstream:
    """One aiosmtpd server on 127.0.0.1:<free port>.

    mode: "starttls" (587 style, require_starttls), "tls" (implicit, 465 style),
          "plain" (no STARTTLS offered at all).
    cert: which PKI certificate it presents: "server", "wrong_host", "expired",
          "untrusted" (signed by the CA sealpost is not told about).
    users: {login: password} accepted by AUTH PLAIN/LOGIN.
    require_auth: MAIL without a successful AUTH gets 530 5.7.0.
    """

    def __init__(self, pki: TestPKI, mode: str = "starttls", cert: str = "server",
                 users: Optional[dict[str, str]] = None, require_auth: Optional[bool] = None,
                 script: Optional[Script] = None, smtputf8: bool = True,
                 data_size_limit: Optional[int] = None, port: Optional[int] = None,
                 tls_max: Optional[str] = None):
        assert mode in ("starttls", "tls", "plain"), mode
        self.pki = pki
        self.mode = mode
        self.cert = pki.by_name(cert)
        self.users = dict(users) if users is not None else {TEST_USER: TEST_PASSWORD}
        self.require_auth = (mode != "plain") if require_auth is None else require_auth
        self.script = script or Script()
        self.smtputf8 = smtputf8
        self.data_size_limit = data_size_limit
        self.tls_max = tls_max            # e.g. "TLSv1_1": offer nothing newer
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.messages: list[Received] = []
        self.events: list[tuple[str, object]] = []     # ("ehlo", name), ("auth", (user, ok, tls)), ...
        self.sni_names: list[Optional[str]] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._controller: Optional[Controller] = None

    # -- the things sealpost needs to know ---------------------------------------
    @property
    def ca_path(self):
        """The trusted test CA (what sealpost's ca_file points at)."""
        return self.pki.ca_path

    @property
    def username(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.username]

    # -- lifecycle ---------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext:
        ctx = self.cert.server_context()
        if self.tls_max:
            # OpenSSL 3 refuses TLS < 1.2 at the default security level: lower it
            # so this server really offers the old version.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = getattr(ssl.TLSVersion, self.tls_max)

        def sni(sslobj, name, _ctx):
            sslobj._sealpost_sni = name
            with self._lock:
                self.sni_names.append(name)
            return None

        ctx.sni_callback = sni
        return ctx

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = False
        login = None
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            pw = auth_data.password.decode("utf-8", "replace")
            ok = self.users.get(login) == pw
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self._record("auth", (login, ok, tls, mechanism))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> "Upstream":
        assert self._controller is None, "upstream already running"
        kwargs = dict(
            hostname=self.host, port=self.port, server_hostname="upstream.test",
            decode_data=False, enable_SMTPUTF8=self.smtputf8,
            authenticator=self._authenticator, auth_required=self.require_auth,
            data_size_limit=self.data_size_limit,
        )
        if self.mode == "starttls":
            kwargs.update(tls_context=self._tls_context(), require_starttls=True,
                          auth_require_tls=True)
        elif self.mode == "tls":
            # Implicit TLS: aiosmtpd sees no STARTTLS, so it must not insist on it
            # for AUTH; the whole connection is TLS anyway.
            kwargs.update(ssl_context=self._tls_context(), auth_require_tls=False)
        else:
            kwargs.update(auth_require_tls=False)
        ctrl = Controller(_Handler(self), **kwargs)
        # aiosmtpd's readiness probe would show up as a connection; it carries no
        # SMTP commands, so it records nothing.
        deadline = time.monotonic() + 5
        while True:
            try:
                ctrl.start()
                break
            except OSError:
                # Port still in TIME_WAIT/being released right after stop(): retry briefly.
                ctrl.stop(no_assert=True)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                ctrl = Controller(_Handler(self), **kwargs)
        self._controller = ctrl
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        # Wait until the port really refuses connections.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._controller is not None

    # -- records -----------------------------------------------------------------
    def _record(self, kind: str, what) -> None:
        with self._cond:
            self.events.append((kind, what))
            self._cond.notify_all()

    def _add_message(self, rec: Received) -> None:
        with self._cond:
            self.messages.append(rec)
            self.events.append(("message", rec))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = WAIT) -> list[Received]:
        """Wait until at least n messages arrived; return all of them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"upstream got {len(self.messages)} message(s), expected {n} "
                        f"within {timeout}s; events: {self.events_summary()}")
                self._cond.wait(left)
            return list(self.messages)

    def wait_event(self, kind: str, timeout: float = WAIT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for k, what in self.events:
                    if k == kind:
                        return what
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"upstream saw no {kind!r} event within {timeout}s; "
                                         f"events: {self.events_summary()}")
                self._cond.wait(left)

    def auths(self) -> list[tuple]:
        with self._lock:
            return [w for k, w in self.events if k == "auth"]

    def ehlos(self) -> list[str]:
        with self._lock:
            return [w for k, w in self.events if k == "ehlo"]

    def events_summary(self) -> str:
        out = []
        for k, w in self.events:
            if k == "message":
                out.append(f"message(from={w.mail_from!r}, rcpts={w.rcpt_tos!r}, {len(w.content)} bytes)")
            else:
                out.append(f"{k}={w!r}")
        return "; ".join(out) or "(none)"

    def __repr__(self) -> str:
        return f"<Upstream {self.mode} {self.cert.name} {self.host}:{self.port}>"


class RawUpstream:
    """A deliberately broken 'SMTP server' on 127.0.0.1 for the upstream client's
    hostile cases.  behaviour:
      "silent"        accepts TCP and never says anything
      "http"          answers like a web server
      "long_multiline" greets, then answers EHLO with an endless multi-line reply
      "close"         greets, then closes on the first command
      "garbage_greeting" sends a malformed greeting line
    Every connection is counted in .connections."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.host = "127.0.0.1"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _recv(self, conn) -> bytes:
        try:
            d = conn.recv(4096)
        except (socket.timeout, OSError):
            return b""
        self.received += d
        return d

    def _serve(self, conn):
        conn.settimeout(0.2)
        try:
            b = self.behaviour
            if b == "silent":
                while not self._stop.is_set():
                    self._recv(conn)
            elif b == "http":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
                             b"Content-Length: 11\r\n\r\n<html></html>\r\n")
                while not self._stop.is_set() and self._recv(conn) != b"":
                    pass
            elif b == "long_multiline":
                conn.sendall(b"220 upstream.test ESMTP\r\n")
                deadline = time.monotonic() + 20
                while not self._stop.is_set() and time.monotonic() < deadline:
                    if self._recv(conn):
                        break
                n = 0
                while not self._stop.is_set() and n < 200_000:
                    try:
                        conn.sendall(b"".join(b"250-extension-%d\r\n" % (n + i) for i in range(100)))
                    except OSError:
                        break
                    n += 100
            elif b == "close":
                conn.sendall(b"220 upstream.test ESMTP\r\n")
                deadline = time.monotonic() + 20
                while not self._stop.is_set() and time.monotonic() < deadline:
                    if self._recv(conn):
                        break
            elif b == "garbage_greeting":
                conn.sendall(b"hello there, I am not SMTP\r\n")
                while not self._stop.is_set() and self._recv(conn) != b"":
                    pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self.sock.close()
        for t in self._threads:
            t.join(2)
