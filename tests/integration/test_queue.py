"""Delivery you can trust (issue 6): the durable ciphertext queue, retries,
DSNs, mixed recipients, connection reuse.

The real sealpost against the real aiosmtpd upstream.  Queued copies are
sodium copies (keys made with `sealpost keygen`, opened with `sealpost open`),
so no GnuPG is needed except for the one mixed-forms test.  Every test checks
that nothing was lost (each message the client got 250 for reaches its
recipients, decrypting to exactly what the client sent) and that no plaintext
ever sits in the queue directory: every file under it is searched for the
subject, the body text, the attachment's name and a line of the attachment
(and their base64 forms).

Timing: [queue] min_backoff = 1s, max_backoff = 2s, so the runner retries
within a few seconds; every wait is a poll with a deadline.  The few "nothing
more arrives" checks wait a bounded grace period of more than one full backoff
cycle (there is no event to wait for when the right outcome is silence).

Tests that mount (a tiny tmpfs, a read-only bind) need CAP_SYS_ADMIN; they are
skipped, saying so, where mount(8) is refused.
"""
from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pytest

from clients import ConnectionClosed, Reply, assert_reply, dot_stuff
from sealpost import Sealpost, run_cli
from sodiumkeys import SodiumKey, write_recipients
from upstream import Upstream, _Handler
from waits import WAIT

CRLF = b"\r\n"
ALICE = "alice@example.com"        # the sender
BOB = "bob@example.net"
CAROL = "carol@example.net"
DAVE = "dave@example.org"
ERIN = "erin@example.org"          # no key anywhere: plain (no_key = plain) or refused
SODIUM_ADDRS = (BOB, CAROL, DAVE)

MIN_BACKOFF = 1
MAX_BACKOFF = 2
# Longer than one whole retry cycle: an entry that were still there would be tried.
GRACE = MAX_BACKOFF + 1.5
ID_RX = re.compile(r"^[0-9a-f]{32}$")


# =====================================================================================
# Messages with secrets that must never reach the disk or a DSN
# =====================================================================================

@dataclass
class Secret:
    msg: bytes
    token: str
    needles: list[bytes]          # plaintext that must not appear in the queue / a DSN
    subject: str


