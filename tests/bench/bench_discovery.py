"""RCPT latency with key discovery (issue 16): a key in the user's keyring, a
discovered key answered from the cache, and a cold WKD lookup against the
local HTTPS server of tests/integration/test_discovery.py.

    SEALPOST_BIN=$PWD/build/cli/sealpost SEALPOST_TEST_ROOT=$PWD \\
      /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/bench/bench_discovery.py

It prints a Markdown table (median and 90th percentile of the RCPT round trip,
as the client sees it) and asserts nothing about time: figures are only
comparable within one run on one machine.  The cold lookup includes the
`sealpost keys forget` before each one only outside the timed RCPT.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from conftest import make_upstream, pki, sealpost_bin, start_sealpost, upstream  # noqa: E402,F401
from sealpost import run_cli  # noqa: E402
from test_discovery import ADV, ALICE, disc_config, sphome, world  # noqa: E402,F401

N_HIT = 200
N_COLD = 20


def _rcpt_times(sp, rcpt: str, n: int, before=None) -> list[float]:
    out = []
    with sp.client() as c:
        c.ehlo()
        for _ in range(n):
            if before:
                before()
            c.cmd(f"MAIL FROM:<{ALICE}>")
            t0 = time.perf_counter()
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            out.append((time.perf_counter() - t0) * 1000)
            assert r.code == 250 and "openpgp" in r.text, str(r)
            c.cmd("RSET")
        c.cmd("QUIT")
    return out


def _row(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.2f} | {p90:.2f} |"


def test_bench_rcpt_latency(world, sphome, start_sealpost, upstream):
    local = world.keys["other"]
    sphome.import_keys(local.home.export(local.fpr))
    sphome.lsign(local.fpr, world.alice.fpr)
    sp = start_sealpost(upstream, extra=disc_config(world, sphome))
    rows = []
    rows.append(_row("local key (user's keyring)", _rcpt_times(sp, local.addr, N_HIT)))
    _rcpt_times(sp, f"zed@{ADV}", 1)            # discover once
    rows.append(_row("discovered key, cache hit", _rcpt_times(sp, f"zed@{ADV}", N_HIT)))

    def forget():
        r = run_cli(sp.binary, ["keys", "-c", sp.config_path, "forget", f"zed@{ADV}"], sp.workdir)
        assert r.rc == 0, str(r)
    rows.append(_row("cold WKD lookup (advanced, local HTTPS server)",
                     _rcpt_times(sp, f"zed@{ADV}", N_COLD, before=forget)))
    print("\n| RCPT to | n | median ms | p90 ms |\n|---|---|---|---|\n" + "\n".join(rows))
