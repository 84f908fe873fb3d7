#!/usr/bin/python3
"""Viewer timings (docs/viewer.md "Measured").

    SP_VIEWER_HARNESS=build/tests/viewer_harness /usr/bin/python3 tests/bench/bench_viewer.py

Starts the viewer on a fresh store and measures, one request at a time: the
password form (GET), an unlock of a message with a 5 MB attachment, a wrong
password, and the 5 MB download.  Each unlock comes from its own loopback
address so the per-client backoff does not enter the figures.
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from viewer import Viewer, download_caps, rich_message, simple_message  # noqa: E402


def ms(x):
    return f"{x * 1000:.1f} ms"


def main():
    v = Viewer(Path(tempfile.mkdtemp(prefix="sp-bench-")))
    att = os.urandom(5_000_000)
    links = v.mklink(rich_message(att), [f"pw{i}" for i in range(12)])
    t0 = time.monotonic()
    v.mklink(simple_message(), ["x"])
    mk = time.monotonic() - t0
    v.start()
    try:
        g = sorted(v.get(links[0].path).elapsed for _ in range(200))
        unlock, dl = [], []
        for i, link in enumerate(links[:10]):
            r = v.post(link.path, {"password": link.password}, source=f"127.0.3.{i + 1}")
            assert r.status == 200
            unlock.append(r.elapsed)
            [(cap, part)] = download_caps(r.text)
            d = v.post(link.path, {"dl": cap, "part": part}, source=f"127.0.3.{i + 1}")
            assert d.body == att
            dl.append(d.elapsed)
        wrong = [v.post(links[11].path, {"password": "bad"}, source=f"127.0.4.{i + 1}").elapsed
                 for i in range(5)]
    finally:
        v.stop()
    print(f"mklink process (seal + one Argon2id wrap)  {ms(mk)}")
    print(f"GET form              median {ms(statistics.median(g))}  p95 {ms(g[int(len(g) * .95)])}")
    print(f"unlock, 5 MB message  median {ms(statistics.median(unlock))}")
    print(f"wrong password        median {ms(statistics.median(wrong))}")
    print(f"download 5 MB         median {ms(statistics.median(dl))}")


if __name__ == "__main__":
    main()
