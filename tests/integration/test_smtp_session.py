"""The SMTP server (client side): greeting, EHLO, every verb, sequencing, syntax,
limits, AUTH and STARTTLS.  Replies are checked by code and RFC 3463 enhanced
code (docs/architecture.md, "Conventions": ENHANCEDSTATUSCODES on every reply)."""
from __future__ import annotations

import base64

import pytest

import messages
from checks import FROM, TO, assert_nothing_delivered, deliver_sentinel, ehlo_keywords
from clients import ConnectionClosed, assert_reply
from conftest import CLIENT_PASSWORD, CLIENT_USER
from waits import WAIT

EXPECTED_EXTENSIONS = ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                       "STARTTLS")


# -- greeting, EHLO, simple verbs ----------------------------------------------------------

def test_greeting_and_ehlo_extensions(sp):
    with sp.client() as c:
        assert_reply(c.greeting, 220, what="greeting")
        kw = ehlo_keywords(c)
        for ext in EXPECTED_EXTENSIONS:
            assert ext in kw, f"EHLO lacks {ext}: {kw}"
        assert kw["SIZE"] == "52428800"
        assert "AUTH" not in kw, "AUTH offered with auth = none"


def test_ehlo_after_starttls_drops_starttls(sp):
    with sp.client() as c:
        c.ehlo()
        c.starttls()
        assert c.tls_version in ("TLSv1.2", "TLSv1.3")
        kw = ehlo_keywords(c)
        assert "STARTTLS" not in kw
        for ext in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"):
            assert ext in kw, f"EHLO after TLS lacks {ext}: {kw}"
        assert "AUTH" not in kw


def test_helo_session_delivers(sp, upstream):
    msg = messages.simple(frm=FROM, to=TO)
    with sp.client() as c:
        assert_reply(c.cmd("HELO client.test"), 250)
        replies = c.transaction(FROM, [TO], msg)
        assert_reply(replies[-1], 250, "2.0.0")
    assert upstream.wait_for(1)[0].content == msg


@pytest.mark.parametrize("line,code,enh", [
    ("NOOP", 250, "2.0.0"),
    ("noop", 250, "2.0.0"),           # verbs are case-insensitive (RFC 5321 2.4)
    ("RSET", 250, "2.0.0"),
    ("VRFY bob@example.net", 252, "2.5.0"),
    ("HELP", 214, None),
    ("FROBNICATE", 500, "5.5.1"),
    ("EHLO", 501, None),              # EHLO needs a domain
])
def test_simple_verbs(sp, line, code, enh):
    with sp.client() as c:
        if not line.upper().startswith("EHLO"):
            c.ehlo()
        assert_reply(c.cmd(line), code, enh, what=line)
        assert_reply(c.cmd("NOOP"), 250, "2.0.0", what="NOOP after " + line)


def test_quit_closes(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd("QUIT"), 221, "2.0.0")
        assert c.wait_closed() == b""


# -- command line limits -------------------------------------------------------------------

def test_command_line_of_512_octets_is_accepted(sp):
    with sp.client() as c:
        c.ehlo()
        line = b"NOOP " + b"x" * (512 - 2 - 5)
        assert len(line) + 2 == 512
        assert_reply(c.cmd(line), 250, "2.0.0")


@pytest.mark.parametrize("length", [513, 600, 10_000, 200_000])
def test_command_line_over_512_octets(sp, length):
    """One 500 5.5.2 per long line, however long; the session goes on."""
    with sp.client() as c:
        c.ehlo()
        line = b"NOOP " + b"x" * (length - 2 - 5)
        assert len(line) + 2 == length
        c.send(line + b"\r\n")
        assert_reply(c.reply(), 500, "5.5.2", what=f"{length}-octet command line")
        assert_reply(c.cmd("NOOP"), 250, "2.0.0", what="NOOP after the long line")
        assert c.pending(0.1) == b"", "extra replies after the long line"


def test_long_mail_command_is_not_executed(sp, upstream):
    """A MAIL line over the limit must not be half-executed."""
    with sp.client() as c:
        c.ehlo()
        line = b"MAIL FROM:<" + b"a" * 600 + b"@example.com>"
        assert_reply(c.cmd(line), 500, "5.5.2")
        # no transaction was started: RCPT is out of sequence
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 503, "5.5.1")


