"""Run the real sealpost binary: write its config, start it, talk to it, stop it.

    sp = Sealpost(binary, workdir, config)   # config: {section: {key: value}}
    sp.start()                               # returns when every listener accepts
    sp.port, sp.log(), sp.wait_log(r"...")
    sp.stop()                                # SIGTERM; raises on sanitizer reports

`run_cli(binary, args, ...)` runs one-shot commands (check, --help, config
errors) and returns a CliResult(rc, stdout, stderr).

Environment given to every sealpost process: SEALPOST_STATE_DIR=<workdir>/state
(the generated client-side certificate goes there), and HOME / XDG_* pointing
into the work dir, so nothing outside the test's tmp dir is read or written.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from clients import RawClient, ConnectionClosed
from waits import WAIT
from ports import free_port  # noqa: F401  (re-exported)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "cli" / "sealpost"

SANITIZER_PATTERNS = [
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "ERROR: UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
]


class SanitizerReport(AssertionError):
    pass


def sealpost_binary() -> Path:
    return Path(os.environ.get("SEALPOST_BIN", str(DEFAULT_BIN)))


def sanitizer_findings(text: str) -> list[str]:
    return [p for p in SANITIZER_PATTERNS if p in text]




def base_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    state = workdir / "state"
    home = workdir / "home"
    for d in (state, home, home / ".config", home / ".local" / "state"):
        d.mkdir(parents=True, exist_ok=True)
    env.update(
        SEALPOST_STATE_DIR=str(state),
        SEALPOST_USER_STATE="1",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
    )
    # No GNUPGHOME: [pgp] gnupg_home falls back to $HOME/.gnupg, which does not
    # exist here, and that alone means "no OpenPGP keys".  A keyring that was
    # named (GNUPGHOME or gnupg_home) must exist: missing, it is a fault.
    env.pop("GNUPGHOME", None)
    # Report sanitizer findings on stderr where the harness looks for them; keep
    # the process alive after a UBSan report so every report is seen.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=0")
    return env


def render_config(config: dict[str, dict[str, Optional[str]]]) -> str:
    # The tests written for v1 links get them ([link] version = 1: the v1
    # unlock path stays for links already in stores) unless the test sets
    # SEALPOST_TEST_LINK_V1=0 (test_link_v2.py and the other v2 tests) or
    # names a version itself.  Read here, by the harness; sealpost never reads it.
    if os.environ.get("SEALPOST_TEST_LINK_V1", "1") == "1" and \
            "version" not in (config.get("link") or {}):
        config = {**config, "link": {**(config.get("link") or {}), "version": "1"}}
    out = ["# written by tests/integration/sealpost.py"]
    for section, keys in config.items():
        out.append(f"[{section}]")
        for k, v in keys.items():
            if v is not None:
                out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out) + "\n"


def merge_config(base: dict, overrides: Optional[dict]) -> dict:
    """overrides: {section: {key: value-or-None}}; None removes the key."""
    out = {s: dict(k) for s, k in base.items()}
    for section, keys in (overrides or {}).items():
        sec = out.setdefault(section, {})
        for k, v in keys.items():
            if v is None:
                sec.pop(k, None)
            else:
                sec[k] = str(v)
    return out


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str
    argv: list[str]

    def __str__(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.rc}\n--- stdout\n{self.stdout[-6000:]}"
                f"\n--- stderr\n{self.stderr[-6000:]}")


def run_cli(binary: Path, args: list[str], workdir: Path, input: Optional[bytes] = None,
            timeout: float = 30, env_extra: Optional[dict] = None) -> CliResult:
    """Run `sealpost ARGS...` to completion.  Raises SanitizerReport on ASan/UBSan
    output; a command that does not finish in `timeout` is killed and fails."""
    env = base_env(workdir)
    env.update(env_extra or {})
    argv = [str(binary)] + [str(a) for a in args]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=workdir,
                         start_new_session=True)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"`{' '.join(argv)}` did not finish within {timeout}s "
                             f"(killed)\nstdout: {out[-2000:]!r}\nstderr: {err[-2000:]!r}")
    res = CliResult(p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), argv)
    found = sanitizer_findings(res.stderr)
    if found:
        raise SanitizerReport(f"sanitizer report ({', '.join(found)}) from {' '.join(argv)}:\n{res.stderr[-8000:]}")
    return res


_hash_cache: dict[tuple[str, str], str] = {}


def hash_password(binary: Path, password: str, workdir: Path) -> str:
    """An $argon2id$ hash for a users file: `sealpost passwd` when the binary has it,
    else argon2-cffi (python3-argon2) with libsodium-compatible parameters (p=1)."""
    key = (str(binary), password)
    if key in _hash_cache:
        return _hash_cache[key]
    h = None
    if binary.exists():
        try:
            r = run_cli(binary, ["passwd"], workdir, input=(password + "\n").encode(), timeout=60)
            line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
            if r.rc == 0 and line.startswith("$argon2id$"):
                h = line
        except AssertionError:
            raise
        except Exception:
            h = None
    if h is None:
        import argon2  # python3-argon2
        h = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1,
                                  type=argon2.Type.ID).hash(password)
    _hash_cache[key] = h
    return h


class Sealpost:
    def __init__(self, binary: Path, workdir: Path, config: dict, name: str = "sealpost"):
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.name = name
        self.config_path = workdir / f"{name}.conf"
        self.stderr_path = workdir / f"{name}.stderr"
        self.stdout_path = workdir / f"{name}.stdout"
        self.proc: Optional[subprocess.Popen] = None
        self.exit_code: Optional[int] = None
        self.listeners = self._parse_listeners(config["proxy"]["listen"])

    @staticmethod
    def _parse_listeners(spec: str) -> list[tuple[str, int, bool]]:
        out = []
        for item in spec.split(","):
            parts = item.split()
            hostport = parts[0]
            host, _, port = hostport.rpartition(":")
            out.append((host.strip("[]"), int(port), len(parts) > 1 and parts[1] == "tls"))
        return out

    @property
    def host(self) -> str:
        return self.listeners[0][0]

    @property
    def port(self) -> int:
        return self.listeners[0][1]

    def write_config(self) -> Path:
        self.config_path.write_text(render_config(self.config))
        return self.config_path

    def start(self, timeout: float = WAIT) -> "Sealpost":
        self.write_config()
        env = base_env(self.workdir)
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "run", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, env=env,
            cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        probes = 0
        for host, port, implicit in self.listeners:
            probes += self._wait_listener(host, port, implicit, deadline)
        self._wait_probes_released(probes, deadline)
        return self

    # One debug line per connection that the server is done with: a session
    # that gave its slot back, or a connection refused at accept.
    _DONE_RX = re.compile(r"smtp \S+: (?:session slot released|refused:)")

    def _wait_probes_released(self, probes: int, deadline: float) -> None:
        """Wait until sealpost has finished with every connection the readiness
        probes opened, so that a test starts with no session of ours counted
        against max_connections (under load, the server may accept a probe
        long after the probe hung up).  Needs the debug log, the suite's default."""
        if (self.config.get("log", {}).get("level") or "info") != "debug":
            return
        while True:
            done = len(self._DONE_RX.findall(self.log()))
            if done >= probes:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"sealpost exited with {self.proc.returncode} during "
                                     f"start\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sealpost still holds {probes - done} of the harness's "
                                     f"{probes} readiness connection(s) after start\n"
                                     f"{self.log()[-4000:]}")
            time.sleep(0.02)

    def _wait_listener(self, host: str, port: int, implicit: bool, deadline: float) -> int:
        """Wait until sealpost accepts on host:port; return how many connections
        it made that sealpost will see as sessions."""
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"sealpost exited with {self.proc.returncode} before "
                                     f"listening on {host}:{port}\n{self.log()[-4000:]}")
            try:
                s = socket.create_connection((host, port), timeout=0.5)
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"sealpost not listening on {host}:{port} "
                                         f"after start\n{self.log()[-4000:]}")
                time.sleep(0.02)
                continue
            s.close()
            if implicit:
                return 1
            # A complete, polite session: the SMTP service answers, not only the
            # kernel's backlog.
            left = max(5.0, deadline - time.monotonic())
            try:
                c = RawClient(host, port, timeout=left, read_greeting=False)
            except OSError:
                return 1                        # never connected: no session
            try:
                with c:
                    c.reply()
                    c.cmd("QUIT")
                    c.wait_closed(left)
            except (ConnectionClosed, OSError, AssertionError, TimeoutError):
                pass
            return 2

    def log(self) -> str:
        text = ""
        for p in (self.stderr_path, self.stdout_path):
            if p.exists():
                text += p.read_bytes().decode("utf-8", "replace")
        return text

    def wait_log(self, pattern: str, timeout: float = WAIT, flags: int = re.I) -> re.Match:
        rx = re.compile(pattern, flags)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"sealpost log has no /{pattern}/ within {timeout}s; log:\n"
                                     f"{self.log()[-4000:]}")
            time.sleep(0.05)

    def client(self, **kw) -> RawClient:
        host, port, implicit = self.listeners[kw.pop("listener", 0)]
        return RawClient(host, port, implicit_tls=implicit, **kw)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = WAIT) -> None:
        """SIGTERM and wait.  Raises AssertionError when it does not exit, exits
        with an unexpected status, or left sanitizer reports on stderr."""
        if self.proc is None:
            return
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append(f"did not exit within {timeout}s of SIGTERM (killed)")
        else:
            problems.append(f"had already exited with {self.proc.returncode} before teardown")
        self.exit_code = self.proc.returncode
        # 0 only: a graceful exit is also what lets LeakSanitizer run at exit.
        if self.exit_code != 0 and not problems:
            problems.append(f"exited with {self.exit_code} on SIGTERM")
        self._err.close()
        self._out.close()
        self.proc = None
        log = self.log()
        found = sanitizer_findings(log)
        if found:
            raise SanitizerReport(f"sanitizer report ({', '.join(found)}) in sealpost's stderr:\n"
                                  f"{log[-12000:]}")
        if problems:
            raise AssertionError(f"sealpost {'; '.join(problems)}\n{log[-4000:]}")
