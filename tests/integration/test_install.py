"""`meson install` into a temporary prefix puts the binary, the man pages, the
example config and the systemd units in their places; the man pages render;
systemd accepts the units (issue 9)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    dest = tmp_path_factory.mktemp("dest")
    p = run("meson", "setup", str(build), str(ROOT), "--prefix=/usr", "--sysconfdir=/etc")
    assert p.returncode == 0, p.stdout.decode()[-3000:]
    p = run("ninja", "-C", str(build))
    assert p.returncode == 0, p.stdout.decode()[-3000:]
    p = run("meson", "install", "-C", str(build), "--destdir", str(dest), "--no-rebuild")
    assert p.returncode == 0, p.stdout.decode()[-3000:]
    return dest


def test_installed_files(installed):
    want = [
        "usr/sbin/sealpost",
        "usr/share/man/man8/sealpost.8",
        "usr/share/man/man5/sealpost.conf.5",
        "usr/share/doc/sealpost/sealpost.conf",
        "usr/lib/systemd/system/sealpost.service",
        "usr/lib/systemd/system/sealpost-linkserver.service",
        "usr/lib/systemd/user/sealpost.service",
    ]
    for f in want:
        assert (installed / f).is_file(), f"{f} not installed"
    assert os.access(installed / "usr/sbin/sealpost", os.X_OK)
    p = run(str(installed / "usr/sbin/sealpost"), "--version")
    assert p.returncode == 0 and p.stdout.startswith(b"sealpost ")
    # The example config is the commented one and parses.
    assert b"[upstream]" in (installed / "usr/share/doc/sealpost/sealpost.conf").read_bytes()


@pytest.mark.parametrize("page", ["man8/sealpost.8", "man5/sealpost.conf.5"])
def test_man_pages_render(installed, page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", str(installed / "usr/share/man" / page)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert p.stderr == b"", f"groff/man warnings: {p.stderr.decode()[-2000:]}"
    assert "SEALPOST" in out.upper() and len(out.splitlines()) > 40


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit,user", [("system/sealpost.service", False),
                                       ("system/sealpost-linkserver.service", False),
                                       ("user/sealpost.service", True)])
def test_units_verify(installed, unit, user, tmp_path):
    path = installed / "usr/lib/systemd" / unit
    text = path.read_text()
    assert "ExecStart=/usr/sbin/sealpost" in text
    if not user:
        for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                          "CapabilityBoundingSet="):
            assert hardening in text, f"{unit}: no {hardening}"
    # Verify against the installed tree: the binary and man pages exist there.
    env = dict(os.environ, MANPATH=str(installed / "usr/share/man"), SYSTEMD_LOG_LEVEL="err")
    if user:
        # A user manager needs a runtime directory; the test makes one.
        (tmp_path / "run").mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    argv = ["systemd-analyze", "verify"] + (["--user"] if user else []) + [str(path)]
    p = run(*argv, env=env)
    out = p.stdout.decode("utf-8", "replace")
    # The only acceptable complaints are about this machine (no /usr/sbin/sealpost
    # installed system-wide); anything about the unit itself fails.
    bad = [l for l in out.splitlines() if l.strip() and "/usr/sbin/sealpost" not in l
           and "Command" not in l and "man:" not in l and "Documentation" not in l]
    assert not bad, out