@pytest.mark.parametrize("bare_lf", ["accept-trusted", "reject"])
@pytest.mark.parametrize("line", [b"NOOP\n", b"NOOP\r\r\n", b"NOOP\rRSET\r\n"],
                         ids=["lf", "cr-crlf", "cr-inside"])
def test_command_lines_must_end_in_crlf(start_sealpost, upstream, bare_lf, line):
    """Commands are strict whatever [proxy] bare_lf says (it is about data):
    a command ending in a bare LF, or with a CR before its CRLF, is refused,
    never executed, and the session goes on."""
    sp = start_sealpost(upstream, proxy={"bare_lf": bare_lf})
    with sp.client() as c:
        c.ehlo()
        c.send(line)
        r = c.reply()
        assert_reply(r, 500, "5.5.2", what=repr(line))
        assert c.pending(0.1) == b"", "a second reply: part of the line was executed"
        deliver_sentinel(c, upstream)


def test_data_command_with_bare_lf_does_not_start_data(sp, upstream):
    """"DATA" LF is refused, so what follows is read as commands, each one
    refused or answered on its own: no message comes of it."""
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 250, "2.1.5")
        c.send(b"DATA\n")
        r = c.reply()
        assert_reply(r, 500, "5.5.2", what="DATA with a bare LF")
        assert "CRLF" in r.text, r.text
        assert_reply(c.cmd("Subject: not a message"), 500, "5.5.1")
        assert_reply(c.cmd("."), 500, "5.5.1")
        assert_reply(c.cmd("RSET"), 250, "2.0.0")
        deliver_sentinel(c, upstream)


def test_auth_response_must_end_in_crlf(start_sealpost, upstream):
    sp = start_sealpost(upstream, users={CLIENT_USER: CLIENT_PASSWORD})
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd("AUTH PLAIN"), 334)
        c.send(base64.b64encode(f"\0{CLIENT_USER}\0{CLIENT_PASSWORD}".encode()) + b"\n")
        assert_reply(c.reply(), 501, "5.5.2", what="SASL response ending in a bare LF")
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 530, "5.7.0", what="MAIL after the refused AUTH")


# -- sequencing ------------------------------------------------------------------------------

def test_mail_before_ehlo(sp):
    with sp.client() as c:
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 503, "5.5.1")


def test_rcpt_before_mail(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 503, "5.5.1")


def test_data_before_mail(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd("DATA"), 503, "5.5.1")


def test_data_before_rcpt(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd("DATA"), 503, "5.5.1")


def test_data_after_every_rcpt_was_refused(sp):
    """RFC 5321 3.3 / RFC 2920 3.1: 503 or 554 "no valid recipients"."""
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<a b@example.net>"), 501, "5.1.3")
        r = c.cmd("DATA")
        assert r.is_(554, "5.5.1") or r.is_(503, "5.5.1"), str(r)


def test_nested_mail(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 503, "5.5.1")


def test_rset_ends_the_transaction(sp, upstream):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 250, "2.1.5")
        assert_reply(c.cmd("RSET"), 250, "2.0.0")
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        deliver_sentinel(c, upstream)


def test_ehlo_resets_the_transaction(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        c.ehlo()
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 503, "5.5.1")


def test_pipelined_transaction(sp, upstream):
    """PIPELINING: a whole transaction in one write, replies in order."""
    msg = messages.simple(frm=FROM, to=TO)
    with sp.client() as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<" + FROM.encode() + b">\r\n"
               b"RCPT TO:<" + TO.encode() + b">\r\nDATA\r\n")
        assert_reply(c.reply(), 250, what="EHLO")
        assert_reply(c.reply(), 250, "2.1.0", what="MAIL")
        assert_reply(c.reply(), 250, "2.1.5", what="RCPT")
        assert_reply(c.reply(), 354, what="DATA")
        c.send(msg + b".\r\nNOOP\r\n")
        assert_reply(c.reply(timeout=30), 250, "2.0.0", what="end of data")
        assert_reply(c.reply(), 250, "2.0.0", what="NOOP")
    assert upstream.wait_for(1)[0].content == msg


# -- addresses and parameters -----------------------------------------------------------------

