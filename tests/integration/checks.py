"""Assertions shared by the sealpost tests."""
from __future__ import annotations

import re
from typing import Optional, Sequence

import messages
from clients import RawClient, Reply, assert_reply
from upstream import Upstream

FROM = "alice@example.com"
TO = "bob@example.net"


def deliver_sentinel(c: RawClient, up: Upstream, already: Sequence[bytes] = ()) -> bytes:
    """Send one good message on an open session and wait for it upstream.

    A session is handled in order, so once the sentinel has arrived, anything
    smuggled earlier on the same connection would have arrived before it: the
    upstream must hold exactly `already` + [sentinel]."""
    c.cmd("RSET")
    msg = messages.simple(subject="sentinel " + messages.unique_token(), frm=FROM, to=TO)
    replies = c.transaction(FROM, [TO], msg)
    assert_reply(replies[-1], 250, "2.0.0", what="sentinel delivery")
    got = up.wait_for(len(already) + 1)
    contents = [m.content for m in got]
    assert contents == list(already) + [msg], (
        "the upstream received something besides the expected messages:\n"
        + up.events_summary())
    return msg


def assert_nothing_delivered(up: Upstream) -> None:
    assert up.messages == [], f"upstream received: {up.events_summary()}"


def first_failure(replies: list[Reply]) -> Optional[Reply]:
    for r in replies:
        if r.code >= 400:
            return r
    return None


def assert_temp_failure(replies: list[Reply], what: str = "") -> Reply:
    """The transaction failed with 4xx and an enhanced code 4.x.x, and no 250 for the data."""
    f = first_failure(replies)
    assert f is not None, f"{what}: the transaction did not fail: {[str(r) for r in replies]}"
    assert f.code // 100 == 4 and (f.enhanced or "").startswith("4."), (
        f"{what}: expected 4xx 4.x.x, got {f}")
    return f


def assert_log_names(log: str, pattern: str, what: str) -> None:
    assert re.search(pattern, log, re.I), (
        f"sealpost's log does not name the reason ({what}: /{pattern}/); log tail:\n{log[-3000:]}")


def ehlo_keywords(c: RawClient, name: str = "client.test") -> dict[str, str]:
    return c.ehlo(name).keywords()
