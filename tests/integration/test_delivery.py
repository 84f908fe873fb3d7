"""Delivery: real clients -> sealpost -> aiosmtpd over verified STARTTLS + AUTH,
byte for byte (after dot-unstuffing).  Also the client side with STARTTLS +
AUTH and an implicit-TLS listener, Bcc handling, X-Sealpost-* stripping, and
the upstream options (implicit TLS, none on loopback, SNI, helo, password
sources)."""
from __future__ import annotations

import base64
import re

import pytest

import clients
import messages
from checks import FROM, TO, deliver_sentinel
from clients import assert_reply
from conftest import CLIENT_PASSWORD, CLIENT_USER
from sealpost import free_port
from upstream import TEST_PASSWORD, TEST_USER

CLIENTS = ["swaks", "curl", "smtplib"]


def send_with(client: str, port: int, msg: bytes, tmp_path, rcpts=(TO,), mail_from=FROM,
              tls: str = "none", user=None, password=None) -> None:
    """Send one message with a real client; assert that it reported success."""
    if client == "smtplib":
        code, resp = clients.smtplib_send(port, mail_from, list(rcpts), msg, tls=tls,
                                          user=user, password=password)
        assert code == 250 and resp.startswith(b"2.0.0"), (code, resp)
        return
    r = getattr(clients, client)(port, mail_from, list(rcpts), msg, tmp_path, tls=tls,
                                 user=user, password=password)
    assert r.rc == 0, str(r)
    if client == "swaks":
        # swaks prints the dialogue: the reply to the final dot is 250 2.0.0
        finals = re.findall(r"^<[-~]\s+(\d{3})[ -](\S+)", r.stdout, re.M)
        assert ("250", "2.0.0") in finals, str(r)


def assert_relayed(up, msg: bytes, rcpts=(TO,), mail_from=FROM, n: int = 1):
    got = up.wait_for(n)
    m = got[n - 1]
    assert m.content == msg, first_difference(m.content, msg)
    assert m.mail_from == mail_from
    assert sorted(m.rcpt_tos) == sorted(rcpts)
    return m


def first_difference(got: bytes, want: bytes) -> str:
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return (f"content differs at byte {i}: got {got[max(0, i - 40):i + 40]!r}, "
                    f"want {want[max(0, i - 40):i + 40]!r}")
    return f"content length differs: got {len(got)}, want {len(want)} (tail {got[-60:]!r})"


# -- the "Done when": each real client, byte for byte ----------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_client_to_upstream_byte_for_byte(sp, upstream, client, tmp_path):
    msg = messages.rich(frm=FROM, to=TO)
    send_with(client, sp.port, msg, tmp_path)
    m = assert_relayed(upstream, msg)
    # the upstream leg: verified TLS >= 1.2 and AUTH with the configured account
    assert m.tls and m.tls_version in ("TLSv1.2", "TLSv1.3")
    assert m.auth_user == TEST_USER
    assert m.ehlo == "localhost"


@pytest.mark.parametrize("client", CLIENTS)
def test_client_starttls_auth_byte_for_byte(start_sealpost, upstream, client, tmp_path):
    sp = start_sealpost(upstream, users={CLIENT_USER: CLIENT_PASSWORD})
    msg = messages.rich(frm=FROM, to=TO)
    send_with(client, sp.port, msg, tmp_path, tls="starttls", user=CLIENT_USER,
              password=CLIENT_PASSWORD)
    m = assert_relayed(upstream, msg)
    assert m.tls and m.auth_user == TEST_USER


@pytest.mark.parametrize("client", CLIENTS)
def test_client_implicit_tls_listener_byte_for_byte(start_sealpost, upstream, client, tmp_path):
    plain, implicit = free_port(), free_port()
    sp = start_sealpost(upstream, users={CLIENT_USER: CLIENT_PASSWORD},
                        proxy={"listen": f"127.0.0.1:{plain}, 127.0.0.1:{implicit} tls"})
    msg = messages.rich(frm=FROM, to=TO)
    send_with(client, implicit, msg, tmp_path, tls="implicit", user=CLIENT_USER,
              password=CLIENT_PASSWORD)
    m = assert_relayed(upstream, msg)
    assert m.tls and m.auth_user == TEST_USER


