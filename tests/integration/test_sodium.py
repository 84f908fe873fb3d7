"""The sodium form through the real proxy (issue 5): a registered recipient's
copy carries no plaintext; `sealpost open` restores the client's message
byte for byte (attachments included); wrong key, tampered, truncated and
unknown-version copies fail with nothing on stdout; a 25 MB message round
trips; To/Cc share one copy and a Bcc recipient gets their own."""
from __future__ import annotations

import base64
import email
import email.policy
import re
import subprocess
from pathlib import Path

import pytest

import messages
from checks import assert_reply
from sealpost import base_env
from sodiumkeys import SodiumKey, write_recipients

FROM = "alice@example.com"
BOB = "bob@example.net"
CAROL = "carol@example.org"
DAVE = "dave@example.org"


def strip_private(msg: bytes) -> bytes:
    """What the recipient is meant to read: the client's message minus Bcc and
    X-Sealpost-* header fields (folded lines included)."""
    head, body = msg.split(b"\r\n\r\n", 1)
    out, skip = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].lower()
        skip = name == b"bcc" or name.startswith(b"x-sealpost-")
        if not skip:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


@pytest.fixture
def keys(sealpost_bin, tmp_path):
    return {a: SodiumKey.make(sealpost_bin, tmp_path / "keys", a) for a in (BOB, CAROL, DAVE)}


@pytest.fixture
def sodium_sp(start_sealpost, upstream, tmp_path, keys):
    rf = write_recipients(tmp_path / "sodium-recipients", keys.values())
    gnupg = tmp_path / "empty-gnupg"           # a keyring with no keys in it
    gnupg.mkdir(mode=0o700, exist_ok=True)
    return start_sealpost(upstream, extra={"sodium": {"recipients": str(rf)},
                                           "policy": {"no_key": "reject"},
                                           "pgp": {"gnupg_home": str(gnupg)}})


