"""sealpost (libsodium) keys for the tests, made with the real binary.

    k = SodiumKey.make(binary, tmp / "keys", "bob@example.net")   # `sealpost keygen -o FILE`
    write_recipients(path, [k, ...])       # the [sodium] recipients file ("addr sealpost1:...")
    plain = k.open(binary, copy_bytes, tmp) # `sealpost open -k FILE`: the original message

`open()` returns the exact bytes sealpost wrote on stdout (no decoding), and
raises AssertionError with stderr when it exits non-zero or a sanitizer spoke.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sealpost import base_env, sanitizer_findings


@dataclass
class SodiumKey:
    addr: str
    keyfile: Path
    public: str            # "sealpost1:<base64>"

    @classmethod
    def make(cls, binary: Path, keydir: Path, addr: str) -> "SodiumKey":
        keydir.mkdir(parents=True, exist_ok=True)
        keyfile = keydir / (addr.replace("@", "_at_") + ".key")
        p = _run(binary, ["keygen", "-o", str(keyfile)], keydir)
        lines = [l for l in p.stdout.decode().split() if l.startswith("sealpost1:")]
        assert p.returncode == 0 and len(lines) == 1, (
            f"sealpost keygen -o {keyfile}: exit {p.returncode}\nstdout: {p.stdout!r}\n"
            f"stderr: {p.stderr!r}")
        assert keyfile.exists(), f"sealpost keygen did not write {keyfile}"
        return cls(addr, keyfile, lines[0])

    def open(self, binary: Path, data: bytes, workdir: Path) -> bytes:
        """Decrypt one sodium copy (a whole message as the upstream got it)."""
        workdir.mkdir(parents=True, exist_ok=True)
        f = workdir / "copy.eml"
        n = 0
        while f.exists():
            n += 1
            f = workdir / f"copy.{n}.eml"
        f.write_bytes(data)
        p = _run(binary, ["open", "-k", str(self.keyfile), str(f)], workdir)
        assert p.returncode == 0, (
            f"sealpost open -k {self.keyfile} {f}: exit {p.returncode}\n"
            f"stderr: {p.stderr.decode('utf-8', 'replace')[-3000:]}")
        return p.stdout


def write_recipients(path: Path, keys: Iterable[SodiumKey]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k.addr} {k.public}\n" for k in keys))
    path.chmod(0o600)
    return path


def _run(binary: Path, args: list[str], workdir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([str(binary)] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       env=base_env(workdir), cwd=workdir, timeout=timeout)
    found = sanitizer_findings(p.stderr.decode("utf-8", "replace"))
    assert not found, (f"sanitizer report ({', '.join(found)}) from sealpost {' '.join(args)}:\n"
                       f"{p.stderr.decode('utf-8', 'replace')[-6000:]}")
    return p
