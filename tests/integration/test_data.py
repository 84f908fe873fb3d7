"""DATA: size and line limits, bare LF, and SMTP smuggling.

End of data is exactly CRLF.CRLF, as sent; a bare CR anywhere in the data
makes the message fail with 550 5.5.2 after the real end of data, and nothing
that follows a fake end of data is ever executed (docs/limits.md, bare CR and
bare LF in DATA; docs/configuration.md, [proxy] bare_lf).  A bare
LF ends a line like CRLF for a trusted client (loopback or authenticated) with
[proxy] bare_lf = accept-trusted, the default, and fails the message with
bare_lf = reject; either way a "." line next to a bare LF fails the message,
so no fake end becomes a real one after normalisation.  The smuggling tests
run under both settings.  Each ends with a sentinel message on the same
session: the upstream must hold the sentinel and nothing else."""
from __future__ import annotations

import subprocess

import pytest

import messages
from checks import FROM, TO, assert_nothing_delivered, deliver_sentinel
from clients import assert_reply


def open_data(c):
    c.ehlo()
    assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
    assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 250, "2.1.5")
    r = c.cmd("DATA")
    assert_reply(r, 354, what="DATA")


# -- size ----------------------------------------------------------------------------------

def test_message_over_max_message_size(start_sealpost, upstream):
    sp = start_sealpost(upstream, proxy={"max_message_size": "10000"})
    with sp.client() as c:
        kw = c.ehlo().keywords()
        assert kw.get("SIZE") == "10000"
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 250, "2.1.5")
        assert_reply(c.cmd("DATA"), 354)
        # The whole body is sent before any reply: the 552 comes after the dot.
        c.send(messages.sized(50_000, frm=FROM, to=TO) + b".\r\n")
        assert_reply(c.reply(timeout=30), 552, "5.3.4", what="oversized message")
        assert c.pending(0.1) == b"", "more than one reply to the oversized message"
        deliver_sentinel(c, upstream)


def test_message_under_max_message_size(start_sealpost, upstream):
    sp = start_sealpost(upstream, proxy={"max_message_size": "10000"})
    msg = messages.sized(9000, frm=FROM, to=TO)
    assert len(msg) < 10000
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    assert upstream.wait_for(1)[0].content == msg


def test_large_message_is_relayed_intact(sp, upstream):
    """5 MB through the default limit: no truncation, no reordering."""
    msg = messages.sized(5_000_000, frm=FROM, to=TO)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg, mail_params=f"SIZE={len(msg)}")[-1],
                     250, "2.0.0")
    [m] = upstream.wait_for(1)
    assert m.content == msg


# -- line length -------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1001, 1002, 5000, 100_000])
def test_text_line_over_1000_octets(sp, upstream, length):
    """length counts the CRLF (RFC 5321 4.5.3.1.6: 1000 octets with CRLF)."""
    long_line = b"z" * (length - 2)
    body = messages.simple(frm=FROM, to=TO, body=b"before\r\n" + long_line + b"\r\nafter")
    with sp.client() as c:
        open_data(c)
        c.send(body + b".\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2", what=f"{length}-octet text line")
        assert c.pending(0.1) == b""
        deliver_sentinel(c, upstream)


def test_text_line_of_1000_octets_is_accepted(sp, upstream):
    line = b"q" * 998
    dotted = b"." + b"r" * 997          # 998 octets; 999 on the wire after stuffing
    msg = messages.simple(frm=FROM, to=TO, body=line + b"\r\n" + dotted)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    assert upstream.wait_for(1)[0].content == msg


# -- smuggling ---------------------------------------------------------------------------------

BARE_LF_MODES = ["accept-trusted", "reject"]


@pytest.fixture(params=BARE_LF_MODES)
def sp_mode(request, start_sealpost, upstream):
    """sealpost with [proxy] bare_lf = each setting (the test client is on loopback,
    so it is trusted: accept-trusted accepts its bare LFs)."""
    return start_sealpost(upstream, proxy={"bare_lf": request.param})


SMUGGLED = (b"MAIL FROM:<smuggler@evil.example>\r\n"
            b"RCPT TO:<victim@example.org>\r\n"
            b"DATA\r\n"
            b"From: smuggler@evil.example\r\nSubject: smuggled\r\n\r\nsmuggled body")