def _b64_variants(s: bytes) -> list[bytes]:
    """s as it would look inside base64 at each of the three alignments."""
    out = []
    for pad in range(3):
        enc = base64.b64encode(b"\0" * pad + s)
        start = 4 if pad else 0
        end = 4 * ((pad + len(s)) // 3)
        if end - start >= 12:
            out.append(enc[start:end])
    return out


def secret_message(token: Optional[str] = None, to: Sequence[str] = (BOB,), cc: Sequence[str] = (),
                   bcc: Sequence[str] = (), attachment_size: int = 12000,
                   frm: str = ALICE) -> Secret:
    """multipart/mixed with an 8-bit text part and a base64 attachment.  The
    token is in the subject, the body and the attachment's name, but not in the
    Message-ID (which legitimately stays in the outer headers)."""
    token = token or uuid.uuid4().hex[:16]
    boundary = b"=_q_" + uuid.uuid4().hex.encode()
    blob = hashlib.shake_256(("blob" + token).encode()).digest(attachment_size)
    b64 = base64.encodebytes(blob).replace(b"\n", CRLF).rstrip(CRLF).split(CRLF)
    subject = f"Quarterly figures SUBJ-{token}"
    body_line = f"BODY-{token}: the merger closes on Friday, tell nobody."
    att_name = f"ATTACH-{token}.pdf"
    hdrs = [b"From: Alice <" + frm.encode() + b">",
            b"To: " + b", ".join(a.encode() for a in to)]
    if cc:
        hdrs.append(b"Cc: " + b", ".join(a.encode() for a in cc))
    if bcc:
        hdrs.append(b"Bcc: " + b", ".join(a.encode() for a in bcc))
    hdrs += [
        b"Subject: " + subject.encode(),
        b"Date: Mon, 03 Jun 2024 10:00:00 +0000",
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"',
    ]
    lines = hdrs + [
        b"",
        b"This is a multi-part message in MIME format.",
        b"",
        b"--" + boundary,
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        b"Dear Bob,",
        b"",
        body_line.encode(),
        "Grüße aus Köln ✓ — der Vorstand".encode("utf-8"),
        b"",
        b"--" + boundary,
        b'Content-Type: application/pdf; name="' + att_name.encode() + b'"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="' + att_name.encode() + b'"',
        b"",
        *b64,
        b"",
        b"--" + boundary + b"--",
        b"",
    ]
    msg = b"".join(l + CRLF for l in lines)
    needles = [f"SUBJ-{token}".encode(), f"BODY-{token}".encode(), f"ATTACH-{token}".encode(),
               b"the merger closes", "Grüße aus Köln".encode("utf-8"), b64[3], blob[100:140]]
    for n in (f"SUBJ-{token}".encode(), f"BODY-{token}: the merger".encode(), att_name.encode()):
        needles += _b64_variants(n)
    return Secret(msg, token, needles, subject)


def find_needles(data: bytes, needles: Sequence[bytes]) -> list[bytes]:
    return [n for n in needles if n in data]


# =====================================================================================
# The queue environment
# =====================================================================================

@pytest.fixture(scope="module")
def keys(tmp_path_factory, sealpost_bin) -> dict[str, SodiumKey]:
    d = tmp_path_factory.mktemp("sodiumkeys")
    return {a: SodiumKey.make(sealpost_bin, d, a) for a in SODIUM_ADDRS}


@dataclass
class Q:
    sp: Sealpost
    up: Upstream
    qdir: Path
    keys: dict
    bin: Path
    tmp: Path
    secrets: list = field(default_factory=list)     # every Secret sent: checked against the disk

    # -- the CLI --------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 60):
        return run_cli(self.bin, ["queue", "-c", str(self.sp.config_path), *args], self.sp.workdir,
                       timeout=timeout)

    def list_entries(self) -> list[dict]:
        r = self.cli("list")
        assert r.rc == 0, f"queue list failed:\n{r}"
        return parse_list(r.stdout)

    # -- the directory ----------------------------------------------------------------
    def ids(self) -> list[str]:
        d = self.qdir / "env"
        return sorted(p.name for p in d.iterdir() if ID_RX.match(p.name)) if d.is_dir() else []

    def msg_ids(self) -> list[str]:
        d = self.qdir / "msg"
        return sorted(p.name for p in d.iterdir() if ID_RX.match(p.name)) if d.is_dir() else []

    def all_files(self) -> list[Path]:
        out = []
        for root in (self.qdir, self.sp.workdir / "state"):
            if root.exists():
                out += [p for p in root.rglob("*") if p.is_file()]
        return out

    def assert_no_plaintext(self, extra: Sequence[Secret] = ()) -> None:
        needles = [n for s in list(self.secrets) + list(extra) for n in s.needles]
        bad = []
        for p in self.all_files():
            try:
                data = p.read_bytes()
            except (FileNotFoundError, PermissionError):
                continue
            hits = find_needles(data, needles)
            if hits:
                bad.append(f"{p}: {[h[:40] for h in hits]}")
        assert not bad, "plaintext of the message on disk under the queue / state directory:\n" + "\n".join(bad)

    def assert_consistent(self) -> None:
        """Every envelope has its copy; nothing is readable by others."""
        env, msg = set(self.ids()), set(self.msg_ids())
        assert env <= msg, f"queue envelopes without their copy: {sorted(env - msg)}"
        for p in self.qdir.rglob("*"):
            if p.is_file() and p.parent.name in ("env", "msg", "tmp"):
                mode = p.stat().st_mode & 0o777
                assert mode & 0o077 == 0, f"{p} has mode {mode:03o}: readable by others"

    def wait_empty(self, timeout: float = WAIT) -> None:
        wait_until(lambda: not self.ids() and not self.msg_ids(), timeout,
                   lambda: f"queue {self.qdir} not empty: env={self.ids()} msg={self.msg_ids()}\n"
                           f"{self.sp.log()[-3000:]}")

    # -- sending ----------------------------------------------------------------------
    def send(self, rcpts: Sequence[str], s: Secret, frm: str = ALICE) -> list[Reply]:
        self.secrets.append(s)
        with self.sp.client() as c:
            c.ehlo()
            replies = c.transaction(frm, list(rcpts), s.msg)
            try:
                c.cmd("QUIT", timeout=5)
            except (ConnectionClosed, TimeoutError, OSError):
                pass
        return replies

    def open(self, addr: str, content: bytes) -> bytes:
        return self.keys[addr].open(self.bin, content, self.tmp / "opened")

    def copies_for(self, addr: str, msgs=None) -> list:
        msgs = self.up.messages if msgs is None else msgs
        return [m for m in list(msgs) if addr in m.rcpt_tos and m.mail_from == ALICE]

    def dsns(self) -> list:
        return [m for m in list(self.up.messages) if is_dsn(m.content)]

    def restart(self) -> None:
        """Start the (stopped or killed) proxy again, keeping the old log."""
        keep_log(self.sp)
        self.sp.start()


def keep_log(sp: Sealpost) -> None:
    if sp.stderr_path.exists():
        old = sp.workdir / f"{sp.name}.stderr.before-restart"
        with open(old, "ab") as f:
            f.write(sp.stderr_path.read_bytes())
            f.write(b"\n----- restart -----\n")


def kill9(sp: Sealpost) -> None:
    """SIGKILL the proxy (no cleanup runs) and forget the process."""
    assert sp.proc is not None and sp.proc.poll() is None, "sealpost is not running"
    os.kill(sp.proc.pid, signal.SIGKILL)
    sp.proc.wait(WAIT)
    sp._err.close()
    sp._out.close()
    sp.proc = None


def wait_until(pred, timeout: float, what) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(what() if callable(what) else what)
        time.sleep(0.05)


def parse_list(out: str) -> list[dict]:
    """`sealpost queue list`: `<id>  <time>  <n> bytes  <form>  from <addr>  attempts N, next ...`
    then `    to <addr>` lines."""
    entries = []
    head = re.compile(r"^([0-9a-f]{32})  (\S.*?)  (\d+) bytes  (\S+)  from <([^>]*)>  attempts (\d+), next (.+)$")
    for line in out.splitlines():
        m = head.match(line)
        if m:
            entries.append(dict(id=m.group(1), time=m.group(2), size=int(m.group(3)), form=m.group(4),
                                sender=m.group(5), attempts=int(m.group(6)), next=m.group(7), to=[],
                                line=line))
            continue
        m = re.match(r"^    to <([^>]*)>$", line)
        if m:
            assert entries, f"a 'to' line before any entry:\n{out}"
            entries[-1]["to"].append(m.group(1))
    return entries


@pytest.fixture
def short_dir():
    """short_dir(prefix) -> a new directory with a short path under /tmp, for
    queue directories (see test_long_queue_dir_path for why the other tests keep
    it short); removed at teardown, after the proxies stopped."""
    made = []

    def make(prefix: str = "spq") -> Path:
        d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        made.append(d)
        return d
    yield make
    for d in made:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def qenv(start_sealpost, upstream, keys, sealpost_bin, tmp_path, short_dir):
    made = []

    def make(no_key: str = "reject", queue: Optional[dict] = None, extra: Optional[dict] = None,
             up: Optional[Upstream] = None, start: bool = True, name: Optional[str] = None,
             qdir: Optional[Path] = None) -> Q:
        up = up or upstream
        qdir = qdir or short_dir()
        rec = write_recipients(tmp_path / "sodium-recipients", keys.values())
        ex = {"sodium": {"recipients": str(rec)}, "policy": {"no_key": no_key},
              "queue": {"dir": str(qdir), "min_backoff": f"{MIN_BACKOFF}s",
                        "max_backoff": f"{MAX_BACKOFF}s"}}
        ex["queue"].update(queue or {})
        for s, kv in (extra or {}).items():
            ex.setdefault(s, {}).update(kv)
        sp = start_sealpost(up, extra=ex, start=start, name=name)
        q = Q(sp, up, qdir, keys, sealpost_bin, tmp_path)
        made.append(q)
        return q

    yield make
    # Whatever a test did: nothing it sent may be left as plaintext on disk.
    for q in made:
        q.sp.stop()
        q.assert_no_plaintext()


# -- DSNs --------------------------------------------------------------------------------

def is_dsn(content: bytes) -> bool:
    head = content.split(b"\r\n\r\n", 1)[0].lower()
    return b"multipart/report" in head


@dataclass
class Dsn:
    msg: email.message.Message
    human: str
    per_msg: dict
    per_rcpt: list[dict]


def check_dsn(rec, sender: str, failed: dict[str, tuple[str, str]], secrets: Sequence[Secret]) -> Dsn:
    """rec is an upstream Received holding an RFC 3464 report to `sender` about
    `failed` = {addr: (status regex, diagnostic substring)}; no plaintext of the
    message in it."""
    assert rec.mail_from in ("", sender), f"DSN sent with MAIL FROM:<{rec.mail_from}>"
    assert rec.rcpt_tos == [sender], f"DSN sent to {rec.rcpt_tos}, not the sender"
    raw = rec.content
    for s in secrets:
        hits = find_needles(raw, s.needles)
        assert not hits, f"the DSN contains plaintext of the message: {hits}\n{raw[:3000]!r}"
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert (m.get_param("report-type") or "").lower() == "delivery-status", m["Content-Type"]
    assert sender in (m["To"] or ""), f"DSN To: {m['To']!r}"
    parts = m.get_payload()
    assert isinstance(parts, list) and len(parts) >= 2, f"DSN has {len(parts) if isinstance(parts, list) else 0} parts"
    assert parts[0].get_content_type() == "text/plain", parts[0].get_content_type()
    assert parts[1].get_content_type() == "message/delivery-status", parts[1].get_content_type()
    human = parts[0].get_payload(decode=True).decode("utf-8", "replace")
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, f"delivery-status blocks: {blocks!r}"
    per_msg = dict(blocks[0].items())
    per_rcpt = [dict((k.lower(), v) for k, v in b.items()) for b in blocks[1:]]
    got = {}
    for b in per_rcpt:
        fr = b.get("final-recipient", "")
        mm = re.match(r"(?i)^rfc822;\s*(\S+)$", fr.strip())
        assert mm, f"Final-Recipient {fr!r}"
        got[mm.group(1)] = b
    assert set(got) == set(failed), f"DSN names {sorted(got)}, expected {sorted(failed)}"
    for addr, (status_rx, diag) in failed.items():
        b = got[addr]
        assert b.get("action", "").strip().lower() == "failed", f"{addr}: Action {b.get('action')!r}"
        assert re.fullmatch(status_rx, b.get("status", "").strip()), f"{addr}: Status {b.get('status')!r}"
        dc = b.get("diagnostic-code", "")
        assert re.match(r"(?i)^smtp;", dc.strip()), f"{addr}: Diagnostic-Code {dc!r}"
        assert diag in " ".join(dc.split()), f"{addr}: Diagnostic-Code {dc!r} lacks {diag!r}"
        assert addr in human, f"the DSN's text does not name {addr}:\n{human}"
    return Dsn(m, human, per_msg, per_rcpt)


# =====================================================================================
# 1. upstream down -> 250 + queued -> upstream up -> delivered once
# =====================================================================================

def test_upstream_down_queued_then_delivered_once(qenv, upstream):
    q = qenv()
    upstream.stop()
    s = secret_message(to=[BOB])
    replies = q.send([BOB], s)
    r = replies[-1]
    assert_reply(r, 250, "2.0.0", what="end of data with the upstream down")
    assert re.search(r"0 of 1 recipients sent upstream, 1 queued for retry", r.text), str(r)

    # Durable before the reply: the entry is there the moment the client has its 250.
    ids = q.ids()
    assert len(ids) == 1, f"queue entries after the 250: {ids}"
    q.assert_consistent()
    q.assert_no_plaintext()
    queued_copy = (q.qdir / "msg" / ids[0]).read_bytes()
    [e] = q.list_entries()
    assert e["id"] == ids[0] and e["form"] == "sodium" and e["sender"] == ALICE and e["to"] == [BOB], e
    assert e["size"] == len(queued_copy) and e["attempts"] >= 1, e
    # What is queued is the encrypted copy, ready to go.
    assert q.open(BOB, queued_copy) == s.msg

    upstream.start()
    [m] = upstream.wait_for(1)
    assert m.mail_from == ALICE and m.rcpt_tos == [BOB], (m.mail_from, m.rcpt_tos)
    assert m.content == queued_copy, "the upstream got something else than the queued copy"
    assert q.open(BOB, m.content) == s.msg
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 1, f"delivered more than once: {upstream.events_summary()}"
    assert q.list_entries() == []
    q.assert_no_plaintext()


# =====================================================================================
# 2. SIGKILL
# =====================================================================================

class _StallHandler(_Handler):
    """Holds the reply to the end of DATA until `gate` is set; then answers
    `after` (a reply string) or, when None, accepts normally."""

    def __init__(self, up, gate: threading.Event, entered: threading.Event, after: Optional[str]):
        super().__init__(up)
        self.gate, self.entered, self.after = gate, entered, after
        self.stall = True

    async def handle_DATA(self, server, session, envelope):
        if self.stall:
            self.entered.set()
            while not self.gate.is_set():
                await asyncio.sleep(0.02)
            if self.after is not None:
                self.up._record("rejected", self.after)
                return self.after
        return await super().handle_DATA(server, session, envelope)


def install_stall(up: Upstream, after: Optional[str]) -> _StallHandler:
    gate, entered = threading.Event(), threading.Event()
    h = _StallHandler(up, gate, entered, after)
    up._controller.handler = h          # used for every new connection
    return h


def test_sigkill_between_data_and_reply(qenv, upstream):
    """The upstream has the data but has not answered; the proxy dies.  The
    client has no 250, so it keeps the message and sends it again: after the
    restart exactly one copy arrives and nothing is left queued."""
    q = qenv()
    # The upstream never got to accept the first attempt (its reply went to a
    # dead connection and it dropped the transaction).
    h = install_stall(upstream, after="451 4.3.0 connection lost")
    s = secret_message(to=[BOB])
    q.secrets.append(s)
    with q.sp.client() as c:
        c.ehlo()
        for cmd in (f"MAIL FROM:<{ALICE}>", f"RCPT TO:<{BOB}>"):
            assert c.cmd(cmd).code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(s.msg) + b".\r\n")
        assert h.entered.wait(WAIT), "sealpost never reached the upstream's end of data"
        kill9(q.sp)
        try:
            reply = c.reply(timeout=5)
        except (ConnectionClosed, TimeoutError):
            reply = None
    assert reply is None or reply.code != 250, f"the client got {reply} from a proxy that was killed"
    h.gate.set()
    h.stall = False
    q.assert_no_plaintext()
    q.assert_consistent()
    q.restart()
    # Nothing was accepted by the upstream, nothing was promised to the client:
    # whatever the queue holds now must be delivered, and the client retries.
    left = q.ids()
    replies = q.send([BOB], s)
    assert_reply(replies[-1], 250, "2.0.0", what="the client's retry after the restart")
    upstream.wait_for(1 + len(left))
    q.wait_empty()
    time.sleep(GRACE)
    got = [q.open(BOB, m.content) for m in q.copies_for(BOB)]
    assert got == [s.msg] * (1 + len(left)), f"copies: {upstream.events_summary()}"
    assert len(left) == 0, ("a copy was queued although the proxy had not answered (it is "
                            "delivered, and the client's retry is a second copy)")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_queued_entries_survive_restart(qenv, upstream, how):
    q = qenv()
    upstream.stop()
    sent = []
    for rcpt in (BOB, CAROL, DAVE):
        s = secret_message(to=[rcpt])
        assert_reply(q.send([rcpt], s)[-1], 250, "2.0.0", what=f"queued message to {rcpt}")
        sent.append((rcpt, s))
    assert len(q.ids()) == 3, q.ids()
    if how == "SIGKILL":
        kill9(q.sp)
    else:
        q.sp.stop()
    q.assert_consistent()
    q.assert_no_plaintext()
    assert len(q.list_entries()) == 3
    upstream.start()
    q.restart()
    upstream.wait_for(3)
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 3, upstream.events_summary()
    for rcpt, s in sent:
        copies = q.copies_for(rcpt)
        assert len(copies) == 1 and copies[0].rcpt_tos == [rcpt], upstream.events_summary()
        assert q.open(rcpt, copies[0].content) == s.msg