@pytest.mark.parametrize("addr", ["<a b@example.com>", "<user@>", "<@>", "<a@b@example.com>",
                                  "<user@exa mple.com>", "<unterminated@example.com"])
def test_mail_bad_address(sp, addr):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:{addr}"), 501, "5.1.7", what=addr)


@pytest.mark.parametrize("addr", ["<a b@example.net>", "<user@>", "<>", "<@>",
                                  "<a@b@example.net>", "<unterminated@example.net"])
def test_rcpt_bad_address(sp, addr):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        assert_reply(c.cmd(f"RCPT TO:{addr}"), 501, "5.1.3", what=addr)


def test_null_sender_is_accepted(sp, upstream):
    msg = messages.simple(frm="mailer-daemon@example.com", to=TO)
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction("", [TO], msg)
        assert_reply(replies[0], 250, "2.1.0", what="MAIL FROM:<>")
        assert_reply(replies[-1], 250, "2.0.0")
    [m] = upstream.wait_for(1)
    assert m.mail_from == "" and m.content == msg


def test_unknown_mail_parameter(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}> FOO=BAR"), 555, "5.5.4")


@pytest.mark.parametrize("params", ["SIZE=1000", "BODY=8BITMIME", "SMTPUTF8", "BODY=7BIT",
                                    "SIZE=52428800 BODY=8BITMIME SMTPUTF8"])
def test_known_mail_parameters(sp, params):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}> {params}"), 250, "2.1.0", what=params)


def test_mail_size_over_limit(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}> SIZE=52428801"), 552, "5.3.4")
        # not in a transaction now
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}> SIZE=52428800"), 250, "2.1.0")


def test_recipient_limit(start_sealpost, upstream):
    sp = start_sealpost(upstream, proxy={"max_recipients": "100"})
    rcpts = [f"r{i}@example.net" for i in range(101)]
    # all 100 accepted recipients are named in To:, so they share one copy
    to_header = b"To: " + b",\r\n ".join(r.encode() for r in rcpts[:100])
    msg = messages.simple(frm=FROM, to=rcpts[0])
    msg = msg.replace(b"To: Bob <" + rcpts[0].encode() + b">", to_header, 1)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0")
        for r in rcpts[:100]:
            assert_reply(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5", what=r)
        assert_reply(c.cmd(f"RCPT TO:<{rcpts[100]}>"), 452, "4.5.3", what="101st RCPT")
        assert_reply(c.cmd("DATA"), 354)
        c.send(msg + b".\r\n")
        assert_reply(c.reply(timeout=30), 250, "2.0.0")
    [m] = upstream.wait_for(1)
    assert sorted(m.rcpt_tos) == sorted(rcpts[:100])
    assert m.content == msg


# -- AUTH ----------------------------------------------------------------------------------------

@pytest.fixture
def sp_users(start_sealpost, upstream):
    return start_sealpost(upstream, users={CLIENT_USER: CLIENT_PASSWORD})


def test_auth_offered_on_loopback_with_users(sp_users):
    with sp_users.client() as c:
        kw = ehlo_keywords(c)
        assert set(kw.get("AUTH", "").split()) == {"PLAIN", "LOGIN"}, kw


def test_mail_without_auth_is_refused(sp_users, upstream):
    with sp_users.client() as c:
        c.ehlo()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 530, "5.7.0")
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 503, "5.5.1")
    assert_nothing_delivered(upstream)


def test_auth_plain_bad_then_good(sp_users, upstream):
    with sp_users.client() as c:
        c.ehlo()
        assert_reply(c.auth_plain(CLIENT_USER, "wrong password"), 535, "5.7.8")
        assert_reply(c.auth_plain("nobody", CLIENT_PASSWORD), 535, "5.7.8")
        assert_reply(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD), 235, "2.7.0")
        assert_reply(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD), 503, "5.5.1", what="second AUTH")
        deliver_sentinel(c, upstream)


def test_auth_login(sp_users, upstream):
    with sp_users.client() as c:
        c.ehlo()
        assert_reply(c.auth_login(CLIENT_USER, "wrong"), 535, "5.7.8")
        assert_reply(c.auth_login(CLIENT_USER, CLIENT_PASSWORD), 235, "2.7.0")
        deliver_sentinel(c, upstream)


