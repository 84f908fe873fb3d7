"""Fixtures for the sealpost integration suite.

  pki                 session-wide test PKI (pki.py)
  upstream            a started aiosmtpd upstream (upstream.py); variants with
                      @pytest.mark.upstream(mode=..., cert=..., script=..., ...) or
                      indirect parametrization: @pytest.mark.parametrize("upstream",
                      [dict(mode="tls")], indirect=True)
  make_upstream       factory for more upstreams in one test
  sealpost_bin        path of the binary under test ($SEALPOST_BIN)
  start_sealpost      factory: start_sealpost(upstream, proxy={...}, upstream_cfg={...},
                      extra={section: {...}}) -> started Sealpost; stopped (and
                      checked for sanitizer reports) at teardown
  sp                  start_sealpost(upstream) with the default config
  cli                 cli("check", "-c", path) -> CliResult
  write_file          write_file("name", text_or_bytes, mode=0o600) -> Path in tmp_path
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from pki import TestPKI  # noqa: E402
from sealpost import (Sealpost, free_port, hash_password, merge_config,  # noqa: E402
                      run_cli, sealpost_binary)
from upstream import Script, Upstream  # noqa: E402
from browser import AVAILABLE as BROWSER_AVAILABLE, MISSING as BROWSER_MISSING, open_browser  # noqa: E402

# Fixed credentials used across the suite.
CLIENT_USER = "alice"
CLIENT_PASSWORD = "client-pw-Kx7!v"


def pytest_configure(config):
    config.addinivalue_line("markers", "upstream(**kw): options for the `upstream` fixture")
    config.addinivalue_line("markers", "needs_binary: runs the sealpost binary")


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_upstream(pki, request):
    started: list[Upstream] = []
    request.node._upstreams = started

    def make(**kw) -> Upstream:
        up = Upstream(pki, **kw).start()
        started.append(up)
        return up

    yield make
    for up in started:
        up.stop()


@pytest.fixture
def upstream(request, make_upstream) -> Upstream:
    kw = {}
    marker = request.node.get_closest_marker("upstream")
    if marker:
        kw.update(marker.kwargs)
    if hasattr(request, "param") and request.param:
        kw.update(request.param)
    if "script" in kw and isinstance(kw["script"], dict):
        kw["script"] = Script(**kw["script"])
    return make_upstream(**kw)


@pytest.fixture(scope="session")
def sealpost_bin() -> Path:
    b = sealpost_binary()
    if not b.exists():
        pytest.fail(f"sealpost binary {b} does not exist: build it (ninja -C build) "
                    f"or set SEALPOST_BIN", pytrace=False)
    return b


@pytest.fixture
def write_file(tmp_path):
    def write(name: str, content, mode: int = 0o600) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        p.write_bytes(content)
        p.chmod(mode)
        return p
    return write


def default_config(up: Upstream, tmp: Path, port: int) -> dict:
    pw = tmp / "upstream.pass"
    if not pw.exists():
        pw.write_text(up.password + "\n")
        pw.chmod(0o600)
    tls = {"starttls": "starttls", "tls": "tls", "plain": "none"}[up.mode]
    return {
        "proxy": {
            "listen": f"127.0.0.1:{port}",
            "auth": "none",
            "max_message_size": "52428800",
            "max_recipients": "100",
            "max_connections": "256",
            "timeout": "5m",
            "data_timeout": "3m",
        },
        "upstream": {
            "host": "127.0.0.1",
            "port": str(up.port),
            "tls": tls,
            "ca_file": str(up.ca_path),
            "username": up.username,
            "password_file": str(pw),
            "helo": "localhost",
            "timeout": "30s",
        },
        "policy": {"no_key": "plain"},
        # Key discovery (WKD) would ask the real network for every keyless
        # recipient; test_discovery.py turns it on against its own servers.
        "discovery": {"wkd": "no"},
        # The viewer is not part of these tests; keep it off so parallel
        # instances never fight over its port.
        "linkserver": {"mode": "off"},
        "log": {"level": "debug"},
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of each sealpost's log and what each upstream saw."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for sp in getattr(item, "_sealposts", []):
            rep.sections.append((f"{sp.name} log ({sp.stderr_path})", sp.log()[-6000:]))
        for up in getattr(item, "_upstreams", []):
            rep.sections.append((f"upstream {up.host}:{up.port} events", up.events_summary()))


@pytest.fixture
def start_sealpost(sealpost_bin, tmp_path, request):
    started: list[Sealpost] = []
    request.node._sealposts = started

    def start(up: Upstream, proxy: dict | None = None, upstream_cfg: dict | None = None,
              extra: dict | None = None, users: dict | None = None, name: str | None = None,
              start: bool = True) -> Sealpost:
        n = name or f"sealpost{len(started)}"
        work = tmp_path / n
        work.mkdir(parents=True, exist_ok=True)
        cfg = default_config(up, work, free_port())
        overrides = {"proxy": dict(proxy or {}), "upstream": dict(upstream_cfg or {})}
        for s, keys in (extra or {}).items():
            overrides.setdefault(s, {}).update(keys)
        if users is not None:
            lines = "".join(f"{u}:{hash_password(sealpost_bin, p, work)}\n" for u, p in users.items())
            uf = work / "users"
            uf.write_text(lines)
            uf.chmod(0o600)
            overrides["proxy"].setdefault("users_file", str(uf))
            overrides["proxy"].setdefault("auth", "users")
        cfg = merge_config(cfg, overrides)
        sp = Sealpost(sealpost_bin, work, cfg, name=n)
        started.append(sp)
        if start:
            sp.start()
        else:
            sp.write_config()
        return sp

    yield start
    errors = []
    for sp in started:
        try:
            sp.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def sp(start_sealpost, upstream) -> Sealpost:
    return start_sealpost(upstream)


@pytest.fixture
def cli(sealpost_bin, tmp_path):
    work = tmp_path / "cli"
    work.mkdir(exist_ok=True)

    def run(*args, input: bytes | None = None, timeout: float = 30, env: dict | None = None):
        return run_cli(sealpost_bin, list(args), work, input=input, timeout=timeout, env_extra=env)
    return run


@pytest.fixture(autouse=True)
def _dev_null_intact():
    """Something once replaced /dev/null with a regular file during a run;
    name the test that does it."""
    import os as _os
    import stat as _stat
    yield
    st = _os.stat("/dev/null")
    assert _stat.S_ISCHR(st.st_mode), "/dev/null is no longer a character device after this test"


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through selenium (tests/integration/browser.py), its
    downloads under tmp_path; skipped where Chromium or its driver is missing."""
    if not BROWSER_AVAILABLE:
        pytest.skip(BROWSER_MISSING)
    drv = open_browser(tmp_path)
    yield drv
    drv.quit()