def test_sigkill_at_random_moments(qenv, upstream):
    """Kill -9 at random moments after the end of data (the upstream answers
    451, so every message goes to the queue), restart, repeat.  Afterwards:
    every message the client got 250 for is delivered exactly once, no message
    is delivered twice, and the queue never held a half entry or plaintext."""
    seed = int(os.environ.get("SP_QUEUE_SEED", "20240603"))
    rnd = random.Random(seed)
    upstream.script.data_replies.extend(["451 4.3.0 busy, try later"] * 500)
    q = qenv()
    outcomes: list[tuple[Secret, bool]] = []

    # Calibrate: how long from the end of data to the reply.
    s = secret_message(to=[BOB])
    t0 = time.monotonic()
    r = q.send([BOB], s)[-1]
    span = time.monotonic() - t0
    assert_reply(r, 250, "2.0.0", what="calibration message (queued)")
    outcomes.append((s, True))

    for i in range(12):
        s = secret_message(to=[BOB])
        q.secrets.append(s)
        delay = rnd.uniform(0, span * 1.5)
        with q.sp.client() as c:
            c.ehlo()
            for cmd in (f"MAIL FROM:<{ALICE}>", f"RCPT TO:<{BOB}>"):
                assert c.cmd(cmd).code == 250
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(s.msg) + b".\r\n")
            time.sleep(delay)
            kill9(q.sp)
            try:
                reply = c.reply(timeout=5)
            except (ConnectionClosed, TimeoutError):
                reply = None
        outcomes.append((s, reply is not None and reply.code == 250))
        q.assert_consistent()
        q.assert_no_plaintext()
        q.restart()
    # The upstream takes everything from now on.
    with upstream._lock:
        upstream.script.data_replies.clear()
    q.wait_empty(timeout=30)
    time.sleep(GRACE)
    delivered: dict[bytes, int] = {}
    for m in q.copies_for(BOB):
        plain = q.open(BOB, m.content)
        delivered[plain] = delivered.get(plain, 0) + 1
    promised = sum(ok for _, ok in outcomes)
    print(f"seed {seed}: span {span:.3f}s; {promised} of {len(outcomes)} got 250; "
          f"{sum(1 for s, ok in outcomes if not ok and delivered.get(s.msg))} without 250 delivered anyway")
    problems = []
    for s, ok in outcomes:
        n = delivered.get(s.msg, 0)
        if ok and n != 1:
            problems.append(f"{s.token}: client got 250, delivered {n} times")
        if not ok and n > 1:
            problems.append(f"{s.token}: no 250, delivered {n} times")
    assert not problems, (f"seed {seed}: " + "; ".join(problems)
                          + f"\n{upstream.events_summary()}")
    assert sum(delivered.values()) == len(delivered), "a duplicate copy"
    assert promised >= 1


