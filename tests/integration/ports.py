"""Ports for the servers a test starts (sealpost, the upstream, the viewer).

A port is chosen here and bound later by another process, so something else
must not take it in between.  The usual trick, bind port 0 and close, hands
out a port from the kernel's ephemeral range: the same range every outgoing
connect() of the suite draws from, so a client connection can take the port
before the server binds it.  Ports here come from below that range, where
the kernel never allocates on its own; a cursor (seeded by the process id,
so two suites on one machine start apart) moves on with each port, and each
candidate is checked by binding it."""
from __future__ import annotations

import os
import socket
import threading

_lock = threading.Lock()
_cursor: int | None = None
LOW = 20000


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    global _cursor
    high = _ephemeral_low()
    span = high - LOW
    if span < 1000:                      # an unusual range: fall back to the kernel's
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    with _lock:
        if _cursor is None:
            _cursor = (os.getpid() * 7919) % span
        for _ in range(span):
            port = LOW + _cursor % span
            _cursor += 1
            if _bindable(host, port):
                return port
    raise AssertionError(f"no free port on {host} in {LOW}..{high - 1}")
