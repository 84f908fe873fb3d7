#!/usr/bin/python3
"""reaper.py CMD [ARGS...] - run CMD as a child subreaper, for CPU accounting.

GPGME starts gpg with a double fork, so gpg is re-parented to init and its CPU
time never shows up in sealpost's cutime/cstime.  Under this wrapper (a
PR_SET_CHILD_SUBREAPER process) such orphans are re-parented to the wrapper
and reaped by it: the wrapper's cutime/cstime then hold every finished gpg,
and the live ones are its descendants.  Signals are forwarded to CMD; the
wrapper exits with CMD's status once every descendant is gone.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)
        return 1
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, forward)
    status = 0
    while True:
        try:
            p, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if p == pid:
            status = os.waitstatus_to_exitcode(st)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
