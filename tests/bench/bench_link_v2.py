#!/usr/bin/python3
"""Link v2 speed (issue 15, "Speed and load"; docs/benchmarks.md section 11).

    SP_VIEWER_HARNESS=build/tests/viewer_harness SEALPOST_BIN=build/cli/sealpost \\
        /usr/bin/python3 tests/bench/bench_link_v2.py [--only wrong,static,browser] [--seconds S]

wrong    wrong passwords per second: v2 (wrk + wrong_v2.lua: evaluate with a
         random blinded element, then an unlock whose proof fails; the pair is
         one counted failure) against v1 (POST of a wrong password: a
         server-side Argon2id each), on the same viewer.  Each attempt from its
         own client address, so the per-client backoff stays out.
static   the page and each script as the viewer serves them against a private
         nginx serving the same bytes (fetched from the viewer) as static
         files: `wrk -t2 -c16`, as bench.py's viewer section.
browser  headless Chromium opens a v2 link to a 25 MB message (a view
         document with one 25 MB attachment), production Argon2id parameters:
         time from submitting the password to the message shown, and
         Argon2id alone in the same page; RUNS runs, median.

Every answer is checked (the statuses wrk saw, the failures the store
counted, the message shown) so a wrong answer fails the run instead of making
it faster.  Prints Markdown.  Figures are only comparable within one run on
this shared machine; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE.parent / "vectors"))
sys.path.insert(0, str(HERE))
import link_v2 as lv  # noqa: E402
from viewer import Viewer, simple_message, store_v2_link  # noqa: E402

DUMMY_ID = "AAAAAAAAAAAAAAAAAAAAAA"
# sealpost's Argon2id for links (crypto/link_envelope.h SP_LINK_ARGON2_*).
OPS, MEM_KIB = 3, 64 * 1024
V2_LINKS = 128           # wrong passwords: links, each with max_failed 1000 (the config's maximum)
V2_MAX_FAILED = 1000
BLINDED_POOL = 8192      # distinct random blinded elements, cycled
BROWSER_RUNS = 3
BIG = 25 * 1000 * 1000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def machine() -> str:
    la = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {la[0]:.1f} {la[1]:.1f} {la[2]:.1f}"


def start_viewer(work: Path) -> Viewer:
    v = Viewer(work, outbox=False)
    v.write_config()
    # info, as deployed: debug logging would be part of the figure.
    v.conf.write_text(v.conf.read_text().replace("level = debug", "level = info"))
    return v.start()


def wrk(args: list[str], env=None, timeout=600) -> str:
    cmd = ["wrk", "--timeout", "10s", "--latency"] + args
    log("  $", " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"wrk: {r.stderr}")
    return r.stdout


def wrk_rps(out: str) -> tuple[float, int, float | None]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    mm = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p50 = float(mm.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[mm.group(2)] if mm else None
    return rps, int(non2xx.group(1)) if non2xx else 0, p50


# ------------------------------------------------------------------ wrong

def bench_wrong(work: Path, seconds: int) -> dict:
    log("wrong passwords: v2 (evaluate + failing unlock) vs v1 (Argon2id per POST)")
    v = start_viewer(work / "wrong")
    try:
        ids = [store_v2_link(v.store, b"x" * 100, "right", "alice@example.com", "bench",
                             ops=1, mem_kib=8, max_failed=V2_MAX_FAILED, ttl=86400)[0] for _ in range(V2_LINKS)]
        (work / "links").write_text("\n".join(ids) + "\n")
        t0 = time.monotonic()
        pool = [lv.b64url(lv.r255_from_hash(os.urandom(64))) for _ in range(BLINDED_POOL)]
        log(f"  {BLINDED_POOL} blinded elements in {time.monotonic() - t0:.1f} s")
        (work / "blinded").write_text("\n".join(pool) + "\n")
        env = dict(os.environ, SP_BENCH_V2_LINKS=str(work / "links"),
                   SP_BENCH_V2_BLINDED=str(work / "blinded"),
                   SP_BENCH_V2_PROOF=lv.b64url(os.urandom(64)))
        res = {}
        for threads in (4, 8):
            out = wrk([f"-t{threads}", f"-c{threads}", f"-d{seconds}s", "-s", str(HERE / "wrong_v2.lua"),
                       v.base_url.rsplit("/s/", 1)[0] + "/"], env=env)
            m = re.search(r"SPV2 evaluate_ok=(\d+) evaluate_other=(\d+) wrong=(\d+) unlock_other=(\d+) "
                          r"duration_us=(\d+)", out)
            e, eo, w, uo, dur = (int(x) for x in m.groups())
            rps, _, p50 = wrk_rps(out)
            res[f"v2_c{threads}"] = {"wrong_s": w / (dur / 1e6), "evaluate_ok": e, "evaluate_other": eo,
                                    "wrong": w, "unlock_other": uo, "requests_s": rps, "p50_ms": p50}
            log(f"  v2 -c{threads}: {w / (dur / 1e6):.0f} wrong passwords/s ({e} evaluates, {eo} refused, "
                f"{w} wrong, {uo} other)")
            if eo or uo or w == 0:
                raise RuntimeError(f"v2: unexpected answers: {m.group(0)}")
        db = sqlite3.connect(f"file:{v.store}?mode=ro", uri=True, timeout=30)
        counted = db.execute("SELECT sum(failed) FROM links WHERE max_failed = ?", (V2_MAX_FAILED,)).fetchone()[0]
        db.close()
        total = sum(r["wrong"] for r in res.values())
        # The store counted every failure the clients saw, plus at most one a
        # connection: an unlock sent as wrk stopped, its answer not read.
        if not total <= counted <= total + 4 + 8:
            raise RuntimeError(f"v2: the store counted {counted} failures, wrk saw {total}")
        res["v2_store_failed"] = counted

        # v1 on the same viewer: 48 wrong passwords, 8 at once, each from its own address.
        links = v.mklink(simple_message(), [f"pw{i}" for i in range(8)], max_failed=1000)
        n, clients = 48, 8
        jobs = [(links[i % len(links)], f"127.9.{i // 250}.{i % 250 + 1}") for i in range(n)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=clients) as ex:
            st = list(ex.map(lambda j: v.post(j[0].path, {"password": "wrong"}, source=j[1]).status, jobs))
        dt = time.monotonic() - t0
        if any(s != 403 for s in st):
            raise RuntimeError(f"v1: {st}")
        res["v1"] = {"wrong_s": n / dt, "n": n, "clients": clients}
        log(f"  v1: {n / dt:.1f} wrong passwords/s")
    finally:
        v.stop()
    return res


# ------------------------------------------------------------------ static

def bench_static(work: Path, seconds: int, rounds: int = 2) -> dict:
    """Both servers up at once; for each file, viewer and nginx alternate
    `rounds` times (the machine's other load drifts: alternating spreads it
    over both), and each keeps its best run."""
    log("page and scripts: viewer vs nginx")
    from systems import Nginx
    v = start_viewer(work / "static")
    ng = None
    root = v.base_url.rsplit("/s/", 1)[0]
    names = ["page.html", "page.css", "app.js", "linkv2.js", "sodium.mjs", "libsodium-sumo.mjs"]
    res = {"files": {}, "rounds": rounds, "seconds": seconds}
    try:
        bodies = {"page.html": urllib.request.urlopen(v.base_url + DUMMY_ID, timeout=30).read()}
        for n in names[1:]:
            bodies[n] = urllib.request.urlopen(f"{root}/static/{n}", timeout=30).read()
        ng = Nginx(work / "nginx", bodies["page.html"], "page.html")
        for n, b in bodies.items():
            (ng.dir / "www" / n).write_bytes(b)
            os.chmod(ng.dir / "www" / n, 0o644)
        for n in names:
            vurl = v.base_url + DUMMY_ID if n == "page.html" else f"{root}/static/{n}"
            nurl = f"http://127.0.0.1:{ng.port}/{n}"
            for u in (vurl, nurl):   # the same bytes from both
                got = urllib.request.urlopen(u, timeout=30).read()
                assert got == bodies[n], (n, u)
            f = res["files"][n] = {"bytes": len(bodies[n]), "viewer": [], "nginx": []}
            for _ in range(rounds):
                for who, u in (("viewer", vurl), ("nginx", nurl)):
                    rps, non2xx, p50 = wrk_rps(wrk(["-t2", "-c16", f"-d{seconds}s", u]))
                    if non2xx:
                        raise RuntimeError(f"{who} {n}: {non2xx} non-2xx answers")
                    f[who].append({"rps": rps, "p50_ms": p50})
            f["viewer_rps"] = max(x["rps"] for x in f["viewer"])
            f["nginx_rps"] = max(x["rps"] for x in f["nginx"])
            f["viewer_p50_ms"] = min(x["p50_ms"] for x in f["viewer"])
            f["nginx_p50_ms"] = min(x["p50_ms"] for x in f["nginx"])
            log(f"  {n:20s} viewer {f['viewer_rps']:9.0f}/s  nginx {f['nginx_rps']:9.0f}/s  "
                f"{f['viewer_rps'] / f['nginx_rps']:.2f}x")
    finally:
        v.stop()
        if ng:
            ng.stop()
    return res


# ------------------------------------------------------------------ browser

def view_document(header: dict, attachments: list[bytes]) -> bytes:
    j = json.dumps(header).encode()
    return b"SPVIEWD1" + len(j).to_bytes(4, "big") + j + b"".join(attachments)


ARGON_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const mod = await import('/static/sodium.mjs');
  const sodium = mod.default || mod;
  await sodium.ready;
  const salt = new Uint8Array(16);
  const t0 = performance.now();
  sodium.crypto_pwhash(32, sodium.from_string('a password'), salt, arguments[0], arguments[1] * 1024,
                       sodium.crypto_pwhash_ALG_ARGON2ID13);
  done(performance.now() - t0);
})().catch(e => done('error: ' + e));
"""


