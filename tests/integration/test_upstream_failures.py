"""Upstream failures: nothing is delivered, the client is told (451 4.x.x, or the
upstream's own 5xx with its enhanced code), and the log names the reason.
Certificates are verified (chain, host name, expiry); a missing STARTTLS is a
failure, never a fallback to clear text (docs/architecture.md, "Delivery semantics")."""
from __future__ import annotations

import pytest

import messages
from checks import (FROM, TO, assert_log_names, assert_nothing_delivered, assert_temp_failure,
                    deliver_sentinel, first_failure)
from clients import assert_reply
from upstream import RawUpstream


def send(sp, msg=None, rcpts=(TO,)):
    msg = msg or messages.simple(frm=FROM, to=rcpts[0])
    with sp.client() as c:
        c.ehlo()
        replies = c.transaction(FROM, list(rcpts), msg)
        c.cmd("QUIT")
    return replies


def assert_refused_temporarily(sp, upstream, log_pattern, what):
    replies = send(sp)
    assert_temp_failure(replies, what)
    assert_nothing_delivered(upstream)
    assert_log_names(sp.log(), log_pattern, what)


# -- certificates and TLS ----------------------------------------------------------------------

@pytest.mark.parametrize("upstream", [dict(cert="wrong_host", mode="starttls"),
                                      dict(cert="wrong_host", mode="tls")],
                         indirect=True, ids=["starttls", "implicit-tls"])
def test_wrong_host_certificate(sp, upstream):
    assert_refused_temporarily(sp, upstream, r"host ?name|mismatch|wrong\.example",
                               "certificate for another host")


@pytest.mark.upstream(cert="wrong_host")
def test_wrong_host_certificate_by_name(start_sealpost, upstream):
    sp = start_sealpost(upstream, upstream_cfg={"host": "localhost"})
    assert_refused_temporarily(sp, upstream, r"host ?name|mismatch|wrong\.example",
                               "certificate for another host (host = localhost)")


@pytest.mark.upstream(cert="untrusted")
def test_untrusted_ca(sp, upstream):
    assert_refused_temporarily(sp, upstream,
                               r"unable to get local issuer|self[- ]signed|untrusted|verify",
                               "certificate from an untrusted CA")


@pytest.mark.upstream(cert="expired")
def test_expired_certificate(sp, upstream):
    assert_refused_temporarily(sp, upstream, r"expired", "expired certificate")


@pytest.mark.upstream(tls_max="TLSv1_1")
def test_upstream_offering_only_tls_1_1(sp, upstream):
    assert_refused_temporarily(sp, upstream, r"TLS|SSL|protocol|version|handshake",
                               "upstream offers only TLS 1.1")
    assert upstream.auths() == []


def test_system_trust_store_does_not_trust_the_test_ca(start_sealpost, upstream):
    """Without ca_file the system store is used, and it does not know the test CA:
    proves the default verifies instead of accepting anything."""
    sp = start_sealpost(upstream, upstream_cfg={"ca_file": None})
    assert_refused_temporarily(sp, upstream, r"unable to get local issuer|verify|certificate",
                               "test CA not in the system store")


@pytest.mark.upstream(mode="plain", require_auth=False)
def test_upstream_without_starttls(start_sealpost, upstream):
    sp = start_sealpost(upstream, upstream_cfg={"tls": "starttls"})
    assert_refused_temporarily(sp, upstream, r"STARTTLS", "upstream offers no STARTTLS")
    # and no credentials went out in clear text
    assert upstream.auths() == []


def test_implicit_tls_against_a_starttls_server(start_sealpost, upstream):
    sp = start_sealpost(upstream, upstream_cfg={"tls": "tls"})
    assert_refused_temporarily(sp, upstream, r"TLS|SSL|handshake|wrong version",
                               "tls = tls against a plain-text greeting")


# -- the upstream is away or broken -------------------------------------------------------------

