"""Ports for the servers a test starts (sealpost, the upstream, the viewer).

A port is chosen here and bound later by another process, so something else
must not take it in between.  The usual trick, bind port 0 and close, hands
out a port from the kernel's ephemeral range: the same range every outgoing
connect() of the suite draws from, so a client connection can take the port
before the server binds it.  Ports here come from below that range, where
the kernel never allocates on its own; a cursor (seeded by the process id,
so two suites on one machine start apart) moves on with each port, and each
candidate is checked by binding it.

Two suites running at once on one machine (a loaded run beside CI, or two
developers' runs) could still both find a port free before either server has
bound it.  So a port is also reserved, for the life of the process, by a file
in a directory every suite shares (created with O_EXCL: one owner); a
reservation whose process is gone is taken over."""
from __future__ import annotations

import atexit
import os
import socket
import threading
from pathlib import Path

_lock = threading.Lock()
_cursor: int | None = None
LOW = 20000
RESERVATIONS = Path(os.environ.get("SP_TEST_PORT_DIR", "/tmp/sealpost-test-ports"))
_mine: list[Path] = []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserve(port: int) -> bool:
    """Reserve the port for this process: False when a live process has it."""
    RESERVATIONS.mkdir(mode=0o777, exist_ok=True)
    f = RESERVATIONS / str(port)
    for _ in range(2):
        try:
            fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(f.read_text() or "0")
            except (OSError, ValueError):
                return False                 # being written right now, or not ours to judge
            if owner == os.getpid() or _alive(owner):
                return False
            f.unlink(missing_ok=True)        # its process is gone: take it over
            continue
        with os.fdopen(fd, "w") as w:
            w.write(str(os.getpid()))
        _mine.append(f)
        return True
    return False


@atexit.register
def _release() -> None:
    for f in _mine:
        try:
            if f.read_text() == str(os.getpid()):
                f.unlink()
        except OSError:
            pass


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
            if _bindable(host, port) and _reserve(port):
                return port
    raise AssertionError(f"no free port on {host} in {LOW}..{high - 1}")