def test_auth_plain_without_initial_response(sp_users):
    import base64
    with sp_users.client() as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334, str(r)
        tok = base64.b64encode(f"\0{CLIENT_USER}\0{CLIENT_PASSWORD}".encode()).decode()
        assert_reply(c.cmd(tok), 235, "2.7.0")


def test_auth_cancelled_and_bad_base64(sp_users):
    with sp_users.client() as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("*")
        assert r.code == 501, str(r)
        r = c.cmd("AUTH PLAIN !!!not-base64!!!")
        assert r.code == 501, str(r)
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 530, "5.7.0")


def test_auth_unknown_mechanism(sp_users):
    with sp_users.client() as c:
        c.ehlo()
        assert_reply(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4")


def test_auth_not_available_with_auth_none(sp):
    with sp.client() as c:
        c.ehlo()
        r = c.auth_plain(CLIENT_USER, CLIENT_PASSWORD)
        assert r.code in (502, 503, 504), str(r)


# -- STARTTLS ------------------------------------------------------------------------------------

def test_starttls_then_auth_and_deliver(sp_users, upstream):
    with sp_users.client() as c:
        c.ehlo()
        c.starttls()
        kw = ehlo_keywords(c)
        assert set(kw.get("AUTH", "").split()) == {"PLAIN", "LOGIN"}
        assert "STARTTLS" not in kw
        assert_reply(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD), 235, "2.7.0")
        deliver_sentinel(c, upstream)


def test_starttls_forgets_auth_from_before_tls(sp_users, upstream):
    """RFC 3207 4.2: the server discards what it learnt before TLS, AUTH
    included.  AUTH in the clear is allowed on a loopback listener; after
    STARTTLS, MAIL without a new AUTH is refused, AUTH is offered (and
    accepted) again, and then the message goes through."""
    with sp_users.client() as c:
        c.ehlo()
        assert_reply(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD), 235, "2.7.0", what="AUTH before TLS")
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 250, "2.1.0", what="MAIL after AUTH, before TLS")
        assert_reply(c.cmd("RSET"), 250, "2.0.0")
        c.starttls()
        kw = ehlo_keywords(c)
        assert set(kw.get("AUTH", "").split()) == {"PLAIN", "LOGIN"}, \
            f"AUTH not offered again inside TLS: {kw}"
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 530, "5.7.0",
                     what="MAIL inside TLS with only the AUTH from before TLS")
        assert_reply(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD), 235, "2.7.0", what="AUTH inside TLS")
        deliver_sentinel(c, upstream)


def test_starttls_with_argument(sp):
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.cmd("STARTTLS now"), 501, "5.5.4")


def test_starttls_twice(sp):
    with sp.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code // 100 == 5 and (r.enhanced or "").startswith("5."), str(r)


def test_starttls_discards_pipelined_command(sp, upstream):
    """RFC 3207 4.2 / CVE-2011-0411: input buffered before the handshake is dropped."""
    with sp.client() as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<x@y.example>\r\n")
        assert_reply(c.reply(), 220, "2.0.0", what="STARTTLS")
        assert c.buf == b"", f"reply to the pipelined MAIL before TLS: {c.buf!r}"
        c._wrap_tls()
        # The first reply inside TLS must be EHLO's, not a leftover for MAIL.
        r = c.cmd("EHLO client.test")
        assert r.code == 250 and "PIPELINING" in r.keywords(), str(r)
        assert_reply(c.cmd(f"RCPT TO:<{TO}>"), 503, "5.5.1",
                     what="RCPT after TLS (MAIL must have been discarded)")
        deliver_sentinel(c, upstream)


def test_starttls_discards_pipelined_command_same_segment_no_ehlo(sp):
    """Same, with the smuggled command and no EHLO after TLS: MAIL before EHLO."""
    with sp.client() as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<x@y.example>\r\nRCPT TO:<v@w.example>\r\n")
        assert_reply(c.reply(), 220, "2.0.0")
        assert c.buf == b""
        c._wrap_tls()
        assert_reply(c.cmd(f"MAIL FROM:<{FROM}>"), 503, "5.5.1", what="MAIL after TLS without EHLO")


# -- HTTP on the SMTP port ------------------------------------------------------------------------

