"""docs/clients.md works as written: every command the guide gives for a
command-line client (mutt, msmtp, curl, swaks, s-nail) is run, with the
guide's host names and options, against a real sealpost, and the upstream
must get the message.

The commands and files come from docs/clients.md itself, from the code
blocks marked with an HTML comment right before them (invisible on the
rendered page), so the guide and this test cannot drift apart:

    <!-- guide-test: file PATH VARIANT... -->      write the block to PATH
    <!-- guide-test: append PATH VARIANT... -->    append the block to PATH
    <!-- guide-test: replace "LINE" PATH VARIANT... -->  put the block in place of LINE
    <!-- guide-test: run VARIANT... -->            run the block with sh -e

A variant (say `msmtp-trust-file`) is one way of using one client; its run
blocks run in document order, in a fresh home directory holding its files.
Only two things are changed from what the guide says: its port 2587 becomes
the test sealpost's port, and the shortened fingerprint `5C:53:DC:AB:...:E4:31`
becomes the real one.  sealpost's generated certificate is where the guide
says a desktop user has it, ~/.local/state/sealpost/local.crt.  Variants whose
name ends in "-tls" must have used STARTTLS (sealpost logs it); the others
must not have."""
from __future__ import annotations

import email
import email.policy
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "clients.md"

GUIDE_PORT = "2587"
FINGERPRINT_PLACEHOLDER = re.compile(r"\b[0-9A-F]{2}(?::[0-9A-F]{2})*:\.\.\.(?::[0-9A-F]{2})+\b")
MARK = re.compile(r"^<!-- guide-test: (.*) -->$")

# The variant name's first part -> the program it needs.
CLIENTS = {"mutt": "mutt", "msmtp": "msmtp", "curl": "curl", "swaks": "swaks", "snail": "s-nail"}

# What every variant sends (the guide's examples all say this).
SENDER = "me@example.com"
RECIPIENT = "bob@example.org"
SUBJECT = "hello"
BODY = "Hi Bob"


@dataclass
class Variant:
    name: str
    # (verb, path, text, line_to_replace) in document order
    files: list[tuple[str, str, str, str]] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)


def parse_guide(text: str) -> dict[str, Variant]:
    lines = text.splitlines()
    variants: dict[str, Variant] = {}
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        i += 1
        if not m:
            continue
        words = shlex.split(m.group(1))
        assert lines[i].startswith("```"), f"docs/clients.md:{i + 1}: a guide-test mark not followed by a code block"
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        block = "\n".join(lines[i + 1:j]) + "\n"
        i = j + 1
        verb = words[0]
        if verb == "run":
            names, what = words[1:], ("run", "", block, "")
        elif verb in ("file", "append"):
            names, what = words[2:], (verb, words[1], block, "")
        elif verb == "replace":
            names, what = words[3:], (verb, words[2], block, words[1])
        else:
            raise AssertionError(f"unknown guide-test verb {verb!r}")
        assert names, f"guide-test {verb} names no variant"
        for n in names:
            v = variants.setdefault(n, Variant(n))
            if verb == "run":
                v.scripts.append(block)
            else:
                v.files.append(what)
    return variants


VARIANTS = parse_guide(GUIDE.read_text())


def test_guide_marks_every_client_with_and_without_tls():
    """The marks are there: a plain and a STARTTLS variant for each client,
    and every variant that has files also has something to run."""
    for client in CLIENTS:
        for kind in ("plain", "tls"):
            assert any(n.startswith(client + "-") and n.endswith("-" + kind) for n in VARIANTS), \
                f"docs/clients.md has no marked {client} {kind} example"
    for v in VARIANTS.values():
        assert v.scripts, f"variant {v.name} has files but nothing to run"


def fingerprint(cert: Path) -> str:
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, check=True, text=True).stdout
    return out.strip().split("=", 1)[1]


def localise(text: str, port: int, fpr: str) -> str:
    return FINGERPRINT_PLACEHOLDER.sub(fpr, text.replace(GUIDE_PORT, str(port)))


def expand(home: Path, path: str) -> Path:
    assert path.startswith("~/"), path
    return home / path[2:]


def swap_hosts(text: str) -> str:
    return re.sub(r"127\.0\.0\.1|localhost", lambda m: "localhost" if m.group(0) == "127.0.0.1" else "127.0.0.1",
                  text)


