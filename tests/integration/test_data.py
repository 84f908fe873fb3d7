"""DATA: size and line limits, and SMTP smuggling.

End of data is exactly CRLF.CRLF; a bare CR or LF anywhere in the data makes
the message fail with 550 5.5.2 after the real end of data, and nothing that
follows a fake end of data is ever executed (SPEC "SMTP server").  Each test
ends with a sentinel message on the same session: the upstream must hold the
sentinel and nothing else."""
from __future__ import annotations

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
}


def test_fake_ends_are_not_real_ends():
    for name, fe in FAKE_ENDS.items():
        assert b"\r\n.\r\n" not in b"y" + fe + SMUGGLED, name


@pytest.mark.parametrize("fake_end", list(FAKE_ENDS.values()), ids=list(FAKE_ENDS))
def test_smuggling_fake_end_of_data(sp, upstream, fake_end):
    head = messages.simple(frm=FROM, to=TO, body=b"innocent body")[:-2]   # no final CRLF
    with sp.client() as c:
        open_data(c)
        # One write: innocent part, fake end, smuggled transaction, real end.
        c.send(head + fake_end + SMUGGLED + b"\r\n.\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2", what=f"data with {fake_end!r}")
        # The next reply must be VRFY's: no smuggled command produced a reply.
        assert_reply(c.cmd("VRFY bob"), 252, "2.5.0", what="VRFY after the rejected data")
        assert c.pending(0.1) == b"", f"extra replies: {c.pending()!r}"
        deliver_sentinel(c, upstream)
    assert not any("smuggler" in m.mail_from for m in upstream.messages)


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r"],
                         ids=["lf.lf", "crlf.lf", "lf.crlf", "cr.cr"])
def test_fake_end_of_data_in_its_own_packet_gets_no_reply(sp, upstream, fake_end):
    """The session keeps reading after a fake end: no reply until the real one."""
    with sp.client() as c:
        open_data(c)
        c.send(b"Subject: split\r\n\r\nbody" + fake_end)
        assert c.pending(0.5) == b"", "sealpost replied to a fake end of data"
        c.send(SMUGGLED + b"\r\n")
        assert c.pending(0.3) == b"", "sealpost replied to a smuggled command"
        c.send(b".\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2")
        deliver_sentinel(c, upstream)


BARE = {
    "lf-in-body": b"Subject: x\r\n\r\nline one\nline two\r\n",
    "cr-in-body": b"Subject: x\r\n\r\nline one\rline two\r\n",
    "cr-before-crlf": b"Subject: x\r\n\r\nline one\r\r\n",
    "lf-in-header": b"Subject: x\nX-Injected: y\r\n\r\nbody\r\n",
    "lf-at-start": b"\nSubject: x\r\n\r\nbody\r\n",
    "lone-lf-line": b"Subject: x\r\n\r\nbody\r\n\n",
    "cr-at-end": b"Subject: x\r\n\r\nbody\r\nend\r",
}


@pytest.mark.parametrize("data", list(BARE.values()), ids=list(BARE))
def test_bare_cr_or_lf_anywhere_is_rejected(sp, upstream, data):
    with sp.client() as c:
        open_data(c)
        c.send(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
        assert_reply(c.reply(timeout=30), 550, "5.5.2", what=repr(data))
        assert c.pending(0.1) == b""
        deliver_sentinel(c, upstream)


def test_rejected_data_leaves_no_message_even_without_a_sentinel(sp, upstream):
    with sp.client() as c:
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
def test_smuggling_fake_end_right_after_354(sp, upstream, start):
    """The CRLF that ended "DATA" is not the start of an end-of-data sequence
    for a dot followed by a bare CR or LF."""
    with sp.client() as c:
        open_data(c)
        c.send(start + SMUGGLED + b"\r\n.\r\n")
        assert_reply(c.reply(timeout=30), 550, "5.5.2", what=repr(start))
        assert_reply(c.cmd("VRFY bob"), 252, "2.5.0")
        deliver_sentinel(c, upstream)