@pytest.mark.parametrize("request_line", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"POST /submit HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nabcd",
    b"CONNECT smtp.example.com:25 HTTP/1.1\r\nHost: smtp.example.com\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
])
def test_http_request_is_refused_and_closed(sp, request_line):
    with sp.client() as c:
        c.send(request_line)
        r = c.reply()
        assert r.code // 100 == 5, f"HTTP request got {r}"
        rest = c.wait_closed()
        # nothing after it was executed as a command
        assert not any(line[:3] in (b"250", b"354", b"235", b"334")
                       for line in rest.split(b"\r\n")), rest


def test_http_request_before_greeting_is_refused(sp):
    c = sp.client(read_greeting=False)
    with c:
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = c.wait_closed()
        lines = [l for l in got.split(b"\r\n") if l]
        assert not any(l[:3] in (b"250", b"354", b"235", b"334") for l in lines), got
        assert any(l[:1] == b"5" for l in lines), f"no 5xx for an HTTP request: {got!r}"


# -- timeouts ---------------------------------------------------------------------------------------

def test_idle_command_timeout(start_sealpost, upstream):
    sp = start_sealpost(upstream, proxy={"timeout": "2s"})
    with sp.client() as c:
        c.ehlo()
        try:
            r = c.reply(timeout=WAIT)
        except ConnectionClosed:
            pytest.fail("closed without a 421 reply")
        assert_reply(r, 421, "4.4.2", what="idle timeout")
        c.wait_closed()


def test_data_timeout(start_sealpost, upstream):
    sp = start_sealpost(upstream, proxy={"data_timeout": "2s"})
    with sp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>")
        c.cmd(f"RCPT TO:<{TO}>")
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"Subject: stalled\r\n\r\nhalf a mess")
        try:
            r = c.reply(timeout=WAIT)
        except ConnectionClosed:
            pytest.fail("closed without a 421 reply")
        assert_reply(r, 421, "4.4.2", what="data timeout")
        c.wait_closed()
    assert_nothing_delivered(upstream)


# -- the command table, reply for reply ----------------------------------------------------------
# Each step is (command line, the whole reply as str(Reply)); a reply ending in "*" is
# compared up to there.  These pin the exact words of the table's state rules and of
# check_* (the replies a client sees), so a rework of the table cannot change them.

ZOE = "zo\u00eb@example.net"

