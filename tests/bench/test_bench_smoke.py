"""CI smoke run of the benchmark harness (not the benchmark): scripts/bench.sh --smoke.

    /usr/bin/python3 -m pytest -q tests/bench/test_bench_smoke.py

Needs root and the bench packages (postfix, nginx, wrk, hyperfine); skipped
otherwise.  Checks that every part ran and produced a report with the target
table, not the figures (a smoke run is far too short to mean anything).
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0, reason="the benchmark runs a private Postfix instance: needs root")
@pytest.mark.skipif(any(shutil.which(t) is None for t in ("smtp-source", "smtp-sink", "nginx", "wrk", "hyperfine")),
                    reason="bench packages missing (scripts/deps.sh bench)")
def test_bench_smoke(tmp_path):
    out, js = tmp_path / "smoke.md", tmp_path / "smoke.json"
    r = subprocess.run([str(REPO / "scripts" / "bench.sh"), "--smoke", "--out", str(out), "--json", str(js)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(js.read_text())
    keys = {c["key"] for c in res["cells"]}
    assert {"floor", "postfix", "plain", "pgp", "sodium", "link"} <= keys
    assert all(c["msgs_per_s"] > 0 and c["p50_us"] for c in res["cells"])
    assert res["viewer"]["form"]["rps"] > 0 and res["viewer"]["unlock"]["requests"] >= 0
    assert res["idle"]["rss_idle_kib"] > 0
    assert res["crypto"]["sodium"]["argon2id_link_ms"] > 0
    md = out.read_text()
    for section in ("## Targets (issue 7)", "## SMTP: throughput", "## Crypto floors", "## Viewer", "## Scale"):
        assert section in md