# Every way a sloppy server could take for "end of data".  None of them contains
# a real CRLF.CRLF (checked below), so what follows must stay data.
FAKE_ENDS = {
    "lf.lf": b"\n.\n",
    "lf.crlf": b"\n.\r\n",
    "crlf.lf": b"\r\n.\n",
    "cr.cr": b"\r.\r",
    "crlf.cr": b"\r\n.\r",
    "lf.cr": b"\n.\r",
    "cr.lf": b"\r.\n",
    "cr.crlf": b"\r.\r\n",
    "crlf.crcrlf": b"\r\n.\r\r\n",
    # Two bare LFs: with bare LF taken as CRLF these read as an empty line and
    # then "." LF or "." CRLF, which must still not end the data.
    "lflf.lf": b"\n\n.\n",
    "lflf.crlf": b"\n\n.\r\n",
    "crlflf.crlf": b"\r\n\n.\r\n",
    # A dot-stuffed-looking line after a bare LF: ".." LF / ".." CRLF.
    "lf..lf": b"\n..\n",
    "lf..crlf": b"\n..\r\n",
}


def test_fake_ends_are_not_real_ends():
    for name, fe in FAKE_ENDS.items():
        assert b"\r\n.\r\n" not in b"y" + fe + SMUGGLED, name


# The smuggled transaction with bare LF line endings, as a client that takes
# LF for CRLF would write it.
SMUGGLED_LF = SMUGGLED.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("smuggled", [SMUGGLED, SMUGGLED_LF], ids=["crlf", "lf"])
@pytest.mark.parametrize("fake_end", list(FAKE_ENDS.values()), ids=list(FAKE_ENDS))
def test_smuggling_fake_end_of_data(sp_mode, upstream, fake_end, smuggled):
    head = messages.simple(frm=FROM, to=TO, body=b"innocent body")[:-2]   # no final CRLF
    with sp_mode.client() as c:
        open_data(c)
        # One write: innocent part, fake end, smuggled transaction, real end.
        c.send(head + fake_end + smuggled + b"\r\n.\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2", what=f"data with {fake_end!r}")
        # The next reply must be VRFY's: no smuggled command produced a reply.
        assert_reply(c.cmd("VRFY bob"), 252, "2.5.0", what="VRFY after the rejected data")
        assert c.pending(0.1) == b"", f"extra replies: {c.pending()!r}"
        deliver_sentinel(c, upstream)
    assert not any("smuggler" in m.mail_from for m in upstream.messages)


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r"],
                         ids=["lf.lf", "crlf.lf", "lf.crlf", "cr.cr"])
def test_fake_end_of_data_in_its_own_packet_gets_no_reply(sp_mode, upstream, fake_end):
    """The session keeps reading after a fake end: no reply until the real one."""
    with sp_mode.client() as c:
        open_data(c)
        c.send(b"Subject: split\r\n\r\nbody" + fake_end)
        assert c.pending(0.5) == b"", "sealpost replied to a fake end of data"
        c.send(SMUGGLED + b"\r\n")
        assert c.pending(0.3) == b"", "sealpost replied to a smuggled command"
        c.send(b".\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2")
        deliver_sentinel(c, upstream)


BARE_CR = {
    "cr-in-body": b"Subject: x\r\n\r\nline one\rline two\r\n",
    "cr-before-crlf": b"Subject: x\r\n\r\nline one\r\r\n",
    "cr-before-lf": b"Subject: x\r\n\r\nline one\r\nline two\r\r\n",
    "cr-in-lf-line": b"Subject: x\r\n\r\nline one\rtwo\n",
    "cr-at-end": b"Subject: x\r\n\r\nbody\r\nend\r",
}


def end_data(data: bytes) -> bytes:
    """What a client appends: "." CRLF after a final CRLF, else CRLF "." CRLF."""
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


@pytest.mark.parametrize("data", list(BARE_CR.values()), ids=list(BARE_CR))
def test_bare_cr_anywhere_is_rejected(sp_mode, upstream, data):
    with sp_mode.client() as c:
        open_data(c)
        c.send(end_data(data))
        r = c.reply(timeout=30)
        assert_reply(r, 550, "5.5.2", what=repr(data))
        assert "bare CR" in r.text, r.text
        assert c.pending(0.1) == b""
        deliver_sentinel(c, upstream)


# Data with bare LFs -> what the upstream gets when they are accepted: each
# bare LF becomes CRLF, and the CRLF a client puts before "." CRLF when its
# data does not end in CRLF is the terminator's, as it is for CRLF data.
BARE_LF = {
    "lf-in-body": (b"Subject: x\r\n\r\nline one\nline two\r\n",
                   b"Subject: x\r\n\r\nline one\r\nline two\r\n"),
    "lf-in-header": (b"Subject: x\nX-Injected: y\r\n\r\nbody\r\n",
                     b"Subject: x\r\nX-Injected: y\r\n\r\nbody\r\n"),
    "lf-only": (b"Subject: x\n\nline one\n\nline three\n",
                b"Subject: x\r\n\r\nline one\r\n\r\nline three\r\n"),
    "lf-only-no-final-newline": (b"Subject: x\n\nline one\nlast",
                                 b"Subject: x\r\n\r\nline one\r\nlast\r\n"),
    "lone-lf-line": (b"Subject: x\r\n\r\nbody\r\n\n",
                     b"Subject: x\r\n\r\nbody\r\n\r\n"),
    "lf-then-empty-crlf-lines": (b"Subject: x\n\nbody\n\r\n\r\nend\n",
                                 b"Subject: x\r\n\r\nbody\r\n\r\n\r\nend\r\n"),
    "dot-line-after-crlf": (b"Subject: x\n\nbody\n\r\n..dot\r\n",
                            b"Subject: x\r\n\r\nbody\r\n\r\n.dot\r\n"),
}