# =====================================================================================
# 3. 451 then 250 -> exactly one delivery
# =====================================================================================

@pytest.mark.parametrize("where", ["data", "mail", "rcpt"])
def test_tempfail_then_accept_delivers_once(qenv, upstream, where):
    q = qenv()
    # The upstream keeps failing until the queue has been looked at (the first
    # retry may come within a second), then accepts.
    if where == "data":
        upstream.script.data_replies.extend(["451 4.3.0 try again later"] * 50)
    elif where == "mail":
        upstream.script.mail_replies.extend(["451 4.3.2 system not accepting messages"] * 50)
    else:
        upstream.script.rcpt_replies[BOB] = "450 4.2.1 mailbox busy"
    s = secret_message(to=[BOB])
    r = q.send([BOB], s)[-1]
    assert_reply(r, 250, "2.0.0", what=f"451 at {where}")
    assert "1 queued for retry" in r.text, str(r)
    assert len(q.ids()) == 1
    q.assert_no_plaintext()
    # The upstream recovers.
    with upstream._lock:
        upstream.script.data_replies.clear()
        upstream.script.mail_replies.clear()
        upstream.script.rcpt_replies.pop(BOB, None)
    [m] = upstream.wait_for(1)
    assert m.rcpt_tos == [BOB] and q.open(BOB, m.content) == s.msg
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 1, f"duplicate delivery: {upstream.events_summary()}"
    assert q.dsns() == []


# =====================================================================================
# 4. 550 for one recipient -> the other delivered, 250, DSN; 550 for all -> 550, no DSN
# =====================================================================================

@pytest.mark.parametrize("shape", ["same-copy", "bcc-copy"])
def test_one_recipient_refused_dsn(qenv, upstream, shape):
    q = qenv()
    upstream.script.rcpt_replies[CAROL] = "550 5.1.1 <carol@example.net>: Recipient address rejected: User unknown"
    if shape == "same-copy":
        s = secret_message(to=[BOB, CAROL])
    else:
        s = secret_message(to=[BOB], bcc=[CAROL])       # carol gets a copy of her own
    r = q.send([BOB, CAROL], s)[-1]
    assert_reply(r, 250, "2.0.0", what="one of two recipients refused")
    assert re.search(r"1 of 2 recipients sent upstream.*1 refused \(a delivery report follows\)", r.text), str(r)
    msgs = upstream.wait_for(2)
    copies = q.copies_for(BOB)
    assert len(copies) == 1 and copies[0].rcpt_tos == [BOB], upstream.events_summary()
    assert q.open(BOB, copies[0].content).replace(b"Bcc: " + CAROL.encode() + CRLF, b"") == \
        s.msg.replace(b"Bcc: " + CAROL.encode() + CRLF, b"")
    [d] = q.dsns()
    assert d.mail_from == "", f"the DSN was not sent with the null sender: {d.mail_from!r}"
    dsn = check_dsn(d, ALICE, {CAROL: (r"5\.1\.1", "550 5.1.1")}, [s])
    assert BOB not in " ".join(dsn.human.split()), "the DSN names a recipient that got the message"
    assert len(msgs) == 2, upstream.events_summary()
    assert q.ids() == []
    time.sleep(0.5)
    assert len(upstream.messages) == 2, upstream.events_summary()


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_all_refused_upstream_5xx_no_dsn(qenv, upstream, where):
    q = qenv()
    if where == "rcpt":
        for a in (BOB, CAROL):
            upstream.script.rcpt_replies[a] = f"550 5.1.1 <{a}>: User unknown"
        want = (550, "5.1.1", "User unknown")
    else:
        upstream.script.data_replies.append("554 5.7.1 Message rejected as spam")
        want = (554, "5.7.1", "Message rejected as spam")
    s = secret_message(to=[BOB, CAROL])
    r = q.send([BOB, CAROL], s)[-1]
    assert_reply(r, want[0], want[1], what="every recipient refused")
    assert want[2] in r.text, f"the client does not see the upstream's reason: {r}"
    assert q.ids() == []
    # Sentinel: a good message afterwards; the upstream must hold exactly it (no DSN).
    s2 = secret_message(to=[DAVE])
    assert_reply(q.send([DAVE], s2)[-1], 250, "2.0.0", what="sentinel")
    [m] = upstream.wait_for(1)
    assert m.rcpt_tos == [DAVE] and q.open(DAVE, m.content) == s2.msg
    time.sleep(0.5)
    assert len(upstream.messages) == 1, f"a DSN (or more) was sent: {upstream.events_summary()}"


