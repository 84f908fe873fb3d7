"""The command line: --help, config errors (exit 2, naming FILE:LINE, section,
key and reason), refusing an open relay, and `sealpost check`."""
from __future__ import annotations

import re
import socket

import pytest

from conftest import default_config
from sealpost import free_port, render_config
from waits import WAIT


def config_text(up, tmp_path, **sections) -> str:
    cfg = default_config(up, tmp_path, free_port())
    for s, keys in sections.items():
        cfg.setdefault(s, {}).update(keys)
    return render_config(cfg)


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in config")


# -- help --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (["--help"], ["run", "check"]),
    (["run", "--help"], ["-c"]),
    (["check", "--help"], ["-c", "--rcpt"]),
    (["--help"], ["outbox"]),
    (["outbox", "--help"], ["-c", "outbox_listen", "token"]),
])
def test_help(cli, args, words):
    r = cli(*args)
    assert r.rc == 0, str(r)
    out = r.stdout + r.stderr
    for w in words:
        assert w in out, f"{w!r} not in help:\n{out}"


@pytest.mark.parametrize("line,reason", [
    (b"a" * 1024, "longer than 1023 bytes"),
    (b"", "empty password"),
])
def test_passwd_refuses_a_password_with_one_reason(cli, line, reason):
    """One line on stderr that says why, never a shortened secret, no hash."""
    r = cli("passwd", "alice", input=line + b"\n")
    assert r.rc == 2, str(r)
    assert r.stderr.strip().splitlines() == [f"sealpost: passwd: {reason}"], str(r)
    assert r.stdout == ""


def test_passwd_takes_1023_bytes(cli):
    r = cli("passwd", "alice", input=b"a" * 1023 + b"\n", timeout=60)
    assert r.rc == 0, str(r)
    assert r.stdout.startswith("alice:$argon2id$"), str(r)


def test_unknown_command_is_usage_error(cli):
    r = cli("frobnicate")
    assert r.rc == 2, str(r)
    assert r.stderr.strip(), "no message on stderr"


def test_unknown_option_is_usage_error(cli, upstream, write_file, tmp_path):
    f = write_file("sealpost.conf", config_text(upstream, tmp_path))
    r = cli("run", "-c", f, "--no-such-option")
    assert r.rc == 2, str(r)


def test_missing_config_file(cli, tmp_path):
    r = cli("run", "-c", tmp_path / "does-not-exist.conf")
    assert r.rc == 2, str(r)
    assert "does-not-exist.conf" in r.stderr, str(r)


# -- config errors -----------------------------------------------------------------------------

def test_unknown_key(cli, upstream, write_file, tmp_path):
    text = config_text(upstream, tmp_path, proxy={"bogus_key": "1"})
    f = write_file("sealpost.conf", text)
    r = cli("run", "-c", f, timeout=WAIT)
    assert r.rc == 2, str(r)
    n = line_of(text, "bogus_key")
    assert f"{f}:{n}: [proxy] bogus_key: unknown key" in r.stderr, str(r)
    assert len(r.stderr.strip().splitlines()) == 1, f"more than one line on stderr:\n{r.stderr}"


def test_unknown_section(cli, upstream, write_file, tmp_path):
    text = config_text(upstream, tmp_path) + "[bogus]\nkey = 1\n"
    f = write_file("sealpost.conf", text)
    r = cli("run", "-c", f, timeout=WAIT)
    assert r.rc == 2, str(r)
    assert str(f) in r.stderr and "[bogus]" in r.stderr, str(r)


@pytest.mark.parametrize("section,key,value", [
    ("proxy", "max_recipients", "abc"),
    ("proxy", "max_recipients", "-1"),
    ("proxy", "max_connections", "0"),
    ("proxy", "max_message_size", "lots"),
    ("proxy", "auth", "maybe"),
    ("proxy", "listen", "127.0.0.1"),
    ("proxy", "listen", "127.0.0.1:99999"),
    ("proxy", "listen", "127.0.0.1:2525 ssl"),
    ("proxy", "timeout", "5 parsecs"),
    ("upstream", "tls", "sometimes"),
    ("upstream", "port", "smtp"),
    ("policy", "no_key", "encrypt-somehow"),
    ("log", "level", "chatty"),
    ("link", "version", "3"),
    ("link", "version", "0"),
])
def test_bad_value(cli, upstream, write_file, tmp_path, section, key, value):
    text = config_text(upstream, tmp_path, **{section: {key: value}})
    f = write_file("sealpost.conf", text)
    r = cli("run", "-c", f, timeout=WAIT)
    assert r.rc == 2, str(r)
    # the line with the bad value
    n = [i for i, l in enumerate(text.splitlines(), start=1)
         if l.startswith(f"{key} = {value}")][0]
    assert re.search(rf"{re.escape(str(f))}:{n}: \[{section}\] {key}: \S", r.stderr), str(r)


