"""CPU time and memory of a process tree, from /proc.

CPU: utime + stime + cutime + cstime (/proc/PID/stat fields 14-17) summed
over the root and every live descendant.  A child that exits and is reaped
moves its time into its parent's cutime/cstime, so short-lived children (gpg
under sealpost, smtpd/cleanup under Postfix's master) are counted too.
Memory: VmHWM (peak RSS) from /proc/PID/status; writing "5" to
/proc/PID/clear_refs resets it, so each measurement gets its own peak.
"""
from __future__ import annotations

import os
import threading
import time

CLK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    return s[s.rindex(")") + 2:].split()


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def descendants(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is None:
            continue
        kids.setdefault(int(st[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


class Tree:
    """A process and its descendants.  `main` is the process whose own peak
    is reported; with a wrapper as root (tests/bench/reaper.py) the wrapper's
    CPU (its reaped orphans) counts and its own memory does not."""

    def __init__(self, root: int, main: int | None = None):
        self.root = root
        self.main = main or root

    def pids(self) -> list[int]:
        return descendants(self.root)

    def mem_pids(self) -> list[int]:
        return [p for p in self.pids() if p == self.main or p != self.root]

    def cpu(self) -> float:
        """CPU seconds (user + system, children included) of the whole tree."""
        total = 0
        for pid in self.pids():
            st = _stat(pid)
            if st:
                # fields 14..17 of stat are at index 11..14 after "pid (comm) "
                total += int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])
        return total / CLK

    def reset_peak(self) -> None:
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def peak_kib(self) -> tuple[int, int]:
        """(VmHWM of main, sum of VmHWM over the live tree) in KiB."""
        root = _status(self.main).get("VmHWM", 0)
        total = sum(_status(p).get("VmHWM", 0) for p in self.mem_pids())
        return root, total

    def peak_max_kib(self) -> int:
        """The largest VmHWM of any one live process of the tree, KiB."""
        return max((_status(p).get("VmHWM", 0) for p in self.mem_pids()), default=0)

    def pss_kib(self) -> int:
        """Proportional set size summed over the tree (shared pages split), KiB."""
        total = 0
        for p in self.mem_pids():
            try:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                pass
        return total

    def rss_kib(self) -> int:
        return sum(_status(p).get("VmRSS", 0) for p in self.mem_pids())

    def status(self) -> dict[str, int]:
        return _status(self.main)


class Sampler(threading.Thread):
    """Samples the tree's summed RSS every interval; keeps the maximum (for
    children too short-lived for VmHWM to be read before they exit)."""

    def __init__(self, tree: Tree, interval: float = 0.02):
        super().__init__(daemon=True)
        self.tree = tree
        self.interval = interval
        self.max_kib = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.max_kib = max(self.max_kib, self.tree.rss_kib())
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.max_kib


def wait_exit(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not os.path.exists(f"/proc/{pid}") or (_stat(pid) or ["", "Z"])[0] == "Z":
            return True
        time.sleep(0.05)
    return False


PF_KTHREAD = 0x00200000


def _all_cpu() -> dict[int, float]:
    """CPU seconds (with reaped children) of every user-space process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is None or int(st[6]) & PF_KTHREAD:
            continue
        pid = int(name)
        if pid == 1:
            # init reaps every orphan, ours too (a stopped Postfix, gpg): its
            # children's time cannot be attributed, so only its own counts
            out[pid] = (int(st[11]) + int(st[12])) / CLK
        else:
            out[pid] = (int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])) / CLK
    return out


class Foreign:
    """CPU used by processes that are not the benchmark's over an interval, as
    a share of the machine: other people's compilers and fuzzers show up here.
    The benchmark's processes are this process's tree plus `extra` trees (the
    daemonised Postfix).  Kernel threads and interrupt time are left out (the
    loopback traffic of the benchmark itself is softirq work); a process that
    starts and ends within the interval counts if its parent outlives it."""

    def __init__(self, extra: list | None = None):
        self.extra = [t for t in (extra or []) if t is not None]
        self.t0 = time.monotonic()
        self.cpu0 = _all_cpu()

    def share(self) -> float:
        wall = time.monotonic() - self.t0
        now = _all_cpu()
        ours = set(descendants(os.getpid()))
        for t in self.extra:
            ours.update(t.pids())
        other = sum(c - self.cpu0.get(pid, 0.0) for pid, c in now.items() if pid not in ours)
        return min(1.0, max(0.0, other) / (wall * (os.cpu_count() or 1))) if wall > 0 else 0.0
