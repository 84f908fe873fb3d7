"""Self-tests of the harness, without sealpost: the PKI is what it claims, the
aiosmtpd upstream records real clients byte for byte, its variants misbehave as
scripted.  If these fail, no other result of the suite means anything."""
from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess

import pytest

import clients
import messages
from clients import RawClient, assert_reply
from upstream import TEST_PASSWORD, TEST_USER


# -- PKI -----------------------------------------------------------------------------

def _openssl_verify(ca, cert, *extra):
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), *extra, str(cert)],
                          capture_output=True, text=True)


def test_pki_server_cert_verifies_for_localhost_and_ip(pki):
    r = _openssl_verify(pki.ca_path, pki.server.cert_path, "-verify_hostname", "localhost")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _openssl_verify(pki.ca_path, pki.server.cert_path, "-verify_ip", "127.0.0.1")
    assert r.returncode == 0, r.stdout + r.stderr


def test_pki_wrong_host_cert_fails_host_check_only(pki):
    assert _openssl_verify(pki.ca_path, pki.wrong_host.cert_path).returncode == 0
    r = _openssl_verify(pki.ca_path, pki.wrong_host.cert_path, "-verify_hostname", "localhost")
    assert r.returncode != 0 and "hostname mismatch" in (r.stdout + r.stderr)


def test_pki_expired_cert_is_expired(pki):
    r = _openssl_verify(pki.ca_path, pki.expired.cert_path)
    assert r.returncode != 0 and "expired" in (r.stdout + r.stderr)


def test_pki_untrusted_cert_does_not_chain_to_test_ca(pki):
    r = _openssl_verify(pki.ca_path, pki.untrusted.cert_path)
    assert r.returncode != 0
    assert _openssl_verify(pki.untrusted_ca_path, pki.untrusted.cert_path).returncode == 0


# -- upstream: real clients, byte for byte ---------------------------------------------

def test_upstream_swaks_starttls_auth_plain_bytes_equal(upstream, tmp_path):
    msg = messages.rich()
    r = clients.swaks(upstream.port, "alice@example.com", ["bob@example.net"], msg, tmp_path,
                      tls="starttls", user=TEST_USER, password=TEST_PASSWORD)
    assert r.rc == 0, str(r)
    [m] = upstream.wait_for(1)
    assert m.content == msg
    assert m.tls and m.tls_version in ("TLSv1.2", "TLSv1.3")
    assert m.auth_user == TEST_USER
    assert m.mail_from == "alice@example.com" and m.rcpt_tos == ["bob@example.net"]


def test_upstream_swaks_auth_login(upstream, tmp_path):
    r = clients.swaks(upstream.port, "a@example.com", ["b@example.net"], messages.simple(), tmp_path,
                      tls="starttls", user=TEST_USER, password=TEST_PASSWORD, auth="LOGIN")
    assert r.rc == 0, str(r)
    assert upstream.wait_for(1)[0].auth_user == TEST_USER
    assert any(a[3] == "LOGIN" and a[1] for a in upstream.auths())


def test_upstream_curl_verified_starttls_bytes_equal(upstream, tmp_path):
    msg = messages.rich()
    f = tmp_path / "m.eml"
    f.write_bytes(msg)
    r = clients._run(["curl", "--silent", "--show-error", "--url",
                      f"smtp://localhost:{upstream.port}", "--ssl-reqd",
                      "--cacert", str(upstream.ca_path), "--user", f"{TEST_USER}:{TEST_PASSWORD}",
                      "--mail-from", "alice@example.com", "--mail-rcpt", "bob@example.net",
                      "--upload-file", str(f)])
    assert r.rc == 0, str(r)
    [m] = upstream.wait_for(1)
    assert m.content == msg
    assert m.sni == "localhost"


