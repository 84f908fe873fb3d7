#!/usr/bin/python3
"""Profile one sealpost form under load: the profiles in docs/benchmarks.md.

    (after scripts/bench.sh has built build-bench/)
    /usr/bin/python3 tests/bench/profile.py --form sodium --size 1M -c 1 -n 60 [--viewer] [--dwarf]

Starts smtp-sink and `sealpost run` with the form (as tests/bench/bench.py
does), records `perf record -e cpu-clock` on the sealpost process (and, with
--all, system-wide: gpg runs in its own processes) while smtp-source sends N
messages, and prints the top symbols, self and with children.  This VM has no
hardware counters (`perf stat -e instructions` says "not supported"), so the
sampling clock is the cpu-clock software event.  --viewer profiles the
password-form GET of `sealpost linkserver` under wrk instead.  --execs counts
the processes sealpost starts per message (gpg) with strace.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
from systems import Sealpost, SmtpSink, Viewer  # noqa: E402


def report(data: Path, extra: list[str], top: int, sort: str = "dso,symbol", modes=("--no-children", "--children")) -> str:
    out = []
    for mode in [[m] for m in modes]:
        r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", sort, *mode, *extra],
                           capture_output=True, text=True)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip() and ln.lstrip()[0].isdigit()]
        out.append(f"--- {' '.join(mode)} (top {top})")
        out += lines[:top]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--form", default="plain", choices=["plain", "pgp", "sodium", "link", "plain-keyring"])
    ap.add_argument("--size", default="2K", choices=list(bench.SIZES))
    ap.add_argument("-c", type=int, default=1)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--dwarf", action="store_true", help="call graphs through DWARF (slower, deeper)")
    ap.add_argument("--all", action="store_true", help="system-wide (include gpg)")
    ap.add_argument("--viewer", action="store_true")
    ap.add_argument("--execs", action="store_true", help="count processes started per message (strace)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--build", default=str(REPO / "build-bench"))
    args = ap.parse_args()
    binary = Path(args.build) / "cli" / "sealpost"
    work = Path(tempfile.mkdtemp(prefix="sealpost-profile-"))
    os.chmod(work, 0o755)
    stop = []
    try:
        msgs = bench.write_messages(work, [args.size] if args.size == "2K" else ["2K", args.size])
        data = work / "perf.data"
        g = ["--call-graph", "dwarf,16384"] if args.dwarf else ["-g"]
        if args.viewer:
            v = Viewer(work, binary, Path(args.build) / "tests" / "viewer_harness", msgs["2K"]["eml"].read_bytes(),
                       "bench-viewer-password-42")
            stop.append(v.stop)
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", *g, "-p", str(v.proc.pid),
                                     "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            subprocess.run(["wrk", "-t2", "-c16", "-d5s", v.links[0]], check=True)
        else:
            keys = bench.make_keys(work, binary)
            sink = SmtpSink(work)
            stop.append(sink.stop)
            sp = Sealpost(work, binary, args.form, sink, keys)
            stop.insert(0, sp.stop)
            # warm up
            bench.smtp_source(sp.port, msgs[args.size], args.c, max(args.c, 4), sp.rcpt)
            if args.execs:
                trace = work / "strace.txt"
                st = subprocess.Popen(["strace", "-f", "-e", "trace=execve", "-o", str(trace), "-p", str(sp.pid)],
                                      stderr=subprocess.DEVNULL)
                time.sleep(0.5)
                bench.smtp_source(sp.port, msgs[args.size], 1, 5, sp.rcpt)
                time.sleep(0.5)
                st.terminate()
                st.wait()
                execs = [ln for ln in trace.read_text().splitlines() if "execve(" in ln and "resumed" not in ln]
                print(f"processes started for 5 messages: {len(execs)} ({len(execs) / 5:.1f} per message)")
                for ln in execs[: len(execs) // 5 or len(execs)]:
                    print("  " + ln.split("execve(", 1)[1][:220])
            target = ["-a"] if args.all else ["-p", str(sp.pid)]
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", *g, *target,
                                     "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            t0 = time.perf_counter()
            bench.smtp_source(sp.port, msgs[args.size], args.c, args.n, sp.rcpt)
            print(f"{args.n} messages in {time.perf_counter() - t0:.2f} s")
        perf.send_signal(2)
        perf.wait()
        extra = ["--comms", "sealpost,gpg"] if args.all else []
        print(report(data, extra, 12, sort="comm,dso", modes=("--no-children",)))
        print(report(data, extra, args.top))
    finally:
        for s in stop:
            s()
        subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(work / "gnupg")),
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