def test_dsn_falls_back_to_sender_when_null_sender_refused(qenv, upstream):
    """A submission server that refuses MAIL FROM:<> gets the DSN from the user's own address."""
    q = qenv()
    upstream.script.rcpt_replies[CAROL] = "550 5.1.1 User unknown"
    s = secret_message(to=[BOB, CAROL])
    # Copy to bob: MAIL ok; the DSN: MAIL FROM:<> refused, then the sender's own address.
    upstream.script.mail_replies.extend(["250 2.1.0 OK", "553 5.7.1 null sender not allowed"])
    r = q.send([BOB, CAROL], s)[-1]
    assert_reply(r, 250, "2.0.0")
    upstream.wait_for(2)
    [d] = q.dsns()
    assert d.mail_from == ALICE, d.mail_from
    check_dsn(d, ALICE, {CAROL: (r"5\.1\.1", "550 5.1.1")}, [s])


# =====================================================================================
# 5. a queued copy later refused -> DSN, entry removed
# =====================================================================================

def test_queued_copy_later_refused_dsn(qenv, upstream):
    q = qenv()
    upstream.stop()
    s = secret_message(to=[BOB])
    r = q.send([BOB], s)[-1]
    assert_reply(r, 250, "2.0.0")
    assert len(q.ids()) == 1
    upstream.script.rcpt_replies[BOB] = "550 5.1.1 <bob@example.net>: mailbox gone"
    upstream.start()
    [d] = upstream.wait_for(1)
    check_dsn(d, ALICE, {BOB: (r"5\.1\.1", "550 5.1.1")}, [s])
    assert "Undelivered" in (d.content.split(b"\r\n\r\n")[0].decode("utf-8", "replace")), d.content[:500]
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 1, f"{upstream.events_summary()}"


# =====================================================================================
# 6. the lifetime runs out -> DSN "gave up", entry removed
# =====================================================================================

def _age_entry(q: Q, eid: str, seconds: int) -> None:
    p = q.qdir / "env" / eid
    text = p.read_text()
    now = int(time.time())
    text, n = re.subn(r"(?m)^created \d+$", f"created {now - seconds}", text)
    assert n == 1, f"no 'created' line in {p}:\n{text}"
    text = re.sub(r"(?m)^next \d+$", f"next {now - 1}", text)
    p.write_text(text)


@pytest.mark.parametrize("by", ["runner", "flush"])
def test_lifetime_expired_gives_up_with_dsn(qenv, upstream, by):
    q = qenv(queue={"lifetime": "1h"})
    upstream.stop()
    s = secret_message(to=[BOB])
    assert_reply(q.send([BOB], s)[-1], 250, "2.0.0")
    [eid] = q.ids()
    q.sp.stop()
    _age_entry(q, eid, 2 * 3600)
    # The upstream is back but bob's mailbox still tempfails; the DSN to alice goes through.
    upstream.script.rcpt_replies[BOB] = "452 4.2.2 mailbox full"
    upstream.start()
    if by == "runner":
        q.restart()
    else:
        res = q.cli("flush")
        assert "delivered" in res.stdout, str(res)
    [d] = upstream.wait_for(1)
    dsn = check_dsn(d, ALICE, {BOB: (r"[45]\.\d\.\d+", "452 4.2.2")}, [s])
    assert re.search(r"gave up", dsn.human + (dsn.msg["Subject"] or ""), re.I), dsn.human
    q.wait_empty()
    if by == "runner":
        time.sleep(GRACE)
    assert len(upstream.messages) == 1, upstream.events_summary()
    assert q.list_entries() == []


# =====================================================================================
# 7. the queue cannot be written -> 4xx, nothing queued, nothing lost
# =====================================================================================