def test_bad_value_is_reported_by_check_too(cli, upstream, write_file, tmp_path):
    text = config_text(upstream, tmp_path, proxy={"max_recipients": "abc"})
    f = write_file("sealpost.conf", text)
    r = cli("check", "-c", f, timeout=WAIT)
    assert r.rc == 2, str(r)
    assert f"[proxy] max_recipients" in r.stderr, str(r)


def test_config_comments_semicolon_and_hash(cli, upstream, write_file, tmp_path):
    """Both comment styles (docs/configuration.md, "Syntax"), inline and on their own line."""
    text = config_text(upstream, tmp_path).replace(
        "[proxy]\n", "[proxy]\n; a comment\n# another\n", 1).replace(
        "auth = none", "auth = none            ; inline comment", 1)
    f = write_file("sealpost.conf", text)
    r = cli("check", "-c", f, timeout=30)
    assert r.rc == 0, str(r)


@pytest.mark.parametrize("listen", ["0.0.0.0:{p}", "127.0.0.1:{p}, 0.0.0.0:{q}", "[::]:{p}"])
def test_public_listener_without_auth_refuses_to_start(cli, upstream, write_file, tmp_path, listen):
    p, q = free_port(), free_port()
    text = config_text(upstream, tmp_path, proxy={"listen": listen.format(p=p, q=q), "auth": "none"})
    f = write_file("sealpost.conf", text)
    r = cli("run", "-c", f, timeout=WAIT)
    assert r.rc == 2, str(r)
    assert "auth" in r.stderr.lower(), str(r)
    with socket.socket() as s:           # and it never listened
        assert s.connect_ex(("127.0.0.1", p)) != 0


def test_upstream_tls_none_needs_a_loopback_host(cli, upstream, write_file, tmp_path):
    text = config_text(upstream, tmp_path, upstream={"tls": "none", "host": "smtp.example.com"})
    f = write_file("sealpost.conf", text)
    r = cli("run", "-c", f, timeout=WAIT)
    assert r.rc == 2, str(r)
    assert "[upstream]" in r.stderr and "tls" in r.stderr, str(r)


def test_port_in_use_is_a_runtime_error(cli, upstream, write_file, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        text = config_text(upstream, tmp_path, proxy={"listen": f"127.0.0.1:{port}"})
        f = write_file("sealpost.conf", text)
        r = cli("run", "-c", f, timeout=WAIT)
    assert r.rc == 1, str(r)
    assert str(port) in r.stderr, str(r)


# -- sealpost check ------------------------------------------------------------------------------

def test_check_good_upstream(cli, upstream, write_file, tmp_path):
    f = write_file("sealpost.conf", config_text(upstream, tmp_path))
    r = cli("check", "-c", f, timeout=60)
    assert r.rc == 0, str(r)
    out = (r.stdout + r.stderr).lower()
    for step in ("connect", "tls", "certificate", "verif", "auth"):
        assert step in out, f"check output does not mention {step!r}:\n{r}"
    # it really authenticated, over TLS, and sent no mail
    assert any(a[0] == upstream.username and a[1] and a[2] for a in upstream.auths()), \
        upstream.events_summary()
    assert upstream.messages == []


@pytest.mark.parametrize("upstream,pattern", [
    (dict(cert="untrusted"), r"certificate|verif|issuer"),
    (dict(cert="wrong_host"), r"host ?name|mismatch|certificate"),
    (dict(cert="expired"), r"expired"),
    (dict(mode="plain", require_auth=False), r"STARTTLS"),
], indirect=["upstream"])
def test_check_bad_upstream_exits_1(cli, upstream, write_file, tmp_path, pattern):
    text = config_text(upstream, tmp_path, upstream={"tls": "starttls"})
    f = write_file("sealpost.conf", text)
    r = cli("check", "-c", f, timeout=60)
    assert r.rc == 1, str(r)
    assert re.search(pattern, r.stdout + r.stderr, re.I), str(r)
    assert upstream.auths() == [], "credentials sent to an upstream that failed verification"


def test_check_upstream_down_exits_1(cli, upstream, write_file, tmp_path):
    f = write_file("sealpost.conf", config_text(upstream, tmp_path))
    upstream.stop()
    r = cli("check", "-c", f, timeout=60)
    assert r.rc == 1, str(r)


def test_check_bad_credentials_exits_1(cli, upstream, write_file, tmp_path):
    pw = write_file("bad.pass", "wrong\n")
    f = write_file("sealpost.conf", config_text(upstream, tmp_path,
                                                upstream={"password_file": str(pw)}))
    r = cli("check", "-c", f, timeout=60)
    assert r.rc == 1, str(r)
    assert re.search(r"auth|535", r.stdout + r.stderr, re.I), str(r)


def test_check_rcpt_reports_plain_form(cli, upstream, write_file, tmp_path):
    f = write_file("sealpost.conf", config_text(upstream, tmp_path))
    r = cli("check", "-c", f, "--rcpt", "bob@example.net", timeout=60)
    assert r.rc == 0, str(r)
    assert "bob@example.net" in r.stdout and "plain" in r.stdout.lower(), str(r)