COMMAND_TABLE_CASES = {
    "before EHLO": [
        (f"MAIL FROM:<{FROM}>", "503 5.5.1 Send EHLO/HELO first"),
        ("STARTTLS", "503 5.5.1 Send EHLO/HELO first"),
        (f"RCPT TO:<{TO}>", "503 5.5.1 Send EHLO/HELO first"),
        ("DATA", "503 5.5.1 Send EHLO/HELO first"),
        ("AUTH PLAIN", "503 5.5.1 Send EHLO/HELO first"),
        ("NOOP", "250 2.0.0 Ok"),
        ("RSET", "250 2.0.0 Ok"),
        ("VRFY bob", "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"),
        ("EXPN list", "502 5.5.1 Command not implemented"),
        ("EHLO", "501 5.5.4 Syntax: EHLO hostname"),
        ("HELO", "501 5.5.4 Syntax: HELO hostname"),
    ],
    "greeted, no transaction": [
        ("EHLO client.test", "250 *"),
        (f"RCPT TO:<{TO}>", "503 5.5.1 Need MAIL before RCPT"),
        ("DATA", "503 5.5.1 Need RCPT before DATA"),
        ("DATA now", "501 5.5.4 Syntax: DATA"),
        ("MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (f"MAIL TO:<{FROM}>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (f"MAIL FROM:<{FROM}> BODY=BINARYMIME", "555 5.5.4 Unsupported BODY type BINARYMIME"),
        (f"MAIL FROM:<{FROM}> SIZE=many", "501 5.5.4 Bad SIZE value"),
        (f"MAIL FROM:<{FROM}> SIZE=99999999999", "552 5.3.4 Message size exceeds fixed maximum "
         "message size (52428800)"),
        (f"MAIL FROM:<{FROM}> FOO=1", "555 5.5.4 Unsupported parameter FOO"),
        (f"MAIL FROM:<{ZOE}>", "553 5.6.7 Non-ASCII sender address needs the SMTPUTF8 parameter"),
        ("AUTH PLAIN", "503 5.5.1 AUTH not available here ([proxy] auth = none)"),
        ("FROBNICATE", "500 5.5.1 Command unrecognized"),
        ("HELP", "214 2.0.0 sealpost: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT "
         "HELP VRFY; see sealpost(8)"),
    ],
    "in a transaction": [
        ("EHLO client.test", "250 *"),
        (f"MAIL FROM:<{FROM}> BODY=8BITMIME SIZE=100", "250 2.1.0 Ok"),
        ("DATA", "503 5.5.1 Need RCPT before DATA"),
        (f"MAIL FROM:<{FROM}>", "503 5.5.1 Nested MAIL command"),
        ("STARTTLS", "503 5.5.1 STARTTLS not allowed during a mail transaction"),
        (f"RCPT TO:<{ZOE}>", "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8 in MAIL"),
        (f"RCPT TO:<{TO}> NOTIFY=NEVER", "555 5.5.4 Unsupported parameter NOTIFY"),
        ("RSET", "250 2.0.0 Ok"),
        (f"RCPT TO:<{TO}>", "503 5.5.1 Need MAIL before RCPT"),
    ],
    "every RCPT refused, one by its syntax": [
        ("EHLO client.test", "250 *"),
        (f"MAIL FROM:<{FROM}>", "250 2.1.0 Ok"),
        (f"RCPT <{TO}>", "501 5.5.4 Syntax: RCPT TO:<address>"),
        ("DATA", "554 5.5.1 No valid recipients"),
        (f"MAIL FROM:<{FROM}>", "503 5.5.1 Nested MAIL command"),
        ("RSET", "250 2.0.0 Ok"),
        (f"MAIL FROM:<{FROM}>", "250 2.1.0 Ok"),
        ("DATA", "503 5.5.1 Need RCPT before DATA"),
    ],
    "HELO, not EHLO": [
        ("HELO client.test", "250 *"),
        (f"MAIL FROM:<{FROM}> SIZE=10", "555 5.5.4 MAIL parameters need EHLO"),
        (f"MAIL FROM:<{FROM}>", "250 2.1.0 Ok"),
        ("QUIT", "221 2.0.0 Bye"),
    ],
}


def _run_steps(c, steps):
    for line, want in steps:
        got = str(c.cmd(line))
        if want.endswith("*"):
            assert got.startswith(want[:-1]), f"{line}: expected {want}, got {got}"
        else:
            assert got == want, f"{line}: expected {want!r}, got {got!r}"


@pytest.mark.parametrize("name", sorted(COMMAND_TABLE_CASES))
def test_command_table_replies_word_for_word(sp, name):
    with sp.client() as c:
        _run_steps(c, COMMAND_TABLE_CASES[name])


def test_command_table_replies_with_users(sp_users):
    with sp_users.client() as c:
        _run_steps(c, [
            ("EHLO client.test", "250 *"),
            (f"MAIL FROM:<{FROM}>", "530 5.7.0 Authentication required"),
            (f"RCPT TO:<{TO}>", "503 5.5.1 Need MAIL before RCPT"),
            ("AUTH CRAM-MD5", "504 5.5.4 Unrecognized authentication type"),
        ])
        assert str(c.auth_plain(CLIENT_USER, CLIENT_PASSWORD)) == "235 2.7.0 Authentication successful"
        _run_steps(c, [
            ("AUTH PLAIN", "503 5.5.1 Already authenticated"),
            (f"MAIL FROM:<{FROM}>", "250 2.1.0 Ok"),
            ("AUTH PLAIN", "503 5.5.1 Already authenticated"),
        ])


def test_command_table_tls_already_active(sp):
    with sp.client() as c:
        c.ehlo()
        c.starttls()
        _run_steps(c, [
            ("STARTTLS", "503 5.5.1 Send EHLO/HELO first"),
            ("EHLO client.test", "250 *"),
            ("STARTTLS", "503 5.5.1 TLS already active"),
            (f"MAIL FROM:<{FROM}>", "250 2.1.0 Ok"),
            ("STARTTLS", "503 5.5.1 TLS already active"),
        ])
