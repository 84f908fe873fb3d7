"""Concurrency: many idle clients never stall a sender; max_connections is enforced
with 421 4.7.0 and the slot is given back when a client leaves."""
from __future__ import annotations

import re
import time

import clients
import messages
from checks import FROM, TO
from clients import ConnectionClosed, RawClient, assert_reply
from waits import WAIT


def test_200_idle_clients_and_one_sender(sp, upstream):
    idle: list[RawClient] = []
    try:
        for i in range(200):
            c = sp.client(timeout=10)
            assert_reply(c.greeting, 220, what=f"greeting of idle client {i}")
            idle.append(c)
        # A few are stuck in the middle of things, not just idle.
        half_line = idle[0]
        half_line.send(b"EHLO half-a-li")                    # unterminated command line
        mid_data = idle[1]
        mid_data.ehlo()
        mid_data.cmd(f"MAIL FROM:<{FROM}>")
        mid_data.cmd(f"RCPT TO:<{TO}>")
        assert_reply(mid_data.cmd("DATA"), 354)
        mid_data.send(b"Subject: slow\r\n\r\nhalf a bo")     # unfinished DATA

        msg = messages.rich(frm=FROM, to=TO)
        t0 = time.monotonic()
        code, _ = clients.smtplib_send(sp.port, FROM, [TO], msg, timeout=20)
        assert code == 250
        [m] = upstream.wait_for(1)
        assert m.content == msg
        assert time.monotonic() - t0 < 15, "the sender was stalled by idle clients"

        # every one of the 200 is still served
        for i, c in enumerate(idle[2:], start=2):
            assert_reply(c.cmd("NOOP"), 250, "2.0.0", what=f"NOOP on idle client {i}")
        half_line.send(b"ne.test\r\n")
        assert_reply(half_line.reply(), 250, what="the completed EHLO")
        mid_data.send(b"dy\r\n.\r\n")
        assert_reply(mid_data.reply(timeout=30), 250, "2.0.0", what="the slow DATA")
        assert len(upstream.wait_for(2)) == 2
    finally:
        for c in idle:
            c.close()


def _open_until_greeted(sp, n: int) -> list[RawClient]:
    out = []
    try:
        for i in range(n):
            c = sp.client()
            out.append(c)
            assert_reply(c.greeting, 220, what=f"connection {i + 1} of {n}")
    except BaseException:
        for c in out:
            c.close()
        raise
    return out


RELEASED = re.compile(r"smtp \S+: session slot released; (\d+) active")


def _released(sp) -> int:
    """How many sessions sealpost has ended and given the slot back for: the
    server's own view, so no test guesses when an old connection is gone."""
    return len(RELEASED.findall(sp.log()))


def _wait_released(sp, n: int, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while _released(sp) < n:
        assert time.monotonic() < deadline, f"{what}: sealpost released {_released(sp)} " \
                                            f"session slot(s), expected {n}\n{sp.log()[-3000:]}"
        time.sleep(0.02)


def test_max_connections(start_sealpost, upstream):
    n = 5
    sp = start_sealpost(upstream, proxy={"max_connections": str(n)})
    # The harness has waited until its readiness probes were released: none of
    # its connections is counted.  From here on, the server's log says when a
    # slot comes free.
    conns = _open_until_greeted(sp, n)
    try:
        extra = sp.client(read_greeting=False)
        try:
            r = extra.reply()
        except ConnectionClosed:
            raise AssertionError("connection N+1 closed without a 421 reply")
        assert_reply(r, 421, "4.7.0", what=f"connection {n + 1} with max_connections = {n}")
        extra.wait_closed(WAIT)
        extra.close()

        # the ones inside still work
        assert_reply(conns[0].cmd("NOOP"), 250, "2.0.0")
        # one leaves: its slot is given back (the server notices the close
        # asynchronously: wait for its own word that the slot is free)
        before = _released(sp)
        assert_reply(conns[0].cmd("QUIT"), 221, "2.0.0")
        conns[0].wait_closed(WAIT)
        conns[0].close()
        _wait_released(sp, before + 1, "after QUIT")
        conns[0] = sp.client()
        assert_reply(conns[0].greeting, 220, what="the connection taking the freed slot")
        with conns[0] as c:
            c.ehlo()
            msg = messages.simple(frm=FROM, to=TO)
            assert_reply(c.transaction(FROM, [TO], msg)[-1], 250, "2.0.0")
        assert upstream.wait_for(1)[0].content == msg
    finally:
        for c in conns:
            c.close()


def test_many_sequential_connections_do_not_leak_slots(start_sealpost, upstream):
    """max_connections = 3, 30 connections one after the other (some abort
    rudely): if a slot leaked, a later one would get 421, and the server's own
    count of active sessions would not come back to 0."""
    sp = start_sealpost(upstream, proxy={"max_connections": "3"})
    for i in range(30):
        before = _released(sp)
        c = sp.client()
        assert_reply(c.greeting, 220, what=f"connection {i}")
        if i % 3 == 0:
            c.ehlo()
            c.cmd("QUIT")
            c.wait_closed(WAIT)
        elif i % 3 == 1:
            c.send(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\n")   # and vanish mid-session
        c.close()
        # the server has seen the close and given the slot back
        _wait_released(sp, before + 1, f"connection {i}")
        assert RELEASED.findall(sp.log())[-1] == "0", f"slot leaked after connection {i}"
