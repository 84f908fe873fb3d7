#!/usr/bin/python3
"""A small SMTP client for the benchmark: end-of-DATA latency, and idle sessions.

    smtpload.py latency --port P --msg FILE.eml -n 500 -c 8 [--from A --to B]
        N messages over C concurrent connections, one connection per message
        (like smtp-source): EHLO, MAIL, RCPT, DATA, the body, then the timer
        starts when the final ".\\r\\n" is handed to the kernel (the body
        before it has been written out completely) and stops when the reply
        line arrives.  Prints JSON: count, wall seconds, msg/s, latencies in
        microseconds (p50, p90, p99, max, mean), failures.
    smtpload.py idle --port P -n 1000 --ready FILE
        Opens N connections, reads each greeting, writes "ready" to FILE and
        holds them until stdin closes (or SIGTERM).

FILE.eml holds the message with CRLF line ends, not dot-stuffed; this client
dot-stuffs it.  Runs in its own process so the harness's own threads never
delay its timestamps.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import statistics
import sys
import time


class SMTPError(Exception):
    pass


async def reply(r: asyncio.StreamReader) -> tuple[int, bytes]:
    lines = []
    while True:
        line = await r.readline()
        if not line:
            raise SMTPError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), b"".join(lines)


async def expect(r, code_class: int, what: str) -> bytes:
    code, text = await reply(r)
    if code // 100 != code_class:
        raise SMTPError(f"{what}: {text.decode(errors='replace').strip()}")
    return text


def dot_stuff(msg: bytes) -> bytes:
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    out = msg.replace(b"\r\n.", b"\r\n..")
    if out.startswith(b"."):
        out = b"." + out
    return out


async def one_message(host, port, body, mail_from, rcpt, size) -> int:
    r, w = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        w.transport.set_write_buffer_limits(0, 0)
        await expect(r, 2, "greeting")
        w.write(b"EHLO bench.example\r\n")
        ehlo = await expect(r, 2, "EHLO")
        size_param = b" SIZE=%d" % size if b"SIZE" in ehlo else b""
        w.write(b"MAIL FROM:<%s>%s\r\n" % (mail_from.encode(), size_param))
        await expect(r, 2, "MAIL")
        w.write(b"RCPT TO:<%s>\r\n" % rcpt.encode())
        await expect(r, 2, "RCPT")
        w.write(b"DATA\r\n")
        await expect(r, 3, "DATA")
        w.write(body)
        await w.drain()
        t0 = time.perf_counter_ns()
        w.write(b".\r\n")
        code, text = await reply(r)
        t1 = time.perf_counter_ns()
        if code // 100 != 2:
            raise SMTPError(f"end of data: {text.decode(errors='replace').strip()}")
        w.write(b"QUIT\r\n")
        try:
            await asyncio.wait_for(reply(r), 5)
        except (asyncio.TimeoutError, SMTPError, ConnectionError):
            pass
        return (t1 - t0) // 1000
    finally:
        w.close()
        try:
            await w.wait_closed()
        except (ConnectionError, OSError):
            pass


async def latency(args) -> dict:
    with open(args.msg, "rb") as f:
        raw = f.read()
    body = dot_stuff(raw)
    lat: list[int] = []
    errors: list[str] = []
    left = [args.n]

    async def worker():
        while left[0] > 0:
            left[0] -= 1
            try:
                lat.append(await one_message(args.host, args.port, body, args.mail_from, args.rcpt, len(raw)))
            except (SMTPError, OSError) as e:
                errors.append(str(e))
                if len(errors) > 10:
                    return

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(args.c))), args.timeout)
    wall = time.perf_counter() - t0
    s = sorted(lat)

    def pct(p):
        # nearest rank
        return s[max(0, math.ceil(p / 100 * len(s)) - 1)] if s else None

    return {"count": len(s), "failures": len(errors), "first_error": errors[0] if errors else None,
            "wall_s": wall, "msgs_per_s": len(s) / wall if wall > 0 else 0,
            "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99), "max_us": s[-1] if s else None,
            "mean_us": statistics.fmean(s) if s else None}


async def idle(args) -> None:
    conns = []
    for i in range(args.n):
        r, w = await asyncio.open_connection(args.host, args.port)
        await expect(r, 2, f"greeting {i}")
        conns.append((r, w))
    with open(args.ready, "w") as f:
        f.write(f"ready {len(conns)}\n")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_reader(sys.stdin.fileno(), done.set)
    await done.wait()
    for _, w in conns:
        w.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["latency", "idle"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--msg")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("-c", type=int, default=1)
    ap.add_argument("--from", dest="mail_from", default="sender@example.com")
    ap.add_argument("--to", dest="rcpt", default="rcpt@example.org")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--ready")
    args = ap.parse_args()
    if args.mode == "latency":
        print(json.dumps(asyncio.run(latency(args))))
    else:
        asyncio.run(idle(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
