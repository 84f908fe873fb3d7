#!/usr/bin/python3
"""sealpost's benchmark, side by side with Postfix, GnuPG and nginx (issue 7).

    scripts/bench.sh [--quick | --smoke] [--out FILE]

scripts/bench.sh installs the packages, builds build-bench/ (release), builds
the two helper programs and runs this file.  Everything runs on 127.0.0.1 and
is stopped at the end; results go to docs/benchmarks.md (or --out) and the
raw figures to build-bench/bench/results.json.  See docs/benchmarks.md for
what each figure means and tests/bench/README.md for the layout.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import base64
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from procstat import Foreign, Sampler  # noqa: E402
from systems import (RCPT, SENDER, Direct, Nginx, Postfix, Sealpost, SmtpSink,  # noqa: E402
                     TlsSink, Viewer)

PY = "/usr/bin/python3"
SIZES = {"2K": 2 * 1024, "64K": 64 * 1024, "1M": 1024 * 1024, "25M": 25 * 1024 * 1024}

PROFILES = {
    # whole run: about 9 minutes on 2 cores
    "full": dict(sizes=["2K", "64K", "1M"], conc=[1, 8, 32], reps=3, t_run=1.0, t_lat=1.0, cell_budget_s=6,
                 big_count=3, forms=["plain", "pgp", "sodium", "link"], keyring_row=True,
                 tls=True, wrk_s=8, unlock_s=10, idle=1000, floor_mib=256, floor_reps=5,
                 gpg_runs=30, gpg_big_runs=3),
    # about 2 minutes
    "quick": dict(sizes=["2K", "1M"], conc=[1, 8], reps=1, t_run=0.5, t_lat=0.5, cell_budget_s=4,
                  big_count=1, forms=["plain", "pgp", "sodium", "link"], keyring_row=False,
                  tls=False, wrk_s=3, unlock_s=4, idle=1000, floor_mib=64, floor_reps=3,
                  gpg_runs=10, gpg_big_runs=1),
    # CI smoke run of the harness itself: seconds, numbers meaningless
    "smoke": dict(sizes=["2K"], conc=[1], reps=1, t_run=0.1, t_lat=0.1, cell_budget_s=1,
                  big_count=0, forms=["plain", "pgp", "sodium", "link"], keyring_row=False,
                  tls=True, tls_sizes=["2K"], tls_conc=[1], wrk_s=1, unlock_s=1, idle=50,
                  floor_mib=8, floor_reps=1, gpg_runs=2, gpg_big_runs=0),
}

COMMANDS: list[str] = []   # every external command the measurement ran, in order
EXAMPLES: dict[str, str] = {}   # the first of each kind, per system, for the report
CURRENT = [""]                 # the system being measured (for EXAMPLES)


def log(*a, end="\n"):
    print(*a, file=sys.stderr, flush=True, end=end)


def record(cmd: list[str]) -> None:
    line = shlex.join(cmd)
    COMMANDS.append(line)
    tool = Path(cmd[0]).name if cmd[0] != PY else Path(cmd[1]).name + " " + cmd[2]
    EXAMPLES.setdefault(f"{tool} [{CURRENT[0]}]" if CURRENT[0] else tool, line)


# ---------------------------------------------------------------- messages

LOREM = ("Dear Bob, here are the notes from Tuesday's meeting. The quarterly figures are in "
         "line with the plan; the launch moves to the second week of the month. Please review "
         "the attached file before Friday and send your comments to the whole team. ")


def make_message(label: str, size: int, seed: int = 7) -> bytes:
    """A message of exactly `size` octets on the wire (CRLF line ends): a
    text part, and above 4 KB a base64 attachment of seeded random bytes
    (incompressible, like the photos and PDFs people send)."""
    rnd = random.Random(f"{seed}-{label}")
    head = (f"From: Alice Sender <{SENDER}>\r\nTo: Bob Recipient <{RCPT}>\r\n"
            f"Subject: sealpost benchmark {label}\r\nDate: Mon, 23 Nov 2026 08:00:00 +0000\r\n"
            f"Message-ID: <bench-{label}@example.com>\r\nMIME-Version: 1.0\r\n")
    words = LOREM.split()
    lines, line = [], ""
    while sum(len(x) + 2 for x in lines) < 1400:
        w = words[rnd.randrange(len(words))]
        if len(line) + len(w) + 1 > 72:
            lines.append(line)
            line = ""
        line = (line + " " + w).strip()
    text = "\r\n".join(lines) + "\r\n"

    def filler(n: int) -> str:
        """n octets of text lines (n == 1 is impossible: callers avoid it)."""
        out = ""
        while n > 0:
            k = min(n, 74) if n - min(n, 74) != 1 else 73
            out += "y" * (k - 2) + "\r\n"
            n -= k
        return out

    if size <= 4096:
        msg = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        data = (msg + filler(size - len(msg))).encode()
    else:
        b = "b-sealpost-bench"
        top = (head + f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
               f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}")
        att = (f"--{b}\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
               "Content-Transfer-Encoding: base64\r\n"
               "Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n")
        tail = f"--{b}--\r\n"
        room = size - len(top) - len(att) - len(tail)
        nlines, rest = divmod(room, 78)     # 57 bytes -> 76 base64 chars + CRLF
        if rest == 1:
            nlines, rest = nlines - 1, rest + 78
        enc = base64.encodebytes(rnd.randbytes(nlines * 57)).replace(b"\n", b"\r\n")
        data = (top + filler(rest) + att).encode() + enc + tail.encode()
    assert len(data) == size, (label, len(data), size)
    return data


def write_messages(work: Path, labels: list[str]) -> dict[str, dict]:
    out = {}
    d = work / "msgs"
    d.mkdir(exist_ok=True)
    for label in labels:
        data = make_message(label, SIZES[label])
        eml = d / f"msg-{label}.eml"
        eml.write_bytes(data)
        # smtp-source -F appends CRLF to every line: give it LF lines
        lf = d / f"msg-{label}.txt"
        lf.write_bytes(data.replace(b"\r\n", b"\n"))
        out[label] = {"eml": eml, "lf": lf, "size": len(data)}
    return out


# ---------------------------------------------------------------- keys

def make_keys(work: Path, sealpost: Path) -> dict:
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(gnupg))
    cmd = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "",
           "--quick-gen-key", f"Bob Recipient <{RCPT}>", "default", "default", "1y"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    out = subprocess.run(["gpg", "--with-colons", "--list-keys", RCPT], env=env, check=True,
                         capture_output=True, text=True).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))
    algo = next(line.split(":")[3] for line in out.splitlines() if line.startswith("sub"))
    bits = next(line.split(":")[2] for line in out.splitlines() if line.startswith("sub"))
    # stop the agent the key generation started: nothing below needs it
    subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)
    pub = subprocess.run([str(sealpost), "keygen", "-o", str(work / "rcpt.sodium")], check=True,
                         capture_output=True, text=True).stdout.strip()
    rcpts = work / "sodium-recipients"
    rcpts.write_text(f"{RCPT} {pub}\n")
    algos = {"1": "RSA", "18": "ECDH", "16": "Elgamal", "22": "EdDSA"}
    return {"gnupg": gnupg, "fpr": fpr, "algo": f"{algos.get(algo, algo)} {bits}",
            "sodium_recipients": rcpts}


def make_pki(work: Path) -> dict:
    d = work / "pki"
    d.mkdir()

    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "7", "-subj", "/CN=sealpost bench CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "srv.key",
         "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "srv.pem", "-days", "7", "-extfile", "ext.cnf")
    return {"ca": d / "ca.pem", "cert": d / "srv.pem", "key": d / "srv.key"}


# ---------------------------------------------------------------- load

def smtp_source(port: int, msg: dict, c: int, n: int, rcpt: str) -> float:
    """smtp-source: n messages over c parallel sessions (a new connection per
    message); returns the wall time."""
    cmd = ["smtp-source", "-s", str(c), "-m", str(n), "-F", str(msg["lf"]), "-f", SENDER, "-t", rcpt,
           "-M", "bench.example", f"127.0.0.1:{port}"]
    record(cmd)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"smtp-source failed ({r.returncode}): {r.stderr.strip()[:500]}")
    return wall


def latency_client(port: int, msg: dict, c: int, n: int, rcpt: str) -> dict:
    cmd = [PY, str(HERE / "smtpload.py"), "latency", "--port", str(port), "--msg", str(msg["eml"]),
           "-n", str(n), "-c", str(c), "--from", SENDER, "--to", rcpt]
    record(cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"latency client failed: {r.stderr.strip()[-800:]}")
    res = json.loads(r.stdout)
    if res["failures"]:
        raise RuntimeError(f"latency client: {res['failures']} failures, first: {res['first_error']}")
    return res


def sink_wait(system, base: int, n: int, timeout: float = 300) -> float:
    """Wait until the sink got n more messages than base; returns when."""
    if not system.sink.counter.wait_for(base + n, timeout):
        raise RuntimeError(f"{system.label}: the sink got {system.sink.counter.mesg - base} of {n} messages")
    return time.perf_counter()


def timed_run(system, msg, c, n) -> tuple[float, float]:
    """One smtp-source run; (end-to-end msg/s measured at the sink, accept msg/s)."""
    base = system.sink.counter.mesg
    t0 = time.perf_counter()
    wall = smtp_source(system.port, msg, c, n, system.rcpt)
    t_end = sink_wait(system, base, n)
    e2e = n / (t_end - t0)
    return e2e, n / wall


def clamp(x, lo, hi):
    return max(lo, min(hi, x))


def run_cell(system, msg: dict, size: str, c: int, P: dict) -> dict:
    log(f"  {system.label:32s} {size:>4s} c={c:<3d}", end="")
    sess0, mesg0 = system.sink.counter.sess, system.sink.counter.mesg
    foreign = Foreign([system.tree] if isinstance(system, Postfix) else [])
    short = P["t_run"] < 0.5
    # warm-up (one message per session, at least 8), and a first estimate of the rate
    e2e_w, _ = timed_run(system, msg, c, max(c, 2 if short else 8))
    n = int(clamp(e2e_w * P["t_run"], max(c, 2 if short else 8), 20000))
    # slow cells (gpg, Argon2id at high concurrency) get one long run instead of three
    reps = P["reps"] if n / e2e_w * P["reps"] <= P["cell_budget_s"] else 1
    tree = system.tree
    if tree:
        tree.reset_peak()
        cpu0 = tree.cpu()
    rates, accepts = [], []
    for _ in range(reps):
        e2e, acc = timed_run(system, msg, c, n)
        rates.append(e2e)
        accepts.append(acc)
    cell = {"system": system.label, "kind": system.kind, "size": size, "bytes": msg["size"], "c": c,
            "n": n, "reps": reps, "msgs_per_s": statistics.median(rates), "runs_msgs_per_s": rates,
            "accept_msgs_per_s": statistics.median(accepts)}
    if tree:
        cell["cpu_ms_per_msg"] = (tree.cpu() - cpu0) / (n * reps) * 1000
        root, total = tree.peak_kib()
        cell["peak_rss_kib"] = root
        cell["peak_rss_tree_kib"] = total
        cell["peak_rss_max_proc_kib"] = tree.peak_max_kib()
        cell["pss_tree_kib"] = tree.pss_kib()
    # latency, end of DATA -> reply, by the asyncio client
    rate = cell["msgs_per_s"]
    n_lat = int(clamp(rate * P["t_lat"], max(c, 4 if short else 20), 5000))
    lat_reps = P["reps"] if n_lat / max(rate, 0.1) * P["reps"] <= P["cell_budget_s"] else 1
    lats = []
    for _ in range(lat_reps):
        base = system.sink.counter.mesg
        lats.append(latency_client(system.port, msg, c, n_lat, system.rcpt))
        sink_wait(system, base, n_lat)
    cell["lat_n"] = n_lat
    cell["lat_reps"] = lat_reps
    for k in ("p50_us", "p90_us", "p99_us", "max_us"):
        cell[k] = statistics.median(x[k] for x in lats)
    cell["lat_client_msgs_per_s"] = statistics.median(x["msgs_per_s"] for x in lats)
    dm = system.sink.counter.mesg - mesg0
    cell["upstream_sessions_per_msg"] = (system.sink.counter.sess - sess0) / dm if dm else None
    cell["foreign_cpu_share"] = foreign.share()
    log(f"  {cell['msgs_per_s']:9.1f} msg/s  p50 {cell['p50_us'] / 1000:8.2f} ms  p99 {cell['p99_us'] / 1000:8.2f} ms"
        + (f"  cpu {cell['cpu_ms_per_msg']:7.2f} ms/msg  rss {cell['peak_rss_kib'] / 1024:6.1f} MiB" if tree else "")
        + (f"  [other load {cell['foreign_cpu_share']:.0%}]" if cell["foreign_cpu_share"] >= 0.1 else ""))
    return cell


def run_big(system, msg: dict, P: dict) -> dict:
    """25 MB: a few messages one after another; peak RSS while relaying one."""
    n = P["big_count"]
    log(f"  {system.label:32s}  25M c=1  ", end="")
    tree = system.tree
    cell = {"system": system.label, "kind": system.kind, "size": "25M", "bytes": msg["size"], "c": 1, "n": n}
    foreign = Foreign([system.tree] if isinstance(system, Postfix) else [])
    sampler = None
    if tree:
        tree.reset_peak()
        cpu0 = tree.cpu()
        sampler = Sampler(tree, 0.05)
        sampler.start()
    e2e, acc = timed_run(system, msg, 1, n)
    if tree:
        cell["tree_sampled_peak_kib"] = sampler.stop()
        cell["cpu_ms_per_msg"] = (tree.cpu() - cpu0) / n * 1000
        root, total = tree.peak_kib()
        cell["peak_rss_kib"] = root
        cell["peak_rss_tree_kib"] = total
        cell["peak_rss_max_proc_kib"] = tree.peak_max_kib()
        cell["pss_tree_kib"] = tree.pss_kib()
    cell["msgs_per_s"] = e2e
    cell["accept_msgs_per_s"] = acc
    base = system.sink.counter.mesg
    lat = latency_client(system.port, msg, 1, n, system.rcpt)
    sink_wait(system, base, n)
    for k in ("p50_us", "p99_us", "max_us"):
        cell[k] = lat[k]
    cell["lat_n"] = n
    cell["foreign_cpu_share"] = foreign.share()
    log(f"  {1 / e2e:7.2f} s/msg  p50 {cell['p50_us'] / 1e6:6.2f} s"
        + (f"  cpu {cell['cpu_ms_per_msg'] / 1000:6.2f} s/msg  rss {cell['peak_rss_kib'] / 1024:6.1f} MiB"
           f" (tree {max(cell['peak_rss_tree_kib'], cell['tree_sampled_peak_kib']) / 1024:.1f})" if tree else ""))
    return cell


# ---------------------------------------------------------------- crypto floors

def hyperfine(cmds: dict[str, list[str]], runs: int, warmup: int, work: Path, env=None) -> dict:
    out = work / f"hyperfine-{len(COMMANDS)}.json"
    cmd = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
           "--export-json", str(out)]
    for name, c in cmds.items():
        cmd += ["-n", name, shlex.join(c)]
    record(cmd)
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    res = {}
    for r in json.loads(out.read_text())["results"]:
        res[r["command"]] = {"mean_ms": r["mean"] * 1000, "median_ms": r["median"] * 1000,
                             "stddev_ms": (r["stddev"] or 0) * 1000, "user_ms": r["user"] * 1000,
                             "system_ms": r["system"] * 1000, "runs": len(r["times"])}
    return res


def crypto_floors(work: Path, msgs: dict, keys: dict, tools: dict, P: dict) -> dict:
    out = {}
    cmd = [str(tools["crypto_floor"]), str(P["floor_mib"]), str(P["floor_reps"])]
    record(cmd)
    log("crypto floors: libsodium")
    out["sodium"] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    env = dict(os.environ, GNUPGHOME=str(keys["gnupg"]))
    g = ["gpg", "--homedir", str(keys["gnupg"]), "--batch", "--yes", "--quiet", "--trust-model", "always"]
    enc = g + ["--encrypt", "--armor", "-r", RCPT, "-o", "/dev/null"]
    out["gpg"] = {}
    if P["gpg_runs"]:
        log("crypto floors: gpg")
        small = {}
        for label in msgs:
            if label == "25M":
                continue
            small[f"encrypt {label}"] = enc + [str(msgs[label]["eml"])]
            small[f"encrypt -z 0 {label}"] = g + ["--compress-level", "0", "--encrypt", "--armor", "-r", RCPT,
                                                   "-o", "/dev/null", str(msgs[label]["eml"])]
        small["list-keys (one key lookup)"] = g + ["--with-colons", "--list-keys", f"<{RCPT}>"]
        small["version (process start)"] = ["gpg", "--homedir", str(keys["gnupg"]), "--version"]
        out["gpg"].update(hyperfine(small, P["gpg_runs"], 3, work, env))
    if P["gpg_big_runs"] and "25M" in msgs:
        log("crypto floors: gpg 25 MB")
        big = {"encrypt 25M": enc + [str(msgs["25M"]["eml"])],
               "encrypt -z 0 25M": g + ["--compress-level", "0", "--encrypt", "--armor", "-r", RCPT, "-o",
                                        "/dev/null", str(msgs["25M"]["eml"])]}
        out["gpg"].update(hyperfine(big, P["gpg_big_runs"], 1, work, env))
    return out


# ---------------------------------------------------------------- viewer

def wrk(url: str, seconds: int, threads: int, conns: int, script: Path | None = None, env=None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    record(cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk: {r.stderr}")
    t = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", t)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    total = re.search(r"(\d+) requests in", t)
    errs = re.search(r"Socket errors: (.*)", t)

    def pct(p):
        mm = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
        if not mm:
            return None
        return float(mm.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[mm.group(2)]

    return {"rps": float(m.group(1)), "requests": int(total.group(1)), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errs.group(1) if errs else "", "p50_ms": pct(50), "p99_ms": pct(99), "raw": t}


def viewer_bench(work: Path, tools: dict, msgs: dict, P: dict) -> dict:
    log("viewer: sealpost linkserver vs nginx")
    res = {}
    pw = "bench-viewer-password-42"
    v = Viewer(work, tools["sealpost"], tools["harness"], msgs["2K"]["eml"].read_bytes(), pw)
    try:
        url = v.links[0]
        with urllib.request.urlopen(url) as r:
            page = r.read()
            res["form_status"] = r.status
        res["form_bytes"] = len(page)
        env = dict(os.environ, SP_BENCH_PASSWORD=pw)
        # check one unlock works before timing many
        req = urllib.request.Request(url, data=f"password={pw}".encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req) as r:
            body = r.read()
            if r.status != 200 or b"sealpost benchmark" not in body:
                raise RuntimeError("viewer: the unlock did not show the message")
            res["unlock_bytes"] = len(body)
        cpu0 = v.tree.cpu()
        CURRENT[0] = "viewer form"
        res["form"] = wrk(url, P["wrk_s"], 2, 16)
        res["form"]["cpu_ms_per_req"] = (v.tree.cpu() - cpu0) / max(1, res["form"]["requests"]) * 1000
        cpu0 = v.tree.cpu()
        v.tree.reset_peak()
        CURRENT[0] = "viewer unlock"
        res["unlock"] = wrk(url, P["unlock_s"], 1, 4, HERE / "unlock.lua", env)
        res["unlock"]["cpu_ms_per_req"] = (v.tree.cpu() - cpu0) / max(1, res["unlock"]["requests"]) * 1000
        res["unlock"]["peak_rss_kib"] = v.tree.peak_kib()[0]
    finally:
        v.stop()
    for k in ("form", "unlock"):
        res[k].pop("raw", None)
    ng = Nginx(work, page)
    try:
        ng_url = f"http://127.0.0.1:{ng.port}{ng.path}"
        with urllib.request.urlopen(ng_url) as r:
            assert len(r.read()) == len(page)
        cpu0 = ng.tree.cpu()
        CURRENT[0] = "nginx"
        res["nginx"] = wrk(ng_url, P["wrk_s"], 2, 16)
        res["nginx"]["cpu_ms_per_req"] = (ng.tree.cpu() - cpu0) / max(1, res["nginx"]["requests"]) * 1000
        res["nginx"].pop("raw", None)
    finally:
        ng.stop()
    for k in ("form", "unlock", "nginx"):
        log(f"  {k:7s} {res[k]['rps']:10.1f} req/s  p50 {res[k]['p50_ms']} ms  non-2xx {res[k]['non2xx']}")
    return res


# ---------------------------------------------------------------- scale

def idle_bench(work: Path, tools: dict, sink, keys: dict, P: dict) -> dict:
    n = P["idle"]
    CURRENT[0] = "idle"
    log(f"scale: {n} idle client connections")
    sp = Sealpost(work / "idle", tools["sealpost"], "link", sink, keys, label="sealpost (link config) idle")
    try:
        time.sleep(0.5)
        before = sp.tree.status()
        ready = work / "idle.ready"
        cmd = [PY, str(HERE / "smtpload.py"), "idle", "--port", str(sp.port), "-n", str(n), "--ready", str(ready)]
        record(cmd)
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        end = time.monotonic() + 120
        while not ready.exists():
            if p.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"idle client: {p.stderr.read().decode()[-500:] if p.stderr else ''}")
            time.sleep(0.1)
        time.sleep(1.0)
        during = sp.tree.status()
        p.stdin.close()
        p.wait(30)
        time.sleep(1.0)
        after = sp.tree.status()
    finally:
        sp.stop()
    res = {"n": n, "rss_before_kib": before["VmRSS"], "rss_idle_kib": during["VmRSS"],
           "threads_before": before["Threads"], "threads_idle": during["Threads"],
           "rss_after_kib": after.get("VmRSS"), "hwm_kib": during["VmHWM"]}
    res["per_conn_kib"] = (res["rss_idle_kib"] - res["rss_before_kib"]) / n
    log(f"  RSS {res['rss_before_kib'] / 1024:.1f} MiB -> {res['rss_idle_kib'] / 1024:.1f} MiB with {n} idle; "
        f"threads {res['threads_before']} -> {res['threads_idle']}")
    return res


# ---------------------------------------------------------------- environment

def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except subprocess.SubprocessError:
        return ""


def environment(tools: dict) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 1024 / 1024, 1),
        "kernel": platform.release(), "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "virt": sh("systemd-detect-virt 2>/dev/null || (grep -q hypervisor /proc/cpuinfo && echo vm)"),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "versions": {
            "sealpost": sh(f"{tools['sealpost']} --version") + " (" + sh(f"git -C {REPO} rev-parse --short HEAD")
            + (", uncommitted changes" if sh(f"git -C {REPO} status --porcelain -- common crypto proxy linkserver cli") else "")
            + ")",
            "build": "meson --buildtype=release (build-bench/)",
            "postfix": sh("postconf -d -h mail_version 2>/dev/null"),
            "gnupg": sh("gpg --version | head -1"),
            "gpgme": sh("pkg-config --modversion gpgme"),
            "libgcrypt": sh("gpg --version | sed -n 2p"),
            "libsodium": sh("pkg-config --modversion libsodium"),
            "openssl": sh("openssl version"),
            "gmime": sh("pkg-config --modversion gmime-3.0"),
            "libmicrohttpd": sh("pkg-config --modversion libmicrohttpd"),
            "nginx": sh("nginx -v 2>&1"),
            "wrk": sh("wrk -v 2>&1 | head -1"),
            "hyperfine": sh("hyperfine --version"),
            "python": sh(f"{PY} --version"),
            "cc": sh("cc --version | head -1"),
        },
    }


def busy_processes() -> list[str]:
    """Other processes using a lot of CPU right now (they skew every figure)."""
    out = sh("ps -eo pcpu=,comm= --sort=-pcpu | head -5")
    busy = []
    for line in out.splitlines():
        p = line.split(None, 1)
        if len(p) == 2 and float(p[0]) >= 20:
            busy.append(f"{p[1]} ({p[0]}%)")
    return busy


# ---------------------------------------------------------------- main

def guarded(results: dict, what: str, fn):
    """Run one part; a failure is recorded (and shown in the report), not fatal."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - any failure of a part must not lose the others
        log(f"\nbench: {what} FAILED: {e}")
        results.setdefault("errors", []).append(f"{what}: {e}")
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    ap.add_argument("--json", default=str(REPO / "build-bench" / "bench" / "results.json"))
    ap.add_argument("--tools", default=str(REPO / "build-bench" / "bench"))
    ap.add_argument("--build", default=str(REPO / "build-bench"))
    ap.add_argument("--only", default="", help="comma list of parts: matrix,big,crypto,viewer,idle,tls")
    ap.add_argument("--systems", default="", help="comma list: floor,postfix,plain,pgp,sodium,link,plain-keyring")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--render", metavar="RESULTS.json",
                    help="measure nothing: write --out again from a results file (after editing analysis.md)")
    args = ap.parse_args()
    if args.render:
        res = json.loads(Path(args.render).read_text())
        Path(args.out).write_text(report.render(res, HERE / "analysis.md"))
        print(report.console(res))
        return 0
    P = dict(PROFILES[args.profile])
    parts = set(args.only.split(",")) if args.only else {"matrix", "big", "crypto", "viewer", "idle", "tls"}
    tools = {"sealpost": Path(args.build) / "cli" / "sealpost",
             "harness": Path(args.build) / "tests" / "viewer_harness",
             "crypto_floor": Path(args.tools) / "crypto_floor",
             "tls_sink": Path(args.tools) / "tls_sink"}
    for k, p in tools.items():
        if not p.exists():
            log(f"bench: {k} not built: {p} (run scripts/bench.sh)")
            return 2
    # SIGTERM/SIGHUP: stop everything that was started, like Ctrl-C does
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(3))
    t_start = time.monotonic()
    env_info = environment(tools)
    busy = busy_processes()
    if busy:
        log(f"bench: WARNING: other processes are busy: {', '.join(busy)}; the figures will be noisy")
    env_info["busy_at_start"] = busy
    work = Path(tempfile.mkdtemp(prefix="sealpost-bench-"))
    os.chmod(work, 0o755)   # nginx workers and smtp-sink run as nobody, Postfix as postfix
    log(f"bench: profile {args.profile}, work directory {work}")
    results = {"profile": args.profile, "params": P, "env": env_info, "cells": [], "big": [], "tls": []}
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)

    def save():
        results["duration_s"] = time.monotonic() - t_start
        results["commands"] = COMMANDS
        results["command_examples"] = EXAMPLES
        json_path.write_text(json.dumps(results, indent=1, default=str))

    stoppers = []
    try:
        labels = list(P["sizes"]) + (["25M"] if P["big_count"] or P["gpg_big_runs"] else [])
        if "2K" not in labels:
            labels.insert(0, "2K")
        msgs = write_messages(work, labels)
        results["messages"] = {k: v["size"] for k, v in msgs.items()}
        keys = make_keys(work, tools["sealpost"])
        results["pgp_key"] = keys["algo"]
        if "crypto" in parts:
            f = Foreign()
            results["crypto"] = guarded(results, "crypto floors", lambda: crypto_floors(work, msgs, keys, tools, P))
            results.setdefault("other_load", {})["crypto floors"] = f.share()
            save()

        sink = SmtpSink(work)
        stoppers.append(sink.stop)
        results["sink_cmd"] = shlex.join(sink.cmd)
        wanted = set(args.systems.split(",")) if args.systems else None

        def systems():
            yield "floor", lambda: Direct(sink)
            yield "postfix", lambda: Postfix(work, sink)
            for f in P["forms"]:
                yield f, (lambda f=f: Sealpost(work, tools["sealpost"], f, sink, keys))
            if P["keyring_row"]:
                yield "plain-keyring", lambda: Sealpost(work, tools["sealpost"], "plain-keyring", sink, keys,
                                                        label="sealpost plain, keyring present")

        def measure_system(key, start, sizes, big, into, label_prefix=""):
            CURRENT[0] = label_prefix + key
            s = start()
            try:
                if isinstance(s, Sealpost):
                    results.setdefault("configs", {})[f"sealpost {label_prefix}{key}: sealpost.conf"] = s.conf.read_text()
                if isinstance(s, Postfix):
                    results.setdefault("configs", {})[f"Postfix {label_prefix}{key}: main.cf"] = \
                        (s.conf / "main.cf").read_text()
                for size in sizes:
                    for c in P.get("tls_conc", [1, 8]) if label_prefix else P["conc"]:
                        cell = run_cell(s, msgs[size], size, c, P)
                        cell["key"] = key
                        into.append(cell)
                        save()
                if big:
                    cell = run_big(s, msgs["25M"], P)
                    cell["key"] = key
                    results["big"].append(cell)
                    save()
            finally:
                s.stop()

        if parts & {"matrix", "big"}:
            log("matrix: smtp-source throughput, asyncio client latency (end of DATA -> reply)")
            for key, start in systems():
                if wanted and key not in wanted:
                    continue
                sizes = (P["sizes"] if key != "plain-keyring" else ["2K"]) if "matrix" in parts else []
                big = "big" in parts and P["big_count"] and key != "plain-keyring"
                guarded(results, f"matrix {key}",
                        lambda key=key, start=start, sizes=sizes, big=big:
                        measure_system(key, start, sizes, big, results["cells"]))

        if "tls" in parts and P["tls"]:
            log("TLS: the same sink with STARTTLS (tests/bench/tls_sink.c)")
            pki = make_pki(work)
            tsink = TlsSink(work, tools["tls_sink"], pki["cert"], pki["key"])
            stoppers.append(tsink.stop)
            results["tls_sink_cmd"] = shlex.join(tsink.cmd)
            tls_sizes = P.get("tls_sizes", ["2K", "1M"])
            for key, start in (
                ("floor", lambda: Direct(tsink, "direct to tls_sink (no TLS: floor)")),
                ("postfix-tls", lambda: Postfix(work, tsink, "Postfix relay, STARTTLS", tls_ca=pki["ca"])),
                ("plain-none", lambda: Sealpost(work, tools["sealpost"], "plain", tsink, keys,
                                                label="sealpost plain, no TLS")),
                ("plain-tls", lambda: Sealpost(work, tools["sealpost"], "plain", tsink, keys,
                                               label="sealpost plain, STARTTLS", upstream_tls="starttls",
                                               ca=pki["ca"])),
            ):
                guarded(results, f"tls {key}",
                        lambda key=key, start=start: measure_system(key, start, tls_sizes, False, results["tls"],
                                                                    "tls "))

        CURRENT[0] = ""
        if "viewer" in parts:
            f = Foreign()
            results["viewer"] = guarded(results, "viewer", lambda: viewer_bench(work, tools, msgs, P))
            results.setdefault("other_load", {})["viewer"] = f.share()
            save()
        if "idle" in parts:
            results["idle"] = guarded(results, "idle connections", lambda: idle_bench(work, tools, sink, keys, P))
    finally:
        for stop in reversed(stoppers):
            stop()
        subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(work / "gnupg")),
                       capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"bench: kept {work}")
    results["env"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    results["env"]["busy_at_end"] = busy_processes()
    save()
    md = report.render(results, HERE / "analysis.md")
    Path(args.out).write_text(md)
    print(report.console(results))
    log(f"bench: {results['duration_s']:.0f} s; wrote {args.out} and {args.json}")
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