def test_upstream_smtplib_smtputf8(upstream):
    msg = messages.simple(body="Grüße ✓".encode())
    ctx = ssl.create_default_context(cafile=str(upstream.ca_path))
    with smtplib.SMTP("localhost", upstream.port, timeout=10) as s:
        s.starttls(context=ctx)
        s.login(TEST_USER, TEST_PASSWORD)
        s.sendmail("jörg@example.com", ["müller@example.net"], msg,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    [m] = upstream.wait_for(1)
    assert m.content == msg
    assert m.mail_from == "jörg@example.com" and m.rcpt_tos == ["müller@example.net"]
    assert "SMTPUTF8" in m.mail_options


def test_upstream_raw_client_dot_stuffing(upstream):
    msg = messages.rich()
    with RawClient(upstream.host, upstream.port) as c:
        assert_reply(c.greeting, 220)
        assert "STARTTLS" in c.ehlo().keywords()
        c.starttls(expect=(220, None))
        assert "AUTH" in c.ehlo().keywords()
        assert_reply(c.auth_plain(TEST_USER, TEST_PASSWORD), 235, "2.7.0")
        replies = c.transaction("a@example.com", ["b@example.net"], msg)
        assert_reply(replies[-1], 250)
    assert upstream.wait_for(1)[0].content == msg


# -- upstream variants ------------------------------------------------------------------

def test_upstream_requires_starttls_and_auth(upstream):
    with RawClient(upstream.host, upstream.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 530
        assert c.auth_plain(TEST_USER, TEST_PASSWORD).code in (530, 538)
        c.starttls(expect=(220, None))
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 530    # AUTH required
        assert_reply(c.auth_plain(TEST_USER, "wrong"), 535, "5.7.8")
    assert upstream.auths()[-1][:2] == (TEST_USER, False)


@pytest.mark.upstream(mode="tls")
def test_upstream_implicit_tls(upstream):
    ctx = ssl.create_default_context(cafile=str(upstream.ca_path))
    msg = messages.simple()
    with smtplib.SMTP_SSL("localhost", upstream.port, context=ctx, timeout=10) as s:
        s.login(TEST_USER, TEST_PASSWORD)
        s.sendmail("a@example.com", ["b@example.net"], msg)
    [m] = upstream.wait_for(1)
    assert m.tls and m.content == msg and m.auth_user == TEST_USER


@pytest.mark.upstream(mode="plain")
def test_upstream_plain_offers_no_starttls(upstream):
    with RawClient(upstream.host, upstream.port) as c:
        assert "STARTTLS" not in c.ehlo().keywords()
        replies = c.transaction("a@example.com", ["b@example.net"], messages.simple())
        assert_reply(replies[-1], 250)
    assert upstream.wait_for(1)[0].tls is False


@pytest.mark.parametrize("upstream,error", [
    (dict(cert="wrong_host"), "Hostname mismatch"),
    (dict(cert="untrusted"), "unable to get local issuer certificate"),
    (dict(cert="expired"), "certificate has expired"),
], indirect=["upstream"])
def test_upstream_bad_cert_variants_fail_verification(upstream, error):
    ctx = ssl.create_default_context(cafile=str(upstream.ca_path))
    with smtplib.SMTP("localhost", upstream.port, timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError) as ei:
            s.starttls(context=ctx)
    assert error.lower() in str(ei.value).lower()


@pytest.mark.upstream(script=dict(rcpt_replies={"nobody@example.net": "550 5.1.1 No such user"},
                                  data_replies=["451 4.3.0 Try again later"]))
def test_upstream_script(upstream):
    with RawClient(upstream.host, upstream.port) as c:
        c.ehlo()
        c.starttls(expect=(220, None))
        c.ehlo()
        c.auth_plain(TEST_USER, TEST_PASSWORD)
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert_reply(c.cmd("RCPT TO:<nobody@example.net>"), 550, "5.1.1")
        r = c.transaction("a@example.com", ["b@example.net"], messages.simple())
        # the MAIL above is still open: nested MAIL is refused by aiosmtpd
        assert r[0].code == 503
        assert c.cmd("RSET").code == 250
        r = c.transaction("a@example.com", ["b@example.net"], messages.simple())
        assert_reply(r[-1], 451, "4.3.0")
        r = c.transaction("a@example.com", ["b@example.net"], messages.simple())
        assert_reply(r[-1], 250)
    assert len(upstream.wait_for(1)) == 1


def test_upstream_stop_and_restart(upstream):
    upstream.stop()
    with pytest.raises(OSError):
        socket.create_connection((upstream.host, upstream.port), timeout=1).close()
    upstream.start()
    with RawClient(upstream.host, upstream.port) as c:
        assert_reply(c.greeting, 220)


def test_upstream_wait_for_times_out(upstream):
    with pytest.raises(AssertionError, match="expected 1"):
        upstream.wait_for(1, timeout=0.2)


def test_helpers_dot_stuff():
    assert clients.dot_stuff(b".\r\n..a\r\nb\r\n") == b"..\r\n...a\r\nb\r\n"


@pytest.mark.parametrize("upstream,tls", [
    (dict(mode="starttls"), "starttls"),
    (dict(mode="tls"), "implicit"),
], indirect=["upstream"])
@pytest.mark.parametrize("client", ["swaks", "curl", "smtplib"])
def test_client_helpers_deliver_bytes_equal(upstream, tls, client, tmp_path):
    msg = messages.rich()
    kw = dict(tls=tls, user=TEST_USER, password=TEST_PASSWORD)
    if client == "smtplib":
        clients.smtplib_send(upstream.port, "a@example.com", ["b@example.net"], msg, **kw)
    else:
        r = getattr(clients, client)(upstream.port, "a@example.com", ["b@example.net"], msg,
                                     tmp_path, **kw)
        assert r.rc == 0, str(r)
    [m] = upstream.wait_for(1)
    assert m.content == msg
    assert m.tls and m.auth_user == TEST_USER


@pytest.mark.upstream(tls_max="TLSv1_1")
def test_upstream_can_offer_only_tls_1_1(upstream):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(upstream.ca_path))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with smtplib.SMTP("localhost", upstream.port, timeout=10) as s:
        s.starttls(context=ctx)
        assert s.sock.version() == "TLSv1.1"
    strict = ssl.create_default_context(cafile=str(upstream.ca_path))
    strict.minimum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP("localhost", upstream.port, timeout=10) as s:
        with pytest.raises(ssl.SSLError):
            s.starttls(context=strict)


# -- meson test ----------------------------------------------------------------------

def test_meson_test_runs_every_pytest_file_once():
    """`meson test -C BUILD` runs the unit tests and every file of this suite,
    each exactly once, against BUILD's own binaries (tests/meson.build)."""
    import json
    import os
    from pathlib import Path

    from sealpost import sealpost_binary

    build = Path(os.environ.get("SEALPOST_BUILD_DIR") or sealpost_binary().parent.parent).resolve()
    here = Path(__file__).resolve().parent
    r = subprocess.run(["meson", "introspect", "--tests", str(build)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    tests = json.loads(r.stdout)
    suites = {s.split(":")[-1] for t in tests for s in t["suite"]}
    assert {"unit", "integration", "viewer"} <= suites, suites

    runs: dict[str, int] = {}
    for t in tests:
        if not any(s.endswith((":integration", ":viewer")) for s in t["suite"]):
            continue
        cmd = t["cmd"]
        assert cmd[1:3] == ["-m", "pytest"], cmd
        assert t["env"]["SEALPOST_BIN"] == str(build / "cli" / "sealpost"), t["env"]
        assert t["env"]["SP_VIEWER_HARNESS"] == str(build / "tests" / "viewer_harness"), t["env"]
        ignored = {Path(a.split("=", 1)[1]).name for a in cmd if a.startswith("--ignore=")}
        for a in cmd[3:]:
            if a.startswith("-"):
                continue
            p = Path(a)
            if p.is_dir() and p.resolve() == here:
                files = [f.name for f in here.glob("test_*.py") if f.name not in ignored]
            elif p.suffix == ".py":
                files = [p.name]
            else:
                continue
            for f in files:
                runs[f] = runs.get(f, 0) + 1
    want = {f.name: 1 for f in here.glob("test_*.py")}
    assert runs == want, {f: n for f, n in {**want, **runs}.items() if runs.get(f, 0) != 1}