def run_variant(start_sealpost, upstream, tmp_path, name: str, edit=lambda t: t):
    """Set up the variant's files in a fresh home and run its blocks, each
    text passed through edit() after localising.  Returns (sealpost, home,
    the last CompletedProcess), stopping at the first block that fails."""
    v = VARIANTS[name]
    program = CLIENTS[name.split("-")[0]]
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (scripts/deps.sh test installs it)")
    sp = start_sealpost(upstream)
    cert = sp.workdir / "state" / "local.crt"
    fpr = fingerprint(cert)

    home = tmp_path / "home"
    (home / ".local" / "state" / "sealpost").mkdir(parents=True)
    shutil.copy(cert, home / ".local" / "state" / "sealpost" / "local.crt")
    for verb, path, text, old in v.files:
        p = expand(home, path)
        text = edit(localise(text, sp.port, fpr))
        if verb == "file":
            p.write_text(text)
        elif verb == "append":
            p.write_text(p.read_text() + text)
        else:
            cur = p.read_text()
            assert cur.count(old + "\n") == 1, f"{path} has no single line {old!r} to replace"
            p.write_text(cur.replace(old + "\n", text))
        p.chmod(0o600)          # msmtp insists on it for a file with a password

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           # s-nail's dead.letter (written only when sending failed)
           "DEAD": str(home / "dead.letter")}
    for script in v.scripts:
        script = edit(localise(script, sp.port, fpr))
        p = subprocess.run(["sh", "-e", "-c", script], cwd=home, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=90)
        p.script = script
        if p.returncode != 0:
            break
    return sp, home, p


def explain(p) -> str:
    return (f"$ {p.script}\nexit {p.returncode}\n--- stdout\n{p.stdout.decode(errors='replace')[-3000:]}"
            f"\n--- stderr\n{p.stderr.decode(errors='replace')[-3000:]}")


def assert_delivered(sp, upstream, name: str) -> bytes:
    [m] = upstream.wait_for(1)
    assert m.mail_from == SENDER
    assert m.rcpt_tos == [RECIPIENT]
    msg = email.message_from_bytes(m.content, policy=email.policy.default)
    assert msg["Subject"] == SUBJECT
    assert BODY in msg.get_content()
    # msmtp's example sets a per-message header: sealpost never passes it on.
    assert "X-Sealpost-Password" not in msg
    started_tls = sp.log().count("TLS started")
    if name.endswith("-tls"):
        assert started_tls >= 1, f"{name} did not use STARTTLS"
    else:
        assert started_tls == 0, f"{name} used TLS, but the guide says it does not"
    return m.content


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_guide_command_delivers(start_sealpost, upstream, tmp_path, name):
    sp, home, p = run_variant(start_sealpost, upstream, tmp_path, name)
    assert p.returncode == 0, explain(p)
    content = assert_delivered(sp, upstream, name)
    if name.startswith("curl-"):
        # curl --crlf sends the file, line ends made CRLF, and nothing else.
        # (swaks adds an empty last line.)
        assert content == (home / "message.txt").read_bytes().replace(b"\n", b"\r\n"), \
            "the message did not arrive exactly as written in message.txt"
    if name.startswith("mutt-"):
        assert BODY in (home / "Mail" / "sent").read_text(), "mutt kept no local Sent copy"


TLS_VARIANTS = sorted(n for n in VARIANTS if n.endswith("-tls"))


@pytest.mark.parametrize("name", TLS_VARIANTS)
def test_guide_table_of_host_names(start_sealpost, upstream, tmp_path, name):
    """The guide's table: with STARTTLS and the certificate checked, each
    client also works with the other name (127.0.0.1 <-> localhost), except
    s-nail, which refuses 127.0.0.1 and sends nothing."""
    sp, home, p = run_variant(start_sealpost, upstream, tmp_path, name, edit=swap_hosts)
    if name.startswith("snail-"):
        assert "127.0.0.1" in p.script
        assert p.returncode != 0, explain(p)
        assert "TLS certificate does not match" in p.stderr.decode(errors="replace"), explain(p)
        assert upstream.messages == []
    else:
        assert p.returncode == 0, explain(p)
        assert_delivered(sp, upstream, name)


def test_guide_curl_without_crlf_delivers_the_same(start_sealpost, upstream, tmp_path):
    """The guide says curl without --crlf delivers the same message from a
    loopback client ([proxy] bare_lf = accept-trusted)."""
    sp, home, p = run_variant(start_sealpost, upstream, tmp_path, "curl-plain",
                              edit=lambda t: t.replace("curl --crlf ", "curl "))
    assert "--crlf" not in p.script
    assert p.returncode == 0, explain(p)
    content = assert_delivered(sp, upstream, "curl-plain")
    assert content == (home / "message.txt").read_bytes().replace(b"\n", b"\r\n")


def test_generated_certificate_names_localhost_and_both_loopback_addresses(start_sealpost, upstream):
    """What the guide's table rests on: the generated certificate names the DNS
    name localhost (for clients that match only DNS names) and the IP
    addresses 127.0.0.1 and ::1."""
    import ipaddress

    from cryptography import x509
    sp = start_sealpost(upstream)
    cert = x509.load_pem_x509_certificate((sp.workdir / "state" / "local.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sorted(map(str, san.get_values_for_type(x509.IPAddress))) == ["127.0.0.1", "::1"]
    assert all(isinstance(a, (ipaddress.IPv4Address, ipaddress.IPv6Address))
               for a in san.get_values_for_type(x509.IPAddress))
