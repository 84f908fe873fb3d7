"""Started as root with [proxy] user: bind first (a privileged port), then run as
that user, and still relay."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import clients
import messages
from checks import FROM, TO
from conftest import default_config
from ports import free_port
from sealpost import Sealpost, base_env, merge_config
from waits import WAIT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test dropping privileges")


def _privileged_free_port() -> int:
    for port in range(1000, 600, -1):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


def _uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


def test_drops_to_configured_user_after_binding(sealpost_bin, upstream):
    nobody = pwd.getpwnam("nobody")
    # A world-traversable work dir (pytest's tmp dirs are root-only), with the
    # files the unprivileged process needs owned by it, as an admin would set up.
    work = Path(tempfile.mkdtemp(prefix="sealpost-priv-"))
    work.chmod(0o755)
    try:
        state = work / "state"
        state.mkdir()
        os.chown(state, nobody.pw_uid, nobody.pw_gid)
        ca = work / "ca.pem"
        shutil.copy(upstream.ca_path, ca)
        ca.chmod(0o644)
        port = _privileged_free_port()
        cfg = default_config(upstream, work, port)
        os.chown(work / "upstream.pass", nobody.pw_uid, nobody.pw_gid)
        cfg = merge_config(cfg, {"proxy": {"user": "nobody"}, "upstream": {"ca_file": str(ca)},
                                 "linkserver": {"mode": "embedded",
                                                "listen": f"127.0.0.1:{free_port()}",
                                                "outbox_listen": f"127.0.0.1:{free_port()}"}})
        sp = Sealpost(sealpost_bin, work, cfg)
        sp.start()
        try:
            deadline = time.monotonic() + 5
            while set(_uids(sp.proc.pid)) != {nobody.pw_uid}:
                assert time.monotonic() < deadline, f"still running as uids {_uids(sp.proc.pid)}"
                time.sleep(0.05)
            msg = messages.simple(frm=FROM, to=TO)
            code, _ = clients.smtplib_send(port, FROM, [TO], msg)
            assert code == 250
            assert upstream.wait_for(1)[0].content == msg
            # The outbox token was made as root before the drop; the service's
            # user owns it (still 0600), so `sealpost outbox` works as that user.
            token = state / "outbox.token"
            st = token.stat()
            assert (st.st_uid, st.st_mode & 0o777) == (nobody.pw_uid, 0o600), \
                (st.st_uid, oct(st.st_mode))
            # The build tree may sit under a root-only directory (a mktemp -d
            # clone): the unprivileged client runs a copy from the work dir.
            client = work / "sealpost"
            shutil.copy(sealpost_bin, client)
            client.chmod(0o755)
            out = subprocess.run([str(client), "outbox", "-c", str(sp.config_path)],
                                 capture_output=True, text=True, timeout=WAIT,
                                 env=base_env(work), user=nobody.pw_uid, group=nobody.pw_gid,
                                 extra_groups=[], cwd=work)
            assert out.returncode == 0, out.stderr
            url = out.stdout.strip()
            with urllib.request.urlopen(url, timeout=WAIT) as r:
                assert r.status == 200 and b"<html" in r.read().lower()
        finally:
            sp.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
