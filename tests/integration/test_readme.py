"""The README's quick-start run command works as written: scripts/demo.sh
installs, builds, starts a provider stand-in and sealpost, sends a message to
an OpenPGP, a sodium and a link recipient, and checks that the provider saw no
plaintext and that each recipient can open theirs."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end(tmp_path):
    """Also takes the viewer screenshots of docs/img (into tmp_path here):
    `scripts/demo.sh --screenshots` is how docs/img is made."""
    shots = tmp_path / "img"
    env = dict(os.environ, SEALPOST_DEMO_DIR=str(tmp_path / "demo"), SEALPOST_SCREENSHOT_DIR=str(shots))
    p = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--screenshots"], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out[-4000:]
    assert "plaintext visible to the provider" not in out
    # bob (OpenPGP), carol (sodium) and dave (link) each read the body.
    assert out.count("The launch is on Tuesday.") >= 3, out[-4000:]
    received = sorted((tmp_path / "demo" / "provider" / "received").glob("*.eml"))
    assert len(received) == 4       # bob, carol, dave's notification, alice's report
    for f in received:
        data = f.read_bytes()
        assert b"launch" not in data and b"Q3 figures" not in data and b"numbers.txt" not in data
    # The screenshots: the same four pictures docs/img holds, real PNGs.
    names = sorted(f.name for f in shots.glob("*.png"))
    assert names == sorted(f.name for f in (ROOT / "docs" / "img").glob("viewer-*.png")), names
    for f in shots.glob("*.png"):
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, f