@pytest.mark.parametrize("data,expect", list(BARE_LF.values()), ids=list(BARE_LF))
def test_bare_lf_from_a_trusted_client_is_taken_as_crlf(sp, upstream, data, expect):
    """bare_lf = accept-trusted (the default), a loopback client."""
    with sp.client() as c:
        open_data(c)
        c.send(end_data(data))
        assert_reply(c.reply(timeout=30), 250, "2.0.0", what=repr(data))
        assert c.pending(0.1) == b""
        [m] = upstream.wait_for(1)
        assert m.content == expect
        deliver_sentinel(c, upstream, already=[expect])


@pytest.mark.parametrize("data,expect", list(BARE_LF.values()), ids=list(BARE_LF))
def test_bare_lf_is_rejected_with_bare_lf_reject(start_sealpost, upstream, data, expect):
    sp = start_sealpost(upstream, proxy={"bare_lf": "reject"})
    with sp.client() as c:
        open_data(c)
        c.send(end_data(data))
        r = c.reply(timeout=30)
        assert_reply(r, 550, "5.5.2", what=repr(data))
        # The reply says what is wrong, what to do, and which setting decides.
        assert "Bare LF" in r.text and "--crlf" in r.text and "bare_lf" in r.text, r.text
        assert c.pending(0.1) == b""
        deliver_sentinel(c, upstream)


# Lines starting with "." next to a bare LF: dot-stuffed or not, end of data
# or not, is anybody's guess, so they fail the message in either setting.
DOT_NEXT_TO_LF = {
    "dot-lf": b"Subject: x\r\n\r\nbody\r\n.\nmore\r\n",
    "dotdot-lf": b"Subject: x\r\n\r\nbody\r\n..\nmore\r\n",
    "dotx-lf": b"Subject: x\r\n\r\nbody\r\n.x\r\n.y\nmore\r\n",
    "lf-then-dot-crlf": b"Subject: x\r\n\r\nbody\n.\r\nmore\r\n",
    "lf-then-dotx-crlf": b"Subject: x\r\n\r\nbody\n.x\r\nmore\r\n",
    "first-line-dot-lf": b".\nSubject: x\r\n\r\nbody\r\n",
}


@pytest.mark.parametrize("data", list(DOT_NEXT_TO_LF.values()), ids=list(DOT_NEXT_TO_LF))
def test_dot_line_next_to_a_bare_lf_is_rejected(sp, upstream, data):
    with sp.client() as c:
        open_data(c)
        c.send(end_data(data))
        r = c.reply(timeout=30)
        assert_reply(r, 550, "5.5.2", what=repr(data))
        assert "bare LF" in r.text and "--crlf" in r.text, r.text
        assert c.pending(0.1) == b""
        deliver_sentinel(c, upstream)


def test_bare_lf_line_of_1000_octets_with_its_cr_is_the_limit(sp, upstream):
    """A bare-LF line gains a CR: 998 octets + LF is stored as 1000 with CRLF and
    accepted; 999 + LF would be 1001 and fails like any over-long line."""
    ok = b"Subject: x\n\n" + b"a" * 998 + b"\n"
    with sp.client() as c:
        open_data(c)
        c.send(end_data(ok))
        assert_reply(c.reply(timeout=30), 250, "2.0.0")
        assert upstream.wait_for(1)[0].content == ok.replace(b"\n", b"\r\n")
        c.cmd("RSET")
        open_data(c)
        c.send(end_data(b"Subject: x\n\n" + b"a" * 999 + b"\n"))
        r = c.reply(timeout=30)
        assert_reply(r, 550, "5.5.2")
        assert "longer than 1000" in r.text, r.text
        deliver_sentinel(c, upstream, already=[ok.replace(b"\n", b"\r\n")])


def test_rejected_data_leaves_no_message_even_without_a_sentinel(sp_mode, upstream):
    with sp_mode.client() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nbody\n.\n" + SMUGGLED + b"\r\n.\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2")
        assert_reply(c.cmd("QUIT"), 221, "2.0.0")
        c.wait_closed()
    # sealpost answers only after the upstream answered, so nothing can be in flight
    assert_nothing_delivered(upstream)