def test_upstream_down_then_back(sp, upstream):
    upstream.stop()
    replies = send(sp)
    assert_temp_failure(replies, "upstream down")
    assert_log_names(sp.log(), r"refused|connect", "upstream down")
    upstream.start()
    msg = messages.simple(frm=FROM, to=TO)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0", what="after restart")
    [m] = upstream.wait_for(1)
    assert m.content == msg


@pytest.mark.parametrize("behaviour,pattern", [
    ("silent", r"time(d)? ?out"),
    ("http", r"reply|response|greeting|malformed|invalid|unexpected|protocol"),
    ("long_multiline", r"reply|response|too (long|many)|lines"),
    ("close", r"clos|eof|connection|reset"),
    ("garbage_greeting", r"reply|response|greeting|malformed|invalid|unexpected"),
])
def test_broken_upstream(start_sealpost, upstream, behaviour, pattern):
    bad = RawUpstream(behaviour)
    try:
        sp = start_sealpost(upstream, upstream_cfg={"port": str(bad.port), "timeout": "2s"})
        replies = send(sp)
        assert_temp_failure(replies, f"{behaviour} upstream")
        assert bad.connections >= 1, "sealpost never contacted the broken upstream"
        assert_log_names(sp.log(), pattern, f"{behaviour} upstream")
        assert b"AUTH" not in bad.received.upper(), "credentials sent before TLS"
    finally:
        bad.stop()
    assert_nothing_delivered(upstream)


def test_upstream_rejects_our_credentials(start_sealpost, upstream, write_file):
    pw = write_file("wrong.pass", "not-the-password\n")
    sp = start_sealpost(upstream, upstream_cfg={"password_file": str(pw)})
    replies = send(sp)
    f = first_failure(replies)
    assert f is not None and f.code >= 400, [str(r) for r in replies]
    assert_nothing_delivered(upstream)
    # the transaction's log line carries the upstream's own answer (535 5.7.8
    # Authentication credentials invalid), not only sealpost's mapping of it
    assert_log_names(sp.log(), r"535|credentials invalid", "upstream AUTH failed")


# -- the upstream's own answers ------------------------------------------------------------------

@pytest.mark.upstream(script=dict(rcpt_replies={"nobody@example.net": "550 5.1.1 No such user here"}))
def test_upstream_550_for_the_recipient(sp, upstream):
    replies = send(sp, rcpts=("nobody@example.net",))
    f = first_failure(replies)
    assert f is not None and f.is_(550, "5.1.1"), [str(r) for r in replies]
    assert_nothing_delivered(upstream)


@pytest.mark.upstream(script=dict(mail_replies=["553 5.7.1 Sender address not owned by user"]))
def test_upstream_rejects_the_sender(sp, upstream):
    replies = send(sp)
    f = first_failure(replies)
    assert f is not None and f.is_(553, "5.7.1"), [str(r) for r in replies]
    assert_nothing_delivered(upstream)


@pytest.mark.upstream(script=dict(data_replies=["451 4.3.0 Temporary local problem"]))
def test_upstream_451_at_data(sp, upstream):
    replies = send(sp)
    assert_reply(replies[-1], 451, "4.3.0", what="end of data")
    assert_nothing_delivered(upstream)


@pytest.mark.upstream(script=dict(data_replies=["552 5.3.4 Message too big for this system"]))
def test_upstream_552_at_data(sp, upstream):
    replies = send(sp)
    assert_reply(replies[-1], 552, "5.3.4", what="end of data")
    assert_nothing_delivered(upstream)


@pytest.mark.upstream(script=dict(data_replies=["451 4.3.0 Try again"]))
def test_upstream_451_then_250_on_retry(sp, upstream):
    msg = messages.rich(frm=FROM, to=TO)
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 451, "4.3.0", what="first try")
        assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0", what="retry")
    [m] = upstream.wait_for(1)
    assert m.content == msg
    with sp.client() as c:
        c.ehlo()
        deliver_sentinel(c, upstream, already=[msg])