def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} refused here ({r.stderr.strip()}): needs CAP_SYS_ADMIN")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(path: Path, leave_pages: int = 0) -> Path:
    """Fill the file system of `path` so that `leave_pages` pages stay free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = path / "filler"
    want = free - leave_pages * st.f_frsize
    with open(filler, "wb") as f:
        chunk = b"\0" * 65536
        left = want
        try:
            while left > 0:
                n = f.write(chunk[:min(len(chunk), left)])
                left -= n
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            pass
    return filler


@pytest.mark.parametrize("how", ["tmp-is-a-file", "disk-full", "read-only"])
def test_queue_unwritable_4xx_nothing_queued(qenv, upstream, short_dir, request, how):
    qdir = short_dir("spqu")
    restore = lambda: None  # noqa: E731
    if how == "disk-full":
        _mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(qdir))
        request.addfinalizer(lambda: _umount(qdir))
    elif how == "read-only":
        for sub in ("tmp", "msg", "env"):
            (qdir / sub).mkdir(mode=0o700)
        _mount("--bind", str(qdir), str(qdir))
        request.addfinalizer(lambda: _umount(qdir))
        _mount("-o", "remount,bind,ro", str(qdir))
    q = qenv(qdir=qdir)
    if how == "tmp-is-a-file":
        (qdir / "tmp").rmdir()
        (qdir / "tmp").write_bytes(b"")

        def restore():
            (qdir / "tmp").unlink()
            (qdir / "tmp").mkdir(mode=0o700)
    elif how == "disk-full":
        filler = _fill(qdir)
        restore = filler.unlink
    else:
        def restore():
            _umount(qdir)
    upstream.stop()
    s = secret_message(to=[BOB])
    r = q.send([BOB], s)[-1]
    assert r.code // 100 == 4 and (r.enhanced or "").startswith("4."), f"expected 4xx, got {r}"
    assert r.is_(451, "4.3.0") and "queue cannot be written" in r.text, str(r)
    reason = {"tmp-is-a-file": "Not a directory", "disk-full": "No space left on device",
              "read-only": "Read-only file system"}[how]
    assert reason in r.text, f"the failure was not the one this test set up ({reason}): {r}"
    assert q.ids() == [] and q.msg_ids() == [], f"something was queued: {q.ids()} {q.msg_ids()}"
    assert not any((qdir / "tmp").iterdir()) if (qdir / "tmp").is_dir() else True
    q.assert_no_plaintext()
    assert re.search(r"cannot queue", q.sp.log(), re.I), q.sp.log()[-2000:]
    # Repaired, the upstream back: nothing shows up by itself (nothing was
    # promised), and the client's retry is delivered once.
    restore()
    upstream.start()
    time.sleep(GRACE)
    assert upstream.messages == [], upstream.events_summary()
    assert_reply(q.send([BOB], s)[-1], 250, "2.0.0", what="retry after the repair")
    [m] = upstream.wait_for(1)
    assert q.open(BOB, m.content) == s.msg


def test_queue_write_fails_for_second_copy_leaves_nothing(qenv, upstream, short_dir, request):
    """Two copies (bob's, and carol's own Bcc copy) must both be queued; the
    disk has room for only one.  The client gets 4xx and will send the message
    again, so the first copy must not stay in the queue: otherwise bob gets it
    twice."""
    qdir = short_dir("spqh")
    _mount("-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(qdir))
    request.addfinalizer(lambda: _umount(qdir))
    q = qenv(qdir=qdir)
    upstream.stop()
    # Measure one copy of this size.
    probe = secret_message(to=[BOB], attachment_size=120000)
    assert_reply(q.send([BOB], probe)[-1], 250, "2.0.0")
    [pid] = q.ids()
    page = os.statvfs(qdir).f_frsize
    copy_pages = -(-(qdir / "msg" / pid).stat().st_size // page)
    env_pages = -(-(qdir / "env" / pid).stat().st_size // page)
    res = q.cli("delete", pid)
    assert res.rc == 0, str(res)
    assert q.ids() == []
    assert copy_pages >= 8, copy_pages
    filler = _fill(qdir, leave_pages=copy_pages + env_pages + copy_pages // 2)

    s = secret_message(to=[BOB], bcc=[CAROL], attachment_size=120000)
    r = q.send([BOB, CAROL], s)[-1]
    left = q.ids()
    assert r.code != 250 or len(left) == 2, f"250 but only {len(left)} of 2 copies queued"
    if r.code == 250:
        pytest.fail(f"the disk had room for one copy, but the client got {r}")
    assert r.code // 100 == 4, str(r)
    assert left == [], (f"the client got {r} (it will send the message again), but {len(left)} "
                        f"copy stayed queued and will be delivered too: a duplicate for "
                        f"{[q.list_entries()[0]['to'] if left else '']}")
    filler.unlink()
    upstream.start()
    # The client's retry.
    assert_reply(q.send([BOB, CAROL], s)[-1], 250, "2.0.0", what="retry")
    upstream.wait_for(2)
    time.sleep(GRACE)
    for a in (BOB, CAROL):
        n = len(q.copies_for(a))
        assert n == 1, f"{a} got {n} copies: {upstream.events_summary()}"


# =====================================================================================
# 8. one recipient of each form -> one copy each, one 250
# =====================================================================================

@pytest.fixture(scope="module")
def pgp_world(tmp_path_factory):
    from gpgkeys import GpgHome, kill_all_agents, make_identity, short_home
    base = short_home(tmp_path_factory.mktemp("qpgp"))
    bob = make_identity(base, "bob", "Bob", BOB)
    sphome = GpgHome(short_home(base / "sp"))
    sphome.import_keys(bob.home.export(bob.fpr))
    yield bob, sphome
    kill_all_agents([bob.home, sphome])


def test_mixed_forms_one_copy_each_single_250(qenv, upstream, pgp_world):
    bob, sphome = pgp_world
    q = qenv(no_key="plain", extra={"pgp": {"gnupg_home": str(sphome.path), "trust": "always",
                                            "encrypt_to_self": "no", "sign": "no"}})
    # bob: OpenPGP (his key wins over his sodium key); carol: sodium; erin: plain.
    s = secret_message(to=[BOB, CAROL, ERIN])
    replies = q.send([BOB, CAROL, ERIN], s)
    r = replies[-1]
    assert_reply(r, 250, "2.0.0", what="mixed forms")
    assert "3 of 3 recipients sent upstream" in r.text, str(r)
    assert [x.code for x in replies].count(250) == 5 and len(replies) == 6, [str(x) for x in replies]
    msgs = upstream.wait_for(3)
    time.sleep(0.5)
    msgs = list(upstream.messages)
    assert len(msgs) == 3, upstream.events_summary()
    by_rcpts = {tuple(m.rcpt_tos): m for m in msgs}
    assert set(by_rcpts) == {(BOB,), (CAROL,), (ERIN,)}, f"envelopes: {[m.rcpt_tos for m in msgs]}"
    assert all(m.mail_from == ALICE for m in msgs)
    # OpenPGP copy for bob.
    pm = by_rcpts[(BOB,)]
    assert not find_needles(pm.content, s.needles), "plaintext in the OpenPGP copy"
    outer = email.message_from_bytes(pm.content, policy=email.policy.compat32)
    assert outer.get_content_type() == "multipart/encrypted", outer.get_content_type()
    armored = outer.get_payload()[1].get_payload(decode=True)
    dec = bob.home.decrypt(armored)
    assert dec.rc == 0, str(dec)
    assert f"BODY-{s.token}".encode() in dec.stdout and f"ATTACH-{s.token}".encode() in dec.stdout
    # sodium copy for carol.
    cm = by_rcpts[(CAROL,)]
    assert not find_needles(cm.content, s.needles), "plaintext in the sodium copy"
    assert q.open(CAROL, cm.content) == s.msg
    # plain copy for erin: the message as sent.
    assert by_rcpts[(ERIN,)].content == s.msg
    assert q.ids() == []


def test_mixed_forms_upstream_down_plain_never_queued(qenv, upstream):
    """An unencrypted copy cannot be queued: with it in the message and the
    upstream down the client gets 451 and nothing at all is queued (the other
    copies neither, or the client's retry would duplicate them)."""
    q = qenv(no_key="plain")
    upstream.stop()
    s = secret_message(to=[CAROL, ERIN])
    r = q.send([CAROL, ERIN], s)[-1]
    assert r.code == 451 and (r.enhanced or "").startswith("4."), str(r)
    assert q.ids() == [] and q.msg_ids() == [], "something was queued"
    upstream.start()
    time.sleep(GRACE)
    assert upstream.messages == [], upstream.events_summary()
    q.assert_no_plaintext()


# =====================================================================================
# 9. sealpost queue list / flush / delete
# =====================================================================================

def test_queue_cli_list_flush_delete(qenv, upstream):
    q = qenv()
    r = q.cli("list")
    assert r.rc == 0 and re.search(r"empty", r.stdout), str(r)
    r = q.cli()                                   # list is the default
    assert r.rc == 0 and re.search(r"empty", r.stdout), str(r)

    upstream.stop()
    sb = secret_message(to=[BOB])
    sc = secret_message(to=[CAROL, DAVE])
    assert_reply(q.send([BOB], sb)[-1], 250, "2.0.0")
    assert_reply(q.send([CAROL, DAVE], sc)[-1], 250, "2.0.0")
    entries = q.list_entries()
    assert len(entries) == 2, q.cli("list").stdout
    by_to = {tuple(e["to"]): e for e in entries}
    assert set(by_to) == {(BOB,), (CAROL, DAVE)}, entries
    for e in entries:
        assert e["form"] == "sodium" and e["sender"] == ALICE and e["attempts"] >= 1, e
        assert e["size"] == (q.qdir / "msg" / e["id"]).stat().st_size, e
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", e["time"]), e["line"]
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries), "list is not oldest first"

    q.sp.stop()               # the proxy is not running: the CLI does it all
    gone = by_to[(CAROL, DAVE)]["id"]
    r = q.cli("delete", gone)
    assert r.rc == 0 and gone in r.stdout, str(r)
    assert not (q.qdir / "env" / gone).exists() and not (q.qdir / "msg" / gone).exists()
    assert [e["id"] for e in q.list_entries()] == [by_to[(BOB,)]["id"]]
    r = q.cli("delete", gone)
    assert r.rc != 0 and r.stderr.strip(), f"deleting a missing entry:\n{r}"
    r = q.cli("delete", "../../etc/passwd")
    assert r.rc != 0, f"deleting a path:\n{r}"
    r = q.cli("delete")
    assert r.rc == 2, f"delete without an id:\n{r}"
    r = q.cli("frobnicate")
    assert r.rc == 2, f"unknown action:\n{r}"

    # flush with the upstream still down: nothing delivered, entry kept, non-zero.
    r = q.cli("flush")
    assert r.rc != 0, f"flush with the upstream down:\n{r}"
    assert q.ids() == [by_to[(BOB,)]["id"]]

    upstream.start()
    r = q.cli("flush")
    assert r.rc == 0, f"flush with the upstream up:\n{r}"
    [m] = upstream.wait_for(1)
    assert m.rcpt_tos == [BOB] and q.open(BOB, m.content) == sb.msg
    assert q.ids() == [] and q.msg_ids() == []
    r = q.cli("list")
    assert r.rc == 0 and "empty" in r.stdout, str(r)
    # The deleted entry never leaves, and deleting sends no DSN.
    q.restart()
    time.sleep(GRACE)
    assert len(upstream.messages) == 1, upstream.events_summary()