def test_implicit_tls_listener_speaks_tls_first(start_sealpost, upstream):
    plain, implicit = free_port(), free_port()
    sp = start_sealpost(upstream, proxy={"listen": f"127.0.0.1:{plain}, 127.0.0.1:{implicit} tls"})
    with sp.client(listener=1) as c:
        assert c.tls_version in ("TLSv1.2", "TLSv1.3")
        assert_reply(c.greeting, 220)
        kw = c.ehlo().keywords()
        assert "STARTTLS" not in kw, "STARTTLS offered on an implicit-TLS listener"
        deliver_sentinel(c, upstream)
    with sp.client(listener=0) as c:          # the plain listener still works too
        assert "STARTTLS" in c.ehlo().keywords()


def test_250_only_after_the_upstream_accepted(sp, upstream):
    """The reply to the final dot comes after the upstream's 250, never before:
    the message is already recorded upstream when the client reads 250."""
    msg = messages.simple(frm=FROM, to=TO)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
        assert [m.content for m in upstream.messages] == [msg]   # no waiting


def test_smtputf8_addresses(sp, upstream):
    frm, to = "jörg@exämple.com", "müller@example.net"
    msg = messages.simple(frm=frm, to=to, subject="Grüße", body="Grüße, ✓".encode())
    code, _ = clients.smtplib_send(sp.port, frm, [to], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert code == 250
    m = assert_relayed(upstream, msg, rcpts=[to], mail_from=frm)
    assert "SMTPUTF8" in [o.upper() for o in m.mail_options]


def test_8bitmime_parameter_is_relayed(sp, upstream):
    msg = messages.simple(frm=FROM, to=TO, body="8-bit: ünïcödé".encode())
    clients.smtplib_send(sp.port, FROM, [TO], msg, mail_options=["BODY=8BITMIME"])
    m = assert_relayed(upstream, msg)
    assert "BODY=8BITMIME" in [o.upper() for o in m.mail_options]


def test_two_messages_in_one_session(sp, upstream):
    m1 = messages.simple(subject="one", frm=FROM, to=TO)
    m2 = messages.rich(frm=FROM, to=TO)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], m1)[-1], 250, "2.0.0")
        assert_reply(c.transaction(FROM, [TO], m2)[-1], 250, "2.0.0")
    got = upstream.wait_for(2)
    assert [m.content for m in got] == [m1, m2]


def test_to_and_cc_recipients_share_one_copy(sp, upstream):
    cc = "carol@example.org"
    msg = messages.simple(frm=FROM, to=TO, extra_headers=(b"Cc: Carol <" + cc.encode() + b">",))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO, cc], msg)[-1], 250, "2.0.0")
    [m] = upstream.wait_for(1)
    assert sorted(m.rcpt_tos) == sorted([TO, cc]) and m.content == msg


# -- Bcc and X-Sealpost-* -------------------------------------------------------------------------