def bench_browser(work: Path, runs: int) -> dict:
    log(f"browser: a {BIG // 1000000} MB message in headless Chromium, {runs} runs")
    from browser import AVAILABLE, MISSING, By, EC, WebDriverWait, open_browser
    if not AVAILABLE:
        raise RuntimeError(MISSING)
    att = os.urandom(BIG)
    header = {"v": 1, "from": "Alice <alice@example.com>", "to": "Dave <dave@example.org>", "cc": None,
              "date": "Tue, 1 Dec 2026 10:00:00 +0000", "subject": "The big one", "message_id": "<b@x>",
              "text": "See the attachment.", "html": None, "sender_key": None, "html_refused": False,
              "truncated": False,
              "attachments": [{"name": "big.bin", "type": "application/octet-stream", "size": len(att)}]}
    plain = view_document(header, [att])
    v = start_viewer(work / "browser")
    res = {"unlock_s": [], "argon2id_ms": [], "bytes": len(plain)}
    try:
        for i in range(runs):
            pw = "bench " + os.urandom(4).hex()
            id_b64, secret = store_v2_link(v.store, plain, pw, "alice@example.com", "bench",
                                           ops=OPS, mem_kib=MEM_KIB, max_failed=10, ttl=86400)
            d = work / f"chromium{i}"
            d.mkdir()
            drv = open_browser(d)
            try:
                drv.set_script_timeout(120)
                drv.get(f"{v.base_url}{id_b64}#{secret}")
                wait = WebDriverWait(drv, 300, poll_frequency=0.01)
                wait.until(EC.visibility_of_element_located((By.ID, "pw")))
                drv.find_element(By.ID, "pw").send_keys(pw)
                t0 = time.monotonic()
                drv.find_element(By.ID, "pw").send_keys("\n")
                wait.until(EC.visibility_of_element_located((By.ID, "message")))
                dt = time.monotonic() - t0
                assert drv.find_element(By.ID, "subject").text == "The big one"
                links = drv.find_elements(By.CSS_SELECTOR, "#attachments a")
                assert [a.text for a in links] == ["big.bin"], [a.text for a in links]
                ms = drv.execute_async_script(ARGON_JS, OPS, MEM_KIB)
                if not isinstance(ms, (int, float)):
                    raise RuntimeError(f"argon2id in the page: {ms}")
            finally:
                drv.quit()
            res["unlock_s"].append(dt)
            res["argon2id_ms"].append(ms)
            log(f"  run {i + 1}: unlock {dt:.2f} s, Argon2id alone {ms:.0f} ms")
    finally:
        v.stop()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="wrong,static,browser")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=BROWSER_RUNS)
    ap.add_argument("--json")
    a = ap.parse_args()
    only = set(a.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="sp-bench-v2-"))
    os.chmod(work, 0o755)   # nginx's workers run as nobody
    res = {"machine_before": machine()}
    if "wrong" in only:
        res["wrong"] = bench_wrong(work, a.seconds)
        res["machine_wrong"] = machine()
    if "static" in only:
        res["static"] = bench_static(work, a.seconds)
        res["machine_static"] = machine()
    if "browser" in only:
        res["browser"] = bench_browser(work, a.runs)
        res["machine_browser"] = machine()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    print(f"Before: {res['machine_before']}.\n")
    if "wrong" in res:
        w = res["wrong"]
        v1 = w["v1"]["wrong_s"]
        print("| wrong passwords | per second | × v1 |\n|---|--:|--:|")
        print(f"| v1: POST password (Argon2id on the viewer), {w['v1']['clients']} clients | {v1:.1f} | 1 |")
        for k in ("v2_c4", "v2_c8"):
            r = w[k]
            print(f"| v2: evaluate + failing unlock, wrk {k[4:]} | {r['wrong_s']:.0f} | {r['wrong_s'] / v1:.0f} |")
        print(f"\nThe store counted {w['v2_store_failed']} failures, as many as wrk saw. "
              f"({res['machine_wrong']} after.)\n")
    if "static" in res:
        print("| file | bytes | viewer req/s | nginx req/s | viewer / nginx | viewer p50 ms | nginx p50 ms |")
        print("|---|--:|--:|--:|--:|--:|--:|")
        for n, f in res["static"]["files"].items():
            print(f"| {n} | {f['bytes']} | {f['viewer_rps']:.0f} | {f['nginx_rps']:.0f} | "
                  f"{f['viewer_rps'] / f['nginx_rps']:.2f}× | {f['viewer_p50_ms']:.3f} | {f['nginx_p50_ms']:.3f} |")
        print(f"\nBest of {res['static']['rounds']} alternating {res['static']['seconds']}-second runs each. "
              f"({res['machine_static']} after.)\n")
    if "browser" in res:
        b = res["browser"]
        print(f"| {b['bytes']} bytes, {len(b['unlock_s'])} runs | median | runs |\n|---|--:|---|")
        print(f"| submit → message shown | {statistics.median(b['unlock_s']):.2f} s | "
              + ", ".join(f"{x:.2f}" for x in b["unlock_s"]) + " |")
        print(f"| Argon2id alone (t={OPS}, m={MEM_KIB // 1024} MiB) | {statistics.median(b['argon2id_ms']):.0f} ms | "
              + ", ".join(f"{x:.0f}" for x in b["argon2id_ms"]) + " |")
        print(f"\n({res['machine_browser']} after.)")


if __name__ == "__main__":
    main()
