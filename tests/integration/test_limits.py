"""Limits in action (issue 8): a client trickling bytes is cut off by the
deadline however busy it looks; one remote address cannot take every slot;
repeated AUTH failures from one address shut AUTH for it; a message nested
deeper than the MIME limit is refused before anything is made of it."""
from __future__ import annotations

import socket
import time

import pytest

import messages
from checks import assert_nothing_delivered, assert_reply
from clients import ConnectionClosed, RawClient
from ports import free_port
from waits import WAIT

FROM = "alice@example.com"
TO = "bob@example.net"
USER, PASSWORD = "limits-user", "limits-password-1"


def local_non_loopback_ipv4() -> str | None:
    """An address of this machine that is not loopback (connections from it to
    itself carry it as the peer), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))          # no packet is sent for UDP connect
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


# A trickling client keeps the inactivity timer alive forever; only a deadline
# ends it.  Cut off within this bound (far above the 2 s deadline, so that a
# loaded machine does not matter; far below "never") is the deadline working.
TRICKLE_BOUND = 40


def test_trickling_client_is_cut_off_by_the_deadline(start_sealpost, upstream):
    """One byte every 0.4 s keeps the connection busy but never completes a
    command: the per-command deadline (timeout = 2s) ends it anyway."""
    sp = start_sealpost(upstream, proxy={"timeout": "2s"})
    c = sp.client()
    start = time.monotonic()
    got = b""
    try:
        for ch in b"NOOP and never a line end " * 10:
            c.send(bytes([ch]))
            time.sleep(0.4)
            c.sock.settimeout(0.01)
            try:
                chunk = c.sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            got += chunk
            if b"421" in got:
                break
            assert time.monotonic() - start < TRICKLE_BOUND, \
                f"still connected after {TRICKLE_BOUND} s of trickling"
    except (BrokenPipeError, ConnectionResetError):
        pass
    elapsed = time.monotonic() - start
    assert b"421 4.4.2" in got, f"no timeout reply after {elapsed:.1f}s: {got!r}"
    assert elapsed < TRICKLE_BOUND, f"cut off only after {elapsed:.1f}s (timeout = 2s)"
    c.close()


def test_trickling_data_is_cut_off(start_sealpost, upstream):
    """The same inside DATA: a line that never ends within data_timeout."""
    sp = start_sealpost(upstream, proxy={"data_timeout": "2s"})
    with sp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>")
        c.cmd(f"RCPT TO:<{TO}>")
        assert_reply(c.cmd("DATA"), 354)
        start = time.monotonic()
        got = b""
        try:
            while time.monotonic() - start < TRICKLE_BOUND and b"421" not in got:
                c.send(b"x")
                time.sleep(0.3)
                c.sock.settimeout(0.01)
                try:
                    got += c.sock.recv(4096)
                except socket.timeout:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert b"421 4.4.2" in got, got
        assert time.monotonic() - start < TRICKLE_BOUND
    assert_nothing_delivered(upstream)


def test_auth_failures_per_address(start_sealpost, upstream):
    """Ten failed AUTHs from one address (over several sessions: each hangs up
    after three) shut AUTH for that address, even with the right password."""
    sp = start_sealpost(upstream, users={USER: PASSWORD})
    failures = 0
    while failures < 10:
        with sp.client() as c:
            c.ehlo()
            for _ in range(3):
                if failures == 10:
                    break
                r = c.auth_plain(USER, "wrong")
                assert_reply(r, 535, "5.7.8")
                failures += 1
                if failures % 3 == 0:
                    break
    with sp.client() as c:
        c.ehlo()
        assert_reply(c.auth_plain(USER, PASSWORD), 454, "4.7.0")
    assert "too many failures from this address" in sp.log()


def test_mime_depth_limit(sp, upstream):
    depth = 80
    lines = [f"From: {FROM}", f"To: {TO}", "Subject: deep", "MIME-Version: 1.0",
             'Content-Type: multipart/mixed; boundary="b0"', ""]
    for i in range(depth):
        lines += [f"--b{i}", f'Content-Type: multipart/mixed; boundary="b{i + 1}"', ""]
    lines += [f"--b{depth}", "Content-Type: text/plain", "", "deep down"]
    lines += [f"--b{i}--" for i in range(depth, -1, -1)]
    msg = "\r\n".join(lines).encode() + b"\r\n"
    with sp.client() as c:
        c.ehlo()
        r = c.transaction(FROM, [TO], msg)[-1]
        assert_reply(r, 554, "5.6.0")
        assert "nested deeper" in r.text
        # A sane message on the same session still goes.
        assert_reply(c.transaction(FROM, [TO], messages.simple(frm=FROM, to=TO))[-1], 250, "2.0.0")
    assert len(upstream.wait_for(1)) == 1


def test_connections_per_address(start_sealpost, upstream):
    addr = local_non_loopback_ipv4()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    port = free_port(addr)
    sp = start_sealpost(upstream, proxy={"listen": f"{addr}:{port}", "max_connections_per_ip": "3"},
                        users={USER: PASSWORD})
    held = [RawClient(addr, port) for _ in range(3)]
    try:
        for c in held:
            assert_reply(c.greeting, 220)
        extra = RawClient(addr, port, read_greeting=False)
        try:
            r = extra.reply(timeout=WAIT)
        except ConnectionClosed:
            pytest.fail("connection 4 closed without a reply")
        assert_reply(r, 421, "4.7.0")
        assert "from your address" in r.text
        extra.close()
        # Loopback clients are not counted against that address.
    finally:
        for c in held:
            c.close()