def _strip_headers(msg: bytes, names: tuple[bytes, ...]) -> bytes:
    """Remove whole (folded) header fields by name from the header block."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    out, skipping = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() in names
        if not skipping:
            out.append(line)
    return b"\r\n".join(out) + sep + body


def test_bcc_recipient_gets_own_copy_without_bcc_header(sp, upstream):
    bcc = "carol@example.org"
    msg = messages.simple(frm=FROM, to=TO, extra_headers=(b"Bcc: " + bcc.encode(),))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO, bcc], msg)[-1], 250, "2.0.0")
    got = upstream.wait_for(2)
    expected = _strip_headers(msg, (b"bcc",))
    assert expected != msg and b"Bcc" not in expected
    assert sorted(tuple(m.rcpt_tos) for m in got) == sorted([(bcc,), (TO,)])
    for m in got:
        assert b"\nbcc:" not in m.content.lower() and not m.content.lower().startswith(b"bcc:")
        assert m.content == expected, first_difference(m.content, expected)
    # and nothing more arrives
    with sp.client() as c:
        c.ehlo()
        deliver_sentinel(c, upstream, already=[m.content for m in got])


def test_folded_bcc_with_two_recipients_and_unnamed_envelope_recipient(sp, upstream):
    bccs = ["carol@example.org", "dave@example.org"]
    hidden = "erin@example.org"          # in the envelope, in no header: a Bcc recipient too
    msg = messages.simple(frm=FROM, to=TO, extra_headers=(
        b"Bcc: Carol <carol@example.org>,", b"\tDave <dave@example.org>"))
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO] + bccs + [hidden], msg)[-1], 250, "2.0.0")
    got = upstream.wait_for(4)
    expected = _strip_headers(msg, (b"bcc",))
    assert sorted(tuple(m.rcpt_tos) for m in got) == sorted([(TO,), (bccs[0],), (bccs[1],), (hidden,)])
    for m in got:
        assert m.content == expected, first_difference(m.content, expected)
        assert b"dave@example.org" not in m.content


def test_x_sealpost_headers_are_stripped(sp, upstream):
    msg = messages.simple(frm=FROM, to=TO, extra_headers=(
        b"X-Sealpost-Password: correct horse battery staple",
        b"X-Sealpost-Hint: the usual",
        b"x-sealpost-expiry: 3d",
        b"X-SEALPOST-Max-Views: 1",
        b"X-Sealpost-Unknown-Future: folded",
        b" continuation line",
    ), body=b"X-Sealpost-Password: this line is in the body and stays")
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    [m] = upstream.wait_for(1)
    expected = _strip_headers(msg, (b"x-sealpost-password", b"x-sealpost-hint",
                                    b"x-sealpost-expiry", b"x-sealpost-max-views",
                                    b"x-sealpost-unknown-future"))
    assert b"correct horse" not in m.content and b"the usual" not in m.content
    assert m.content == expected, first_difference(m.content, expected)


# -- upstream options -----------------------------------------------------------------------------

@pytest.mark.upstream(mode="tls")
def test_upstream_implicit_tls(sp, upstream):
    msg = messages.rich(frm=FROM, to=TO)
    clients.smtplib_send(sp.port, FROM, [TO], msg)
    m = assert_relayed(upstream, msg)
    assert m.tls and m.auth_user == TEST_USER


@pytest.mark.upstream(mode="plain", require_auth=False)
def test_upstream_tls_none_on_loopback(start_sealpost, upstream):
    sp = start_sealpost(upstream, upstream_cfg={"tls": "none", "username": None,
                                                "password_file": None, "ca_file": None})
    msg = messages.rich(frm=FROM, to=TO)
    clients.smtplib_send(sp.port, FROM, [TO], msg)
    m = assert_relayed(upstream, msg)
    assert not m.tls


def test_upstream_sni_and_host_name(start_sealpost, upstream):
    sp = start_sealpost(upstream, upstream_cfg={"host": "localhost"})
    msg = messages.simple(frm=FROM, to=TO)
    clients.smtplib_send(sp.port, FROM, [TO], msg)
    m = assert_relayed(upstream, msg)
    assert m.sni == "localhost"


def test_upstream_helo_name(start_sealpost, upstream):
    sp = start_sealpost(upstream, upstream_cfg={"helo": "sealpost-client.example"})
    clients.smtplib_send(sp.port, FROM, [TO], messages.simple(frm=FROM, to=TO))
    assert upstream.wait_for(1)[0].ehlo == "sealpost-client.example"
    assert "sealpost-client.example" in upstream.ehlos()
    assert "smtplib.client.test" not in upstream.ehlos(), "the client's EHLO name leaked upstream"


def test_upstream_password_command(start_sealpost, upstream, write_file):
    script = write_file("pw.sh", f"#!/bin/sh\nprintf '%s\\n' '{TEST_PASSWORD}'\n", mode=0o700)
    sp = start_sealpost(upstream, upstream_cfg={"password_file": None,
                                                "password_command": str(script)})
    clients.smtplib_send(sp.port, FROM, [TO], messages.simple(frm=FROM, to=TO))
    assert upstream.wait_for(1)[0].auth_user == TEST_USER


@pytest.mark.upstream(users={"other-user@example.com": "pässwörd with spaces"})
def test_upstream_auth_with_non_ascii_password(start_sealpost, upstream):
    msg = messages.simple(frm=FROM, to=TO)
    sp = start_sealpost(upstream)
    clients.smtplib_send(sp.port, FROM, [TO], msg)
    assert upstream.wait_for(1)[0].auth_user == "other-user@example.com"


# -- auth = passthrough ----------------------------------------------------------------------------

def test_auth_passthrough(start_sealpost, upstream):
    sp = start_sealpost(upstream, proxy={"auth": "passthrough"},
                        upstream_cfg={"username": None, "password_file": None})
    with sp.client() as c:
        kw = c.ehlo().keywords()
        assert set(kw.get("AUTH", "").split()) == {"PLAIN", "LOGIN"}
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 530, "5.7.0")
        assert_reply(c.auth_plain(TEST_USER, "not the password"), 535, "5.7.8")
        assert_reply(c.auth_plain(TEST_USER, TEST_PASSWORD), 235, "2.7.0")
        msg = messages.simple(frm=FROM, to=TO)
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    m = assert_relayed(upstream, msg)
    assert m.auth_user == TEST_USER and m.tls
    # the bad password was checked against the upstream, over TLS
    assert (TEST_USER, False) in [a[:2] for a in upstream.auths()]
    assert all(a[2] for a in upstream.auths()), "AUTH sent to the upstream without TLS"


# -- client-side TLS certificate ----------------------------------------------------------------

def _peer_der(c) -> bytes:
    return c.sock.getpeercert(binary_form=True)


def _pem_certs(directory) -> dict:
    import ssl as _ssl
    out = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            text = p.read_bytes()
            if b"-----BEGIN CERTIFICATE-----" in text:
                pem = text[text.index(b"-----BEGIN CERTIFICATE-----"):].decode()
                pem = pem[:pem.index("-----END CERTIFICATE-----") + 25]
                out[p] = _ssl.PEM_cert_to_DER_cert(pem)
    return out


def test_generated_client_side_certificate(start_sealpost, upstream):
    sp = start_sealpost(upstream)
    state = sp.workdir / "state"
    with sp.client() as c:
        c.ehlo()
        c.starttls()
        der = _peer_der(c)
    certs = _pem_certs(state)
    assert der in certs.values(), f"STARTTLS certificate is not one of {list(certs)} in {state}"
    for p in state.rglob("*"):
        if p.is_file() and b"PRIVATE KEY" in p.read_bytes():
            assert p.stat().st_mode & 0o077 == 0, f"{p} is readable by others: {oct(p.stat().st_mode)}"
    # a restart keeps the same certificate (clients pinned it)
    sp.stop()
    sp.start()
    with sp.client() as c:
        c.ehlo()
        c.starttls()
        assert _peer_der(c) == der, "the client-side certificate changed across a restart"


def test_configured_client_side_certificate(start_sealpost, upstream, pki):
    import ssl as _ssl
    sp = start_sealpost(upstream, proxy={"tls_cert": str(pki.server.cert_path),
                                         "tls_key": str(pki.server.key_path)})
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd("STARTTLS"), 220, "2.0.0")
        ctx = _ssl.create_default_context(cafile=str(pki.ca_path))
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")   # verifies
        assert_reply(c.cmd("NOOP"), 250, "2.0.0")


# -- logging ----------------------------------------------------------------------------------------

def test_one_log_line_per_transaction(start_sealpost, upstream):
    sp = start_sealpost(upstream, extra={"log": {"level": "info"}})
    msg = messages.simple(frm=FROM, to=TO)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    upstream.wait_for(1)
    sp.wait_log(re.escape(TO) + r".*\b250\b|\b250\b.*" + re.escape(TO))
    lines = [l for l in sp.log().splitlines() if FROM in l and TO in l]
    assert len(lines) == 1, f"expected one transaction line naming sender and recipient:\n" + \
        "\n".join(lines)
    line = lines[0]
    assert str(len(msg)) in line, f"size {len(msg)} not in {line!r}"
    assert "plain" in line, f"the recipient's form is not in {line!r}"


def test_log_names_the_transaction_but_no_secrets(start_sealpost, upstream):
    sp = start_sealpost(upstream, users={CLIENT_USER: CLIENT_PASSWORD})
    token = messages.unique_token()
    msg = messages.simple(frm=FROM, to=TO,
                          body=f"secret body {token}".encode())
    with sp.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert_reply(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD), 235, "2.7.0")
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    upstream.wait_for(1)
    log = sp.wait_log(re.escape(TO)).string
    assert FROM in log
    for secret in (token, CLIENT_PASSWORD, TEST_PASSWORD,
                   base64.b64encode(f"\0{CLIENT_USER}\0{CLIENT_PASSWORD}".encode()).decode(),
                   base64.b64encode(f"\0{TEST_USER}\0{TEST_PASSWORD}".encode()).decode(),
                   base64.b64encode(TEST_PASSWORD.encode()).decode(),
                   base64.b64encode(CLIENT_PASSWORD.encode()).decode()):
        assert secret not in log, f"the log contains a secret or the body: {secret!r}"