def test_dot_stuffed_lines_are_unstuffed_exactly(sp, upstream):
    msg = messages.simple(frm=FROM, to=TO,
                          body=b".\r\n..\r\n...\r\n.x\r\n. \r\nx.\r\n.\r\n\r\n.")
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
    assert upstream.wait_for(1)[0].content == msg


def test_headers_only_message(sp, upstream):
    """A message that is only a header block is relayed as sent."""
    with sp.client() as c:
        open_data(c)
        c.send(b"Subject: only headers\r\n.\r\n")
        assert_reply(c.reply(timeout=30), 250, "2.0.0")
    [m] = upstream.wait_for(1)
    assert m.content == b"Subject: only headers\r\n"


@pytest.mark.parametrize("start", [b".\n", b".\r", b".\r\r\n", b"\n.\r\n"],
                         ids=["dot-lf", "dot-cr", "dot-crcrlf", "lf-dot-crlf"])
def test_smuggling_fake_end_right_after_354(sp_mode, upstream, start):
    """The CRLF that ended "DATA" is not the start of an end-of-data sequence
    for a dot followed by a bare CR or LF."""
    with sp_mode.client() as c:
        open_data(c)
        c.send(start + SMUGGLED + b"\r\n.\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2", what=repr(start))
        assert_reply(c.cmd("VRFY bob"), 252, "2.5.0")
        deliver_sentinel(c, upstream)


# -- real curl, with and without --crlf ----------------------------------------------------------

# A message as a text file on Unix: LF line endings, and a last line.
LF_FILE = (b"From: Alice <alice@example.com>\nTo: Bob <bob@example.net>\nSubject: from a file\n"
           b"Date: Mon, 03 Jun 2024 10:00:00 +0000\nMessage-ID: <lf-file@client.test>\n\n"
           b"First line.\n\nThird line, after an empty one.\nLast line.\n")


def curl_upload(port: int, path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "60",
         "--url", f"smtp://127.0.0.1:{port}/curl.client.test",
         "--mail-from", FROM, "--mail-rcpt", TO, "--upload-file", str(path), *extra],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=90)


@pytest.mark.parametrize("body", [LF_FILE, LF_FILE[:-1]], ids=["final-lf", "no-final-lf"])
def test_curl_without_crlf_delivers_what_curl_with_crlf_does(sp, upstream, tmp_path, body):
    """curl sends a file's bare LFs as they are unless told --crlf.  From a
    loopback client sealpost takes them as CRLF: the upstream gets the same
    bytes as for `curl --crlf`, which are the file with CRLF line endings."""
    f = tmp_path / "message.txt"
    f.write_bytes(body)
    r = curl_upload(sp.port, f, "--crlf")
    assert r.returncode == 0, r.stderr
    r = curl_upload(sp.port, f)
    assert r.returncode == 0, r.stderr
    with_crlf, without = upstream.wait_for(2)
    assert with_crlf.content == LF_FILE.replace(b"\n", b"\r\n")
    assert without.content == with_crlf.content


def test_curl_without_crlf_and_bare_lf_reject_says_why(start_sealpost, upstream, tmp_path):
    sp = start_sealpost(upstream, proxy={"bare_lf": "reject"})
    f = tmp_path / "message.txt"
    f.write_bytes(LF_FILE)
    r = curl_upload(sp.port, f, "--verbose")
    assert r.returncode != 0
    err = r.stderr.decode("utf-8", "replace")
    assert "550 5.5.2 Bare LF in data" in err and "--crlf" in err and "bare_lf" in err, err[-3000:]
    r = curl_upload(sp.port, f, "--crlf")
    assert r.returncode == 0, r.stderr
    [m] = upstream.wait_for(1)
    assert m.content == LF_FILE.replace(b"\n", b"\r\n")


def test_curl_without_crlf_and_a_dot_line_is_refused_not_altered(sp, upstream, tmp_path):
    """curl stuffs a leading dot only after CRLF, so after a bare LF ".x" may
    mean ".x" or "x": sealpost refuses rather than guess; --crlf delivers it."""
    body = LF_FILE.replace(b"Last line.\n", b".x starts with a dot\n.\nLast line.\n")
    f = tmp_path / "message.txt"
    f.write_bytes(body)
    r = curl_upload(sp.port, f, "--verbose")
    assert r.returncode != 0
    assert "550 5.5.2" in r.stderr.decode("utf-8", "replace")
    r = curl_upload(sp.port, f, "--crlf")
    assert r.returncode == 0, r.stderr
    [m] = upstream.wait_for(1)
    assert m.content == body.replace(b"\n", b"\r\n")