# =====================================================================================
# 10. upstream connection reuse
# =====================================================================================

def test_upstream_connection_reused(qenv, upstream):
    q = qenv()
    sent = []
    with q.sp.client() as c:
        c.ehlo()
        for a in (BOB, CAROL):
            s = secret_message(to=[a])
            q.secrets.append(s)
            assert_reply(c.transaction(ALICE, [a], s.msg)[-1], 250, "2.0.0")
            sent.append((a, s))
    # A new client session too.
    s = secret_message(to=[DAVE])
    assert_reply(q.send([DAVE], s)[-1], 250, "2.0.0")
    sent.append((DAVE, s))
    msgs = upstream.wait_for(3)
    peers = {m.peer for m in msgs}
    ehlos = upstream.ehlos()
    assert len(peers) == 1, f"3 messages over {len(peers)} upstream connections: {peers}"
    assert len(ehlos) < 3, f"{len(ehlos)} EHLOs for 3 messages: {ehlos}"
    for (a, s), m in zip(sent, msgs):
        assert m.rcpt_tos == [a] and q.open(a, m.content) == s.msg


# =====================================================================================
# 11. a queue directory with a long path (a desktop user's ~/.local/state/...)
# =====================================================================================

def test_long_queue_dir_path(qenv, upstream, tmp_path):
    """[queue] dir is a path like /home/a.long.user.name/.local/state/sealpost/queue
    (its default for a desktop user): entries queued there must be listed,
    retried and delivered like any other."""
    qdir = tmp_path / "home" / "firstname.lastname" / ".local" / "state" / "sealpost" / "queue"
    assert len(str(qdir)) > 60, qdir
    q = qenv(qdir=qdir)
    upstream.stop()
    s = secret_message(to=[BOB])
    assert_reply(q.send([BOB], s)[-1], 250, "2.0.0")
    assert len(q.ids()) == 1
    entries = q.list_entries()
    assert len(entries) == 1, (f"`sealpost queue list` does not show the entry in {qdir} "
                               f"({len(str(qdir))} characters):\n{q.cli('list')}")
    upstream.start()
    [m] = upstream.wait_for(1)
    assert q.open(BOB, m.content) == s.msg
    q.wait_empty()


# =====================================================================================
# 12. more of the same contract
# =====================================================================================

def test_queued_entry_partial_progress_no_duplicates(qenv, upstream):
    """One queued copy for three recipients.  On the retry bob is accepted,
    carol is refused for good (a DSN) and dave's mailbox is full (kept).  The
    entry then holds dave only; when his mailbox frees up he gets the copy, and
    bob never gets it a second time."""
    q = qenv()
    upstream.stop()
    s = secret_message(to=[BOB, CAROL, DAVE])
    assert_reply(q.send([BOB, CAROL, DAVE], s)[-1], 250, "2.0.0")
    [eid] = q.ids()
    upstream.script.rcpt_replies[CAROL] = "550 5.1.1 <carol@example.net>: no such user"
    upstream.script.rcpt_replies[DAVE] = "452 4.2.2 mailbox full"
    upstream.start()
    # bob's copy and the DSN about carol.
    upstream.wait_for(2)
    copies = q.copies_for(BOB)
    assert len(copies) == 1 and copies[0].rcpt_tos == [BOB], upstream.events_summary()
    [d] = q.dsns()
    check_dsn(d, ALICE, {CAROL: (r"5\.1\.1", "550 5.1.1")}, [s])
    # The entry now holds dave only.
    wait_until(lambda: [e["to"] for e in q.list_entries()] == [[DAVE]], WAIT,
               lambda: f"entry after the partial attempt: {q.cli('list').stdout}")
    del upstream.script.rcpt_replies[DAVE]
    upstream.wait_for(3)
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 3, upstream.events_summary()
    dm = q.copies_for(DAVE)
    assert len(dm) == 1 and dm[0].rcpt_tos == [DAVE], upstream.events_summary()
    assert q.open(DAVE, dm[0].content) == s.msg
    assert len(q.copies_for(BOB)) == 1, f"bob got the copy twice: {upstream.events_summary()}"
    assert len(q.copies_for(CAROL)) == 0