def sealed_part(copy: bytes) -> bytes:
    m = email.message_from_bytes(copy, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/mixed", m["Content-Type"]
    parts = m.get_payload()
    assert parts[0].get_content_type() == "text/plain"
    assert b"sealpost open" in parts[0].get_payload(decode=True)
    assert parts[1].get_content_type() == "application/x-sealpost"
    assert parts[1].get_filename() == "message.sealpost"
    return parts[1].get_payload(decode=True)


def run_open(binary: Path, key: SodiumKey, data: bytes, tmp: Path) -> subprocess.CompletedProcess:
    f = tmp / "in.eml"
    f.write_bytes(data)
    return subprocess.run([str(binary), "open", "-k", str(key.keyfile), str(f)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=base_env(tmp), timeout=120)


def test_round_trip_shared_copy_and_bcc(sodium_sp, upstream, keys, sealpost_bin, tmp_path):
    msg = messages.rich(frm=FROM, to=BOB)
    # Cc carol, Bcc dave: one copy for bob+carol, one of its own for dave.
    to_line = b"To: Bob <" + BOB.encode() + b">\r\n"
    assert to_line in msg
    msg = msg.replace(to_line, to_line + b"Cc: " + CAROL.encode() + b"\r\nBcc: " + DAVE.encode() +
                      b"\r\nX-Sealpost-Hint: private note\r\n", 1)
    with sodium_sp.client() as c:
        c.ehlo()
        replies = c.transaction(FROM, [BOB, CAROL, DAVE], msg)
        assert_reply(replies[-1], 250, "2.0.0")
    got = upstream.wait_for(2)
    by = {tuple(sorted(r.rcpt_tos)): r for r in got}
    assert set(by) == {(BOB, CAROL), (DAVE,)}, list(by)
    want = strip_private(msg)
    secrets = [b"Subject: " + s for s in re.findall(rb"(?m)^Subject: (.*)\r$", msg)]
    for rec in got:
        raw = rec.content
        assert not re.search(rb"(?im)^(bcc|x-sealpost-[a-z-]*):", raw)
        assert re.search(rb"(?m)^Subject: \.\.\.\r$", raw)
        for s in secrets + [b"private note"]:
            assert s not in raw, f"{s!r} in clear"
        # The attachment's text and file name are inside only.
        for chunk in re.findall(rb'filename="?([^"\r\n;]+)', msg):
            assert chunk not in raw, chunk
        sealed_part(raw)
    for who in (BOB, CAROL):
        assert keys[who].open(sealpost_bin, by[(BOB, CAROL)].content, tmp_path / who) == want
    assert keys[DAVE].open(sealpost_bin, by[(DAVE,)].content, tmp_path / DAVE) == want
    # dave's key does not open the shared copy; bob's does not open dave's.
    assert run_open(sealpost_bin, keys[DAVE], by[(BOB, CAROL)].content, tmp_path).returncode == 1
    assert run_open(sealpost_bin, keys[BOB], by[(DAVE,)].content, tmp_path).returncode == 1


def _reencode(copy: bytes, sealed: bytes) -> bytes:
    """The same copy with a different sealed attachment."""
    b64 = base64.encodebytes(sealed).replace(b"\n", b"\r\n")
    head, _, rest = copy.partition(b"Content-Type: application/x-sealpost")
    hdrs, _, tail = rest.partition(b"\r\n\r\n")
    boundary_end = tail.find(b"\r\n--")
    return head + b"Content-Type: application/x-sealpost" + hdrs + b"\r\n\r\n" + b64 + tail[boundary_end:]


@pytest.mark.parametrize("damage", ["wrong-key", "tampered", "truncated", "unknown-version", "extended"])
def test_damaged_copies_fail_with_nothing_on_stdout(damage, sodium_sp, upstream, keys, sealpost_bin,
                                                    tmp_path):
    msg = messages.rich(frm=FROM, to=BOB)
    with sodium_sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [BOB], msg)[-1], 250, "2.0.0")
    copy = upstream.wait_for(1)[0].content
    sealed = sealed_part(copy)
    key = keys[BOB]
    if damage == "wrong-key":
        key = keys[CAROL]
        bad = copy
    elif damage == "tampered":
        b = bytearray(sealed)
        b[len(b) // 2] ^= 0x01
        bad = _reencode(copy, bytes(b))
    elif damage == "truncated":
        bad = _reencode(copy, sealed[: len(sealed) - 40])
    elif damage == "extended":
        bad = _reencode(copy, sealed + b"\x00" * 64)
    else:
        assert sealed[:8] == b"SPSODIUM", sealed[:16]
        bad = _reencode(copy, sealed[:8] + b"\x09" + sealed[9:])
    p = run_open(sealpost_bin, key, bad, tmp_path)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stdout == b"", "partial plaintext on stdout"
    err = p.stderr.decode()
    assert err.startswith("sealpost: open: ") and err.count("\n") == 1, err
    if damage == "unknown-version":
        assert "version" in err, err


def test_25_mb_round_trip(sodium_sp, upstream, keys, sealpost_bin, tmp_path):
    msg = messages.sized(25 * 1024 * 1024, frm=FROM, to=BOB)
    with sodium_sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [BOB], msg)[-1], 250, "2.0.0")
    copy = upstream.wait_for(1, timeout=120)[0].content
    f = tmp_path / "big.eml"
    f.write_bytes(copy)
    # Bounded memory in `open`: measure its peak RSS.
    p = subprocess.run(["/usr/bin/time", "-f", "%M", str(sealpost_bin), "open", "-k", str(keys[BOB].keyfile),
                        str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env(tmp_path),
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout == strip_private(msg)
    peak_kb = int(p.stderr.decode().strip().splitlines()[-1])
    # Chunked: the 25 MB message never needs to be in memory at once (ASan builds use more).
    assert peak_kb < 64 * 1024, f"sealpost open peaked at {peak_kb} KiB for a 25 MB message"


def test_vectors_verify_with_an_independent_implementation():
    """tests/vectors: the committed known-answer vectors, checked by a second
    implementation (PyNaCl) of docs/formats.md."""
    root = Path(__file__).resolve().parents[1] / "vectors"
    p = subprocess.run(["/usr/bin/python3", str(root / "vectors.py"), "verify", str(root)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert p.returncode == 0, p.stdout.decode()[-3000:]
