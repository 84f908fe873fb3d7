#!/usr/bin/python3
"""Viewer nodes on one store (issue 17): unlocks and wrong passwords per
second with 1, 2 and 3 `sealpost linkserver` nodes, on PostgreSQL and, for
comparison, on one SQLite file (several processes on one file).

    SP_VIEWER_HARNESS=build/tests/viewer_harness /usr/bin/python3 tests/bench/bench_store_nodes.py [N] [CLIENTS]

N requests of each kind per configuration (default 48), CLIENTS at once
(default 8), spread round-robin over the nodes, each from its own loopback
address; and 20 N password-form GETs (one store read each, no Argon2id) (the per-client backoff stays out of the figures).  Every request is
checked (200 with the message / 403), so a wrong answer fails the run instead
of making it faster.  Prints a Markdown table (docs/benchmarks.md, section 9).
On a 2-core machine every unlock and every wrong password is one Argon2id
(64 MiB, ~100-120 ms of CPU): the point is the shape and that nothing breaks,
not the absolute figure.
"""
import itertools
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from pgserver import PgServer  # noqa: E402
from viewer import Viewer, simple_message  # noqa: E402

_src = itertools.count(1)


def src() -> str:
    n = next(_src)
    return f"127.7.{n // 250}.{n % 250 + 1}"


def run(nodes, links, n, clients, password_of):
    """n POSTs round-robin over nodes and links; returns (per second, p50 ms, statuses)."""
    jobs = [(nodes[i % len(nodes)], links[i % len(links)], src()) for i in range(n)]

    def one(job):
        v, link, s = job
        r = v.post(link.path, {"password": password_of(link)}, source=s)
        return r.status, r.elapsed, r.text

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as ex:
        res = list(ex.map(one, jobs))
    dt = time.monotonic() - t0
    return n / dt, statistics.median(r[1] for r in res) * 1000, res


def measure(root: Path, store: str, n_nodes: int, n: int, clients: int) -> dict:
    nodes = []
    for i in range(n_nodes):
        v = Viewer(root / f"node{i}")
        v.store = store
        v.write_config()
        nodes.append(v)
    open_links = nodes[0].mklink(simple_message(), [f"pw{i}" for i in range(8)])
    bad_links = nodes[0].mklink(simple_message(), [f"px{i}" for i in range(8)], max_failed=1000)
    for v in nodes:
        v.start()
    try:
        gets = [(nodes[i % len(nodes)], open_links[i % len(open_links)]) for i in range(20 * n)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=clients) as ex:
            st = list(ex.map(lambda j: j[0].get(j[1].path).status, gets))
        gps = len(gets) / (time.monotonic() - t0)
        assert all(x == 200 for x in st), st
        ups, up50, res = run(nodes, open_links, n, clients, lambda link: link.password)
        assert all(s == 200 and "secret plan" in t for s, _, t in res), [s for s, _, _ in res]
        wps, wp50, res = run(nodes, bad_links, n, clients, lambda link: "wrong")
        assert all(s == 403 for s, _, _ in res), [s for s, _, _ in res]
    finally:
        for v in nodes:
            v.stop()
    return {"get_s": gps, "unlock_s": ups, "unlock_p50": up50, "wrong_s": wps, "wrong_p50": wp50}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 48
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    root = Path(tempfile.mkdtemp(prefix="sp-bench-nodes-"))
    pg = PgServer().start()
    rows = []
    try:
        for backend in ("sqlite", "postgresql"):
            for k in (1, 2, 3):
                work = root / f"{backend}-{k}"
                store = (str(work / "store" / "links.sqlite") if backend == "sqlite"
                         else pg.create_db(f"bench_{k}"))
                m = measure(work, store, k, n, clients)
                rows.append((backend, k, m))
                print(f"{backend} {k} node(s): {m['unlock_s']:.1f} unlocks/s, "
                      f"{m['wrong_s']:.1f} wrong/s", file=sys.stderr)
    finally:
        pg.close()
    print(f"{n} requests of each kind per row, {clients} at once, round-robin over the nodes; "
          f"{os.cpu_count()} cores.\n")
    print(f"Load average at the end: {os.getloadavg()[0]:.1f}.\n")
    print("| store | nodes | form GETs/s (one store read each) | unlocks/s | unlock p50 ms "
          "| wrong passwords/s | wrong p50 ms |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for backend, k, m in rows:
        print(f"| {backend} | {k} | {m['get_s']:.0f} | {m['unlock_s']:.1f} | {m['unlock_p50']:.0f} | "
              f"{m['wrong_s']:.1f} | {m['wrong_p50']:.0f} |")


if __name__ == "__main__":
    main()