def test_null_sender_gets_no_dsn(qenv, upstream):
    """A message with the null reverse-path (itself a bounce) never causes a DSN."""
    q = qenv()
    upstream.script.rcpt_replies[CAROL] = "550 5.1.1 no such user"
    s = secret_message(to=[BOB, CAROL])
    r = q.send([BOB, CAROL], s, frm="")
    assert_reply(r[-1], 250, "2.0.0")
    upstream.wait_for(1)
    time.sleep(0.5)
    assert len(upstream.messages) == 1 and upstream.messages[0].rcpt_tos == [BOB], upstream.events_summary()
    assert q.dsns() == []


def test_backoff_doubles_up_to_max(qenv, upstream):
    """First retry min_backoff after the failure, then doubling, capped at max_backoff."""
    q = qenv(queue={"min_backoff": "1s", "max_backoff": "4s"})
    upstream.stop()
    s = secret_message(to=[BOB])
    t0 = time.monotonic()
    assert_reply(q.send([BOB], s)[-1], 250, "2.0.0")
    [eid] = q.ids()
    rx = rf"queue {eid}: .*deferred, next try in (\d+)s"
    q.sp.wait_log(rx + r"(?:.|\n)*" + rx + r"(?:.|\n)*" + rx)
    waits = [int(x) for x in re.findall(rx, q.sp.log())]
    assert waits[:3] == [2, 4, 4], f"backoff after attempts 2, 3, 4: {waits}"
    # Attempts really happen at those times (log timestamps, 1 s of slack).
    stamps = [line.split()[0] for line in q.sp.log().splitlines() if re.search(rx, line)][:3]
    ts = [time.mktime(time.strptime(x[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + x[19:23]) for x in stamps]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    # Times are kept in whole seconds: an attempt is due within a second of its
    # mark, never earlier.  How much later depends on the machine's load: the
    # upper bound only says the runner did not stall (no timing is measured here).
    assert 1 < gaps[0] < 2 + 15 and 3 < gaps[1] < 4 + 15, f"gaps between attempts: {gaps}"
    assert time.monotonic() - t0 >= 2 + 4 - 2
    upstream.start()
    upstream.wait_for(1)
    q.wait_empty()


def test_flush_while_runner_delivers_no_duplicates(qenv, upstream):
    """`sealpost queue flush` (twice, in parallel) racing the running proxy's
    runner over the same entries: every copy arrives exactly once."""
    q = qenv()
    upstream.stop()
    sent = []
    for i in range(8):
        a = SODIUM_ADDRS[i % 3]
        s = secret_message(to=[a])
        assert_reply(q.send([a], s)[-1], 250, "2.0.0")
        sent.append((a, s))
    assert len(q.ids()) == 8
    upstream.start()
    results = []
    threads = [threading.Thread(target=lambda: results.append(q.cli("flush"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    q.wait_empty()
    upstream.wait_for(8)
    time.sleep(GRACE)
    assert len(upstream.messages) == 8, f"{len(upstream.messages)} copies for 8 entries: {upstream.events_summary()}"
    got = sorted(q.open(m.rcpt_tos[0], m.content) for m in upstream.messages)
    assert got == sorted(s.msg for _, s in sent)


def test_partial_tempfail_at_submission(qenv, upstream):
    """One copy for bob and carol: bob's RCPT is accepted, carol's mailbox is
    busy.  bob gets the copy now, only carol's part is queued, and when it goes
    out later bob does not get it again."""
    q = qenv()
    upstream.script.rcpt_replies[CAROL] = "450 4.2.1 mailbox busy"
    s = secret_message(to=[BOB, CAROL])
    r = q.send([BOB, CAROL], s)[-1]
    assert_reply(r, 250, "2.0.0")
    assert "1 of 2 recipients sent upstream, 1 queued for retry" in r.text, str(r)
    [m] = upstream.wait_for(1)
    assert m.rcpt_tos == [BOB]
    [e] = q.list_entries()
    assert e["to"] == [CAROL], e
    q.assert_no_plaintext()
    del upstream.script.rcpt_replies[CAROL]
    upstream.wait_for(2)
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 2, upstream.events_summary()
    cm = q.copies_for(CAROL)
    assert len(cm) == 1 and cm[0].rcpt_tos == [CAROL] and q.open(CAROL, cm[0].content) == s.msg
    assert len(q.copies_for(BOB)) == 1


def test_dsn_that_cannot_go_now_is_queued(qenv, upstream):
    """The DSN itself meets a temporary failure: it is queued (it holds no
    message text) and delivered later, once."""
    q = qenv()
    upstream.script.rcpt_replies[CAROL] = "550 5.1.1 no such user"
    # MAIL for bob's copy: ok; MAIL FROM:<> for the DSN: 451 (a temporary failure).
    upstream.script.mail_replies.extend(["250 2.1.0 OK", "451 4.3.0 try later"])
    s = secret_message(to=[BOB, CAROL])
    r = q.send([BOB, CAROL], s)[-1]
    assert_reply(r, 250, "2.0.0")
    assert "1 refused" in r.text, str(r)
    upstream.wait_for(2)
    q.wait_empty()
    time.sleep(GRACE)
    assert len(upstream.messages) == 2, upstream.events_summary()
    [d] = q.dsns()
    check_dsn(d, ALICE, {CAROL: (r"5\.1\.1", "550 5.1.1")}, [s])
    assert len(q.copies_for(BOB)) == 1


def test_pooled_connection_dropped_by_upstream(qenv, upstream):
    """The upstream closes the idle pooled connection (a restart here): the
    next message goes out at once on a new connection, not via the queue."""
    q = qenv()
    s1 = secret_message(to=[BOB])
    assert_reply(q.send([BOB], s1)[-1], 250, "2.0.0")
    upstream.wait_for(1)
    upstream.stop()
    upstream.start()
    s2 = secret_message(to=[CAROL])
    r = q.send([CAROL], s2)[-1]
    assert_reply(r, 250, "2.0.0")
    assert "1 of 1 recipients sent upstream" in r.text and "queued" not in r.text, str(r)
    [_, m] = upstream.wait_for(2)
    assert q.open(CAROL, m.content) == s2.msg
    assert q.ids() == []
